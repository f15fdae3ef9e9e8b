//! The e1000e driver component: rings and buffers in its pool, ARP and DHCP tests.
//!
//! Init gives it a send cap to the iommu-server for its device (`IommuClient`) and the
//! device's memory BARs mapped uncached (`DeviceFrame`, `badge` = BAR number). It turns
//! on memory decoding and bus mastering through the server, takes one region of
//! [`REGION_PAGES`] pages from its DMA pool for both descriptor rings and all buffers,
//! resets the 82574, reads its MAC and brings the link up. With an MSI from the server
//! (`msis = 1` in the description) it waits for interrupts (receive, transmit
//! written back, link change), each wait bounded; without one it polls. The self-test:
//! an ARP request for QEMU's user-network gateway 10.0.2.2 until its reply arrives,
//! then a DHCP DISCOVER until the OFFER of an address arrives. Every value the device
//! reports (ring heads, frame lengths) is checked by the library.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::pci;
use abi::rights::CapRights;
use e1000e_driver::nic::REGION_PAGES;
use e1000e_driver::{DmaRegion, E1000e, E1000eError, PAGE, RX_BUF};
use libcap::cap::{IrqHandler, Notification};
use libcap::deadline::Deadline;
use libcap::println;
use netframe::dhcp::{discover, offer_for};
use netframe::{arp_reply_for, arp_request, arp_request_from_peer, hex};

pub mod blast;
mod rogue;

/// What the program does besides driving the NIC.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `e1000edrv`: the self-test, or serving the client the description names.
    Normal,
    /// `e1000edrv-rogue`: the fault scenarios ([`rogue`]).
    Rogue,
    /// `e1000edrv-loopback`: serves its client with MAC loopback on (the benchmarks:
    /// every frame sent comes back received, nothing reaches the wire).
    Loopback,
    /// `e1000edrv-blast`: the receive benchmark's sender ([`blast`]).
    Blast,
    /// `e1000edrv-flaky`: generation 1 crashes after sending [`FLAKY_FRAMES`] of its
    /// client's frames (the appliance's restart-under-traffic test); later ones serve.
    Flaky,
}

/// Frames generation 1 of `e1000edrv-flaky` sends before it crashes.
pub const FLAKY_FRAMES: u64 = 24;

/// Where the driver maps its DMA region.
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5400_0000_0000..0x0000_5400_0100_0000;
/// Guest IP the ARP request claims and the gateway it asks for (QEMU user networking).
pub(crate) const OUR_IP: [u8; 4] = [10, 0, 2, 15];
pub(crate) const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// TSC ticks to wait for each answer (a few seconds under TCG on a loaded host).
const REPLY_TICKS: u64 = 20_000_000_000;
/// TSC ticks between repeats of a request.
const RESEND_TICKS: u64 = 200_000_000;
/// The DHCP transaction id.
const XID: u32 = 0x1000_e1e0;
/// One wait for an interrupt lasts at most this many TSC ticks (then the rings are
/// looked at anyway: a lost interrupt costs this, never a hang).
const PAUSE_TICKS: u64 = 50_000_000;

/// CNode slots the iommu-server client may fill (page-table and frame caps).
const CLIENT_SLOTS: u64 = 196;

/// How the driver waits for the device.
pub struct Waiter {
    /// The MSI handler and the notification it signals; `None`: polling.
    pub irq: Option<(IrqHandler, u64)>,
    /// Interrupts seen.
    pub interrupts: u64,
}

impl Waiter {
    /// Until the device interrupts (bounded) or, polling, once round the scheduler.
    pub fn pause(&mut self, nic: &E1000e) {
        let Some((handler, ntfn)) = self.irq else {
            libcap::ipc::yield_now();
            return;
        };
        // Reading ICR clears the causes, so a cause set from here on raises a new MSI;
        // the ack lets it through.
        let _ = nic.take_causes();
        let _ = handler.ack();
        if let Ok(Some(_)) = libcap::ipc::wait_until(ntfn, Deadline::after(PAUSE_TICKS)) {
            self.interrupts += 1;
        }
    }

    /// Without waiting: clears the causes and counts an MSI that arrived meanwhile. The
    /// self-test calls it after each frame it received without a wait: QEMU's user
    /// network answers inside the transmit doorbell write, so the reply is in the ring
    /// (and its MSI raised) before the driver first looks, and a driver that only counted
    /// MSIs that ended a wait counted none. Reading ICR also stops QEMU re-raising the
    /// MSI every interrupt-throttling period (ITR, 128 us) while the causes stay set.
    pub fn collect(&mut self, nic: &E1000e) {
        let Some((handler, ntfn)) = self.irq else { return };
        let _ = nic.take_causes();
        if libcap::ipc::poll(ntfn).unwrap_or(0) != 0 {
            self.interrupts += 1;
        }
        let _ = handler.ack();
    }
}

/// The component's body; `mode` chooses the program.
pub fn main(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    match run(info, mode) {
        Ok(()) => {
            println!("e1000e: done");
            ExitCode::Success
        }
        Err(what) => {
            println!("e1000e: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

fn run(info: &'static ComponentInfo, mode: Mode) -> Result<(), alloc::string::String> {
    use alloc::format;
    let libcap::iommu::DriverClient { client: mut iommu, device: name, ntfn, badged, spare } =
        libcap::iommu::driver_client(info, DMA_VADDRS, CLIENT_SLOTS)?;
    let bar0 = info
        .caps()
        .iter()
        .find(|c| c.kind() == Some(CapKind::DeviceFrame) && c.name() == name && c.badge == 0)
        .ok_or("no BAR 0 mapped for the device")?;
    println!("e1000e: {name}: BAR 0 mapped at {:#x}, {:#x} bytes (gen {})", bar0.vaddr, bar0.size, info.generation);
    let command = iommu.config_read(pci::COMMAND, 2).map_err(|e| format!("config read: {e:?}"))?;
    iommu
        .config_write(pci::COMMAND, 2, command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER)
        .map_err(|e| format!("bus mastering refused ({e:?}; QEMU 7.2 needs iommu=allow-unremapped-dma)"))?;
    let rw = CapRights::READ.union(CapRights::WRITE);
    let buffer = iommu.dma_alloc(REGION_PAGES * PAGE, rw).map_err(|e| format!("dma_alloc: {e:?}"))?;
    println!("e1000e: rings and buffers at iova {:#x} ({} pages) from the pool", buffer.iova, buffer.pages);
    let region = DmaRegion { vaddr: buffer.vaddr, iova: buffer.iova, bytes: buffer.pages * PAGE };
    let mut yield_now = || {
        libcap::ipc::yield_now();
        true
    };
    // SAFETY: init mapped BAR 0 uncached at `bar0.vaddr` (`bar0.size` bytes) for this
    // component alone; the region is this driver's DMA buffer, used for nothing else.
    let mut nic = unsafe { E1000e::new(bar0.vaddr, bar0.size, region, &mut yield_now) }
        .map_err(|e| format!("device setup: {e}"))?;
    let mut waiter = Waiter { irq: None, interrupts: 0 };
    match iommu.msi() {
        Ok((handler, msi)) => {
            handler.set_notification(Notification(badged)).map_err(|e| format!("bind the MSI: {e:?}"))?;
            nic.enable_interrupts();
            waiter.irq = Some((handler, ntfn));
            println!("e1000e: interrupts by MSI vector {:#x}", msi.vector);
        }
        Err(e) => println!("e1000e: no MSI from the server ({e:?}): polling"),
    }
    let mac = nic.mac();
    let deadline = Deadline::after(REPLY_TICKS);
    while !nic.link().0 && !deadline.passed() {
        waiter.pause(&nic);
    }
    let (up, speed) = nic.link();
    if !up {
        return Err("the link did not come up".into());
    }
    println!("e1000e: MAC {}, link up at {speed} Mb/s", hex(&mac));
    if mode == Mode::Rogue {
        rogue::before_self_test(&mut nic, &mut waiter, info.generation, buffer.iova)?;
    }
    if mode == Mode::Blast {
        return blast::run(&mut nic, info);
    }
    if mode == Mode::Loopback {
        nic.set_loopback(true);
        println!("e1000e: MAC loopback on: frames sent come back received");
    }
    if let Some(connection) = nicserve::Connection::find(info) {
        // The client may be a bridge whose ports have station addresses of their own.
        nic.set_promiscuous(true);
        let irq = waiter.irq.map(|(handler, _)| handler);
        let crash_after = (mode == Mode::Flaky && info.generation == 1).then_some(FLAKY_FRAMES);
        let mut served = Served { nic: &mut nic, loopback: mode == Mode::Loopback, crash_after };
        return nicserve::serve("e1000e", &mut served, irq, &connection, spare).map_err(|e| format!("serving: {e}"));
    }
    let request = arp_request(mac, OUR_IP, GATEWAY);
    println!("e1000e: sending ARP request {}", hex(&request));
    // The gateway's reply (QEMU's user network) or, on a hub with another NIC, that
    // NIC's own request for the same gateway.
    let answer = |f: &[u8]| match arp_reply_for(f, mac).filter(|r| r.1 == GATEWAY) {
        Some(reply) => Some(Ok(reply)),
        None => arp_request_from_peer(f, mac).map(Err),
    };
    let (reply, frame) = exchange(&mut nic, &mut waiter, &request, answer)?;
    let reply = match reply {
        Ok(reply) => reply,
        Err(peer) => {
            println!("e1000e: {}: ARP request from peer {} ({})", hex(&mac), hex(&peer), hex(&frame));
            // Once more, for a peer that was not listening yet; then the hub test is done.
            nic.send(&request).map_err(|e| format!("send: {e}"))?;
            let deadline = Deadline::after(REPLY_TICKS);
            while !nic.tx_idle().map_err(|e| format!("{e}"))? && !deadline.passed() {
                waiter.pause(&nic);
            }
            return Ok(());
        }
    };
    println!("e1000e: ARP reply: {} is at {}", hex(&reply.1), hex(&reply.0));
    println!("e1000e: ARP frame received: {}", hex(&frame));
    let offer = exchange(&mut nic, &mut waiter, &discover(mac, XID), |f| offer_for(f, mac, XID))?.0;
    let ip = offer.your_ip;
    println!(
        "e1000e: DHCP offer: {}.{}.{}.{} from {:?}",
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        offer.server.map(|s| [s[0], s[1], s[2], s[3]])
    );
    if mode == Mode::Rogue {
        rogue::after_self_test(&mut nic, &mut waiter, info.generation)?;
    }
    // MSIs that ended a wait or arrived while the driver was busy (docs/e1000e.md).
    waiter.collect(&nic);
    println!("e1000e: {} interrupts (IMS {:#x})", waiter.interrupts, nic.interrupt_mask());
    Ok(())
}

/// Sends `request` (again every [`RESEND_TICKS`]) until a frame `answer` accepts
/// arrives; returns what it found and the frame.
fn exchange<T>(
    nic: &mut E1000e,
    waiter: &mut Waiter,
    request: &[u8],
    answer: impl Fn(&[u8]) -> Option<T>,
) -> Result<(T, alloc::vec::Vec<u8>), alloc::string::String> {
    use alloc::format;
    let mut frame = [0u8; RX_BUF];
    let deadline = Deadline::after(REPLY_TICKS);
    let mut resend = Deadline::after(0);
    let mut others = 0u32;
    while !deadline.passed() {
        if resend.passed() {
            nic.send(request).map_err(|e| format!("send: {e}"))?;
            resend = Deadline::after(RESEND_TICKS);
        }
        match nic.receive(&mut frame).map_err(|e| format!("receive: {e}"))? {
            Some(len) => match answer(&frame[..len]) {
                Some(found) => {
                    waiter.collect(nic);
                    return Ok((found, frame[..len].to_vec()));
                }
                None => others += 1,
            },
            None => waiter.pause(nic),
        }
    }
    Err(format!("no answer to a {} byte request ({others} other frames)", request.len()))
}

/// The NIC as the serve loop sees it ([`nicserve::Nic`]).
struct Served<'a> {
    nic: &'a mut E1000e,
    /// MAC loopback is on.
    loopback: bool,
    /// `e1000edrv-flaky`: crash once this many more frames were sent.
    crash_after: Option<u64>,
}

impl nicserve::Nic for Served<'_> {
    type Error = E1000eError;

    fn mac(&self) -> [u8; 6] {
        self.nic.mac()
    }

    fn try_send(&mut self, frame: &[u8]) -> Result<bool, E1000eError> {
        if let Some(left) = self.crash_after.as_mut() {
            if *left == 0 {
                println!("e1000e: flaky: crashing in the middle of the client's traffic");
                // SAFETY: deliberately a read of an unmapped address: the CPU fault goes
                // to init, which applies the component's policy (restart).
                let v = unsafe { core::ptr::read_volatile(0xdead_0000 as *const u64) };
                println!("e1000e: FAIL read {v:#x} from an unmapped address");
            }
            *left = left.saturating_sub(1);
        }
        match self.nic.send(frame) {
            Ok(()) => Ok(true),
            Err(E1000eError::TxFull) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, E1000eError> {
        self.nic.receive(out)
    }

    fn clear_interrupt(&mut self) {
        // Reading ICR clears the causes.
        let _ = self.nic.take_causes();
    }

    fn loopback(&self) -> bool {
        self.loopback
    }
}
