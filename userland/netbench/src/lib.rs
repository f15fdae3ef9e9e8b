//! A benchmark partition: UDP datagrams, or HTTP requests, through the appliance.
//!
//! `netbench` (UDP, [`udp`]) is booted by `make bench` in `systems/bench-appliance.toml`: like `udpecho` it holds
//! only its ring link (to its copier) plus the `bench-mark` region the NIC driver reads.
//! It sends batches of 64-byte UDP datagrams with smoltcp to QEMU's user network
//! (10.0.2.2, discard port 9), each send followed by the stack's poll as a `sendto`
//! would be, and before each batch writes a mark (`capring::mark`): the driver times
//! the batch from the mark to the last datagram handed to the NIC, so the figure spans
//! application, smoltcp, vNIC, copier, filter, bridge, driver and device, with every
//! notification and interrupt on the way. The first batch warms up (ARP, caches).
//! `netbench-http` ([`http`], `systems/bench-appliance-http.toml`) is an HTTP client
//! timing whole requests to the httpd partition through the device in MAC loopback.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::rights::CapRights;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use capring::mark::MarkRegion;
use libcap::deadline::{now, Deadline};
use libcap::println;
use vnic::smoltcp::iface::SocketSet;
use vnic::smoltcp::socket::udp;
use vnic::smoltcp::wire::{IpEndpoint, Ipv4Address};

pub mod http;

/// The partition's address, and where the datagrams go (QEMU's gateway, discard).
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 20);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const SINK: u16 = 9;
/// Datagrams per batch, batches after the warm-up, payload bytes.
const BATCH: usize = 32;
const RUNS: u64 = 16;
const PAYLOAD: usize = 64;
/// Most TSC ticks a batch may take to leave the stack, and the pause after it.
const BATCH_TICKS: u64 = 20_000_000_000;
const SETTLE_TICKS: u64 = 20_000_000;

/// Which benchmark the program runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// UDP datagrams to the user network, timed by the driver's mark.
    Udp,
    /// HTTP requests to the httpd partition, timed here.
    Http,
}

/// The component's body.
pub fn main(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    let result = match mode {
        Mode::Udp => udp(info),
        Mode::Http => http::run(info),
    };
    match result {
        Ok(()) => {
            println!("netbench: done");
            ExitCode::Success
        }
        Err(what) => {
            println!("netbench: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// Batches of datagrams, each behind a mark the driver times.
fn udp(info: &'static ComponentInfo) -> Result<(), String> {
    let region = info
        .cap_of("bench-mark", CapKind::Region)
        .filter(|r| r.rights & CapRights::WRITE.raw() != 0)
        .ok_or("no writable 'bench-mark' region")?;
    // SAFETY: init mapped the region writable at this page-aligned address for this
    // component's life; it is used only as a mark region.
    let mark = unsafe { MarkRegion::new(region.vaddr as *mut u8) };
    let (mut dev, mut iface) = vnic::stack(info, ADDRESS, GATEWAY)?;
    let meta = || vec![udp::PacketMetadata::EMPTY; BATCH * 2];
    let buffer = || udp::PacketBuffer::new(meta(), vec![0; BATCH * 2 * PAYLOAD]);
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(udp::Socket::new(buffer(), buffer()));
    sockets.get_mut::<udp::Socket>(handle).bind(5000).map_err(|e| format!("bind: {e:?}"))?;
    let sink = IpEndpoint::new(GATEWAY.into(), SINK);
    let payload = [0x5au8; PAYLOAD];
    println!("netbench: {BATCH} datagrams of {PAYLOAD} bytes per batch to {sink}, {RUNS} batches after a warm-up");
    for run in 0..=RUNS {
        mark.write(now(), BATCH as u64, run, RUNS);
        for _ in 0..BATCH {
            sockets.get_mut::<udp::Socket>(handle).send_slice(&payload, sink).map_err(|e| format!("send: {e:?}"))?;
            vnic::poll(&mut iface, &mut dev, &mut sockets);
        }
        // What the transmit buffers could not take yet goes as they come back.
        let deadline = Deadline::after(BATCH_TICKS);
        while sockets.get::<udp::Socket>(handle).send_queue() > 0 {
            if deadline.passed() {
                return Err(format!("batch {run}: datagrams still queued after {BATCH_TICKS} ticks (no ARP answer?)"));
            }
            vnic::poll(&mut iface, &mut dev, &mut sockets);
            if let Some(e) = dev.error.take() {
                return Err(format!("the virtual NIC: {e}"));
            }
            if sockets.get::<udp::Socket>(handle).send_queue() > 0 {
                dev.link.wait(1_000_000)?;
            }
        }
        // Let the relays and the driver finish the batch before the next mark.
        let settle = Deadline::after(SETTLE_TICKS);
        while !settle.passed() {
            dev.link.wait(SETTLE_TICKS)?;
            vnic::poll(&mut iface, &mut dev, &mut sockets);
        }
    }
    Ok(())
}
