//! The virtio-net driver component: ACCESS_PLATFORM required, IOVAs only.
//!
//! Init gives it a send cap to the iommu-server for its device (`IommuClient`) and the
//! device's memory BARs mapped uncached (`DeviceFrame`, `badge` = BAR number). It turns
//! on memory decoding and bus mastering through the server, reads the config space the
//! server lets it read (IDs, capability list; never the BARs) into a checked
//! [`ConfigView`], takes one 256 KiB region from its DMA pool for virtqueues and bounce
//! buffers, and runs `virtio-drivers`' `VirtIONet` over the [`PlatformTransport`]
//! (VIRTIO_F_ACCESS_PLATFORM accepted, FEATURES_OK read back). With `msis = 1` the
//! server programs MSI-X entry 0 and the transport routes every queue to it (the crate
//! does not); receive waits are then bounded waits for that interrupt, otherwise the
//! driver polls. The crate's `send` still spins until the device used the buffer. The
//! self-test sends an ARP
//! request for 10.0.2.2 (QEMU's user network answers) and checks the reply's bytes; on a
//! hub with another NIC instead, it takes that NIC's request as the frame received.
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
use virtio_net_driver::pool::Pool;
use virtio_net_driver::transport::PlatformTransport;
use virtio_net_driver::virtio_drivers::device::net::VirtIONet;
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

type Net = VirtIONet<PoolHal, PlatformTransport<PciTransport>, QUEUE>;

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
    let net: Result<Net, _> = VirtIONet::new(transport, RX_BUF);
    let features = *negotiation.lock();
    let features = features.map_err(|e| format!("feature negotiation: {e:?}"))?;
    let mut net = net.map_err(|e| format!("virtio-net setup: {e:?}"))?;
    if let (Some(common), Some(notify)) = (common, notify) {
        // SAFETY: both lie inside BAR windows init mapped uncached for this component
        // (checked by the view) for its whole life.
        if !unsafe { virtio_net_driver::transport::kick(common, notify, 0) } {
            return Err("the receive queue's notify offset lies outside the notification structure".into());
        }
    }
    println!("virtionet: features {features:#x}: ACCESS_PLATFORM accepted, FEATURES_OK read back");
    if let Some((routing, msi)) = &routing {
        let (routed, refused) = routing.counts();
        println!(
            "virtionet: queues routed to MSI-X entry {} vector {:#x}: {routed} routed, {refused} refused",
            msi.data, msi.vector
        );
    }
    let mac = net.mac_address();
    println!("virtionet: MAC {}, {} pool pages in use", hex(&mac), PoolHal::used_pages());
    if let Some(connection) = nicserve::Connection::find(info) {
        let irq = waiter.irq.map(|(handler, _)| handler);
        return nicserve::serve("virtionet", &mut Served(&mut net), irq, &connection, spare)
            .map_err(|e| format!("serving: {e}"));
    }
    if mode == Mode::Rogue {
        if info.generation == 1 {
            // A buffer past the region: a later generation's region never covers it.
            let extra = iommu.dma_alloc(4096, rw).map_err(|e| format!("dma_alloc: {e:?}"))?;
            println!("virtionet: rogue: a second buffer at iova {:#x}", extra.iova);
            if extra.iova != STALE_IOVA {
                return Err(format!("generation 1's second buffer is at {:#x}, not STALE_IOVA", extra.iova));
            }
        }
        rogue(&mut net, mac, info.generation, &mut waiter)?;
    }
    self_test(&mut net, mac, &mut waiter)?;
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

/// The fault scenarios (`virtionetdrv-rogue`, `systems/test-virtio-net-rogue.toml`):
/// generation 1 hands the device a frame at [`OUTSIDE_IOVA`], generation 2 (after a
/// working self-test) one at [`STALE_IOVA`], generation 1's second buffer, dead since
/// generation 1 ended. Either read is blocked and reported; QEMU then marks the device
/// broken and the send never completes (the crate waits for it), so management's
/// policy (`restart`) kills the driver in the middle of that transfer. The next
/// generation resets the device and works; generation 3 only runs the self-test.
fn rogue(net: &mut Net, mac: [u8; 6], generation: u32, waiter: &mut Waiter) -> Result<(), alloc::string::String> {
    let wrong = match generation {
        1 => OUTSIDE_IOVA,
        2 => {
            self_test(net, mac, waiter)?;
            STALE_IOVA
        }
        _ => return Ok(()),
    };
    let what = if generation == 1 { "outside the pool" } else { "generation 1's, stale" };
    println!("virtionet: rogue: handing the device a frame at iova {wrong:#x} ({what})");
    PoolHal::misdirect_next_share(wrong);
    send(net, &arp_request(mac, OUR_IP, GATEWAY))?;
    Err(alloc::format!("the send from iova {wrong:#x} completed; the device read it"))
}

/// Sends `frame` (the crate waits for the device to use it).
fn send(net: &mut Net, frame: &[u8]) -> Result<(), alloc::string::String> {
    let mut tx = net.new_tx_buffer(frame.len());
    tx.packet_mut().copy_from_slice(frame);
    net.send(tx).map_err(|e| alloc::format!("send: {e:?}"))
}

/// Sends an ARP request for the gateway (again every [`RESEND_TICKS`]) until the
/// gateway's reply arrives (bytes checked) or, on a hub without it, a peer NIC's request:
/// then the request goes out once more, for a peer that was not listening yet.
fn self_test(net: &mut Net, mac: [u8; 6], waiter: &mut Waiter) -> Result<(), alloc::string::String> {
    use alloc::format;
    let request = arp_request(mac, OUR_IP, GATEWAY);
    send(net, &request)?;
    println!("virtionet: sent ARP request {}", hex(&request));
    let deadline = Deadline::after(REPLY_TICKS);
    let mut resend = Deadline::after(RESEND_TICKS);
    let mut frames = 0u32;
    while !deadline.passed() {
        // Look at what arrived before sending again: the crate's send spins until the
        // device has used the buffer, and on a hub whose other NIC is gone (its driver
        // ended, its pool revoked) QEMU holds the frame for ever, so a resend must not
        // come when the answer is already waiting.
        let Ok(rx) = net.receive() else {
            if resend.passed() {
                send(net, &request)?;
                resend = Deadline::after(RESEND_TICKS);
            } else {
                waiter.pause();
            }
            continue;
        };
        frames += 1;
        // The length comes from the device: bounded by the buffer before it is used.
        if rx.packet_len() > RX_BUF {
            return Err(format!("the device reported a {} byte frame in a {RX_BUF} byte buffer", rx.packet_len()));
        }
        let reply = arp_reply_for(rx.packet(), mac);
        let peer = arp_request_from_peer(rx.packet(), mac);
        let bytes = hex(rx.packet());
        net.recycle_rx_buffer(rx).map_err(|e| format!("recycle: {e:?}"))?;
        if let Some((from, ip)) = reply.filter(|r| r.1 == GATEWAY) {
            println!("virtionet: ARP reply: {} is at {} ({bytes})", hex(&ip), hex(&from));
            println!("virtionet: {} pool pages in use after the exchange", PoolHal::used_pages());
            return Ok(());
        }
        if let Some(peer) = peer {
            send(net, &request)?;
            println!("virtionet: {}: ARP request from peer {} ({bytes})", hex(&mac), hex(&peer));
            return Ok(());
        }
        println!("virtionet: received another frame: {bytes}");
    }
    Err(format!("no ARP reply from 10.0.2.2 nor a peer's request ({frames} other frames)"))
}

/// A device error as the serve loop reports it.
pub enum VirtioError {
    /// The crate reported it.
    Crate(virtio_net_driver::virtio_drivers::Error),
    /// The device reported a frame longer than the receive buffer (refused).
    FrameTooLong(usize),
}

impl core::fmt::Display for VirtioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VirtioError::Crate(e) => write!(f, "{e:?}"),
            VirtioError::FrameTooLong(n) => write!(f, "a {n} byte frame in a {RX_BUF} byte buffer"),
        }
    }
}

/// The NIC as the serve loop sees it ([`nicserve::Nic`]).
struct Served<'a>(&'a mut Net);

impl nicserve::Nic for Served<'_> {
    type Error = VirtioError;

    fn mac(&self) -> [u8; 6] {
        self.0.mac_address()
    }

    fn try_send(&mut self, frame: &[u8]) -> Result<bool, VirtioError> {
        // The crate's send waits until the device has used the buffer.
        let mut tx = self.0.new_tx_buffer(frame.len());
        tx.packet_mut().copy_from_slice(frame);
        self.0.send(tx).map(|()| true).map_err(VirtioError::Crate)
    }

    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, VirtioError> {
        use virtio_net_driver::virtio_drivers::Error;
        let rx = match self.0.receive() {
            Ok(rx) => rx,
            Err(Error::NotReady) => return Ok(None),
            Err(e) => return Err(VirtioError::Crate(e)),
        };
        // The length comes from the device: bounded by the buffers before it is used.
        let n = rx.packet_len();
        let fits = n <= out.len().min(RX_BUF);
        if fits {
            out[..n].copy_from_slice(rx.packet());
        }
        self.0.recycle_rx_buffer(rx).map_err(VirtioError::Crate)?;
        if fits {
            Ok(Some(n))
        } else {
            Err(VirtioError::FrameTooLong(n))
        }
    }

    fn clear_interrupt(&mut self) {
        let _ = self.0.ack_interrupt();
    }
}
