//! Raw Ethernet frames the host crafts for a NIC on a QEMU datagram netdev.
//!
//! A NIC on `-netdev dgram` (see [`dgram_args`]) exchanges each Ethernet frame as one
//! UDP datagram with a host socket: what the test sends is what the NIC receives, byte
//! for byte, and what the guest sends comes back the same way. [`ethernet`],
//! [`ipv4`], [`udp`], [`tcp`] and [`arp_request`] build valid frames (checksums
//! right) for the test to break on purpose; [`arp_reply_from`], [`udp_reply`] and
//! [`tcp_segment`] pick the guest's answers out of what it sent.

/// Ethertypes.
pub const ETH_IPV4: u16 = 0x0800;
/// ARP's ethertype.
pub const ETH_ARP: u16 = 0x0806;
/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// The QEMU arguments for an e1000e on a datagram netdev: it receives what is sent to
/// 127.0.0.1:`local` and sends its frames to 127.0.0.1:`remote`.
pub fn dgram_args(local: u16, remote: u16) -> Vec<String> {
    vec![
        "-netdev".to_string(),
        format!(
            "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port={local},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
        ),
        "-device".to_string(),
        "e1000e,netdev=n0".to_string(),
    ]
}

/// An Ethernet frame (no padding: a runt stays a runt).
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (20-byte header, checksum right, TTL 64).
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// The pseudo-header checksum of a UDP or TCP `segment` (its checksum field zero).
fn transport_checksum(src: [u8; 4], dst: [u8; 4], protocol: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(segment);
    checksum(&pseudo)
}

/// A UDP datagram (checksum right) inside its IPv4 packet.
pub fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let sum = transport_checksum(src, dst, 17, &d);
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, 17, &d)
}

/// TCP flags.
pub const TCP_FIN: u8 = 0x01;
/// SYN.
pub const TCP_SYN: u8 = 0x02;
/// PSH.
pub const TCP_PSH: u8 = 0x08;
/// ACK.
pub const TCP_ACK: u8 = 0x10;

/// A TCP segment (no options, window 65535, checksum right) inside its IPv4 packet.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let sum = transport_checksum(src, dst, 6, &s);
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, 6, &s)
}

/// A TCP segment the guest sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags ([`TCP_SYN`], ...).
    pub flags: u8,
    /// Its data.
    pub payload: Vec<u8>,
}

/// If `frame` is a TCP segment from `ip`:`port` to port `to`: the segment.
pub fn tcp_segment(frame: &[u8], ip: [u8; 4], port: u16, to: u16) -> Option<Segment> {
    if frame.get(12..14)? != ETH_IPV4.to_be_bytes() {
        return None;
    }
    let packet = &frame[14..];
    let ihl = usize::from(packet.first()? & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if *packet.get(9)? != 6 || packet.get(12..16)? != ip || total > packet.len() {
        return None;
    }
    let s = packet.get(ihl..total)?;
    let word = |at: usize| Some(u32::from_be_bytes(s.get(at..at + 4)?.try_into().ok()?));
    let data = usize::from(s.get(12)? >> 4) * 4;
    if s.get(0..2)? != port.to_be_bytes() || s.get(2..4)? != to.to_be_bytes() {
        return None;
    }
    Some(Segment { seq: word(4)?, ack: word(8)?, flags: *s.get(13)?, payload: s.get(data..)?.to_vec() })
}

/// A broadcast ARP request from (`mac`, `ip`) for `target`.
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&mac);
    a.extend_from_slice(&ip);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    ethernet(BROADCAST, mac, ETH_ARP, &a)
}

/// An ARP reply to (`to_mac`, `to_ip`): `ip` is at `mac`.
pub fn arp_reply(mac: [u8; 6], ip: [u8; 4], to_mac: [u8; 6], to_ip: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
    a.extend_from_slice(&mac);
    a.extend_from_slice(&ip);
    a.extend_from_slice(&to_mac);
    a.extend_from_slice(&to_ip);
    ethernet(to_mac, mac, ETH_ARP, &a)
}

/// If `frame` is an ARP request for `ip`: the asker's MAC and address.
pub fn arp_request_for(frame: &[u8], ip: [u8; 4]) -> Option<([u8; 6], [u8; 4])> {
    let a = frame.get(14..42)?;
    (frame[12..14] == ETH_ARP.to_be_bytes() && a[6..8] == [0, 1] && a[24..28] == ip)
        .then(|| (a[8..14].try_into().unwrap(), a[14..18].try_into().unwrap()))
}

/// If `frame` is an ARP reply saying `ip` is somewhere: that MAC.
pub fn arp_reply_from(frame: &[u8], ip: [u8; 4]) -> Option<[u8; 6]> {
    let a = frame.get(14..42)?;
    (frame[12..14] == ETH_ARP.to_be_bytes() && a[6..8] == [0, 2] && a[14..18] == ip)
        .then(|| a[8..14].try_into().unwrap())
}

/// If `frame` is a UDP datagram from `ip`:`port`: its source MAC and payload.
pub fn udp_reply(frame: &[u8], ip: [u8; 4], port: u16) -> Option<([u8; 6], Vec<u8>)> {
    if frame.get(12..14)? != ETH_IPV4.to_be_bytes() {
        return None;
    }
    let packet = &frame[14..];
    let ihl = usize::from(packet.first()? & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if *packet.get(9)? != 17 || packet.get(12..16)? != ip || total > packet.len() {
        return None;
    }
    let d = packet.get(ihl..total)?;
    if d.get(0..2)? != port.to_be_bytes() {
        return None;
    }
    Some((frame[6..12].try_into().unwrap(), d.get(8..)?.to_vec()))
}
