//! A user partition serving HTTP from behind the e1000e rings, to the host.
//!
//! `systems/test-httpd.toml`: the e1000e driver serves `httpd` (smoltcp over the
//! capring rings) on QEMU's user network with `hostfwd` from a free port on
//! 127.0.0.1 to the partition's port 80. A host thread waits for the partition to
//! listen, then makes real HTTP requests over loopback: `GET /` must return the status
//! page, another path 404. The partition holds no device, no IOSpace and no IOVA.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use scenarios::{scenario_dir, Scenario};

/// One HTTP/1.0 request to 127.0.0.1:`port`; the whole answer, or why not.
fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: appliance\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| format!("read: {e}"))?;
    if answer.is_empty() {
        return Err("empty answer".into());
    }
    Ok(answer)
}

/// Retries `get` (slirp accepts the host's connection before the guest does; an
/// attempt while the partition is still starting gets an empty answer) for a while.
fn get_with_retries(port: u16, path: &str) -> Result<String, String> {
    let until = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < until {
        match get(port, path) {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("no answer for {path} in 90 s (last: {last})"))
}

#[test]
fn the_partition_serves_its_status_page_to_the_host() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let name = "httpd";
    let log = scenario_dir().join(format!("{name}.log"));
    let mut scenario = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as("test-httpd", name)))
        .append("iommu=allow-unremapped-dma");
    scenario.extra_args = [
        "-netdev".to_string(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80"),
        "-device".to_string(),
        "e1000e,netdev=n0".to_string(),
    ]
    .to_vec();
    scenario.timeout = Duration::from_secs(240);
    // The partition serves for ever: the run ends once the host got its answers.
    scenario.stop_at = vec!["httpd: request 2: ".to_string()];
    let client = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(180);
        while Instant::now() < until {
            let serial = std::fs::read_to_string(&log).unwrap_or_default();
            if serial.contains("httpd: listening on") {
                return (get_with_retries(port, "/"), get_with_retries(port, "/missing"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (Err("the partition never listened".to_string()), Err(String::new()))
    });
    let o = scenario.run();
    let (page, missing) = client.join().expect("the host client");
    let page = page.unwrap_or_else(|e| panic!("GET /: {e}\nserial tail:\n{}", scenarios::tail(&o.serial, 30)));
    assert!(page.starts_with("HTTP/1.0 200 OK\r\n"), "{page}");
    assert!(page.contains("capkernel appliance: user partition httpd"), "{page}");
    assert!(page.contains("holds no device, no IOSpace and no IOVA"), "{page}");
    let missing = missing.unwrap_or_else(|e| panic!("GET /missing: {e}"));
    assert!(missing.starts_with("HTTP/1.0 404 Not Found\r\n"), "{missing}");
    o.expect_serial_contains("init: system 'test-httpd' started: 3 components")
        .expect_serial_contains("e1000e: serving a client: data region 64 KiB")
        .expect_serial_contains("httpd: listening on 10.0.2.15:80")
        .expect_serial_contains("httpd: request 1: 'GET / HTTP/1.0' -> 200 OK")
        .expect_serial_contains("httpd: request 2: 'GET /missing HTTP/1.0' -> 404 Not Found")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault");
    let authority = o.expect_line_starting("authority: httpd: ");
    assert!(!authority.contains("device") && !authority.contains("dma"), "the partition holds no device: {authority}");
}
