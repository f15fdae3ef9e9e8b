//! ARP frames of the drivers' self-tests (bounds-checked parsing).
//!

/// The broadcast MAC address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Bytes of an Ethernet header plus an IPv4-over-Ethernet ARP packet.
pub const ARP_FRAME_LEN: usize = 14 + 28;

/// An ARP request from `mac`/`ip` asking who has `target` (a 42-byte frame).
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 1 (request)
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    // target hardware address stays zero
    f[38..42].copy_from_slice(&target);
    f
}

/// An ARP reply's sender MAC and IP, if `frame` is an ARP reply addressed to `mac`
/// (any length: short or malformed frames give `None`).
pub fn arp_reply_for(frame: &[u8], mac: [u8; 6]) -> Option<([u8; 6], [u8; 4])> {
    let f = frame.get(..ARP_FRAME_LEN)?;
    if f[0..6] != mac || f[12..14] != ETHERTYPE_ARP.to_be_bytes() || f[14..22] != [0, 1, 0x08, 0x00, 6, 4, 0, 2] {
        return None;
    }
    if f[32..38] != mac {
        return None;
    }
    let sender_mac = f[22..28].try_into().ok()?;
    let sender_ip = f[28..32].try_into().ok()?;
    Some((sender_mac, sender_ip))
}

/// The sender MAC of `frame` if it is a broadcast ARP request from another station
/// than `mac` (a peer NIC on the same hub).
pub fn arp_request_from_peer(frame: &[u8], mac: [u8; 6]) -> Option<[u8; 6]> {
    let f = frame.get(..ARP_FRAME_LEN)?;
    if f[0..6] != BROADCAST || f[12..14] != ETHERTYPE_ARP.to_be_bytes() || f[14..22] != [0, 1, 0x08, 0x00, 6, 4, 0, 1] {
        return None;
    }
    let sender: [u8; 6] = f[22..28].try_into().ok()?;
    (sender != mac && f[6..12] == sender).then_some(sender)
}

/// `bytes` as lowercase hex, for the log (the scenario compares it with the host's capture).
pub fn hex(bytes: &[u8]) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    #[test]
    fn request_layout_and_reply_parsing() {
        let r = arp_request(MAC, [10, 0, 2, 15], [10, 0, 2, 2]);
        assert_eq!(hex(&r[..14]), "ffffffffffff5254001234560806");
        assert_eq!(hex(&r[14..]), "0001080006040001525400123456 0a00020f0000000000000a000202".replace(' ', ""));
        // A reply from slirp's gateway, padded to 60 bytes as on the wire.
        let gw = [0x52, 0x55, 10, 0, 2, 2];
        let mut reply = [0u8; 60];
        reply[0..6].copy_from_slice(&MAC);
        reply[6..12].copy_from_slice(&gw);
        reply[12..14].copy_from_slice(&[8, 6]);
        reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        reply[22..28].copy_from_slice(&gw);
        reply[28..32].copy_from_slice(&[10, 0, 2, 2]);
        reply[32..38].copy_from_slice(&MAC);
        reply[38..42].copy_from_slice(&[10, 0, 2, 15]);
        assert_eq!(arp_reply_for(&reply, MAC), Some((gw, [10, 0, 2, 2])));
        assert_eq!(arp_reply_for(&reply[..41], MAC), None, "short");
        assert_eq!(arp_reply_for(&r, MAC), None, "a request is no reply");
        let mut other = reply;
        other[32] ^= 1;
        assert_eq!(arp_reply_for(&other, MAC), None, "for another host");
        let peer = [0x52, 0x54, 0, 0x12, 0x34, 0x57];
        let theirs = arp_request(peer, [10, 0, 2, 15], [10, 0, 2, 2]);
        assert_eq!(arp_request_from_peer(&theirs, MAC), Some(peer));
        assert_eq!(arp_request_from_peer(&r, MAC), None, "our own request");
        assert_eq!(arp_request_from_peer(&theirs[..30], MAC), None, "short");
        assert_eq!(arp_request_from_peer(&reply, MAC), None, "a reply");
    }
}
