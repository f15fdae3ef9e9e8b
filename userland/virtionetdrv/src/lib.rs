//! The virtio-net driver component: ACCESS_PLATFORM required, IOVAs only.
//!
//! Init gives it a send cap to the iommu-server for its device (`IommuClient`) and the
//! device's memory BARs mapped uncached (`DeviceFrame`, `badge` = BAR number). It turns
//! on memory decoding and bus mastering through the server, reads the config space the
//! server lets it read (IDs, capability list; never the BARs) into a checked
//! [`ConfigView`], takes one 256 KiB region from its DMA pool for virtqueues and bounce
//! buffers, and drives the device with `virtio-drivers`' non-blocking `VirtIONetRaw`
//! ([`Net`]) over the [`PlatformTransport`] (VIRTIO_F_ACCESS_PLATFORM accepted,
//! FEATURES_OK read back). With `msis = 1` the server programs MSI-X entry 0 and the
//! transport routes every queue to it (the crate does not); waits are then bounded
//! waits for that interrupt, otherwise the driver polls. Sends are queued and reclaimed,
//! never spun on: a send the device has not completed within [`SEND_TICKS`] is reported
//! as a stuck device. The self-test sends an ARP request for 10.0.2.2 (QEMU's user
//! network answers) and checks the reply's bytes; on a hub with another NIC instead, it
//! takes that NIC's request as the frame received.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::pci;
use abi::rights::CapRights;
use libcap::cap::{IrqHandler, Notification};
use libcap::deadline::Deadline;
use libcap::println;
use virtio_net_driver::config::{BarWindow, ConfigView};
use virtio_net_driver::frame::{arp_reply_for, arp_request, arp_request_from_peer, hex};
use virtio_net_driver::hal::PoolHal;
use virtio_net_driver::net::{Net as RawNet, NetError};
use virtio_net_driver::pool::Pool;
use virtio_net_driver::transport::PlatformTransport;
use virtio_net_driver::virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_net_driver::virtio_drivers::transport::pci::PciTransport;

/// What the program does besides the self-test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `virtionetdrv`: the self-test.
    Normal,
    /// `virtionetdrv-rogue`: the fault scenarios (see [`rogue`]).
    Rogue,
}

/// Where the driver maps its DMA region.
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5400_0000_0000..0x0000_5400_0100_0000;
/// Pages of the one DMA region (the server's largest buffer, 256 KiB).
const POOL_PAGES: u32 = 64;
/// Receive buffer bytes (header + a full Ethernet frame).
const RX_BUF: usize = 2048;
/// Entries per virtqueue.
const QUEUE: usize = 16;
/// Guest IP the self-test claims and the gateway it asks for (QEMU user networking).
const OUR_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// TSC ticks to wait for the reply (a few seconds under TCG on a loaded host).
const REPLY_TICKS: u64 = 20_000_000_000;
/// TSC ticks between repeats of the request (a peer may not listen yet).
const RESEND_TICKS: u64 = 100_000_000;
/// A send the device has not completed after this many TSC ticks is a stuck device
/// (reported, the driver stops). QEMU holds a virtio-net frame while the peer cannot
/// take it (a hub NIC still setting up), so this is generous.
pub const SEND_TICKS: u64 = 5_000_000_000;
/// The courtesy request sent after the peer's arrived waits this long to be taken; on a
/// hub whose other NIC has already ended (its device reset) it never is.
const LAST_SEND_TICKS: u64 = 500_000_000;
/// A send not completed after this many TSC ticks gets its queue notified again (a
/// notification the crate skipped: it reads the device's event index without a full
/// fence after publishing the buffer).
const KICK_TICKS: u64 = 20_000_000;

type Net = RawNet<PoolHal, PlatformTransport<PciTransport>, QUEUE>;

/// The device's queue notification: the receive and transmit queues, rung directly
/// (`transport::kick`) whatever the crate decided.
#[derive(Clone, Copy)]
pub struct Doorbell {
    common: u64,
    notify: (u64, u64, u32),
}

/// The receive queue's index; the transmit queue is 1.
const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;

impl Doorbell {
    /// Notifies `queue`; `false` if its notify offset lies outside the structure.
    fn ring(&self, queue: u16) -> bool {
        // SAFETY: both lie inside BAR windows init mapped uncached for this component
        // (checked by the config view) for its whole life.
        unsafe { virtio_net_driver::transport::kick(self.common, self.notify, queue) }
    }

    /// Rings the transmit queue again if the oldest send has waited [`KICK_TICKS`].
    fn nudge(&self, net: &Net) {
        if net.oldest_send().is_some_and(|since| now().saturating_sub(since) > KICK_TICKS) {
            self.ring(TX_QUEUE);
        }
    }
}

/// The TSC.
fn now() -> u64 {
    libcap::deadline::now()
}

/// `Err` naming the age of the oldest send if it exceeds [`SEND_TICKS`].
fn check_stuck(net: &Net) -> Result<(), NetError> {
    match net.oldest_send().map(|since| now().saturating_sub(since)) {
        Some(age) if age > SEND_TICKS => Err(NetError::Stuck(age)),
        _ => Ok(()),
    }
}

/// The component's body; `mode` chooses the program.
pub fn main(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    match run(info, mode) {
        Ok(()) => {
            println!("virtionet: done");
            ExitCode::Success
        }
        Err(what) => {
            println!("virtionet: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// CNode slots the iommu-server client may fill (page-table and frame caps).
const CLIENT_SLOTS: u64 = 196;

/// One wait for an interrupt lasts at most this many TSC ticks (then the queues are
/// looked at anyway: a lost interrupt costs this, never a hang).
const PAUSE_TICKS: u64 = 50_000_000;

/// How the driver waits for the device.
pub struct Waiter {
    /// The MSI-X handler and the notification it signals; `None`: polling.
    irq: Option<(IrqHandler, u64)>,
    /// Interrupts seen.
    interrupts: u64,
}

impl Waiter {
    /// Until the device interrupts (bounded) or, polling, once round the scheduler.
    fn pause(&mut self) {
        let Some((handler, ntfn)) = self.irq else {
            // Polling: let other threads of this priority (another NIC's driver) run.
            libcap::ipc::yield_now();
            return;
        };
        if let Ok(Some(_)) = libcap::ipc::wait_until(ntfn, Deadline::after(PAUSE_TICKS)) {
            self.interrupts += 1;
        }
        let _ = handler.ack();
    }
}

fn run(info: &'static ComponentInfo, mode: Mode) -> Result<(), alloc::string::String> {
    use alloc::format;
    let libcap::iommu::DriverClient { client: mut iommu, device: name, ntfn, badged, spare } =
        libcap::iommu::driver_client(info, DMA_VADDRS, CLIENT_SLOTS)?;
    let mut bars = [None; 6];
    for b in info.caps().iter().filter(|c| c.kind() == Some(CapKind::DeviceFrame) && c.name() == name) {
        println!("virtionet: {name}: BAR {} mapped at {:#x}, {:#x} bytes", b.badge, b.vaddr, b.size);
        if let Some(slot) = bars.get_mut(b.badge as usize).filter(|_| b.size != 0) {
            *slot = Some(BarWindow { vaddr: b.vaddr, size: b.size });
        }
    }
    let command = iommu.config_read(pci::COMMAND, 2).map_err(|e| format!("config read: {e:?}"))?;
    iommu
        .config_write(pci::COMMAND, 2, command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER)
        .map_err(|e| format!("bus mastering refused ({e:?}; QEMU 7.2 needs iommu=allow-unremapped-dma)"))?;
    let view = ConfigView::new(|o| iommu.config_read(u64::from(o), 4).ok().map(|v| v as u32), bars)
        .map_err(|e| format!("device config refused: {e:?}"))?;
    let rw = CapRights::READ.union(CapRights::WRITE);
    let region = iommu.dma_alloc(u64::from(POOL_PAGES) * 4096, rw).map_err(|e| format!("dma_alloc: {e:?}"))?;
    println!("virtionet: DMA region iova {:#x} ({} pages) from the pool", region.iova, region.pages);
    let pool = Pool::new(region.iova, region.vaddr, POOL_PAGES).ok_or("the DMA region is not page aligned")?;
    PoolHal::install(pool, view.bars());
    let (common, notify) = (view.common_cfg(), view.notify_cfg());
    let mut root = PciRoot::new(view);
    let function = DeviceFunction { bus: 0, device: 0, function: 0 }; // the view ignores it
    let pci = PciTransport::new::<PoolHal, _>(&mut root, function).map_err(|e| format!("virtio-pci: {e:?}"))?;
    let (mut transport, negotiation) = PlatformTransport::new(pci).map_err(|e| format!("device refused: {e:?}"))?;
    // Interrupts: the server programs MSI-X entry `msi.data` (remappable) for us; the
    // crate sets up the queues but not their vectors, so the transport routes each.
    let mut waiter = Waiter { irq: None, interrupts: 0 };
    let mut routing = None;
    match (iommu.msi(), common) {
        (Ok((handler, msi)), Some(common)) => {
            handler.set_notification(Notification(badged)).map_err(|e| format!("bind the MSI-X: {e:?}"))?;
            handler.msix_mask(false).map_err(|e| format!("unmask the MSI-X entry: {e:?}"))?;
            // SAFETY: `common` lies inside a BAR window init mapped uncached for this
            // component (checked by the view) and stays mapped for its whole life.
            routing = Some((unsafe { transport.route_queues(common, msi.data as u16) }, msi));
            waiter.irq = Some((handler, ntfn));
        }
        (Ok(_), None) => println!("virtionet: no common configuration to route queues by: polling"),
        (Err(e), _) => println!("virtionet: no MSI-X from the server ({e:?}): polling"),
    }
    let (Some(common), Some(notify)) = (common, notify) else {
        return Err("no common or notification configuration to notify queues by".into());
    };
    let doorbell = Doorbell { common, notify };
    let net = Net::new(transport, RX_BUF);
    let features = *negotiation.lock();
    let features = features.map_err(|e| format!("feature negotiation: {e:?}"))?;
    let mut net = net.map_err(|e| format!("virtio-net setup: {e}"))?;
    // The receive buffers went in after DRIVER_OK, and the crate notifies only when the
    // device asked for it: one notification makes sure QEMU looks (and delivers a frame
    // it queued meanwhile).
    if !doorbell.ring(RX_QUEUE) {
        return Err("the receive queue's notify offset lies outside the notification structure".into());
    }
    println!("virtionet: features {features:#x}: ACCESS_PLATFORM accepted, FEATURES_OK read back");
    if let Some((routing, msi)) = &routing {
        let (routed, refused) = routing.counts();
        println!(
            "virtionet: queues routed to MSI-X entry {} vector {:#x}: {routed} routed, {refused} refused",
            msi.data, msi.vector
        );
    }
    let mac = net.mac();
    println!("virtionet: MAC {}, {} pool pages in use", hex(&mac), PoolHal::used_pages());
    if let Some(connection) = nicserve::Connection::find(info) {
        let irq = waiter.irq.map(|(handler, _)| handler);
        let mut served = Served { net: &mut net, doorbell };
        return nicserve::serve("virtionet", &mut served, irq, &connection, spare).map_err(|e| format!("serving: {e}"));
    }
    let mut link = Link { net: &mut net, doorbell, waiter: &mut waiter };
    if mode == Mode::Rogue {
        if info.generation == 1 {
            // A buffer past the region: a later generation's region never covers it.
            let extra = iommu.dma_alloc(4096, rw).map_err(|e| format!("dma_alloc: {e:?}"))?;
            println!("virtionet: rogue: a second buffer at iova {:#x}", extra.iova);
            if extra.iova != STALE_IOVA {
                return Err(format!("generation 1's second buffer is at {:#x}, not STALE_IOVA", extra.iova));
            }
        }
        rogue(&mut link, mac, info.generation)?;
    }
    self_test(&mut link, mac)?;
    if let Some((_, ntfn)) = waiter.irq {
        // A signal still pending (the last completions) counts too.
        let pending = libcap::ipc::poll(ntfn).unwrap_or(0) != 0;
        println!("virtionet: {} interrupts", waiter.interrupts + u64::from(pending));
    }
    Ok(())
}

/// An IOVA the device's domain does not map (the pool starts at 0x100000).
const OUTSIDE_IOVA: u64 = 0x800_0000;
/// Generation 1's second buffer: after its 64-page region at the pool's first IOVA,
/// 0x100000, and the guard page the server leaves between buffers.
const STALE_IOVA: u64 = 0x14_1000;

/// The device, its doorbell and the interrupt wait: what the self-test drives.
struct Link<'a> {
    net: &'a mut Net,
    doorbell: Doorbell,
    waiter: &'a mut Waiter,
}

impl Link<'_> {
    /// Queues `frame` (waiting, bounded, for a free transmit buffer).
    fn send(&mut self, frame: &[u8]) -> Result<(), alloc::string::String> {
        while !self.net.send(frame, now()).map_err(|e| alloc::format!("send: {e}"))? {
            self.idle()?;
        }
        Ok(())
    }

    /// Waits (bounded by `ticks`) until the device has completed every send; `false`
    /// if one is still in flight then.
    fn flush(&mut self, ticks: u64) -> Result<bool, alloc::string::String> {
        let deadline = Deadline::after(ticks);
        loop {
            self.net.reclaim().map_err(|e| alloc::format!("send: {e}"))?;
            if self.net.in_flight() == 0 {
                return Ok(true);
            }
            if deadline.passed() {
                return Ok(false);
            }
            self.idle()?;
        }
    }

    /// One bounded wait for the device; fails if a send is stuck.
    fn idle(&mut self) -> Result<(), alloc::string::String> {
        check_stuck(self.net).map_err(|e| alloc::format!("send: {e}"))?;
        self.doorbell.nudge(self.net);
        self.waiter.pause();
        Ok(())
    }
}

/// The fault scenarios (`virtionetdrv-rogue`, `systems/test-virtio-net-rogue.toml`):
/// generation 1 hands the device a frame at [`OUTSIDE_IOVA`], generation 2 (after a
/// working self-test) one at [`STALE_IOVA`], generation 1's second buffer, dead since
/// generation 1 ended. Either read is blocked and reported; QEMU then marks the device
/// broken and the send never completes, so management's policy (`restart`) kills the
/// driver while it waits for that transfer. The next generation resets the device and
/// works; generation 3 only runs the self-test.
fn rogue(link: &mut Link, mac: [u8; 6], generation: u32) -> Result<(), alloc::string::String> {
    let wrong = match generation {
        1 => OUTSIDE_IOVA,
        2 => {
            self_test(link, mac)?;
            STALE_IOVA
        }
        _ => return Ok(()),
    };
    let what = if generation == 1 { "outside the pool" } else { "generation 1's, stale" };
    println!("virtionet: rogue: handing the device a frame at iova {wrong:#x} ({what})");
    PoolHal::misdirect_next_share(wrong);
    link.send(&arp_request(mac, OUR_IP, GATEWAY))?;
    // Bounded: the policy kills the driver long before; if not, a stuck send fails it.
    if link.flush(REPLY_TICKS)? {
        return Err(alloc::format!("the send from iova {wrong:#x} completed; the device read it"));
    }
    Err(alloc::format!("the send from iova {wrong:#x} never completed and no policy stopped the driver"))
}

/// Sends an ARP request for the gateway (again every [`RESEND_TICKS`] once the last one
/// went out) until the gateway's reply arrives (bytes checked) or, on a hub without it, a
/// peer NIC's request: then the request goes out once more, for a peer whose set-up
/// swallowed the earlier ones (QEMU drops a frame queued for a virtio NIC that is just
/// setting DRIVER_OK).
fn self_test(link: &mut Link, mac: [u8; 6]) -> Result<(), alloc::string::String> {
    use alloc::format;
    let request = arp_request(mac, OUR_IP, GATEWAY);
    link.send(&request)?;
    println!("virtionet: sent ARP request {}", hex(&request));
    let deadline = Deadline::after(REPLY_TICKS);
    let mut resend = Deadline::after(RESEND_TICKS);
    let mut frames = 0u32;
    let mut rx = [0u8; RX_BUF];
    while !deadline.passed() {
        link.net.reclaim().map_err(|e| format!("send: {e}"))?;
        let Some(len) = link.net.receive(&mut rx).map_err(|e| format!("receive: {e}"))? else {
            // A resend only once the last request left: QEMU holds a frame the peer
            // cannot take yet, and the send would only queue behind it.
            if resend.passed() && link.net.in_flight() == 0 {
                link.send(&request)?;
                resend = Deadline::after(RESEND_TICKS);
            } else {
                link.idle()?;
            }
            continue;
        };
        frames += 1;
        let frame = &rx[..len];
        let bytes = hex(frame);
        if let Some((from, ip)) = arp_reply_for(frame, mac).filter(|r| r.1 == GATEWAY) {
            println!("virtionet: ARP reply: {} is at {} ({bytes})", hex(&ip), hex(&from));
            println!("virtionet: {} pool pages in use after the exchange", PoolHal::used_pages());
            return Ok(());
        }
        if let Some(peer) = arp_request_from_peer(frame, mac) {
            println!("virtionet: {}: ARP request from peer {} ({bytes})", hex(&mac), hex(&peer));
            link.send(&request)?;
            // A peer that got an earlier request may have ended already, its device
            // reset: QEMU's hub then never takes this frame. Bounded, and said.
            if !link.flush(LAST_SEND_TICKS)? {
                println!("virtionet: the last request was not taken (the peer's NIC has stopped); not waiting");
            }
            return Ok(());
        }
        println!("virtionet: received another frame: {bytes}");
    }
    Err(format!("no ARP reply from 10.0.2.2 nor a peer's request ({frames} other frames)"))
}

/// A device error as the serve loop reports it.
pub type VirtioError = NetError;

/// The NIC as the serve loop sees it ([`nicserve::Nic`]).
struct Served<'a> {
    net: &'a mut Net,
    doorbell: Doorbell,
}

impl nicserve::Nic for Served<'_> {
    type Error = VirtioError;

    fn mac(&self) -> [u8; 6] {
        self.net.mac()
    }

    fn try_send(&mut self, frame: &[u8]) -> Result<bool, VirtioError> {
        if self.net.send(frame, now())? {
            return Ok(true);
        }
        // Every transmit buffer in flight: the serve loop tries again, but never for
        // ever: a send the device holds past SEND_TICKS ends the service.
        check_stuck(self.net)?;
        self.doorbell.nudge(self.net);
        Ok(false)
    }

    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, VirtioError> {
        self.net.reclaim()?;
        self.net.receive(out)
    }

    fn clear_interrupt(&mut self) {
        let _ = self.net.ack_interrupt();
    }
}
