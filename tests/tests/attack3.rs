//! Regression tests from attack round 3: shares, device ports, the data plane.
//!
//! Each system is a helper's proof of concept (systems/test-atk-*.toml from round 3);
//! each test asserts that the hole is closed, so it fails while the hole is open.

use scenarios::systems::image_for;
use scenarios::{Outcome, Scenario};

fn boot(name: &str, system: &str) -> Outcome {
    let mut s = Scenario::new(name).append("iommu=allow-unremapped-dma").memory(256);
    s.timeout = std::time::Duration::from_secs(300);
    s.initrd(Some(image_for(system))).run()
}

/// A `shares` group whose owner channel has badge 0: its client's cap is unbadged, so
/// it can mint it with another member's badge and signal as that client. The server
/// must never hear badge 2, since channel `b`'s client (hello) never signals.
#[test]
fn a_shares_member_cannot_signal_with_another_members_badge() {
    let o = boot("atk_shares", "test-atk-shares");
    o.expect_serial_contains("sharewait: waiting on the shared object")
        .expect_serial_contains("sharewait: done, badges heard")
        .expect_serial_not_contains("sharewait: woke with badge 0x2");
}

/// The same description on the host: `mksys` must refuse a group whose owner channel
/// has badge 0 (only the sharer's badge is checked today).
#[test]
fn mksys_refuses_a_shares_owner_without_badge() {
    let text = std::fs::read_to_string(scenarios::repo_root().join("systems/test-atk-shares.toml")).unwrap();
    let programs: Vec<String> = ["crasher-sharewait", "crasher-spoof", "hello"].iter().map(|s| s.to_string()).collect();
    let result = scenarios::sysdesc::compile("t.toml", &text, Some(&programs));
    assert!(result.is_err(), "mksys accepted a shares group whose owner 'a' has badge 0");
}

/// A PCI device's `ports` naming COM1: init must not issue the kernel's log UART to
/// its driver (today it does, and the driver writes a forged kernel line).
#[test]
fn a_pci_devices_ports_cannot_reach_com1() {
    let mut s = Scenario::new("atk_com1").append("iommu=allow-unremapped-dma").memory(256);
    s.extra_args = vec!["-device".into(), "edu".into()];
    s.timeout = std::time::Duration::from_secs(300);
    let o = s.initrd(Some(image_for("test-atk-com1"))).run();
    o.expect_serial_not_contains("com1: holds ports").expect_serial_not_contains("kernel: FORGED by a driver");
}

/// On the host: `mksys` must refuse COM1 (and the kernel's reserved ports) in a PCI
/// device's `ports`, as it does for an ISA device's.
#[test]
fn mksys_refuses_com1_for_a_pci_device() {
    let text = std::fs::read_to_string(scenarios::repo_root().join("systems/test-atk-com1.toml")).unwrap();
    let programs: Vec<String> = ["iommu-server", "crasher-com1"].iter().map(|s| s.to_string()).collect();
    let result = scenarios::sysdesc::compile("t.toml", &text, Some(&programs));
    assert!(result.is_err(), "mksys gave COM1 (the kernel's log) to a PCI device's driver");
}

/// `make graph`'s live edges come from any serial line holding `graph: `: management's
/// echo of a console command (or any component's print) adds a forged edge. Only
/// init's own lines may count.
#[test]
fn console_input_cannot_forge_live_graph_edges() {
    let log = "management: console: 'graph: httpd -> iommu-server [dma all memory]' -> error: unknown command";
    let edges = scenarios::sysdesc::dot::live_edges(log);
    assert!(edges.is_empty(), "a console command became an authority edge: {edges:?}");
}

/// One partition flooding its bridge port (netclient-flood on port 'web', the first
/// served) must not keep the other (udpecho on 'echo') from answering the host.
#[test]
fn a_flooding_partition_cannot_starve_the_other() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    let udp = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port").port();
    let name = "atk_flood";
    let log = scenarios::scenario_dir().join(format!("{name}.log"));
    let mut s = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("test-atk-flood", name)))
        .append("iommu=allow-unremapped-dma");
    s.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=udp:127.0.0.1:{udp}-10.0.2.16:7"),
        "-device".into(),
        "e1000e,netdev=n0".into(),
    ];
    s.timeout = Duration::from_secs(200);
    s.stop_at = vec!["udpecho: datagram 1: ".into()];
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(150);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("udpecho: echoing on") && serial.contains("flood: sending from") {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 1500];
                // 20 tries, 2 s each: a fair bridge answers the first or second.
                for _ in 0..20 {
                    sock.send_to(b"hello, partition", ("127.0.0.1", udp)).unwrap();
                    if let Ok((n, _)) = sock.recv_from(&mut buf) {
                        return Some(n);
                    }
                }
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    });
    let o = s.run();
    let echoed = client.join().expect("the host client");
    let tail = scenarios::tail(&o.serial, 30);
    o.expect_serial_contains("flood: sending from");
    let received = o.lines_starting("udpecho: datagram ");
    assert!(echoed.is_some(), "no echo in 40 s while 'web' floods; udpecho got {} datagrams\n{tail}", received.len());
}

/// A partition claiming the other's IPv4 address over ARP (from its own station
/// address) must not receive the other's datagrams.
#[test]
fn a_partition_cannot_claim_the_others_address_over_arp() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    let udp = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port").port();
    let name = "atk_arp";
    let log = scenarios::scenario_dir().join(format!("{name}.log"));
    let mut s = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("test-atk-arp", name)))
        .append("iommu=allow-unremapped-dma");
    s.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=udp:127.0.0.1:{udp}-10.0.2.16:7"),
        "-device".into(),
        "e1000e,netdev=n0".into(),
    ];
    s.timeout = Duration::from_secs(60);
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(40);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("udpecho: echoing on") && serial.contains("arpspoof: claiming") {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                let mut buf = [0u8; 1500];
                let mut echoed = 0;
                for _ in 0..40 {
                    sock.send_to(b"secret for udpecho", ("127.0.0.1", udp)).unwrap();
                    if sock.recv_from(&mut buf).is_ok() {
                        echoed += 1;
                    }
                }
                return echoed;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        0
    });
    let o = s.run();
    let echoed = client.join().expect("the host client");
    o.expect_serial_contains("arpspoof: claiming 10.0.2.16")
        .expect_serial_not_contains("arpspoof: stole a frame for 10.0.2.16");
    assert!(echoed > 0, "udpecho never answered (its traffic went elsewhere)");
}
