//! A DHCP DISCOVER and the parsing of the OFFER that answers it (RFC 2131).

use crate::arp::BROADCAST;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Bytes of the IPv4 packet of a DISCOVER (QEMU's slirp wants at least a full
/// 312-byte options area: 20 + 8 + 236 + 312).
pub const DISCOVER_IP_LEN: usize = 576;
/// Bytes of a DISCOVER frame.
pub const DISCOVER_LEN: usize = 14 + DISCOVER_IP_LEN;
/// The DHCP magic cookie.
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Offsets in the frame.
const IP: usize = 14;
const UDP: usize = IP + 20;
const BOOTP: usize = UDP + 8;
const OPTIONS: usize = BOOTP + 236;

/// The ones'-complement checksum of an IPv4 header.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A broadcast DHCP DISCOVER from `mac` with transaction id `xid`.
pub fn discover(mac: [u8; 6], xid: u32) -> [u8; DISCOVER_LEN] {
    let mut f = [0u8; DISCOVER_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    // IPv4: version 4, 20-byte header, total length, TTL 64, UDP, 0.0.0.0 -> broadcast.
    f[IP] = 0x45;
    f[IP + 2..IP + 4].copy_from_slice(&(DISCOVER_IP_LEN as u16).to_be_bytes());
    f[IP + 8] = 64;
    f[IP + 9] = 17;
    f[IP + 16..IP + 20].copy_from_slice(&[255; 4]);
    let checksum = ipv4_checksum(&f[IP..UDP]);
    f[IP + 10..IP + 12].copy_from_slice(&checksum.to_be_bytes());
    // UDP 68 -> 67, no checksum (allowed over IPv4).
    f[UDP..UDP + 2].copy_from_slice(&68u16.to_be_bytes());
    f[UDP + 2..UDP + 4].copy_from_slice(&67u16.to_be_bytes());
    f[UDP + 4..UDP + 6].copy_from_slice(&((DISCOVER_IP_LEN - 20) as u16).to_be_bytes());
    // BOOTP request over Ethernet, the reply broadcast (we have no address yet).
    f[BOOTP..BOOTP + 4].copy_from_slice(&[1, 1, 6, 0]);
    f[BOOTP + 4..BOOTP + 8].copy_from_slice(&xid.to_be_bytes());
    f[BOOTP + 10] = 0x80;
    f[BOOTP + 28..BOOTP + 34].copy_from_slice(&mac);
    f[OPTIONS..OPTIONS + 4].copy_from_slice(&COOKIE);
    // Option 53 (message type) = 1 (DISCOVER), then the end option.
    f[OPTIONS + 4..OPTIONS + 8].copy_from_slice(&[53, 1, 1, 255]);
    f
}

/// What an OFFER proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The address offered.
    pub your_ip: [u8; 4],
    /// The server's identifier (option 54), if given.
    pub server: Option<[u8; 4]>,
}

/// The OFFER in `frame` answering DISCOVER `xid` from `mac`, if it is one.
pub fn offer_for(frame: &[u8], mac: [u8; 6], xid: u32) -> Option<Offer> {
    let eth = frame.get(..IP)?;
    if eth[12..14] != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    let ihl = usize::from(*frame.get(IP)? & 0x0f) * 4;
    if frame[IP] >> 4 != 4 || ihl < 20 || *frame.get(IP + 9)? != 17 {
        return None;
    }
    let udp = IP + ihl;
    let ports = frame.get(udp..udp + 4)?;
    if ports != [0, 67, 0, 68] {
        return None;
    }
    let bootp = udp + 8;
    let b = frame.get(bootp..bootp + 240)?;
    if b[0] != 2 || b[4..8] != xid.to_be_bytes() || b[28..34] != mac || b[236..240] != COOKIE {
        return None;
    }
    let your_ip: [u8; 4] = b[16..20].try_into().ok()?;
    let (mut kind, mut server) = (None, None);
    let mut at = bootp + 240;
    while let Some(&code) = frame.get(at) {
        match code {
            0 => at += 1,
            255 => break,
            _ => {
                let len = usize::from(*frame.get(at + 1)?);
                let value = frame.get(at + 2..at + 2 + len)?;
                match (code, len) {
                    (53, 1) => kind = Some(value[0]),
                    (54, 4) => server = value.try_into().ok(),
                    _ => {}
                }
                at += 2 + len;
            }
        }
    }
    (kind == Some(2)).then_some(Offer { your_ip, server })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// An OFFER as slirp sends it, built from the DISCOVER.
    fn offer(xid: u32) -> alloc::vec::Vec<u8> {
        let mut f = discover(MAC, xid).to_vec();
        f[UDP..UDP + 4].copy_from_slice(&[0, 67, 0, 68]);
        f[BOOTP] = 2;
        f[BOOTP + 16..BOOTP + 20].copy_from_slice(&[10, 0, 2, 15]);
        f[OPTIONS + 4..OPTIONS + 14].copy_from_slice(&[53, 1, 2, 0, 54, 4, 10, 0, 2, 2]);
        f[OPTIONS + 14] = 255;
        f
    }

    #[test]
    fn discover_has_a_valid_header_checksum_and_slirps_size() {
        let f = discover(MAC, 7);
        assert_eq!(f.len(), 590);
        assert_eq!(ipv4_checksum(&f[IP..UDP]), 0, "a correct header sums to zero");
        assert_eq!(&f[BOOTP + 28..BOOTP + 34], &MAC);
    }

    #[test]
    fn the_offer_is_recognised_and_anything_else_is_not() {
        let o = offer(7);
        assert_eq!(offer_for(&o, MAC, 7), Some(Offer { your_ip: [10, 0, 2, 15], server: Some([10, 0, 2, 2]) }));
        assert_eq!(offer_for(&o, MAC, 8), None, "another transaction");
        assert_eq!(offer_for(&o, [2; 6], 7), None, "another client");
        assert_eq!(offer_for(&discover(MAC, 7), MAC, 7), None, "a request is no offer");
        for cut in [0, 13, 30, 100, OPTIONS + 6, OPTIONS + 9] {
            assert_eq!(offer_for(&o[..cut], MAC, 7), None, "truncated at {cut}");
        }
        let mut bad = o.clone();
        bad[OPTIONS + 5] = 200;
        assert_eq!(offer_for(&bad, MAC, 7), None, "an option running past the end");
    }
}
