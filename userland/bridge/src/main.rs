//! The services partition's bridge: one ring link up, a port per user partition.
//!
//! Upstream it is the NIC driver's client (`nic-queues`, `nic-data`, `nic-tx`,
//! `nic-rx`); every other `<port>-queues` region it holds, with `<port>-data`,
//! `<port>-tx` and `<port>-rx`, is a port it serves as a driver would (the shared
//! `nicserve` loop), each with a station address of its own: the NIC's with the last
//! byte plus the port's number (1, 2, ...). Frames are copied at every hop (sDDF's
//! copier): a partition's buffers are never shared with another partition or with the
//! device. Received frames go to the port whose address they name (broadcast and
//! multicast to every port); a port's frame goes out only if its source address is the
//! port's own (anti-spoofing), else it is dropped and counted. A port that does not take
//! its frames loses them (bounded inbox); one that sends faster than the upstream link
//! takes keeps its frames in its own ring until a buffer upward is free.
#![no_std]
#![no_main]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capring::layout::net::NicInfo;
use capring::status::StatusPage;
use libcap::println;
use netclient::{hex, Link};
use nicserve::{Connection, Nic, Port, MAX_FRAME};

libcap::component::entry!(main);

/// Frames waiting for a port (beyond this they are dropped and counted).
const INBOX: usize = 64;
/// Most TSC ticks one idle wait lasts (the bridge polls its ports in between).
const IDLE_TICKS: u64 = 2_000_000;
/// Most TSC ticks between two refreshes of the status page while frames flow.
const PUBLISH_TICKS: u64 = 20_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("bridge: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// A port's state: its address, the frames waiting for it, its drop counters.
struct PortNic {
    mac: [u8; 6],
    inbox: VecDeque<Vec<u8>>,
    /// Frames it sent with another source address (dropped).
    spoofed: u64,
    /// Frames for it dropped because its inbox was full.
    overflow: u64,
}

/// A port as the serve loop sees it: what it sends goes straight onto the upstream
/// link (copied into the link's data region), what waits in its inbox goes to it.
struct PortSide<'a> {
    up: &'a mut Link,
    port: &'a mut PortNic,
}

impl Nic for PortSide<'_> {
    type Error = String;

    fn mac(&self) -> [u8; 6] {
        self.port.mac
    }

    /// Only while the upstream link has a free buffer: otherwise the port's frames
    /// wait in its own ring (backpressure), never in the bridge.
    fn can_take(&mut self) -> bool {
        self.up.can_send().unwrap_or(false)
    }

    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
        let port = &mut *self.port;
        if frame.len() < 14 || frame[6..12] != port.mac {
            port.spoofed += 1;
            if port.spoofed <= 4 {
                println!(
                    "bridge: dropped a frame from port {} with source {}",
                    hex(&port.mac),
                    hex(&frame[6..12.min(frame.len())])
                );
            }
            return Ok(true);
        }
        self.up.queue(frame)?;
        Ok(true)
    }

    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, String> {
        let Some(frame) = self.port.inbox.pop_front() else { return Ok(None) };
        let n = frame.len().min(out.len());
        out[..n].copy_from_slice(&frame[..n]);
        Ok(Some(n))
    }
}

/// The ports the description gives: every `<name>-queues` region but `nic-queues`.
fn ports(info: &'static ComponentInfo, mac: [u8; 6]) -> Result<Vec<(String, Port, PortNic)>, String> {
    let mut ports = Vec::new();
    for c in info.caps().iter().filter(|c| c.kind() == Some(CapKind::Region)) {
        let Some(prefix) = c.name().strip_suffix("-queues").filter(|p| *p != "nic") else { continue };
        let conn = Connection::find_named(info, prefix)
            .ok_or(format!("port '{prefix}': needs {prefix}-data, {prefix}-tx and {prefix}-rx"))?;
        let mut port_mac = mac;
        port_mac[5] = mac[5].wrapping_add(ports.len() as u8 + 1);
        let name: &'static str = "bridge";
        let port = Port::open(name, &conn, NicInfo { mac: port_mac, flags: 0, max_frame: MAX_FRAME })
            .map_err(|e| format!("port '{prefix}': {e:?}"))?;
        println!("bridge: port '{prefix}' has station address {}", hex(&port_mac));
        let nic = PortNic { mac: port_mac, inbox: VecDeque::new(), spoofed: 0, overflow: 0 };
        ports.push((String::from(prefix), port, nic));
    }
    if ports.is_empty() {
        return Err("no ports: the description gives no '<name>-queues' region but 'nic-queues'".into());
    }
    Ok(ports)
}

/// Hands a frame from upstream to the port(s) it names; whether any took it.
fn deliver(ports: &mut [(String, Port, PortNic)], frame: &[u8]) -> bool {
    let Some(dst) = frame.get(0..6) else { return false };
    let mut taken = false;
    for (_, _, nic) in ports.iter_mut().filter(|(_, _, n)| dst[0] & 1 != 0 || dst == n.mac) {
        if nic.inbox.len() < INBOX {
            nic.inbox.push_back(frame.to_vec());
            taken = true;
        } else {
            nic.overflow += 1;
        }
    }
    taken
}

/// Writes the per-port counters to the bridge's status page.
fn publish(page: &StatusPage, ports: &[(String, Port, PortNic)], forwarded: u64, unknown: u64) {
    use core::fmt::Write;
    let mut text = String::new();
    let _ = writeln!(text, "bridge: {forwarded} frames to ports, {unknown} for no port");
    for (name, port, nic) in ports {
        let [sent, received, dropped, refused] = port.counts;
        let _ = writeln!(
            text,
            "port {name} ({}): {sent} sent, {received} received, dropped {dropped} (no buffer) + {} (inbox full) + {} (spoofed source), {refused} entries refused",
            hex(&nic.mac),
            nic.overflow,
            nic.spoofed
        );
    }
    page.publish(text.as_bytes());
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let mut up: Link = netclient::connect_named(info, "nic")?;
    up.offer_receive_buffers()?;
    let mut ports = ports(info, up.mac)?;
    println!("bridge: {} ports behind {}", ports.len(), hex(&up.mac));
    let mut frame = [0u8; 2048];
    let (mut forwarded, mut unknown) = (0u64, 0u64);
    // Its counters for the status page, if the description gives it a `bridge-status`
    // region (writable for it; a partition may map it read-only).
    let status = info
        .cap_of("bridge-status", CapKind::Region)
        .filter(|c| c.rights & abi::rights::CapRights::WRITE.raw() != 0)
        // SAFETY: init mapped the region writable for the bridge alone at this address
        // for its whole life; it is used only as a status page.
        .map(|r| unsafe { StatusPage::new(r.vaddr as *mut u8, r.size as usize) });
    if let Some(page) = &status {
        publish(page, &ports, 0, 0);
    }
    // One blocking wait when the ports' notifications are the driver link's object.
    let others: Vec<u64> = ports.iter().map(|p| p.1.from_client()).collect();
    let blocking = nicserve::one_object(info, up.from_driver, &others);
    if !blocking {
        println!("bridge: its notifications are not one object (no `shares` in the description): polling");
    }
    let (mut shown_at, mut dirty, mut logged) = (libcap::deadline::now(), false, 0u64);
    loop {
        let mut progress = false;
        while let Some(n) = up.take(&mut frame)? {
            progress = true;
            if deliver(&mut ports, &frame[..n]) {
                forwarded += 1;
            } else {
                unknown += 1;
            }
        }
        for (name, port, nic) in ports.iter_mut() {
            let mut side = PortSide { up: &mut up, port: nic };
            progress |= port.step(&mut side).map_err(|e| format!("port '{name}': {e}"))?;
        }
        // One signal to the driver for the round (frames queued, buffers re-offered).
        up.flush();
        // Formatting the page costs thousands of instructions: refreshed at most every
        // PUBLISH_TICKS while frames flow, and whenever the bridge goes idle with
        // something new to show.
        dirty |= progress;
        if let Some(page) = status.as_ref().filter(|_| dirty) {
            if !progress || libcap::deadline::now().saturating_sub(shown_at) >= PUBLISH_TICKS {
                publish(page, &ports, forwarded, unknown);
                (shown_at, dirty) = (libcap::deadline::now(), false);
            }
        }
        if progress {
            if forwarded.is_multiple_of(32) && forwarded > 0 && forwarded != logged {
                let spoofed: u64 = ports.iter().map(|p| p.2.spoofed).sum();
                println!("bridge: {forwarded} frames to ports, {unknown} for no port, {spoofed} spoofed dropped");
                logged = forwarded;
            }
            continue;
        }
        wait(&mut up, &mut ports, blocking)?;
    }
}

/// Sleeps until the driver or a port has something for the bridge: raises the
/// waiting flag of every ring it consumes first, so a producer that adds an entry
/// signals. When the description makes the driver's and the ports' notifications one
/// object (`shares`), any of them ends the wait; otherwise it ends after
/// [`IDLE_TICKS`] and the ports are polled.
fn wait(up: &mut Link, ports: &mut [(String, Port, PortNic)], blocking: bool) -> Result<(), String> {
    let ring = |e| format!("ring: {e:?}");
    let mut idle = up.ends.rx_active.prepare_wait().map_err(ring)?;
    // Take back the sent buffers that came (an unclaimed entry would end every wait
    // at once and spin the bridge).
    up.reclaim()?;
    if up.tx_idle.is_empty() {
        // The ports' queued frames cannot move until a buffer comes back: wait for
        // that, not for them (their pending entries would end every wait at once).
        idle &= up.ends.tx_free.prepare_wait().map_err(ring)?;
    } else {
        for (_, port, _) in ports.iter_mut() {
            idle &= port.prepare_wait().map_err(ring)?;
        }
    }
    if idle && blocking {
        let _ = libcap::ipc::wait(up.from_driver);
    } else if idle {
        let _ = libcap::ipc::wait_until(up.from_driver, libcap::deadline::Deadline::after(IDLE_TICKS));
    }
    up.ends.rx_active.done_waiting();
    up.ends.tx_free.done_waiting();
    for (_, port, _) in ports.iter_mut() {
        port.done_waiting();
    }
    Ok(())
}
