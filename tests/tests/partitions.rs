//! The appliance's data path: NIC driver, bridge, two partitions, from the host.
//!
//! `systems/test-partitions.toml`: the e1000e driver serves the bridge, which serves
//! `httpd` (10.0.2.15, TCP 80) and `udpecho` (10.0.2.16, UDP 7) on ports with their own
//! station addresses. QEMU's user network forwards a free TCP and a free UDP port on
//! 127.0.0.1 to them; a host thread waits for both partitions, then makes an HTTP
//! request and sends a datagram, and checks the answers. The partitions hold no device,
//! IOSpace or IOVA and nothing of each other (init's authority lines). The same with
//! `systems/appliance.toml`: management and a rogue edu device beside them, whose DMA
//! outside its pool is blocked, reported with its driver's name and cut off while the
//! services keep serving, and the filter and copiers between the bridge and the
//! partitions: datagrams to a port no rule allows (UDP 9, forwarded too) never reach
//! udpecho and are counted on the status page.

use std::time::{Duration, Instant};

use scenarios::net::{forwarded, http_get, note_in_log, udp_echo, udp_unanswered};

/// Boots `system` with an e1000e on a user network forwarding a TCP and a UDP port to
/// the partitions (and `extra` devices); once the partitions listen and the serial log
/// holds `after`, the host's HTTP answer and UDP echo.
fn boot_and_ask(
    name: &str,
    system: &str,
    extra: &[&str],
    after: &'static str,
) -> (scenarios::Outcome, String, Vec<u8>) {
    let (mut scenario, [tcp, udp, denied], log) = forwarded(name, system);
    scenario.extra_args.extend(extra.iter().map(|a| a.to_string()));
    scenario.timeout = Duration::from_secs(240);
    scenario.stop_at = vec!["httpd: request 1: ".to_string(), "udpecho: datagram 1: ".to_string()];
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(180);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("httpd: listening on")
                && serial.contains("udpecho: echoing on")
                && serial.contains(after)
            {
                // First what the filter must stop, so the page shows it counted.
                if let Err(e) = udp_unanswered(denied, b"not allowed") {
                    return (Err(e), Err(String::new()));
                }
                return (http_get(tcp), udp_echo(udp, b"hello, partition"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (Err("the partitions never started".to_string()), Err(String::new()))
    });
    let o = scenario.run();
    let (page, echo) = client.join().expect("the host client");
    let tail = scenarios::tail(&o.serial, 30);
    let page = page.unwrap_or_else(|e| panic!("HTTP: {e}\n{tail}"));
    let echo = echo.unwrap_or_else(|e| panic!("UDP: {e}\n{tail}"));
    (o, page, echo)
}

/// What both systems must show: the answers, the ports, and partitions holding nothing
/// but their rings.
fn check_data_path(o: &scenarios::Outcome, page: &str, echo: &[u8]) {
    assert!(page.starts_with("HTTP/1.0 200 OK\r\n") && page.contains("user partition httpd"), "{page}");
    assert_eq!(echo, b"hello, partition", "the datagram came back unchanged");
    o.expect_serial_contains("e1000e: serving a client")
        .expect_serial_contains("bridge: port 'web' has station address ")
        .expect_serial_contains("bridge: port 'echo' has station address ")
        .expect_serial_contains("bridge: 2 ports behind ")
        .expect_serial_contains("httpd: request 1: 'GET / HTTP/1.0' -> 200 OK")
        .expect_serial_contains("udpecho: datagram 1: 16 bytes from ")
        .expect_serial_not_contains("FAIL");
    let web = o.expect_line_starting("bridge: port 'web' has station address ");
    let echo_port = o.expect_line_starting("bridge: port 'echo' has station address ");
    assert_ne!(web.rsplit(' ').next(), echo_port.rsplit(' ').next());
    for p in ["httpd", "udpecho"] {
        let line = o.expect_line_starting(&format!("authority: {p}: "));
        assert!(!line.contains("device") && !line.contains("dma"), "{line}");
        let other = if p == "httpd" { "echo-" } else { "web-" };
        assert!(!line.contains(other), "{p} holds the other partition's caps: {line}");
    }
}

#[test]
fn two_partitions_behind_the_bridge_answer_the_host() {
    let (o, page, echo) = boot_and_ask("partitions", "test-partitions", &[], "bridge: 2 ports behind ");
    check_data_path(&o, &page, &echo);
    o.expect_serial_contains("init: system 'test-partitions' started: 5 components")
        .expect_serial_not_contains("iommu-server: DMA fault");
}

#[test]
fn the_appliance_serves_while_a_rogue_device_is_cut_off() {
    let (o, page, echo) =
        boot_and_ask("appliance", "appliance", &["-device", "edu"], "management: device rogue cut off");
    check_data_path(&o, &page, &echo);
    o.expect_serial_contains("init: system 'appliance' started: 10 components")
        .expect_serial_contains("filter: 'web' (10.0.2.15) allows in: arp icmp tcp:80; out: arp icmp tcp")
        .expect_serial_contains("filter: 'echo' (10.0.2.16) allows in: arp icmp udp:7; out: arp icmp udp")
        .expect_serial_contains("copier: 'web': copying between web-filtered and web-vnic")
        .expect_serial_contains("copier: 'echo': copying between echo-filtered and echo-vnic")
        .expect_serial_contains("to 'echo': no rule allows Udp { dst: 9 }")
        .expect_serial_not_contains("udpecho: datagram 1: 11 bytes")
        .expect_serial_contains("edudrv: rogue-outside: programming edu to read iova 0x8000000 (outside the pool)")
        .expect_serial_contains(
            "management: DMA fault from rogue-driver (device rogue 00:03.0): iova 0x8000000, reason 0x6 (read of unmapped IOVA); policy cut-off",
        )
        .expect_serial_contains("management: device rogue cut off: it stays unassigned (ok)");
    // The status page (HTML) shows management's view, read-only: the fault and the
    // cut-off (tests/tests/status_page.rs reads it in Chromium, row by row).
    assert!(page.contains("<caption>Faults handled by management</caption>"), "{page}");
    assert!(page.contains("<td>rogue</td><td>rogue-driver</td><td>its own IOSpace</td><td>cut-off</td>"), "{page}");
    let components = [
        "iommu-server",
        "management",
        "e1000e-driver",
        "bridge",
        "filter",
        "copier-web",
        "copier-echo",
        "httpd",
        "udpecho",
        "rogue-driver",
    ];
    for component in components {
        assert!(page.contains(&format!("<tr><td>{component}</td>")), "{component}: {page}");
    }
    // The iommu-server's DMA domains, and the bridge's counters: each port's frames and drops.
    assert!(page.contains("<td>rogue</td><td>28 bits</td><td>64 KiB</td>"), "{page}");
    assert!(page.contains("<th scope=\"row\">port web (525400123457)</th>"), "{page}");
    assert!(page.contains("<th scope=\"row\">port echo (525400123458)</th>"), "{page}");
    // The filter's counters: the datagrams to UDP 9 denied, with the rules.
    let row = page.split("<tr><td>echo</td>").nth(1).unwrap_or_else(|| panic!("no filter row for echo: {page}"));
    let cells: Vec<&str> = row.split("</td>").take(8).map(|c| c.rsplit('>').next().unwrap_or("")).collect();
    let denied: u64 = cells.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(denied >= 1, "no denied datagram counted: {cells:?}");
    assert_eq!(cells.get(6..8), Some(&["arp icmp udp:7", "arp icmp udp"][..]), "{cells:?}");
    // The host asked only after the cut-off: the services kept serving.
    let cut = o.serial.find("management: device rogue cut off").expect("the cut-off");
    let served = o.serial.find("httpd: request 1: ").expect("the request");
    assert!(cut < served, "the request was answered before the rogue device was cut off");
}

#[test]
fn the_services_come_back_after_the_nic_driver_is_killed_mid_traffic() {
    let (mut scenario, [tcp, udp, _], log) = forwarded("appliance_restart", "test-appliance-restart");
    scenario.timeout = Duration::from_secs(300);
    scenario.stop_at = vec!["host: done".to_string()];
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(180);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("httpd: listening on") && serial.contains("udpecho: echoing on") {
                let mut answers = Vec::new();
                for _ in 0..8 {
                    answers.push((http_get(tcp), udp_echo(udp, b"hello, partition")));
                }
                // Tell the scenario runner the host is done (it watches the log).
                note_in_log(&log, "host: done");
                return answers;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Vec::new()
    });
    let o = scenario.run();
    let answers = client.join().expect("the host client");
    assert_eq!(answers.len(), 8, "the partitions never started:\n{}", scenarios::tail(&o.serial, 30));
    for (i, (page, echo)) in answers.iter().enumerate() {
        let page = page.as_ref().unwrap_or_else(|e| panic!("HTTP request {i}: {e}"));
        assert!(page.starts_with("HTTP/1.0 200 OK\r\n"), "request {i}: {page}");
        assert_eq!(echo.as_deref(), Ok(&b"hello, partition"[..]), "echo {i}");
    }
    o.expect_serial_contains("e1000e: flaky: crashing in the middle of the client's traffic")
        .expect_serial_contains("init: fault in e1000e-driver: page fault (read 0xdead0000)")
        .expect_serial_contains("init: restarted e1000e-driver: generation 2")
        .expect_serial_not_contains("FAIL");
    // Requests were answered before the crash and after the restart.
    let crash = o.serial.find("e1000e: flaky: crashing").unwrap();
    let restart = o.serial.find("init: restarted e1000e-driver: generation 2").unwrap();
    assert!(o.serial[..crash].contains("httpd: request 1: "), "nothing answered before the crash");
    assert!(o.serial[restart..].contains("httpd: request "), "nothing answered after the restart");
}
