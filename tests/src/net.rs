//! What the NIC scenarios check on the host side: the netdev capture and the logs.
//!
//! [`pcap_frames`] reads QEMU's `filter-dump` capture; [`check_client_frames`] checks
//! what a ring client (netclient) put on the wire through its driver;
//! [`check_hub_exchange`] checks that two NICs on a hub received each other's ARP
//! request byte for byte.

use crate::Outcome;

/// The frames of a pcap file (little-endian, as QEMU writes it on x86).
pub fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(bytes.len() >= 24 && bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1], "a pcap file");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(bytes[at + 16..(at + 16 + len).min(bytes.len())].to_vec());
        at += 16 + len;
    }
    frames
}

/// `bytes` as lowercase hex, as the guest logs them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The netclient's frames in the capture at `pcap`: from the MAC its driver gave it,
/// an ARP request and a DHCP DISCOVER went out, and nothing else (its hostile send
/// entry was not followed).
pub fn check_client_frames(o: &Outcome, pcap: &std::path::Path) {
    let line = o.expect_line_starting("netclient: driver ready: MAC ");
    let mac = line["netclient: driver ready: MAC ".len()..].split(',').next().unwrap().to_string();
    let frames = pcap_frames(&std::fs::read(pcap).expect("the netdev capture"));
    let sent: Vec<&Vec<u8>> = frames.iter().filter(|f| f.len() >= 14 && hex(&f[6..12]) == mac).collect();
    assert!(sent.iter().any(|f| f[12..14] == [0x08, 0x06]), "no ARP request from {mac} in the capture");
    assert!(sent.iter().any(|f| f.len() >= 590 && f[12..14] == [0x08, 0x00]), "no DISCOVER from {mac}");
    assert!(sent.iter().all(|f| f[12..14] == [0x08, 0x06] || f[12..14] == [0x08, 0x00]), "an unexpected frame left");
}

/// Two NICs (52540000000a, 52540000000b) on a hub: each logged `<driver>: <mac>: ARP
/// request from peer <peer> (<bytes>)` with exactly the bytes the other logged after
/// `sent` (padded with zeros to the 60-byte minimum on the wire).
pub fn check_hub_exchange(o: &Outcome, driver: &str, sent: &str) {
    let lines = o.lines_starting(sent);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let sent_by = |mac: &str| {
        let line = lines.iter().find(|l| l.contains(&format!("ffffffffffff{mac}"))).expect("that NIC's request");
        line[sent.len()..].trim().to_string()
    };
    for (me, peer) in [("52540000000a", "52540000000b"), ("52540000000b", "52540000000a")] {
        let got = o.expect_line_starting(&format!("{driver}: {me}: ARP request from peer {peer} ("));
        let bytes = got.rsplit('(').next().unwrap().trim_end_matches(')');
        let theirs = sent_by(peer);
        assert!(bytes.starts_with(&theirs) && bytes[theirs.len()..].chars().all(|c| c == '0'), "{got} vs {theirs}");
    }
}
