//! The appliance's status page in a real browser: headless Chromium, from the host.
//!
//! `systems/appliance.toml` boots with QEMU's user network forwarding a free TCP port
//! on 127.0.0.1 to httpd (10.0.2.15:80). Once the partition listens and management has
//! cut the rogue edu device off, the host sends malformed requests (each must get 400
//! or 405; four clients that send nothing are dropped and the partition serves
//! again), then Chromium (`chromium --headless
//! --dump-dom`, Debian's package, `make chromium-deps`) loads `/` through the forwarded
//! port; the test reads the table rows of the DOM Chromium built and checks what a
//! reader sees: the components, the rogue device's DMA domain with its fault counted
//! and cut off, management's counters, the bridge's ports, the partition's address and
//! port, and the authority graph's edges. `STATUS_SCREENSHOT=<png>` also saves a
//! screenshot of the page (a path relative to the repository's root;
//! docs/status-page.png is made that way).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scenarios::{scenario_dir, Scenario};

/// The browser's executable (Debian's `chromium`; `CHROMIUM=` overrides).
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Sends `request` raw to 127.0.0.1:`port`; the answer (read to the end).
fn raw(port: u16, request: &[u8]) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    if answer.is_empty() {
        return Err("empty answer".into());
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `request`, closes the sending half, and reads the answer (a client that
/// stops in the middle of its request).
fn half_closed(port: u16, request: &[u8]) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    s.write_all(request).map_err(|e| format!("write: {e}"))?;
    s.shutdown(std::net::Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// `raw` retried for up to 90 s (slirp accepts before the guest does).
fn raw_with_retries(port: u16, request: &[u8]) -> Result<String, String> {
    let until = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < until {
        match raw(port, request) {
            Ok(a) => return Ok(a),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("no answer in 90 s (last: {last})"))
}

/// Runs Chromium headless on `url` with `mode` (`--dump-dom` or `--screenshot=...`),
/// killed after 120 s; its stdout, or why not.
fn browse(url: &str, mode: &str, profile: &Path) -> Result<String, String> {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,2000",
            &format!("--user-data-dir={}", profile.display()),
            mode,
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run '{}' ({e}): install Debian's chromium (make chromium-deps) or set CHROMIUM=",
                chromium()
            )
        })?;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("chromium {mode} {url}: no result in 120 s"));
            }
        }
    }
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().map(|mut o| o.read_to_string(&mut out));
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("chromium {mode} {url} failed ({status}): {}", err.trim()));
    }
    Ok(out)
}

/// The text of every table row of `dom` (cells with their tags stripped).
fn rows(dom: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for tr in dom.split("<tr>").skip(1) {
        let tr = tr.split("</tr>").next().unwrap_or("");
        let mut cells = Vec::new();
        for cell in tr.split("<t").skip(1) {
            if !(cell.starts_with('d') || cell.starts_with('h')) {
                continue;
            }
            let inner = cell.split_once('>').map_or("", |(_, rest)| rest);
            let inner = inner.split("</t").next().unwrap_or("");
            let text = inner.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
            cells.push(text.trim().to_string());
        }
        rows.push(cells);
    }
    rows
}

/// The row whose first cells are `start`, or a panic showing the rows.
fn row<'a>(rows: &'a [Vec<String>], start: &[&str]) -> &'a [String] {
    rows.iter()
        .find(|r| r.len() >= start.len() && r.iter().zip(start).all(|(a, b)| a == b))
        .unwrap_or_else(|| panic!("no table row starting {start:?} on the page; rows:\n{rows:#?}"))
}

#[test]
fn chromium_shows_the_appliance_status_page() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let name = "status_page";
    let log = scenario_dir().join(format!("{name}.log"));
    let profile: PathBuf = scenario_dir().join("status_page-chromium");
    let mut scenario = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("appliance", name)))
        .append("iommu=allow-unremapped-dma");
    scenario.extra_args = [
        "-device",
        "edu",
        "-netdev",
        &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:80"),
        "-device",
        "e1000e,netdev=n0",
    ]
    .map(String::from)
    .to_vec();
    scenario.timeout = Duration::from_secs(300);
    scenario.stop_at = vec!["'GET /host-done HTTP/1.0' -> 404".to_string()];
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(240);
        let mut results = None;
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("httpd: listening on") && serial.contains("management: device rogue cut off") {
                // First a good request (the guest is up), then the bad ones.
                let first = raw_with_retries(port, b"GET /status.txt HTTP/1.0\r\n\r\n");
                let bad: Vec<(&str, Result<String, String>)> = [
                    ("garbage", &b"\x00\x01\xff\xfe hello\r\n\r\n"[..]),
                    ("no version", b"GET /\r\n\r\n"),
                    ("bad target", b"GET status HTTP/1.0\r\n\r\n"),
                    ("too long", &[b'A'; 3000][..]),
                    ("POST", b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
                    ("missing", b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"),
                ]
                .into_iter()
                .map(|(what, r)| (what, raw_with_retries(port, r)))
                .chain([("half-closed", half_closed(port, b"GET / HTTP/1.0\r\n"))])
                .collect();
                // Clients that connect and send nothing hold every connection httpd has;
                // it drops them after 10 s and serves again.
                let idle: Vec<TcpStream> =
                    (0..4).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
                std::thread::sleep(Duration::from_secs(2));
                let after_idle = raw_with_retries(port, b"GET /status.txt HTTP/1.0\r\n\r\n");
                drop(idle);
                let url = format!("http://127.0.0.1:{port}/");
                let dom = browse(&url, "--dump-dom", &profile);
                let shot = std::env::var("STATUS_SCREENSHOT").ok().map(|png| {
                    // A relative path is from the repository's root (cargo runs tests in tests/).
                    let png = scenarios::repo_root().join(png);
                    browse(&url, &format!("--screenshot={}", png.display()), &profile).map(|_| png)
                });
                results = Some((first, bad, after_idle, dom, shot));
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        // Tell the scenario runner the host is done through the guest's own log (a line
        // appended to the serial file could be overwritten by QEMU's next write).
        if results.is_some() {
            let _ = raw_with_retries(port, b"GET /host-done HTTP/1.0\r\n\r\n");
        }
        results
    });
    let o = scenario.run();
    let tail = scenarios::tail(&o.serial, 40);
    let (first, bad, after_idle, dom, shot) =
        client.join().expect("the host client").unwrap_or_else(|| panic!("the appliance never came up:\n{tail}"));
    let first = first.unwrap_or_else(|e| panic!("GET /status.txt: {e}\n{tail}"));
    assert!(first.starts_with("HTTP/1.0 200 OK\r\n") && first.contains("DMA domains"), "{first}");
    for (what, answer) in &bad {
        let answer = answer.as_ref().unwrap_or_else(|e| panic!("{what}: {e}"));
        let want = match *what {
            "POST" => "HTTP/1.0 405 Method Not Allowed\r\n",
            "missing" => "HTTP/1.0 404 Not Found\r\n",
            _ => "HTTP/1.0 400 Bad Request\r\n",
        };
        assert!(answer.starts_with(want), "{what}: {answer}");
    }
    let after_idle = after_idle.unwrap_or_else(|e| panic!("after four idle connections: {e}\n{tail}"));
    assert!(after_idle.starts_with("HTTP/1.0 200 OK\r\n"), "after four idle connections: {after_idle}");
    let dom = dom.unwrap_or_else(|e| panic!("Chromium could not load the status page: {e}"));
    assert!(
        dom.contains("<title>capkernel appliance: status</title>"),
        "Chromium did not show the status page (its DOM):\n{dom}"
    );
    let rows = rows(&dom);
    // The partition's own address and port, in the header.
    assert!(dom.contains("serving 10.0.2.15:80 (TCP)"), "{dom}");
    // The components, as management lists them.
    for (component, role) in [
        ("iommu-server", "iommu-server"),
        ("management", "management"),
        ("e1000e-driver", "driver"),
        ("bridge", "component"),
        ("httpd", "component"),
        ("udpecho", "component"),
        ("rogue-driver", "driver"),
    ] {
        row(&rows, &[component, role]);
    }
    // Management's counters: the rogue device's one DMA fault and its cut-off.
    let header = row(&rows, &["DMA faults", "restarts", "cut-offs"]);
    let counters = rows.iter().skip_while(|r| r.as_slice() != header).nth(1).expect("management's counters");
    assert_eq!(&counters[..4], ["1", "0", "1", "0"], "DMA faults, restarts, cut-offs, CPU faults");
    let watched = row(&rows, &["rogue", "rogue-driver"]);
    assert_eq!(watched[2..], ["its own IOSpace", "cut-off", "0 of 0", "cut off"], "{watched:?}");
    // The DMA domains from the iommu-server: pool sizes, the fault counted, the state.
    let rogue = row(&rows, &["rogue", "28 bits", "64 KiB"]);
    assert_eq!(rogue[7], "1", "the rogue device's DMA faults: {rogue:?}");
    assert_eq!(rogue[8], "cut off (unassigned)", "{rogue:?}");
    let nic = row(&rows, &["nic", "64 bits", "128 KiB"]);
    assert_ne!(nic[3], "0 KiB (0 pages)", "the NIC driver's buffers are allocated: {nic:?}");
    assert_eq!(nic[8], "assigned", "{nic:?}");
    // The bridge's ports (frames and drops) and the authority graph's edges.
    row(&rows, &["port web (525400123457)"]);
    row(&rows, &["port echo (525400123458)"]);
    row(&rows, &["rogue-driver", "iommu-server", "dma rogue, pool 64 KiB"]);
    row(&rows, &["e1000e-driver", "iommu-server", "dma nic, pool 128 KiB"]);
    row(&rows, &["httpd", "region:authority-graph", "ro"]);
    if let Some(shot) = shot {
        let png = shot.unwrap_or_else(|e| panic!("screenshot: {e}"));
        let bytes = std::fs::read(&png).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "no PNG written to {}", png.display());
    }
    o.expect_serial_contains("init: region 'authority-graph': ")
        .expect_serial_contains("httpd: listening on 10.0.2.15:80")
        .expect_serial_contains("' -> 400 Bad Request")
        .expect_serial_contains("httpd: request ")
        .expect_serial_not_contains("FAIL");
    let authority = o.expect_line_starting("authority: httpd: ");
    assert!(!authority.contains("device") && !authority.contains("dma"), "the partition holds no device: {authority}");
    assert!(authority.contains("region iommu-status (ro)") && authority.contains("region authority-graph (ro)"));
}
