//! A stateless traffic filter: what a frame is, and whether rules allow it.
//!
//! [`classify`] takes any bytes (short, long, malformed) from either side and answers
//! what the frame carries: ARP, ICMP, TCP or UDP to a destination port over IPv4, or
//! why it is not something a rule can allow. Malformed frames (truncated headers, bad
//! lengths or IPv4 header checksums, oversized) are told apart from well-formed ones no
//! rule speaks of (IPv6, VLAN tags, other IP protocols, fragments), so both can be
//! counted. [`allows`] matches the description's `abi::system::FilterRule`s.

use abi::system::{FilterRule, RuleDirection, RuleProtocol};

/// Most bytes of an Ethernet frame without its FCS (1500 bytes of payload).
pub const MAX_FRAME: usize = 1514;
/// Bytes of an Ethernet header without VLAN tag.
const ETHER_HEADER: usize = 14;

/// What a well-formed frame carries, as far as rules go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// An ARP packet.
    Arp,
    /// An ICMP message over IPv4.
    Icmp,
    /// A TCP segment over IPv4 to `dst`.
    Tcp {
        /// Destination port.
        dst: u16,
    },
    /// A UDP datagram over IPv4 to `dst`.
    Udp {
        /// Destination port.
        dst: u16,
    },
    /// Well formed, but nothing a rule can allow (another EtherType or IP protocol,
    /// or an IPv4 fragment, whose ports a stateless filter cannot see): the reason.
    Unsupported(&'static str),
}

/// Why a frame is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The one's-complement sum of an IPv4 header: 0xffff when its checksum is right.
fn header_sum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// What `frame` carries, or why it is malformed.
pub fn classify(frame: &[u8]) -> Result<Traffic, Malformed> {
    if frame.len() < ETHER_HEADER {
        return Err(Malformed("shorter than an Ethernet header"));
    }
    if frame.len() > MAX_FRAME {
        return Err(Malformed("longer than an Ethernet frame"));
    }
    let payload = &frame[ETHER_HEADER..];
    match be16(frame, 12) {
        Some(0x0806) if payload.len() >= 28 => Ok(Traffic::Arp),
        Some(0x0806) => Err(Malformed("truncated ARP packet")),
        Some(0x0800) => ipv4(payload),
        Some(0x86dd) => Ok(Traffic::Unsupported("IPv6")),
        Some(0x8100 | 0x88a8) => Ok(Traffic::Unsupported("VLAN-tagged")),
        Some(t) if t < 0x0600 => Ok(Traffic::Unsupported("802.3 length field")),
        _ => Ok(Traffic::Unsupported("another EtherType")),
    }
}

fn ipv4(packet: &[u8]) -> Result<Traffic, Malformed> {
    let first = *packet.first().ok_or(Malformed("empty IPv4 packet"))?;
    if first >> 4 != 4 {
        return Err(Malformed("IPv4 EtherType with another IP version"));
    }
    let header_len = usize::from(first & 0xf) * 4;
    if header_len < 20 || packet.len() < header_len {
        return Err(Malformed("truncated or too short IPv4 header"));
    }
    let total = usize::from(be16(packet, 2).unwrap_or(0));
    // Padding after the packet is allowed (short frames are padded to 60 bytes).
    if total < header_len || total > packet.len() {
        return Err(Malformed("IPv4 total length disagrees with the frame"));
    }
    if header_sum(&packet[..header_len]) != 0xffff {
        return Err(Malformed("bad IPv4 header checksum"));
    }
    let fragment = be16(packet, 6).unwrap_or(0);
    if fragment & 0x3fff != 0 {
        return Ok(Traffic::Unsupported("IPv4 fragment"));
    }
    let body = &packet[header_len..total];
    match packet[9] {
        1 if body.len() >= 8 => Ok(Traffic::Icmp),
        1 => Err(Malformed("truncated ICMP header")),
        6 => {
            let offset = body.get(12).map(|b| usize::from(b >> 4) * 4).ok_or(Malformed("truncated TCP header"))?;
            if offset < 20 || body.len() < offset {
                return Err(Malformed("truncated TCP header or bad data offset"));
            }
            Ok(Traffic::Tcp { dst: be16(body, 2).unwrap_or(0) })
        }
        17 => {
            let len = usize::from(be16(body, 4).ok_or(Malformed("truncated UDP header"))?);
            if len < 8 || len > body.len() {
                return Err(Malformed("UDP length disagrees with the packet"));
            }
            Ok(Traffic::Udp { dst: be16(body, 2).unwrap_or(0) })
        }
        _ => Ok(Traffic::Unsupported("another IP protocol")),
    }
}

/// Whether a well-formed `frame` (see [`classify`]) keeps to the client's own IPv4
/// address `own`: sent (`Out`) from it (IPv4 source, ARP sender), or received (`In`)
/// for it (IPv4 destination, or the limited broadcast or multicast; ARP target). Other
/// frames carry no address and pass.
pub fn keeps_to(frame: &[u8], direction: RuleDirection, own: [u8; 4]) -> bool {
    let at = |offset: usize| frame.get(ETHER_HEADER + offset..ETHER_HEADER + offset + 4);
    let is_own = |offset: usize| at(offset) == Some(&own[..]);
    match (be16(frame, 12), direction) {
        // ARP: sender protocol address at 14, target at 24.
        (Some(0x0806), RuleDirection::Out) => is_own(14),
        (Some(0x0806), RuleDirection::In) => is_own(24),
        // IPv4: source at 12, destination at 16.
        (Some(0x0800), RuleDirection::Out) => is_own(12),
        (Some(0x0800), RuleDirection::In) => {
            is_own(16) || at(16).is_some_and(|d| d == [255; 4] || (224..=239).contains(&d[0]))
        }
        _ => true,
    }
}

/// Whether one of `rules` lets `traffic` go `direction`.
pub fn allows<'a>(rules: impl IntoIterator<Item = &'a FilterRule>, direction: RuleDirection, traffic: Traffic) -> bool {
    let (protocol, port) = match traffic {
        Traffic::Arp => (RuleProtocol::Arp, 0),
        Traffic::Icmp => (RuleProtocol::Icmp, 0),
        Traffic::Tcp { dst } => (RuleProtocol::Tcp, dst),
        Traffic::Udp { dst } => (RuleProtocol::Udp, dst),
        Traffic::Unsupported(_) => return false,
    };
    // An address record is no permission.
    rules.into_iter().any(|r| {
        r.direction == direction.raw() && r.protocol == protocol.raw() && (r.port_first..=r.port_last).contains(&port)
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// An Ethernet + IPv4 frame carrying `body` as IP protocol `proto`.
    fn ipv4_frame(proto: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + body.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let sum = !header_sum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(body);
        f
    }

    fn udp(dst: u16, payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; 8 + payload];
        b[2..4].copy_from_slice(&dst.to_be_bytes());
        b[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        b
    }

    fn tcp(dst: u16) -> Vec<u8> {
        let mut b = vec![0u8; 20];
        b[2..4].copy_from_slice(&dst.to_be_bytes());
        b[12] = 5 << 4;
        b
    }

    fn rule(direction: RuleDirection, protocol: RuleProtocol, first: u16, last: u16) -> FilterRule {
        FilterRule {
            direction: direction.raw(),
            protocol: protocol.raw(),
            port_first: first,
            port_last: last,
            ..Default::default()
        }
    }

    #[test]
    fn well_formed_frames_are_classified() {
        assert_eq!(classify(&ipv4_frame(17, &udp(7, 16))), Ok(Traffic::Udp { dst: 7 }));
        assert_eq!(classify(&ipv4_frame(6, &tcp(80))), Ok(Traffic::Tcp { dst: 80 }));
        assert_eq!(classify(&ipv4_frame(1, &[8, 0, 0, 0, 0, 0, 0, 0])), Ok(Traffic::Icmp));
        let mut padded = ipv4_frame(17, &udp(7, 0));
        padded.resize(60, 0);
        assert_eq!(classify(&padded), Ok(Traffic::Udp { dst: 7 }), "Ethernet padding after the packet");
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(&arp), Ok(Traffic::Arp));
        let mut v6 = vec![0u8; 60];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(classify(&v6), Ok(Traffic::Unsupported("IPv6")));
        let mut frag = ipv4_frame(17, &udp(7, 8));
        frag[14 + 6] = 0x20; // more fragments
        frag[14 + 10..14 + 12].fill(0);
        let sum = !header_sum(&frag[14..34]);
        frag[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(classify(&frag), Ok(Traffic::Unsupported("IPv4 fragment")));
    }

    #[test]
    fn malformed_frames_are_refused_without_panicking() {
        assert!(classify(&[0u8; 10]).is_err());
        assert!(classify(&vec![0u8; 1515]).is_err());
        let good = ipv4_frame(17, &udp(7, 16));
        let mut bad_sum = good.clone();
        bad_sum[14 + 8] ^= 1;
        assert_eq!(classify(&bad_sum), Err(Malformed("bad IPv4 header checksum")));
        let mut long_udp = good.clone();
        long_udp[34 + 4..34 + 6].copy_from_slice(&999u16.to_be_bytes());
        assert!(classify(&long_udp).is_err());
        let truncated_tcp = ipv4_frame(6, &tcp(80)[..10]);
        assert!(classify(&truncated_tcp).is_err());
        // Every prefix and every single-byte corruption of valid frames: no panic.
        for f in [good, ipv4_frame(6, &tcp(80))] {
            for n in 0..=f.len() {
                let _ = classify(&f[..n]);
            }
            for i in 0..f.len() {
                let mut g = f.clone();
                g[i] ^= 0xff;
                let _ = classify(&g);
            }
        }
    }

    #[test]
    fn addresses_bind_the_client() {
        let own = [10, 0, 2, 15];
        let mut out = ipv4_frame(17, &udp(7, 8));
        out[26..30].copy_from_slice(&own);
        assert!(keeps_to(&out, RuleDirection::Out, own));
        out[29] = 16;
        assert!(!keeps_to(&out, RuleDirection::Out, own), "another source address");
        let mut inbound = ipv4_frame(17, &udp(7, 8));
        inbound[30..34].copy_from_slice(&own);
        assert!(keeps_to(&inbound, RuleDirection::In, own));
        inbound[30..34].copy_from_slice(&[10, 0, 2, 16]);
        assert!(!keeps_to(&inbound, RuleDirection::In, own), "for another partition");
        inbound[30..34].copy_from_slice(&[255; 4]);
        assert!(keeps_to(&inbound, RuleDirection::In, own), "limited broadcast");
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[28..32].copy_from_slice(&[10, 0, 2, 16]);
        assert!(!keeps_to(&arp, RuleDirection::Out, own), "ARP claiming another's address");
        arp[28..32].copy_from_slice(&own);
        assert!(keeps_to(&arp, RuleDirection::Out, own));
        arp[38..42].copy_from_slice(&[10, 0, 2, 16]);
        assert!(!keeps_to(&arp, RuleDirection::In, own), "ARP for another partition");
        assert!(!keeps_to(&arp[..20], RuleDirection::In, own), "truncated");
        let address = FilterRule::for_address(own);
        assert_eq!(address.address(), Some(own));
        assert!(!allows(&[address], RuleDirection::In, Traffic::Udp { dst: 7 }), "an address allows nothing");
    }

    #[test]
    fn rules_allow_only_what_they_name() {
        let rules = [
            rule(RuleDirection::In, RuleProtocol::Tcp, 80, 80),
            rule(RuleDirection::In, RuleProtocol::Arp, 0, 0),
            rule(RuleDirection::Out, RuleProtocol::Tcp, 0, u16::MAX),
        ];
        assert!(allows(&rules, RuleDirection::In, Traffic::Tcp { dst: 80 }));
        assert!(!allows(&rules, RuleDirection::In, Traffic::Tcp { dst: 81 }));
        assert!(!allows(&rules, RuleDirection::In, Traffic::Udp { dst: 80 }));
        assert!(allows(&rules, RuleDirection::In, Traffic::Arp));
        assert!(!allows(&rules, RuleDirection::Out, Traffic::Arp));
        assert!(allows(&rules, RuleDirection::Out, Traffic::Tcp { dst: 40000 }));
        assert!(!allows(&rules, RuleDirection::In, Traffic::Unsupported("IPv6")));
        assert!(!allows(&[], RuleDirection::In, Traffic::Icmp));
    }
}
