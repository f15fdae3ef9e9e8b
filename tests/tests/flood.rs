//! The appliance under garbage and floods, from the host and from the wire.
//!
//! Both boot `systems/appliance.toml` (rogue edu included). Over QEMU's user network
//! the host sends malformed HTTP requests, a huge header, half-sent requests,
//! thousands of UDP datagrams and oversized ones to the forwarded ports. With the NIC on
//! a datagram netdev instead (`scenarios::frames`: each Ethernet frame is one UDP
//! datagram to or from the test), the test is the wire: runts, oversized frames, bad
//! ethertypes, truncated IPv4/UDP/TCP headers, bad checksums, spoofed source MACs,
//! frames for no port and broadcast floods. Afterwards every component still runs
//! (no `init: fault in` line), valid requests are answered, nothing with a bad checksum
//! was answered, and the drops are counted where the bridge shows them.

use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use scenarios::frames::{self, arp_reply, arp_reply_from, arp_request, arp_request_for, ethernet, BROADCAST};
use scenarios::net::{forwarded, free_udp_port, http_get, http_request, note_in_log, udp_echo, wait_for_log};
use scenarios::{scenario_dir, Outcome, Scenario};

/// What every flood run must show afterwards: all components up, nothing failed.
fn check_nothing_crashed(o: &Outcome) {
    let tail = scenarios::tail(&o.serial, 40);
    assert!(!o.timed_out, "the run timed out before the host was done:\n{tail}");
    let faults = o.lines_starting("init: fault in ");
    assert!(faults.is_empty(), "components crashed: {faults:?}\n{tail}");
    o.expect_serial_not_contains("FAIL").expect_serial_not_contains("KERNEL EXCEPTION");
    // Only the rogue driver ends (cut off, it exits); every service runs on.
    let exits: Vec<&str> =
        o.lines_starting("init: ").into_iter().filter(|l| l.contains(" exited with code ")).collect();
    assert!(exits.iter().all(|l| l.starts_with("init: rogue-driver exited")), "{exits:?}");
}

/// The number just before `what` in `line`.
fn count_before(line: &str, what: &str) -> u64 {
    let before = line.split(what).next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no count before '{what}' in: {line}"))
}

#[test]
fn garbage_and_floods_over_the_forwarded_ports() {
    let (mut scenario, [tcp, udp, _], log) = forwarded("flood_forwarded", "appliance");
    scenario.extra_args.extend(["-device".to_string(), "edu".to_string()]);
    scenario.timeout = Duration::from_secs(300);
    scenario.stop_at = vec!["host: done".to_string()];
    let client = std::thread::spawn(move || -> Result<(Vec<String>, String, Vec<u8>), String> {
        wait_for_log(&log, &["httpd: listening on", "udpecho: echoing on"], Duration::from_secs(120))?;
        http_get(tcp)?;
        udp_echo(udp, b"before the flood")?;
        let huge = format!("GET / HTTP/1.0\r\nX-Huge: {}\r\n\r\n", "a".repeat(100_000));
        let malformed: [&[u8]; 7] = [
            b"\x00\x01\x02garbage\r\n\r\n",
            b"GET\r\n\r\n",
            b"\xff\xfe\xfd\xfc not UTF-8\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nxyz",
            b"GET /../../../etc/passwd HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0\n\n\n\n",
            huge.as_bytes(),
        ];
        let mut answers = Vec::new();
        for request in malformed {
            let answer = http_request(tcp, request, Duration::from_secs(30))
                .map_err(|e| format!("{:?}...: {e}", String::from_utf8_lossy(&request[..request.len().min(16)])))?;
            answers.push(answer.lines().next().unwrap_or("").to_string());
        }
        // Half-sent requests whose client goes away, and connections closed at once.
        for _ in 0..20 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", tcp)) {
                let _ = std::io::Write::write_all(&mut s, b"GET / HT");
            }
            let _ = TcpStream::connect(("127.0.0.1", tcp));
        }
        // Silent clients (half a request, then nothing) holding all of httpd's
        // connections: it aborts them after 10 s and serves the next client. (Added
        // until a second client is refused: slirp accepts at once and closes a
        // connection the guest refused.)
        std::thread::sleep(Duration::from_secs(2)); // the half-sent ones are answered
        let mut silent = Vec::new();
        let mut held = None;
        for _ in 0..3 {
            // A batch with no served request between them (a socket still closing a
            // served connection is not listening: a silent client then finds none).
            for _ in 0..4 {
                let mut idle = TcpStream::connect(("127.0.0.1", tcp)).map_err(|e| e.to_string())?;
                std::io::Write::write_all(&mut idle, b"GET / HT").map_err(|e| e.to_string())?;
                silent.push(idle);
                std::thread::sleep(Duration::from_millis(700));
            }
            if http_request(tcp, b"GET / HTTP/1.0\r\n\r\n", Duration::from_millis(100)).is_err() {
                held = Some(Instant::now());
                break;
            }
        }
        // Whether a probe found all four held varies with timing (a 100 ms probe can
        // also miss a free connection), so only the outcome is asserted: with the
        // silent clients still connected, a client is served (httpd dropped them at
        // 10 s); a lower bound on when proved flaky (1 run in 7).
        let _ = held;
        http_request(tcp, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(40))
            .map_err(|e| format!("while silent clients held httpd: {e}"))?;
        drop(silent);
        // Thousands of datagrams without waiting, then oversized ones (fragmented on
        // the way in: the partition reassembles none of them).
        let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        for i in 0..3000u32 {
            let _ = s.send_to(format!("flood {i}").as_bytes(), ("127.0.0.1", udp));
            // Paced a little: the host's socket buffer under QEMU's user network
            // holds a few hundred datagrams, the rest would be lost before QEMU.
            if i % 10 == 9 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        for size in [1473usize, 4000, 8192, 65_507] {
            let _ = s.send_to(&vec![0x5a; size], ("127.0.0.1", udp));
        }
        let echo = udp_echo(udp, b"after the flood")?;
        let page = http_request(tcp, b"GET /status.txt HTTP/1.0\r\n\r\n", Duration::from_secs(60))?;
        note_in_log(&log, "host: done");
        Ok((answers, page, echo))
    });
    let o = scenario.run();
    let tail = scenarios::tail(&o.serial, 40);
    let (answers, page, echo) = client.join().expect("the host client").unwrap_or_else(|e| panic!("host: {e}\n{tail}"));
    // Each malformed request got an answer, never a hang: 400 for what does not parse
    // (binary, no target, not UTF-8, a head past 2 KiB), 405 for POST, 404 for a path
    // it does not serve, the page for a GET whose head ends in a bare LF LF.
    let expected = ["400", "400", "400", "405", "404", "200", "400"];
    for (answer, status) in answers.iter().zip(expected) {
        assert!(answer.starts_with(&format!("HTTP/1.0 {status}")), "{answers:?}");
    }
    assert_eq!(echo, b"after the flood");
    assert!(page.starts_with("HTTP/1.0 200 OK\r\n") && page.contains("user partition httpd"), "{page}");
    check_nothing_crashed(&o);
    // The flood reached the echo partition through the bridge, counted on the page.
    let port = page.lines().find(|l| l.starts_with("port echo (")).unwrap_or_else(|| panic!("{page}"));
    let received = count_before(port, " received");
    assert!(received >= 300, "only {received} frames reached the echo port: {port}");
    let echoed = o.lines_starting("udpecho: datagram ").len();
    assert!(echoed >= 200, "only {echoed} datagrams echoed");
    println!("flood (forwarded): echo port: {port}; {echoed} datagrams echoed");
}

/// The host's end of the wire: a UDP socket exchanging raw frames with the NIC.
struct Wire {
    socket: UdpSocket,
    qemu: u16,
    /// Frames the guest sent that the test kept (ARP for the host is answered).
    seen: Vec<Vec<u8>>,
}

/// What the wire test's host saw: frames sent by kind, the guest's frames, the page.
type WireView = (Vec<(&'static str, usize)>, Vec<Vec<u8>>, String);

/// The host on the wire: 10.0.2.2 (the partitions' gateway) at this MAC.
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const HOST_IP: [u8; 4] = [10, 0, 2, 2];
const ECHO_IP: [u8; 4] = [10, 0, 2, 16];
const WEB_IP: [u8; 4] = [10, 0, 2, 15];

impl Wire {
    fn send(&self, frame: &[u8]) {
        let _ = self.socket.send_to(frame, ("127.0.0.1", self.qemu));
    }

    /// Takes what the guest sent (for up to `wait`), answering its ARP for the host.
    fn drain(&mut self, wait: Duration) {
        let _ = self.socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            let frame = buf[..n].to_vec();
            if let Some((mac, ip)) = arp_request_for(&frame, HOST_IP) {
                self.send(&arp_reply(HOST_MAC, HOST_IP, mac, ip));
            }
            self.seen.push(frame);
            let _ = self.socket.set_read_timeout(Some(Duration::from_millis(1)));
        }
    }

    /// Sends `frame` every second until the guest sends one `want` accepts (up to 30 s).
    fn ask<T>(&mut self, frame: &[u8], want: impl Fn(&[u8]) -> Option<T>) -> Result<T, String> {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            self.seen.clear();
            self.send(frame);
            self.drain(Duration::from_secs(1));
            if let Some(t) = self.seen.iter().find_map(|f| want(f)) {
                return Ok(t);
            }
        }
        Err(format!("no answer in 30 s to {}", scenarios::net::hex(&frame[..frame.len().min(42)])))
    }

    /// `GET /status.txt` from httpd (at `web`) by hand over the wire: handshake, the request, then
    /// the answer's segments in order, each acknowledged, up to the server's FIN.
    fn http_get(&mut self, web: [u8; 6], sport: u16) -> Result<String, String> {
        let segment = |seq: u32, ack: u32, flags: u8, payload: &[u8]| {
            ethernet(
                web,
                HOST_MAC,
                frames::ETH_IPV4,
                &frames::tcp(HOST_IP, WEB_IP, sport, 80, seq, ack, flags, payload),
            )
        };
        let syn_ack = frames::TCP_SYN | frames::TCP_ACK;
        let isn = 0x2000_0000u32;
        let theirs = self.ask(&segment(isn, 0, frames::TCP_SYN, &[]), |f| {
            frames::tcp_segment(f, WEB_IP, 80, sport).filter(|s| s.flags & syn_ack == syn_ack).map(|s| s.seq)
        })?;
        let mut next = theirs.wrapping_add(1);
        let request = b"GET /status.txt HTTP/1.0\r\n\r\n";
        let ours = isn.wrapping_add(1);
        let mut answer = Vec::new();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            self.seen.clear();
            self.send(&segment(ours, next, frames::TCP_ACK | frames::TCP_PSH, request));
            self.drain(Duration::from_millis(300));
            for s in self.seen.iter().filter_map(|f| frames::tcp_segment(f, WEB_IP, 80, sport)) {
                if s.seq == next && (!s.payload.is_empty() || s.flags & frames::TCP_FIN != 0) {
                    answer.extend_from_slice(&s.payload);
                    next = next.wrapping_add(s.payload.len() as u32);
                    if s.flags & frames::TCP_FIN != 0 {
                        next = next.wrapping_add(1);
                        let fin = ours.wrapping_add(request.len() as u32);
                        self.send(&segment(fin, next, frames::TCP_ACK | frames::TCP_FIN, &[]));
                        return String::from_utf8(answer).map_err(|e| e.to_string());
                    }
                }
            }
        }
        Err(format!("httpd's answer over the wire never ended (got {} bytes)", answer.len()))
    }
}

/// The malformed frames, by kind, for the echo port at `echo` and the web port at
/// `web`; each kind's frames are sent `times` times over.
fn garbage(echo: [u8; 6], web: [u8; 6]) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let udp_to_echo = |payload: &[u8]| frames::udp(HOST_IP, ECHO_IP, 4000, 7, payload);
    let mut kinds: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
    kinds.push(("runts", (1..14).map(|n| vec![0xff; n]).chain((1..14).map(|n| echo[..n.min(6)].to_vec())).collect()));
    kinds.push((
        "oversized",
        [1515usize, 1600, 4000, 9000, 16_000]
            .iter()
            .map(|&n| ethernet(echo, HOST_MAC, frames::ETH_IPV4, &udp_to_echo(&vec![0x33; n]))[..n].to_vec())
            .collect(),
    ));
    kinds.push((
        "bad ethertype",
        [0x0000u16, 0x1234, 0x88b5, 0xffff, 0x86dd]
            .iter()
            .flat_map(|&t| [ethernet(echo, HOST_MAC, t, &[0xab; 46]), ethernet(BROADCAST, HOST_MAC, t, &[0xcd; 46])])
            .collect(),
    ));
    let good_ip = udp_to_echo(b"truncated");
    let mut ip_bad: Vec<Vec<u8>> = (0..20).map(|n| good_ip[..n].to_vec()).collect();
    let mut ihl = good_ip.clone();
    ihl[0] = 0x4f; // header length 60 bytes, in a 37-byte packet
    let mut long = good_ip.clone();
    long[2..4].copy_from_slice(&60_000u16.to_be_bytes());
    let mut v6 = good_ip.clone();
    v6[0] = 0x65;
    ip_bad.extend([ihl, long, v6]);
    kinds.push(("truncated IPv4", ip_bad.iter().map(|p| ethernet(echo, HOST_MAC, frames::ETH_IPV4, p)).collect()));
    let mut udp_bad: Vec<Vec<u8>> = (21..28).map(|n| good_ip[..n].to_vec()).collect();
    let mut udp_len = good_ip.clone();
    udp_len[24..26].copy_from_slice(&900u16.to_be_bytes());
    udp_bad.push(udp_len);
    kinds.push(("truncated UDP", udp_bad.iter().map(|p| ethernet(echo, HOST_MAC, frames::ETH_IPV4, p)).collect()));
    let syn = frames::tcp(HOST_IP, WEB_IP, 5000, 80, 1, 0, frames::TCP_SYN, &[]);
    let mut tcp_bad: Vec<Vec<u8>> = (21..40).map(|n| syn[..n].to_vec()).collect();
    let mut offset = syn.clone();
    offset[32] = 0xf0; // data offset 60 bytes in a 20-byte segment
    tcp_bad.push(offset);
    kinds.push(("truncated TCP", tcp_bad.iter().map(|p| ethernet(web, HOST_MAC, frames::ETH_IPV4, p)).collect()));
    let mut ip_sum = udp_to_echo(b"bad IP checksum");
    ip_sum[10] ^= 0xff;
    let mut udp_sum = udp_to_echo(b"bad UDP checksum");
    udp_sum[26] ^= 0xff;
    let mut tcp_sum = frames::tcp(HOST_IP, WEB_IP, 5001, 80, 1, 0, frames::TCP_SYN, &[]);
    tcp_sum[36] ^= 0xff;
    kinds.push((
        "bad checksums",
        vec![
            ethernet(echo, HOST_MAC, frames::ETH_IPV4, &ip_sum),
            ethernet(echo, HOST_MAC, frames::ETH_IPV4, &udp_sum),
            ethernet(web, HOST_MAC, frames::ETH_IPV4, &tcp_sum),
        ],
    ));
    let spoof = udp_to_echo(b"spoofed source");
    kinds.push((
        "spoofed source MACs",
        [echo, web, BROADCAST, [0x01, 0, 0x5e, 0, 0, 1]]
            .iter()
            .map(|&src| ethernet(echo, src, frames::ETH_IPV4, &spoof))
            .collect(),
    ));
    kinds.push((
        "frames for no port",
        (0..=255u8)
            .map(|i| ethernet([0x02, 0xde, 0xad, 0, 0, i], HOST_MAC, frames::ETH_IPV4, &udp_to_echo(b"x")))
            .collect(),
    ));
    kinds.push((
        "broadcast flood",
        (0..2000u32).map(|i| arp_request(HOST_MAC, HOST_IP, [10, 0, 3 + (i / 250) as u8, (i % 250) as u8])).collect(),
    ));
    kinds.push((
        "UDP flood",
        (0..2000u32)
            .map(|i| ethernet(echo, HOST_MAC, frames::ETH_IPV4, &udp_to_echo(format!("flood {i}").as_bytes())))
            .collect(),
    ));
    kinds
}

#[test]
fn malformed_frames_and_floods_on_the_wire() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("the wire's host end");
    let (host_port, qemu) = (socket.local_addr().unwrap().port(), free_udp_port());
    let name = "flood_wire";
    let log = scenario_dir().join(format!("{name}.log"));
    let mut scenario = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("appliance", name)))
        .append("iommu=allow-unremapped-dma");
    scenario.extra_args = frames::dgram_args(qemu, host_port);
    scenario.extra_args.extend(["-device".to_string(), "edu".to_string()]);
    scenario.timeout = Duration::from_secs(300);
    scenario.stop_at = vec!["host: done".to_string()];
    let client = std::thread::spawn(move || -> Result<WireView, String> {
        let serial = wait_for_log(
            &log,
            &["httpd: listening on", "udpecho: echoing on", "bridge: port 'echo' has station address "],
            Duration::from_secs(120),
        )?;
        let station = |port: &str| -> [u8; 6] {
            let prefix = format!("bridge: port '{port}' has station address ");
            let line = serial.lines().find(|l| l.starts_with(&prefix)).unwrap();
            let hex = &line[prefix.len()..prefix.len() + 12];
            core::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        };
        let (echo, web) = (station("echo"), station("web"));
        let mut wire = Wire { socket, qemu, seen: Vec::new() };
        let ask_echo = |wire: &mut Wire, payload: &[u8]| {
            let frame = ethernet(echo, HOST_MAC, frames::ETH_IPV4, &frames::udp(HOST_IP, ECHO_IP, 4000, 7, payload));
            let want = payload.to_vec();
            wire.ask(&frame, move |f| frames::udp_reply(f, ECHO_IP, 7).filter(|(_, p)| *p == want))
        };
        let mac = wire.ask(&arp_request(HOST_MAC, HOST_IP, ECHO_IP), |f| arp_reply_from(f, ECHO_IP))?;
        if mac != echo {
            return Err(format!("10.0.2.16 is at {mac:02x?}, not the echo port's {echo:02x?}"));
        }
        ask_echo(&mut wire, b"before the flood")?;
        let mut sent = Vec::new();
        let mut answers = Vec::new();
        for (kind, frames) in garbage(echo, web) {
            let times = if frames.len() > 100 { 1 } else { 10 };
            for (i, frame) in std::iter::repeat_n(&frames, times).flatten().enumerate() {
                wire.send(frame);
                // Paced, so that most frames reach the bridge (the NIC's ring and the
                // driver's buffers still overflow now and then: counted as drops).
                if i % 16 == 15 {
                    wire.drain(Duration::from_millis(5));
                }
            }
            wire.drain(Duration::from_millis(50));
            answers.append(&mut wire.seen);
            sent.push((kind, frames.len() * times));
        }
        // Valid traffic afterwards: ARP for the echo partition, and an echo.
        let mac = wire.ask(&arp_request(HOST_MAC, HOST_IP, ECHO_IP), |f| arp_reply_from(f, ECHO_IP))?;
        if mac != echo {
            return Err(format!("after the flood 10.0.2.16 is at {mac:02x?}"));
        }
        ask_echo(&mut wire, b"after the flood")?;
        answers.append(&mut wire.seen);
        // And the status page, over TCP by hand: the bridge's counters.
        let page = wire.http_get(web, 40_001)?;
        note_in_log(&log, "host: done");
        Ok((sent, answers, page))
    });
    let o = scenario.run();
    let tail = scenarios::tail(&o.serial, 40);
    let (sent, answers, page) = client.join().expect("the host client").unwrap_or_else(|e| panic!("host: {e}\n{tail}"));
    check_nothing_crashed(&o);
    // Nothing with a bad checksum was answered; the UDP flood was (some of it).
    let echoed = |payload: &[u8]| {
        answers.iter().filter(|f| frames::udp_reply(f, ECHO_IP, 7).is_some_and(|(_, p)| p == payload)).count()
    };
    assert_eq!(echoed(b"bad IP checksum"), 0, "a packet with a bad IP checksum was answered");
    assert_eq!(echoed(b"bad UDP checksum"), 0, "a datagram with a bad UDP checksum was answered");
    let flood_echoes = answers
        .iter()
        .filter(|f| frames::udp_reply(f, ECHO_IP, 7).is_some_and(|(_, p)| p.starts_with(b"flood ")))
        .count();
    assert!(flood_echoes > 0, "no flood datagram was echoed");
    // The frames for no port were counted by the bridge (as far as the NIC took them),
    // and the status page says so; the driver counts what it had no buffer for.
    assert!(page.starts_with("HTTP/1.0 200 OK\r\n") && page.contains("user partition httpd"), "{page}");
    let bridge = page.lines().find(|l| l.starts_with("bridge: ") && l.contains(" for no port"));
    let bridge = bridge.unwrap_or_else(|| panic!("{page}"));
    let no_port = count_before(bridge, " for no port");
    assert!(no_port >= 128, "the bridge counted {no_port} frames for no port; the test sent 256 and more: {bridge}");
    let port = page.lines().find(|l| l.starts_with("port echo (")).unwrap_or_else(|| panic!("{page}"));
    // The filter refused what no rule allows and what does not parse, and counted it:
    // the truncated IPv4 and UDP frames and bad IP checksums for the echo partition
    // (340 sent), the truncated TCP segments for the web partition (200 sent).
    let filter = |client: &str| {
        let section = &page[page.find("filter-status (read-only):").unwrap_or_else(|| panic!("{page}"))..];
        let line = section.lines().find(|l| l.starts_with(&format!("{client} | "))).unwrap_or_else(|| panic!("{page}"));
        let cells: Vec<&str> = line.split(" | ").collect();
        let count = |i: usize| cells.get(i).and_then(|c| c.parse::<u64>().ok()).unwrap_or_else(|| panic!("{line}"));
        // client | in passed | in dropped: denied | in dropped: malformed | ...
        (count(2), count(3), line.to_string())
    };
    let (echo_denied, echo_malformed, echo_line) = filter("echo");
    assert!(echo_malformed >= 100 && echo_denied >= 20, "{echo_line}");
    let (_, web_malformed, web_line) = filter("web");
    assert!(web_malformed >= 50, "{web_line}");
    let driver = o.lines_starting("e1000e: client frames: ");
    let driver = driver.last().expect("the driver's counter line");
    println!(
        "flood (wire): sent {sent:?}; {flood_echoes} flood echoes; {bridge}; {port}; {echo_line}; {web_line}; {driver}"
    );
}
