//! What the NIC scenarios check on the host side: the netdev capture and the logs.
//!
//! [`pcap_frames`] reads QEMU's `filter-dump` capture; [`check_client_frames`] checks
//! what a ring client (netclient) put on the wire through its driver;
//! [`check_hub_exchange`] checks that two NICs on a hub received each other's ARP
//! request byte for byte; [`forwarded`] boots a system whose NIC is on a user network
//! forwarding host ports to the appliance's partitions, which [`http_get`],
//! [`udp_echo`] and [`udp_unanswered`] reach over loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{scenario_dir, Outcome, Scenario};

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

/// An HTTP GET of `/` on 127.0.0.1:`port`, retried (slirp accepts the connection
/// before the guest does) for up to 90 s.
pub fn http_get(port: u16) -> Result<String, String> {
    http_request(port, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(90))
}

/// `request` sent to 127.0.0.1:`port` until an answer comes back (the whole answer, up
/// to the server's close), retried for up to `within`.
pub fn http_request(port: u16, request: &[u8], within: Duration) -> Result<String, String> {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        let attempt = (|| -> Result<String, String> {
            let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
            s.write_all(request).map_err(|e| e.to_string())?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
            if answer.is_empty() {
                return Err("empty answer".into());
            }
            Ok(answer)
        })();
        match attempt {
            Ok(a) => return Ok(a),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("no HTTP answer in {} s (last: {last})", within.as_secs()))
}

/// A datagram to 127.0.0.1:`port` until it comes back (up to 90 s).
pub fn udp_echo(port: u16, payload: &[u8]) -> Result<Vec<u8>, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(90);
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        s.send_to(payload, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Ok(buf[..n].to_vec());
        }
    }
    Err("no echo in 90 s".into())
}

/// Datagrams to 127.0.0.1:`port` that must go unanswered (2 s each).
pub fn udp_unanswered(port: u16, payload: &[u8]) -> Result<(), String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        s.send_to(payload, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Err(format!("a {n} byte answer came back from a port no rule allows"));
        }
    }
    Ok(())
}

/// A TCP port on 127.0.0.1 free right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free TCP port").port()
}

/// A UDP port on 127.0.0.1 free right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port").port()
}

/// The host port forwarded to UDP 10.0.2.16:9 (discard), which no rule allows: the
/// port after the echo's (free ports are handed out by the OS, so take the next free).
pub fn denied_port(udp: u16) -> u16 {
    (udp.saturating_add(1)..u16::MAX).find(|p| UdpSocket::bind(("127.0.0.1", *p)).is_ok()).expect("a free UDP port")
}

/// A scenario booting `system` with an e1000e on a user network that forwards a free
/// TCP port to 10.0.2.15:80 and a free UDP port to 10.0.2.16:7 (on 127.0.0.1), and
/// [`denied_port`] to 10.0.2.16:9; with the ports (TCP, UDP echo, UDP denied) and the
/// serial log's path.
pub fn forwarded(name: &str, system: &str) -> (Scenario, [u16; 3], PathBuf) {
    let (tcp, udp) = (free_tcp_port(), free_udp_port());
    let denied = denied_port(udp);
    let log = scenario_dir().join(format!("{name}.log"));
    let mut scenario =
        Scenario::new(name).initrd(Some(crate::systems::image_as(system, name))).append("iommu=allow-unremapped-dma");
    scenario.extra_args = [
        "-netdev".to_string(),
        format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-10.0.2.15:80,hostfwd=udp:127.0.0.1:{udp}-10.0.2.16:7,hostfwd=udp:127.0.0.1:{denied}-10.0.2.16:9"
        ),
        "-device".to_string(),
        "e1000e,netdev=n0".to_string(),
    ]
    .to_vec();
    (scenario, [tcp, udp, denied], log)
}

/// Waits (up to `within`) until the serial log at `log` holds every one of `markers`;
/// the log's text, or which marker never came.
pub fn wait_for_log(log: &std::path::Path, markers: &[&str], within: Duration) -> Result<String, String> {
    let until = Instant::now() + within;
    loop {
        let serial = std::fs::read_to_string(log).unwrap_or_default();
        match markers.iter().find(|m| !serial.contains(*m)) {
            None => return Ok(serial),
            Some(m) if Instant::now() >= until => {
                return Err(format!("'{m}' never appeared in {} s", within.as_secs()))
            }
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Notes `line` beside the serial log at `log` ([`crate::host_notes`]; a scenario's
/// `stop_at` looks there too): the host says it is done.
pub fn note_in_log(log: &std::path::Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(crate::host_notes(log)).expect("host notes");
    let _ = writeln!(f, "{line}");
}
