//! A user partition: smoltcp over a NIC driver's rings, serving a status page.
//!
//! The partition holds no device, no IOSpace and no IOVA: only the queue and data
//! regions and the two notification channels it shares with its NIC's server (the
//! driver now; the bridge of the services partition later). `netclient::Link` is its
//! virtual NIC; smoltcp 0.14 runs IPv4 and TCP on it with the address 10.0.2.15/24 and
//! the gateway 10.0.2.2 (QEMU's user network, whose `hostfwd` makes it reachable from
//! the host). It listens on port 80 and answers every request with a status page
//! (`GET /`), or 404; every request and its status is logged. If the description maps
//! management's `status-page` or the bridge's `bridge-status` region into it
//! (read-only), the page shows them too.
#![no_std]
#![no_main]

extern crate alloc;

use abi::component::ComponentInfo;
use abi::exit::ExitCode;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use capring::status::StatusPage;
use libcap::println;
use vnic::smoltcp::iface::SocketSet;
use vnic::smoltcp::socket::tcp;
use vnic::smoltcp::wire::Ipv4Address;
use vnic::{now, TICKS_PER_US};

libcap::component::entry!(main);

/// The partition's address and gateway on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The port the status page is served on.
const PORT: u16 = 80;
/// Most TSC ticks one idle wait lasts before the stack is polled again.
const IDLE_TICKS: u64 = 20_000_000;
/// Bytes of one request read before answering (a status-page GET is far shorter).
const REQUEST_MAX: usize = 2048;
/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: vnic::smoltcp::time::Duration = vnic::smoltcp::time::Duration::from_secs(10);

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("httpd: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// The answer to one request.
fn respond(request: &str, served: u64, mac: [u8; 6], pages: &[(&str, StatusPage)]) -> String {
    let line = request.lines().next().unwrap_or("");
    let (status, body) = if line.starts_with("GET / ") || line == "GET /" {
        let mut body = format!(
            "capkernel appliance: user partition httpd\n\
             address 10.0.2.15, MAC {}, port {PORT}\n\
             requests served {served}\n\
             this partition holds no device, no IOSpace and no IOVA: frames reach it through rings\n",
            netclient::hex(&mac)
        );
        // The services' views, read-only (management's `status-page`, the bridge's
        // `bridge-status`), as far as the description gives them.
        for (title, page) in pages {
            let mut text = [0u8; 2048];
            match page.read(&mut text) {
                Some(n) => {
                    body.push_str(&format!("\n{title} (read-only):\n"));
                    body.push_str(core::str::from_utf8(&text[..n]).unwrap_or("(not UTF-8)\n"));
                }
                None => body.push_str(&format!("\n{title}: nothing published yet\n")),
            }
        }
        ("200 OK", body)
    } else {
        ("404 Not Found", String::from("not found\n"))
    };
    format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let (mut dev, mut iface) = vnic::stack(info, ADDRESS, GATEWAY)?;
    let mac = dev.link.mac;
    let pages: alloc::vec::Vec<(&str, StatusPage)> =
        [("management", "status-page"), ("bridge", "bridge-status"), ("filter", "filter-status")]
            .into_iter()
            .filter_map(|(title, region)| {
                let r = info.cap_of(region, abi::component::CapKind::Region)?;
                // SAFETY: init mapped the region (read-only for this partition) at this
                // address for its whole life; it is only read, as a status page.
                Some((title, unsafe { StatusPage::new(r.vaddr as *mut u8, r.size as usize) }))
            })
            .collect();
    let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 4096]));
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(socket);
    let mut request = String::new();
    let mut served = 0u64;
    let mut opened = None;
    println!("httpd: listening on 10.0.2.15:{PORT} (MAC {})", netclient::hex(&mac));
    loop {
        vnic::poll(&mut iface, &mut dev, &mut sockets);
        if let Some(e) = dev.error.take() {
            return Err(format!("the virtual NIC: {e}"));
        }
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() {
            socket.listen(PORT).map_err(|e| format!("listen: {e:?}"))?;
            request.clear();
        }
        if socket.can_recv() {
            let _ = socket.recv(|data| {
                let take = data.len().min(REQUEST_MAX.saturating_sub(request.len()));
                // Not UTF-8: replaced, so the end of the header is still found.
                request.push_str(&String::from_utf8_lossy(&data[..take]));
                (data.len(), ())
            });
        }
        // A client that closed its side has sent all it will: answer what came (if
        // anything did; a connection that brought nothing is just closed).
        let peer_done = socket.state() == tcp::State::CloseWait;
        if peer_done && request.is_empty() {
            socket.close();
        }
        let complete =
            request.contains("\r\n\r\n") || request.contains("\n\n") || request.len() >= REQUEST_MAX || peer_done;
        // One connection at a time: one that sends no complete request in time is
        // dropped, so a silent client cannot hold the service.
        match opened {
            None if socket.is_active() => opened = Some(now()),
            Some(_) if !socket.is_active() => opened = None,
            Some(at) if !complete && now() - at > REQUEST_TIMEOUT => {
                println!("httpd: no complete request in {} s: connection dropped", REQUEST_TIMEOUT.secs());
                socket.abort();
                opened = None;
                request.clear();
            }
            _ => {}
        }
        if complete && socket.may_send() {
            served += 1;
            let answer = respond(&request, served, mac, &pages);
            let line = request.lines().next().unwrap_or("").chars().take(80).collect::<String>();
            println!("httpd: request {served}: '{line}' -> {}", &answer[9..answer.find('\r').unwrap_or(12)]);
            let _ = socket.send_slice(answer.as_bytes());
            socket.close();
            request.clear();
            continue;
        }
        // Nothing to do now: wait for a frame (bounded, for smoltcp's timers).
        let delay =
            iface.poll_delay(now(), &sockets).map_or(IDLE_TICKS, |d| (d.total_micros() * TICKS_PER_US).min(IDLE_TICKS));
        if delay > 0 {
            dev.link.wait(delay)?;
        }
    }
}
