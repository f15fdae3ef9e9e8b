//! A user partition: smoltcp over a NIC driver's rings, serving a status page.
//!
//! The partition holds no device, no IOSpace and no IOVA: only the queue and data
//! regions and the two notification channels it shares with its NIC's server (the
//! driver now; the bridge of the services partition later). `netclient::Link` is its
//! virtual NIC; smoltcp 0.14 runs IPv4 and TCP on it with the address 10.0.2.15/24 and
//! the gateway 10.0.2.2 (QEMU's user network, whose `hostfwd` makes it reachable from
//! the host). It listens on port 80 with [`CONNECTIONS`] sockets and serves the
//! appliance's status page: `GET /` as HTML (`page`), `/status.txt` as plain text,
//! anything else 404; a malformed request gets 400 (`http`). Every region mapped
//! read-only into it and named `status-page`, `authority-graph` or `<writer>-status` is
//! a status page a service publishes (management's `status-page`,
//! the iommu-server's `iommu-status`, the bridge's `bridge-status`, init's
//! `authority-graph`); the page shows each. Every request and its status is logged.
//! Memory is bounded: a request keeps at most `http::REQUEST_MAX` bytes, a page at
//! most `page::BODY_MAX`, and a connection that sends no complete request in
//! [`REQUEST_TIMEOUT_US`] is aborted.
#![no_std]
#![no_main]

extern crate alloc;

mod http;
mod page;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::rights::CapRights;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use capring::status::StatusPage;
use libcap::println;
use vnic::smoltcp::iface::{SocketHandle, SocketSet};
use vnic::smoltcp::socket::tcp;
use vnic::smoltcp::wire::Ipv4Address;
use vnic::{now, TICKS_PER_US};

use crate::http::{Request, REQUEST_MAX};
use crate::page::{Me, Source};

libcap::component::entry!(main);

/// The partition's address and gateway on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The port the status page is served on.
const PORT: u16 = 80;
/// Most TSC ticks one idle wait lasts before the stack is polled again.
const IDLE_TICKS: u64 = 20_000_000;
/// Connections served at once (a browser opens more than one).
const CONNECTIONS: usize = 4;
/// Bytes of each connection's send buffer (a page goes out in several fills).
const SEND_BUFFER: usize = 16 * 1024;
/// Microseconds a connection may take to send its request, or to take the answer.
const REQUEST_TIMEOUT_US: u64 = 10_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("httpd: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// One listening socket and the request or answer under way on it.
struct Conn {
    handle: SocketHandle,
    request: Vec<u8>,
    answer: Vec<u8>,
    sent: usize,
    answered: bool,
    /// TSC when the connection was first seen established (0: listening).
    since: u64,
}

impl Conn {
    fn reset(&mut self) {
        self.request.clear();
        self.answer = Vec::new();
        self.sent = 0;
        self.answered = false;
        self.since = 0;
    }
}

/// The answer to one request and its status for the log.
fn respond(request: &[u8], closed: bool, me: &Me, sources: &[Source]) -> Vec<u8> {
    let text = "text/plain; charset=utf-8";
    match http::parse(request, closed) {
        Err(why) => http::response("400 Bad Request", text, "", format!("bad request: {why:?}\n").as_bytes(), false),
        Ok(Request::OtherMethod) => {
            http::response("405 Method Not Allowed", text, "Allow: GET, HEAD\r\n", b"only GET and HEAD\n", false)
        }
        Ok(Request::Get { path: "/" | "/index.html", head }) => {
            http::response("200 OK", "text/html; charset=utf-8", "", page::html(me, sources).as_bytes(), head)
        }
        Ok(Request::Get { path: "/status.txt", head }) => {
            http::response("200 OK", text, "", page::text(me, sources).as_bytes(), head)
        }
        Ok(Request::Get { head, .. }) => http::response("404 Not Found", text, "", b"not found\n", head),
    }
}

/// The status pages the partition shows: its read-only regions named `status-page`,
/// `authority-graph` or `<writer>-status` (other regions, such as data a peer shares
/// read-only, are not status pages).
fn sources(info: &'static ComponentInfo) -> Vec<Source> {
    let named = |n: &str| n == "status-page" || n == "authority-graph" || n.ends_with("-status");
    let sources = info
        .caps()
        .iter()
        .filter(|c| c.kind() == Some(CapKind::Region) && c.rights & CapRights::WRITE.raw() == 0)
        .filter(|c| named(c.name()))
        .map(|r| Source {
            region: r.name(),
            // SAFETY: init mapped the region (read-only for this partition) at this
            // address for its whole life; it is only read, as a status page.
            page: unsafe { StatusPage::new(r.vaddr as *mut u8, r.size as usize) },
            size: r.size as usize,
        })
        .collect();
    page::ordered(sources)
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let (mut dev, mut iface) = vnic::stack(info, ADDRESS, GATEWAY)?;
    let mac = dev.link.mac;
    let sources = sources(info);
    let mut sockets = SocketSet::new(vec![]);
    let mut conns: Vec<Conn> = (0..CONNECTIONS)
        .map(|_| {
            let rx = tcp::SocketBuffer::new(vec![0; 4096]);
            let tx = tcp::SocketBuffer::new(vec![0; SEND_BUFFER]);
            let handle = sockets.add(tcp::Socket::new(rx, tx));
            Conn { handle, request: Vec::new(), answer: Vec::new(), sent: 0, answered: false, since: 0 }
        })
        .collect();
    let mut served = 0u64;
    let timeout = REQUEST_TIMEOUT_US * TICKS_PER_US;
    println!("httpd: listening on 10.0.2.15:{PORT} (MAC {}), {} status regions", netclient::hex(&mac), sources.len());
    loop {
        vnic::poll(&mut iface, &mut dev, &mut sockets);
        if let Some(e) = dev.error.take() {
            return Err(format!("the virtual NIC: {e}"));
        }
        let mut progress = false;
        let tsc = libcap::deadline::now();
        for conn in &mut conns {
            let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
            if !socket.is_open() {
                socket.listen(PORT).map_err(|e| format!("listen: {e:?}"))?;
                conn.reset();
                continue;
            }
            if socket.state() == tcp::State::Listen || socket.state() == tcp::State::SynReceived {
                continue;
            }
            if conn.since == 0 {
                conn.since = tsc;
            }
            if tsc.saturating_sub(conn.since) > timeout {
                // A client that sends no request, or takes no answer: the socket is
                // needed for others.
                socket.abort();
                conn.reset();
                continue;
            }
            if !conn.answered {
                if socket.can_recv() {
                    let request = &mut conn.request;
                    let _ = socket.recv(|data| {
                        let take = data.len().min(REQUEST_MAX.saturating_sub(request.len()));
                        request.extend_from_slice(&data[..take]);
                        (data.len(), ())
                    });
                }
                let closed = !socket.may_recv();
                let complete = http::head_end(&conn.request).is_some() || conn.request.len() >= REQUEST_MAX;
                if closed && conn.request.is_empty() {
                    socket.close();
                    continue;
                }
                if !complete && !closed {
                    continue;
                }
                served += 1;
                conn.answer = respond(&conn.request, closed, &Me { mac, served }, &sources);
                conn.answered = true;
                progress = true;
                let status = core::str::from_utf8(&conn.answer[9..]).unwrap_or("").split('\r').next().unwrap_or("");
                println!("httpd: request {served}: '{}' -> {status}", http::log_line(&conn.request));
            }
            if conn.sent < conn.answer.len() && socket.can_send() {
                let n = socket.send_slice(&conn.answer[conn.sent..]).unwrap_or(0);
                conn.sent += n;
                progress |= n > 0;
                if conn.sent == conn.answer.len() {
                    socket.close();
                }
            }
        }
        if progress {
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
