//! Management's serial console (COM2) in a running system, driven from the host.
//!
//! `systems/test-console.toml`: the e1000e driver serves httpd, a rogue edu device
//! faults under policy "log", and management holds COM2 (`[isa.com2]`). QEMU's second
//! serial port is a Unix socket; once management says its console is up, a host thread
//! types commands and records the replies, then the checks: help, status, graph, a
//! restart of a driver whose faults management handles (generation 2, the counter
//! rises), `cutoff rogue` (the iommu-server unassigns it; status shows it cut off),
//! and every refusal and bad input with its message. Nothing it may not act on moves.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use scenarios::console::{com2_args, SerialConsole};
use scenarios::{scenario_dir, Scenario};

/// The commands typed, in order.
const COMMANDS: [&str; 16] = [
    "help",
    "status",
    "frobnicate",
    "restart",
    "restart httpd",
    "restart iommu-server",
    "restart nobody",
    "cutoff nic",
    "status now",
    "restart e1000e-driver",
    "restart rogue-driver",
    "cutoff rogue",
    "status",
    "cutoff rogue",
    "graph",
    "cutoff x y",
];

/// httpd's page on 127.0.0.1:`port` (forwarded to 10.0.2.15:80), retried for 60 s.
fn http_get(port: u16) -> Result<String, String> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            s.write_all(b"GET /status.txt HTTP/1.0\r\n\r\n")?;
            let mut page = String::new();
            s.read_to_string(&mut page)?;
            Ok(page)
        })();
        match attempt {
            Ok(page) if !page.is_empty() => return Ok(page),
            other if Instant::now() > until => return Err(format!("no page in 60 s: {other:?}")),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Management's line for each DMA fault of the rogue device.
const FAULT: &str = "management: DMA fault from rogue-driver";

#[test]
fn the_console_shows_restarts_and_cuts_off_what_management_handles() {
    let name = "console";
    let socket = scenario_dir().join("console.sock");
    let _ = std::fs::remove_file(&socket);
    let log = scenario_dir().join(format!("{name}.log"));
    let mut scenario = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("test-console", name)))
        .append("iommu=allow-unremapped-dma")
        .args(&["-device", "e1000e,netdev=n0", "-device", "edu"]);
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free TCP port").port();
    scenario
        .extra_args
        .extend(["-netdev".to_string(), format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:80")]);
    scenario.extra_args.extend(com2_args(&socket));
    scenario.timeout = Duration::from_secs(300);
    let done = scenario_dir().join("console.done");
    let _ = std::fs::remove_file(&done);
    scenario.stop_file = Some(done.clone());
    let client = std::thread::spawn(move || -> Result<(Vec<String>, String), String> {
        let until = Instant::now() + Duration::from_secs(200);
        loop {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("management: console on com2")
                && serial.contains("httpd: listening")
                && serial.contains(FAULT)
            {
                break;
            }
            if Instant::now() > until {
                return Err("the console and the services never came up".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut console = SerialConsole::connect(&socket, "mgmt> ", Duration::from_secs(30))?;
        let mut replies = Vec::new();
        for c in COMMANDS {
            replies.push(console.command(c, Duration::from_secs(60))?);
            if c == "restart rogue-driver" {
                // Its generation 2 reads generation 1's stale IOVA (a second fault,
                // policy log) and then waits for a verdict: cut it off only then.
                let until = Instant::now() + Duration::from_secs(60);
                while std::fs::read_to_string(&log).unwrap_or_default().matches(FAULT).count() < 2 {
                    if Instant::now() > until {
                        return Err("generation 2 of the rogue driver never faulted".into());
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        let long = "x".repeat(100);
        replies.push(console.command(&long, Duration::from_secs(30))?);
        // The status page, read-only in httpd, after the last `status`.
        let page = http_get(port)?;
        std::fs::write(&done, "done\n").map_err(|e| e.to_string())?;
        Ok((replies, page))
    });
    let o = scenario.run();
    let tail = scenarios::tail(&o.serial, 40);
    let (replies, page) = client.join().expect("the host client").unwrap_or_else(|e| panic!("console: {e}\n{tail}"));
    let reply = |c: &str| -> &str {
        let i = COMMANDS.iter().position(|x| *x == c).unwrap_or_else(|| panic!("no command {c}"));
        &replies[i]
    };
    let has = |i: usize, want: &str| {
        assert!(replies[i].contains(want), "'{}' -> {:?}, want {want:?}\n{tail}", COMMANDS[i], replies[i]);
    };
    assert!(reply("help").contains("restart <component>") && reply("help").contains("cutoff <device>"));
    // Before: one DMA fault logged (policy log), the device still assigned.
    // (management's status text: table markup, `! header` then `cell | cell` rows)
    has(1, "! DMA faults | restarts | cut-offs | CPU faults | DMA reports lost | CPU reports lost\n1 | 0 | 0 | 0 | 0 | 0\n");
    has(1, "rogue | rogue-driver | its own IOSpace | log | 0 of 0 | assigned");
    for c in ["iommu-server | iommu-server", "management | management", "e1000e-driver | driver", "httpd | component"] {
        has(1, c);
    }
    // Bad input and refusals: one clear line each, nothing done.
    has(2, "error: unknown command 'frobnicate' (commands: status, graph, restart, cutoff, help)");
    has(3, "error: restart needs a component name: restart <component>");
    has(4, "refused: management may not restart httpd: it handles neither its faults nor a device it drives");
    has(5, "refused: iommu-server is the iommu-server (its domains, pools and buffers would be lost)");
    has(6, "error: no component 'nobody' (components: iommu-server, management, e1000e-driver, httpd, rogue-driver)");
    has(7, "refused: management does not handle device 'nic' (its devices: rogue)");
    has(8, "error: status takes no arguments");
    // A restart of the NIC driver (management handles its CPU faults): generation 2.
    has(9, "restarted e1000e-driver: generation 2");
    has(9, "restarts now 1");
    // The rogue driver drives a device management handles: the policy's path, the
    // device reset by the iommu-server, then the driver restarted.
    has(10, "restarted rogue-driver: generation 2");
    has(10, "device rogue reset by the iommu-server: ok");
    has(10, "restarts now 2");
    // The cut-off, through the iommu-server, and status afterwards.
    has(11, "device rogue cut off: it stays unassigned (ok); cut-offs now 1");
    has(12, "! DMA faults | restarts | cut-offs | CPU faults | DMA reports lost | CPU reports lost\n2 | 2 | 1 | 0 | 0 | 0\n");
    has(12, "rogue | rogue-driver | its own IOSpace | log | 0 of 0 | cut off");
    has(13, "error: device rogue is already cut off");
    // `status` prints what the status page shows (one text, management's): each row's
    // cells are on the page's plain-text form (`/status.txt`).
    assert!(page.starts_with("HTTP/1.0 200 OK"), "{page}");
    for line in replies[12].lines().filter(|l| l.contains(" | ") && !l.starts_with('!')) {
        for cell in line.split(" | ") {
            assert!(page.contains(cell), "the status page lacks the console's {cell:?} ({line}):\n{page}");
        }
    }
    // The graph: init's edges, the console's own among them.
    has(14, "graph: management -> isa:com2 [ports 0x2f8..=0x2ff, irq 3]");
    has(14, "graph: httpd -> e1000e-driver [ntfn nic-tx badge 1]");
    has(14, "graph: iommu-server -> device:rogue [pci 00:");
    has(15, "error: cutoff takes one name, not 2");
    assert!(replies[16].contains("error: line longer than 80 characters: ignored"), "{:?}", replies[16]);
    // The effects, seen by init and the iommu-server; the refusals touched nothing.
    o.expect_serial_contains("management: console on com2 (ports 0x2f8, irq 3): type help")
        .expect_serial_contains("graph: management -> isa:com2 [ports 0x2f8..=0x2ff, irq 3]")
        .expect_serial_contains("authority: management: ")
        .expect_serial_contains("init: management asks to restart e1000e-driver")
        .expect_serial_contains("init: restarted e1000e-driver: generation 2")
        .expect_serial_contains("(gen 2)")
        .expect_serial_contains("iommu-server: device 1 cut off: ")
        .expect_serial_contains("management: console: 'cutoff rogue' -> device rogue cut off")
        .expect_serial_contains("init: restarted rogue-driver: generation 2")
        .expect_serial_contains("iommu-server: device 1 reset: ")
        .expect_serial_contains("edudrv: rogue-outside: reading the stale iova")
        .expect_serial_contains("edudrv: device cut off: the server refuses its requests (CutOff)")
        .expect_serial_not_contains("init: management asks to restart httpd")
        .expect_serial_not_contains("init: management may not")
        .expect_serial_not_contains("iommu-server: device 0 cut off")
        .expect_serial_not_contains("FAIL");
    let authority = o.expect_line_starting("authority: management: ");
    assert!(authority.contains("ports com2") && authority.contains("irq com2"), "{authority}");
}
