//! Regression tests from attack round 3: shares, device ports, the data plane.
//!
//! Each system is a helper's proof of concept (systems/test-atk-*.toml from round 3;
//! the two descriptions the checks now refuse are in tests/data/); each test asserts
//! that the hole is closed, so it failed while the hole was open.

use scenarios::Scenario;

/// A `shares` group whose owner channel has badge 0: its client's cap was unbadged, so
/// it could mint it with another member's badge and signal as that client (round 3's
/// PoC, tests/data/atk-shares.toml, booted, showed the server hear badge 2 from it).
/// Closed in both checks: mksys refuses the description (here) and init's own check
/// (`SystemDesc::parse`) refuses it packed (libcap/abi's
/// `shared_notifications_and_filter_rules_round_trip_and_are_checked`).
#[test]
fn mksys_refuses_a_shares_owner_without_badge() {
    let text = std::fs::read_to_string(scenarios::repo_root().join("tests/data/atk-shares.toml")).unwrap();
    let programs: Vec<String> = ["crasher-sharewait", "crasher-spoof", "hello"].iter().map(|s| s.to_string()).collect();
    let errors = scenarios::sysdesc::compile("t.toml", &text, Some(&programs)).expect_err("accepted");
    assert!(errors.iter().any(|e| e.contains("must be non-zero and share no bit")), "{errors:?}");
}

/// A PCI device's `ports` naming COM1 (the kernel's log): init issued it to the driver,
/// which forged kernel lines (round 3's PoC, tests/data/atk-com1.toml). Closed in both
/// checks: mksys (here) and init's (every port range, whoever names it: libcap/abi's
/// `bad_isa_devices_are_rejected`).
#[test]
fn mksys_refuses_com1_for_a_pci_device() {
    let text = std::fs::read_to_string(scenarios::repo_root().join("tests/data/atk-com1.toml")).unwrap();
    let programs: Vec<String> = ["iommu-server", "crasher-com1"].iter().map(|s| s.to_string()).collect();
    let errors = scenarios::sysdesc::compile("t.toml", &text, Some(&programs)).expect_err("accepted");
    assert!(errors.iter().any(|e| e.contains("touch COM1")), "{errors:?}");
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
    // Stop when the host client is done, not at udpecho's line: the echo is still on
    // its way to the host when that line prints, and a loaded machine loses it.
    const DONE: &str = "host: flood client done";
    s.stop_at = vec![DONE.into()];
    let client = std::thread::spawn(move || {
        let echoed = flood_client(&log, udp);
        scenarios::net::note_in_log(&log, DONE);
        echoed
    });
    fn flood_client(log: &std::path::Path, udp: u16) -> Option<usize> {
        let until = Instant::now() + Duration::from_secs(150);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(log).unwrap_or_default();
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
    }
    let o = s.run();
    let echoed = client.join().expect("the host client");
    let tail = scenarios::tail(&o.serial, 30);
    o.expect_serial_contains("flood: sending from");
    let received = o.lines_starting("udpecho: datagram ");
    assert!(echoed.is_some(), "no echo in 40 s while 'web' floods; udpecho got {} datagrams\n{tail}", received.len());
}

/// A partition claiming the other's IPv4 address over ARP (from its own station
/// address) must not receive the other's datagrams: in the appliance's topology the
/// filter binds each client to its address (`address` in `[filters.<c>]`) and drops
/// the claim (systems/test-atk-arp.toml).
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
        .expect_serial_contains("filter: dropped a 60 byte frame from 'web': not the client's own address")
        .expect_serial_not_contains("arpspoof: stole a frame for 10.0.2.16");
    assert!(echoed > 0, "udpecho never answered (its traffic went elsewhere)");
}
