//! `netbench-http`: whole HTTP requests to the httpd partition, in guest instructions.
//!
//! The client partition (10.0.2.20) and httpd (10.0.2.15) sit behind the same bridge;
//! the NIC is in MAC loopback (`e1000edrv-loopback`), so every frame of the exchange
//! goes app -> smoltcp -> copier -> filter -> bridge -> driver -> NIC -> driver ->
//! bridge -> filter -> copier -> smoltcp -> httpd, and back. One sample is a batch of
//! requests, each on a new connection: handshake, `GET / HTTP/1.0`, the whole page,
//! the close; the figure is per request. The first batch warms up (ARP, caches).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use libcap::deadline::{now, Deadline};
use libcap::println;
use vnic::smoltcp::iface::SocketSet;
use vnic::smoltcp::socket::tcp;
use vnic::smoltcp::wire::{IpEndpoint, Ipv4Address};

/// The client's address, the gateway (unused: the server is on the link).
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 20);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The httpd partition.
const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
/// Requests per batch, batches after the warm-up.
const BATCH: usize = 4;
const RUNS: usize = 12;
/// Most TSC ticks one request may take.
const REQUEST_TICKS: u64 = 20_000_000_000;

/// Batches of requests; prints the `bench:` line.
pub fn run(info: &'static abi::component::ComponentInfo) -> Result<(), String> {
    let (mut dev, mut iface) = vnic::stack(info, ADDRESS, GATEWAY)?;
    let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 8192]), tcp::SocketBuffer::new(vec![0; 1024]));
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(socket);
    let server = IpEndpoint::new(SERVER.into(), 80);
    println!("netbench: {BATCH} HTTP requests per batch to {server}, {RUNS} batches after a warm-up");
    let mut samples = Vec::new();
    let mut port = 49152u16;
    let mut page_len = 0usize;
    for run in 0..=RUNS {
        let t0 = now();
        for _ in 0..BATCH {
            port = if port == u16::MAX { 49152 } else { port + 1 };
            page_len = request(&mut iface, &mut dev, &mut sockets, handle, server, port)?;
        }
        if run > 0 {
            samples.push((now() - t0) / BATCH as u64);
        }
    }
    samples.sort_unstable();
    println!("netbench: every answer was a 200 with a {page_len} byte response");
    println!(
        "bench: appliance: HTTP GET / answered by the httpd partition (client partition, NIC in loopback), per request min={} median={} runs={}",
        samples[0],
        samples[samples.len() / 2],
        samples.len()
    );
    Ok(())
}

/// One whole request on a new connection from `port`; the response's length.
fn request(
    iface: &mut vnic::smoltcp::iface::Interface,
    dev: &mut vnic::Vnic,
    sockets: &mut SocketSet<'_>,
    handle: vnic::smoltcp::iface::SocketHandle,
    server: IpEndpoint,
    port: u16,
) -> Result<usize, String> {
    sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(iface.context(), server, port)
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut response: Vec<u8> = Vec::new();
    let mut sent = false;
    let deadline = Deadline::after(REQUEST_TICKS);
    loop {
        vnic::poll(iface, dev, sockets);
        if let Some(e) = dev.error.take() {
            return Err(format!("the virtual NIC: {e}"));
        }
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        if !sent && socket.may_send() {
            socket.send_slice(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| format!("send: {e:?}"))?;
            sent = true;
        }
        if socket.can_recv() {
            let _ = socket.recv(|data| {
                response.extend_from_slice(data);
                (data.len(), ())
            });
        }
        if sent && !socket.may_recv() && !socket.can_recv() {
            // The server closed after the page: close our side (FIN, its ACK).
            socket.close();
            if socket.state() == tcp::State::Closed {
                break;
            }
        }
        if deadline.passed() {
            return Err(format!("request from port {port}: no complete answer ({} bytes so far)", response.len()));
        }
        if !socket.can_recv() && socket.state() != tcp::State::Closed {
            dev.link.wait(20_000)?;
        }
    }
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.0 200 OK\r\n") {
        return Err(format!("the answer is not a 200: {:?}", text.chars().take(60).collect::<String>()));
    }
    Ok(response.len())
}
