//! The request loop over real caps (bare metal only).
//!
//! [`run`] owns one IOSpace per device (retyped from its own untyped, IO page tables
//! made as needed), frames from each driver's DMA pool, and answers the requests of
//! `abi::iommu`. It is the fault handler of every IOSpace: each DMA fault is logged
//! with what the IOVA was (buffer page, or unmapped: guard page, freed buffer) and
//! queued per device ([`crate::reports`]) for that device's fault handler, whose
//! doorbell it rings; the handler fetches its devices' reports with `FaultNext` and
//! only it may reset or cut off its devices (without a doorbell: NBSend to the fault
//! endpoint). A
//! request carrying a newer driver generation in its badge first drops the old
//! instance's records. The caps it gets are all it can use: the [`crate::malicious`]
//! attempts show the kernel refusing the rest.

use abi::error::SyscallError;
use abi::fault::FaultKind;
use abi::iommu::{badge_device, FaultReport, IommuLabel, IommuStatus};
use abi::layout::PAGE_SIZE;
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;
use alloc::vec::Vec;
use libcap::cap::{CNode, CPtr, Frame, IoPageTable, IoSpace, IrqControl, PciDevice, SlotRef, Untyped};
use libcap::ipc::{self, Message};
use libcap::println;

use crate::domain::{DmaOps, Domain};
use crate::iova::iova_limit;
use crate::reports::FaultQueues;
use crate::request::{config_allowed, config_read_allowed, decode, wants_cap, Request};

mod placed;

/// Bit of every fault-handler badge; no driver or supervisor badge has bit 48 set.
/// Minted from the server's endpoint the badge is this plus the device index; from its
/// fault notification, this plus `1 << index` (bits OR together in the notification).
pub const FAULT_BADGE: u64 = 1 << 48;
/// Devices a fault notification can tell apart (one badge bit each, below bit 48).
pub const MAX_NOTIFIED_DEVICES: usize = 48;

/// The caps of one device the server manages.
#[derive(Clone, Copy, Debug)]
pub struct DeviceCaps {
    /// Its PciDevice cap.
    pub pci: CPtr,
    /// The driver's DMA pool (an untyped cap).
    pub pool: CPtr,
    /// Address bits the device can put on the bus (edu: 28).
    pub dma_mask_bits: u8,
    /// Endpoint its DMA faults are sent to (NBSend, label `DmaFault`) when the server
    /// has no doorbell; 0: none.
    pub fault_ep: CPtr,
    /// An MSI init already made for the device (handler cap and its address/data);
    /// `MsiAlloc` hands out a copy instead of asking IRQ control.
    pub msi: Option<(CPtr, libcap::cap::Msi)>,
    /// The component index of its fault handler ([`NO_HANDLER`]: none): only that
    /// supervisor may fetch its fault reports, reset it or cut it off.
    pub handler: u16,
    /// Signal cap to its handler's doorbell (0: none; then faults are NBSent).
    pub doorbell: CPtr,
}

/// [`DeviceCaps::handler`] of a device whose faults no management component handles.
pub const NO_HANDLER: u16 = u16::MAX;

/// Everything the server runs with; all CPtrs are in the server's own CSpace.
pub struct Config<'a> {
    /// Its own CNode (a guarded CNode: slot `i` is CPtr `i` at depth 64).
    pub cnode: CPtr,
    /// Its endpoint (all rights: it mints the fault-handler caps from it).
    pub endpoint: CPtr,
    /// A notification bound to the server's TCB: the IOSpaces' fault handler (the
    /// server pops each record with IoSpaceNextFault). 0: the server's endpoint is the
    /// handler instead (the kernel sends one `DmaFault` message per record).
    pub fault_ntfn: CPtr,
    /// Untyped caps for IOSpaces and IO page tables (tried in order).
    pub untyped: core::ops::Range<CPtr>,
    /// IRQ control for MSIs (0: `MsiAlloc` is refused).
    pub irq_control: CPtr,
    /// Empty slots of its CNode it may use.
    pub free_slots: core::ops::Range<u64>,
    /// Address bits the IOMMU translates (39 for 3-level tables).
    pub address_bits: u8,
    /// The devices, in description order (badge = index + 1).
    pub devices: &'a [DeviceCaps],
    /// Try what a malicious server would (device frames, forged slots, other domains).
    pub malicious: Option<crate::malicious::Attempts>,
    /// MSI-X handlers init made for MSI-X-only devices: `MsiAlloc` hands these out.
    pub msix: &'a [MsixHandler],
    /// Where to publish [`crate::status::render`]'s text, and each device's name and
    /// pool size (`None`: nothing is published).
    pub status: Option<StatusOut<'a>>,
}

/// The status page the server writes and what it says of each device.
pub struct StatusOut<'a> {
    /// The `iommu-status` region (writable for the server only).
    pub page: capring::status::StatusPage,
    /// Per device (description order): name, DMA mask and pool size.
    pub views: &'a [crate::status::DeviceView<'a>],
}

/// An MSI-X IRQHandler cap init made for a device (entry programmed and masked by
/// the kernel); `MsiAlloc(entry)` enables MSI-X on the device and hands the driver it.
#[derive(Clone, Copy, Debug)]
pub struct MsixHandler {
    /// Device index.
    pub device: u16,
    /// Table entry.
    pub entry: u16,
    /// The handler cap in the server's CNode.
    pub slot: CPtr,
    /// Its CPU vector.
    pub vector: u8,
}

/// Slot allocation in the server's CNode, and the per-device kernel objects.
pub(crate) struct Kernel {
    pub(crate) cnode: CPtr,
    next: u64,
    end: u64,
    freed: Vec<u64>,
    untyped: core::ops::Range<CPtr>,
    pub(crate) devices: Vec<(DeviceCaps, IoSpace)>,
    /// A slot for [`Kernel::live`] probes (0 until first needed).
    scratch: u64,
    /// Set while a reset or cutoff frees a domain: its frames may be dead (then each
    /// is checked before it is invoked; ordinary requests skip the check's cost).
    careful: bool,
    /// IO page tables made so far ([`DmaOps::tables_made`]).
    tables: u64,
}

impl Kernel {
    pub(crate) fn slot(&self, index: u64) -> SlotRef {
        SlotRef { root: CNode(self.cnode), index, depth: libcap::cap::FULL_DEPTH }
    }

    pub(crate) fn alloc_slot(&mut self) -> Option<u64> {
        self.freed.pop().or_else(|| {
            (self.next < self.end).then(|| {
                self.next += 1;
                self.next - 1
            })
        })
    }

    pub(crate) fn retype(&mut self, untyped: CPtr, object: ObjectType) -> Option<CPtr> {
        let slot = self.alloc_slot()?;
        match Untyped(untyped).retype(object, 0, CNode(self.cnode), 0, 0, slot, 1) {
            Ok(()) => Some(slot),
            Err(_) => {
                self.freed.push(slot);
                None
            }
        }
    }

    /// An object from the first of the server's own untyped caps with room for it.
    pub(crate) fn retype_own(&mut self, object: ObjectType) -> Option<CPtr> {
        self.untyped.clone().find_map(|u| self.retype(u, object))
    }

    /// Maps `frame` at `iova` in `iospace`, adding IO page tables until the walk ends.
    pub(crate) fn map_in(&mut self, iospace: IoSpace, frame: CPtr, iova: u64, rights: CapRights) -> Result<(), u64> {
        self.map_walk(iospace, iova, || Frame(frame).map_io(iospace, iova, rights))
    }

    /// Runs `map` (a mapping at `iova` in `iospace`) until it no longer fails for want
    /// of an IO page table, making each table it lacks.
    fn map_walk(&mut self, iospace: IoSpace, iova: u64, map: impl Fn() -> libcap::cap::Result<()>) -> Result<(), u64> {
        for _ in 0..4 {
            match map() {
                Err(e) if e.code == SyscallError::FailedLookup => {}
                other => return other.map_err(|e| e.code.raw()),
            }
            let table = self.retype_own(ObjectType::IoPageTable).ok_or(SyscallError::NotEnoughMemory.raw())?;
            self.tables += 1;
            match IoPageTable(table).map(iospace, iova) {
                Ok(()) => {}
                Err(e) if e.code == SyscallError::DeleteFirst => {}
                Err(e) => return Err(e.code.raw()),
            }
        }
        map().map_err(|e| e.code.raw())
    }
}

impl Kernel {
    /// Whether `frame` still holds a cap. Init revokes a driver's whole budget when it
    /// restarts it after a CPU fault, DMA pool and the frames retyped from it included:
    /// invoking such an empty slot would be a cap fault that stops the server, while a
    /// CNode copy of it only fails.
    fn live(&mut self, frame: u64) -> bool {
        if self.scratch == 0 {
            self.scratch = self.alloc_slot().unwrap_or(0);
        }
        let copied =
            self.scratch != 0 && CNode::copy(self.slot(self.scratch), self.slot(frame), CapRights::READ).is_ok();
        if copied {
            let _ = CNode::delete(self.slot(self.scratch));
        }
        copied
    }
}

impl DmaOps for Kernel {
    fn new_frame(&mut self, device: u16) -> Option<u64> {
        let pool = self.devices[usize::from(device)].0.pool;
        self.retype(pool, ObjectType::Frame4K)
    }
    fn map_io(&mut self, device: u16, frame: u64, iova: u64, rights: CapRights) -> Result<(), u64> {
        let iospace = self.devices[usize::from(device)].1;
        self.map_in(iospace, frame, iova, rights)
    }
    fn unmap_io(&mut self, frame: u64) -> Result<(), u64> {
        // A deleted frame has no IO mapping left (the kernel removed it, invalidation
        // completed, when the cap died).
        if self.careful && !self.live(frame) {
            return Ok(());
        }
        Frame(frame).unmap_io().map_err(|e| e.code.raw())
    }
    fn revoke(&mut self, frame: u64) -> Result<(), u64> {
        CNode::revoke(self.slot(frame)).map_err(|e| e.code.raw())
    }
    fn map_placed(&mut self, device: u16, frame: u64, iova: u64, rights: CapRights) -> Result<(), u64> {
        // The driver's cap is never invoked: on an endpoint cap an invocation is an IPC
        // Call (on the server's own endpoint it would wait for ever; attack round 15).
        // MapBatch takes it as an argument and checks it is a 4 KiB RAM frame.
        let iospace = self.devices[usize::from(device)].1;
        self.map_walk(iospace, iova, || iospace.map_batch(iova, rights, &[Frame(frame)]))
    }
    fn tables_made(&self) -> u64 {
        self.tables
    }
}

/// The server state: kernel objects, one [`Domain`] per device, fault reports.
struct Server<'a> {
    config: &'a Config<'a>,
    kernel: Kernel,
    domains: Vec<Domain>,
    /// DMA fault reports waiting for their handlers' `FaultNext`, per device.
    reports: FaultQueues,
    /// DMA faults received per device (for the status page).
    faults: Vec<u64>,
    /// A domain changed since the status page was last written.
    dirty: bool,
    /// The slot a cap sent with a request lands in (0: none free, caps are refused);
    /// a request that keeps the cap takes the slot and a fresh one becomes the inbox.
    inbox: u64,
    /// DMA fault reports waiting for the drivers that asked for them (`FaultWatch`).
    driver_reports: FaultQueues,
}

/// Builds every device's IOSpace and serves requests forever.
pub fn run(config: &Config<'_>) -> ! {
    let mut kernel = Kernel {
        cnode: config.cnode,
        next: config.free_slots.start,
        end: config.free_slots.end,
        freed: Vec::new(),
        untyped: config.untyped.clone(),
        devices: Vec::new(),
        scratch: 0,
        careful: false,
        tables: 0,
    };
    let mut domains = Vec::new();
    for (index, device) in config.devices.iter().enumerate() {
        match build_domain(&mut kernel, config, index, device) {
            Ok(iospace) => kernel.devices.push((*device, iospace)),
            Err(what) => {
                println!("iommu-server: FAIL device {index}: {what}");
                kernel.devices.push((*device, IoSpace(0)));
            }
        }
        let limit = iova_limit(device.dma_mask_bits, config.address_bits).unwrap_or(0);
        println!("iommu-server: device {index}: IOVAs below {limit:#x} (dma mask {} bits)", device.dma_mask_bits);
        domains.push(Domain::new(index as u16, limit));
    }
    if let Some(attempts) = &config.malicious {
        crate::malicious::run(&mut kernel, attempts);
    }
    println!("iommu-server: serving {} devices", config.devices.len());
    let reports = FaultQueues::new(config.devices.len());
    let faults = alloc::vec![0; config.devices.len()];
    let driver_reports = FaultQueues::new(config.devices.len());
    let inbox = kernel.alloc_slot().unwrap_or(0);
    // The probe slot now, while slots are free: without one every frame looks dead.
    kernel.scratch = kernel.alloc_slot().unwrap_or(0);
    // Each device's share of the slots for frames its driver places and the IO page
    // tables they need: half the server's slots, split evenly (attack round 15: one
    // driver placing one frame at many IOVAs used up every slot, and every other
    // driver's DmaAlloc was refused). Buffers are bounded by their pools.
    let share = (config.free_slots.end.saturating_sub(config.free_slots.start)) / 2 / (domains.len().max(1) as u64);
    for domain in &mut domains {
        domain.placed_quota = share;
    }
    let mut server = Server { config, kernel, domains, reports, faults, dirty: true, inbox, driver_reports };
    server.publish();
    server.open_inbox();
    let mut message = ipc::recv(config.endpoint);
    loop {
        let (info, mrs) = match message {
            Ok(m) => {
                let reply = server.handle(m);
                server.empty_inbox(m);
                reply
            }
            Err(_) => (MessageInfo::new(0, 1), [IommuStatus::BadRequest.raw(), 0, 0, 0]),
        };
        server.publish();
        server.open_inbox();
        message = ipc::reply_recv(config.endpoint, info, mrs);
    }
}

/// A new IOSpace for `device`: fault handler (the server's endpoint, badged), then the
/// device assigned (no mapping yet: every DMA faults until a buffer is allocated). An
/// endpoint cap without Write cannot be minted into a fault handler: the server says
/// so and serves without one (the kernel still logs each fault).
fn build_domain(
    kernel: &mut Kernel,
    config: &Config<'_>,
    index: usize,
    device: &DeviceCaps,
) -> Result<IoSpace, &'static str> {
    let iospace = IoSpace(kernel.retype_own(ObjectType::IoSpace).ok_or("retype an IOSpace")?);
    let handler = kernel.alloc_slot().ok_or("no slot")?;
    // Mint masks the rights: from a receive-only cap it makes a cap with no Write, which
    // the kernel refuses as a fault handler.
    let (source, badge) = if config.fault_ntfn != 0 && index < MAX_NOTIFIED_DEVICES {
        (config.fault_ntfn, FAULT_BADGE | 1 << index)
    } else {
        (config.endpoint, FAULT_BADGE + index as u64)
    };
    let minted = CNode::mint(kernel.slot(handler), kernel.slot(source), CapRights::WRITE, badge);
    if minted.is_err() || iospace.set_fault_handler(handler).is_err() {
        let _ = CNode::delete(kernel.slot(handler));
        println!("iommu-server: device {index}: no fault handler cap with Write: DMA faults are not forwarded");
    } else if source == config.fault_ntfn {
        println!("iommu-server: device {index}: DMA faults by notification, records popped with IoSpaceNextFault");
    } else {
        println!("iommu-server: device {index}: DMA faults as messages on the server's endpoint");
    }
    iospace.assign(PciDevice(device.pci)).map_err(|_| "assign the device")?;
    Ok(iospace)
}

/// A reply with status `s` and no cap.
fn status(s: IommuStatus) -> (MessageInfo, [u64; 4]) {
    (MessageInfo::new(0, 1), [s.raw(), 0, 0, 0])
}

/// A reply carrying the cap at `slot` (the caller's receive slot gets a copy).
fn with_cap(slot: CPtr, mrs: [u64; 4]) -> (MessageInfo, [u64; 4]) {
    ipc::set_extra_cap(slot);
    (MessageInfo { label: 0, caps_unwrapped: 0, extra_caps: 1, length: 4 }, mrs)
}

impl Server<'_> {
    /// Writes the status page if a domain changed since the last time (and there is one).
    fn publish(&mut self) {
        let Some(out) = &self.config.status else { return };
        if core::mem::take(&mut self.dirty) {
            let mut views: Vec<crate::status::DeviceView<'_>> = out.views.to_vec();
            for (view, faults) in views.iter_mut().zip(&self.faults) {
                view.faults = *faults;
            }
            out.page.publish(crate::status::render(&views, &self.domains).as_bytes());
        }
    }

    fn handle(&mut self, m: Message) -> (MessageInfo, [u64; 4]) {
        if m.badge & FAULT_BADGE != 0 && m.info.label == FaultKind::DmaFault.raw() {
            let index = (m.badge - FAULT_BADGE) as usize;
            self.fault(index, m.mrs);
            self.drain(index);
            return status(IommuStatus::Ok);
        }
        if m.badge & FAULT_BADGE != 0 && m.info.label == 0 && m.info.length == 0 {
            // The fault notification: one bit per device with queued records.
            for index in (0..MAX_NOTIFIED_DEVICES).filter(|i| m.badge & (1 << i) != 0) {
                self.drain(index);
            }
            return status(IommuStatus::Ok);
        }
        if let Some((device, generation)) = badge_device(m.badge) {
            let current = self.domains.get(usize::from(device)).map(|d| d.generation);
            match current {
                // A newer instance's first request: the old one's records go.
                Some(current) if generation > current => self.new_instance(device, generation),
                // An older instance's cap (one a peer kept alive): it names nothing any
                // more and must not disturb the live instance.
                Some(current) if generation < current => {
                    println!(
                        "iommu-server: device {device}: request of dead driver generation {generation} (live: {current}) refused"
                    );
                    return status(IommuStatus::Denied);
                }
                _ => {}
            }
        }
        let reply = match decode(m.info.label, m.badge, m.mrs, self.domains.len()) {
            // A request that needs a cap must carry exactly one, and no other may carry any.
            Ok(request) if wants_cap(&request) != (m.info.extra_caps == 1) => status(IommuStatus::BadRequest),
            Ok(request) => {
                self.dirty |= matches!(
                    request,
                    Request::DmaAlloc { .. }
                        | Request::DmaFree { .. }
                        | Request::DmaMapFrame { .. }
                        | Request::DmaUnmapFrame { .. }
                        | Request::Reset { .. }
                        | Request::CutOff { .. }
                        | Request::DriverGone { .. }
                );
                self.serve(request).unwrap_or_else(status)
            }
            Err(e) => status(e),
        };
        let fetch = (m.info.label == IommuLabel::FaultNext.raw() || m.info.label == IommuLabel::DriverFaultNext.raw())
            && reply.1[0] == IommuStatus::NotFound.raw();
        if reply.1[0] != IommuStatus::Ok.raw() && !fetch {
            let why = IommuStatus::try_from(reply.1[0]);
            println!("iommu-server: request label {:#x} (badge {:#x}) refused: {why:?}", m.info.label, m.badge);
        }
        reply
    }

    fn serve(&mut self, request: Request) -> Result<(MessageInfo, [u64; 4]), IommuStatus> {
        let ok = IommuStatus::Ok.raw();
        Ok(match request {
            Request::DmaAlloc { device, pages, rights } => {
                let (iova, frame) = self.domains[usize::from(device)].alloc(&mut self.kernel, pages, rights)?;
                with_cap(frame, [ok, iova, pages, 0])
            }
            Request::DmaFrame { device, iova, page } => {
                let frame = self.domains[usize::from(device)].frame(iova, page)?;
                with_cap(frame, [ok, iova + page * PAGE_SIZE, 0, 0])
            }
            Request::DmaFree { device, iova } => {
                let pages = self.domains[usize::from(device)].free(&mut self.kernel, iova)?;
                (MessageInfo::new(0, 2), [ok, pages, 0, 0])
            }
            Request::MsiAlloc { device, index } => self.msi(device, index)?,
            Request::ConfigRead { device, offset, width } => {
                let pci = self.allowed(device, offset, width, true)?;
                let value = pci.config_read(offset, width).map_err(|_| IommuStatus::KernelError)?;
                (MessageInfo::new(0, 2), [ok, value, 0, 0])
            }
            Request::ConfigWrite { device, offset, width, value } => {
                let pci = self.allowed(device, offset, width, false)?;
                let done = if offset == abi::iommu::CONFIG_COMMAND && width == 2 {
                    pci.write_command(value as u16)
                } else {
                    pci.config_write(offset, width, value)
                };
                done.map_err(|e| {
                    println!("iommu-server: device {device}: config write {offset:#x} refused ({:?})", e.code);
                    IommuStatus::KernelError
                })?;
                status(IommuStatus::Ok)
            }
            Request::FaultNext { handler } => {
                let devices = self.config.devices;
                let (report, lost) = self.reports.pop(|d| devices[d].handler == handler);
                let Some(report) = report else {
                    return Ok((MessageInfo::new(0, 4), [IommuStatus::NotFound.raw(), 0, 0, lost]));
                };
                let [packed, iova, lost] = report.encode(lost);
                (MessageInfo::new(0, 4), [ok, packed, iova, lost])
            }
            Request::DmaMapFrame { device, iova, rights } => self.map_frame(device, iova, rights)?,
            Request::DmaUnmapFrame { device, iova } => self.unmap_frame(device, iova)?,
            Request::FaultWatch { device } => self.watch(device)?,
            Request::DriverFaultNext { device } => self.driver_fault_next(device)?,
            Request::DriverGone { mask } => {
                for device in (0..self.domains.len()).filter(|&d| d < 64 && mask & 1 << d != 0) {
                    self.driver_gone(device as u16);
                }
                status(IommuStatus::Ok)
            }
            Request::Reset { device, handler } | Request::CutOff { device, handler } => {
                // Only the device's own fault handler may reset it or cut it off.
                if self.config.devices[usize::from(device)].handler != handler {
                    return Err(IommuStatus::Denied);
                }
                let reset = matches!(request, Request::Reset { .. });
                self.reset(device, reset)?;
                status(IommuStatus::Ok)
            }
        })
    }

    /// The device's PciDevice cap if the driver may touch `offset..offset + width`
    /// (`read`: read it, which also allows the IDs and the capability list).
    fn allowed(&self, device: u16, offset: u64, width: u64, read: bool) -> Result<PciDevice, IommuStatus> {
        let domain = &self.domains[usize::from(device)];
        if domain.cut_off {
            return Err(IommuStatus::CutOff);
        }
        let pci = PciDevice(self.kernel.devices[usize::from(device)].0.pci);
        let msi_cap = pci.find_capability(0x05).ok().flatten();
        if config_allowed(offset, width, msi_cap) || (read && config_read_allowed(offset, width)) {
            Ok(pci)
        } else {
            Err(IommuStatus::Denied)
        }
    }

    /// An MSI for the device, programmed into its MSI capability; the driver gets a
    /// copy of the handler cap to bind to its notification.
    fn msi(&mut self, device: u16, index: u64) -> Result<(MessageInfo, [u64; 4]), IommuStatus> {
        if let Some(h) = self.config.msix.iter().find(|h| h.device == device && u64::from(h.entry) == index) {
            return self.msix(*h);
        }
        if let (Some((handler, msi)), 0) = (self.kernel.devices[usize::from(device)].0.msi, index) {
            if self.domains[usize::from(device)].cut_off {
                return Err(IommuStatus::CutOff);
            }
            let pci = PciDevice(self.kernel.devices[usize::from(device)].0.pci);
            pci.enable_msi(&msi).map_err(|_| IommuStatus::KernelError)?;
            let mrs = [IommuStatus::Ok.raw(), u64::from(msi.vector), msi.address, u64::from(msi.data)];
            return Ok(with_cap(handler, mrs));
        }
        if self.config.irq_control == 0 || index != 0 {
            return Err(IommuStatus::Denied);
        }
        if self.domains[usize::from(device)].cut_off {
            return Err(IommuStatus::CutOff);
        }
        let pci = PciDevice(self.kernel.devices[usize::from(device)].0.pci);
        let slot = self.kernel.alloc_slot().ok_or(IommuStatus::OutOfMemory)?;
        let msi = IrqControl(self.config.irq_control).get_msi(pci, self.kernel.slot(slot)).map_err(|e| {
            println!("iommu-server: device {device}: GetMsi refused ({:?})", e.code);
            IommuStatus::KernelError
        })?;
        pci.enable_msi(&msi).map_err(|_| IommuStatus::KernelError)?;
        Ok(with_cap(slot, [IommuStatus::Ok.raw(), u64::from(msi.vector), msi.address, u64::from(msi.data)]))
    }

    /// An MSI-X entry init made: MSI-X enabled on the device (every entry no cap owns
    /// stays masked; the driver unmasks its own with `IrqHandlerMsixMask`), and the
    /// driver gets the handler cap; the reply is [Ok, vector, 0 (no MSI address), entry].
    fn msix(&mut self, h: MsixHandler) -> Result<(MessageInfo, [u64; 4]), IommuStatus> {
        if self.domains[usize::from(h.device)].cut_off {
            return Err(IommuStatus::CutOff);
        }
        let pci = PciDevice(self.kernel.devices[usize::from(h.device)].0.pci);
        pci.msix_control(abi::pci::MSIX_ENABLE).map_err(|e| {
            println!("iommu-server: device {}: enabling MSI-X refused ({:?})", h.device, e.code);
            IommuStatus::KernelError
        })?;
        Ok(with_cap(h.slot, [IommuStatus::Ok.raw(), u64::from(h.vector), 0, u64::from(h.entry)]))
    }

    /// Unassigns the device, frees every buffer (unmapped, revoked), revokes the pool
    /// (every frame retyped from it dies) and, for a reset, assigns it again.
    fn reset(&mut self, device: u16, reassign: bool) -> Result<(), IommuStatus> {
        let (caps, iospace) = self.kernel.devices[usize::from(device)];
        let _ = iospace.unassign(PciDevice(caps.pci));
        let domain = &mut self.domains[usize::from(device)];
        self.kernel.careful = true;
        let buffers = domain.free_all(&mut self.kernel);
        let placed = domain.unmap_all_client(&mut self.kernel);
        self.kernel.careful = false;
        for &slot in &placed {
            let _ = CNode::delete(self.kernel.slot(slot));
        }
        self.kernel.freed.extend(placed);
        let pool = self.kernel.slot(caps.pool);
        CNode::revoke(pool).map_err(|_| IommuStatus::KernelError)?;
        self.kernel.freed.extend(domain.take_free_frames());
        domain.cut_off = !reassign;
        if reassign {
            iospace.assign(PciDevice(caps.pci)).map_err(|_| IommuStatus::KernelError)?;
        }
        let what = if reassign { "reset" } else { "cut off" };
        println!("iommu-server: device {device} {what}: {buffers} buffers unmapped, pool revoked");
        Ok(())
    }

    /// The first request of driver instance `generation` of `device`: the old
    /// instance's records go (their caps died with its budget: nothing is invoked on
    /// them), their slots are emptied and reused, their IOVAs stay quarantined.
    fn new_instance(&mut self, device: u16, generation: u32) {
        self.dirty = true;
        let domain = &mut self.domains[usize::from(device)];
        let first = domain.generation == 0;
        let (buffers, slots) = domain.new_instance(generation);
        for slot in slots {
            // Empty already (revoked with the old budget); deleting makes sure.
            let _ = CNode::delete(self.kernel.slot(slot));
            self.kernel.freed.push(slot);
        }
        // Nothing to say after a supervisor reset emptied the domain (a restart's path:
        // serial output is most of its cost).
        if !first && buffers > 0 {
            println!(
                "iommu-server: device {device}: driver generation {generation}: dropped {buffers} buffers of the previous instance"
            );
        }
    }

    /// Pops device `index`'s queued fault records (IoSpaceNextFault) until none is left,
    /// reporting each and any the kernel counted lost.
    fn drain(&mut self, index: usize) {
        let Some(&(_, iospace)) = self.kernel.devices.get(index) else { return };
        for _ in 0..=abi::fault::DMA_FAULT_QUEUE {
            let Ok(next) = iospace.next_fault() else { return };
            if let Some(r) = next.record {
                let words = [u64::from(r.requester), u64::from(r.reason), r.iova, u64::from(r.is_write)];
                self.fault(index, words);
            }
            if next.lost > 0 {
                println!("iommu-server: device {index}: {} DMA faults lost (kernel queue full)", next.lost);
            }
        }
    }

    /// Logs a DMA fault of device `index` and forwards it to its fault endpoint.
    fn fault(&mut self, index: usize, [requester, reason, iova, write]: [u64; 4]) {
        let Some(domain) = self.domains.get(index) else { return };
        self.faults[index] += 1;
        self.dirty = true;
        let (bus, dev, func) = (requester >> 8, (requester >> 3) & 0x1f, requester & 7);
        let access = if write != 0 { "write" } else { "read" };
        match domain.locate(iova) {
            None if domain.is_client_frame(iova) => println!(
                "iommu-server: DMA fault: device {index} requester {bus:02x}:{dev:02x}.{func} iova {iova:#x} reason {reason:#x} {access}: in a frame the driver placed"
            ),
            Some((start, page)) => println!(
                "iommu-server: DMA fault: device {index} requester {bus:02x}:{dev:02x}.{func} iova {iova:#x} reason {reason:#x} {access}: in buffer {start:#x} page {page}"
            ),
            None => println!(
                "iommu-server: DMA fault: device {index} requester {bus:02x}:{dev:02x}.{func} iova {iova:#x} reason {reason:#x} {access}: unmapped (guard page, freed buffer or never allocated)"
            ),
        }
        let report = FaultReport {
            device: index as u16,
            requester: requester as u16,
            reason: reason as u8,
            is_write: write != 0,
            iova,
        };
        self.tell_driver(report);
        let doorbell = self.config.devices[index].doorbell;
        if doorbell != 0 {
            // A full queue of this device counts the report lost (told to the handler
            // with its next fetch); other devices' queues are not touched.
            let _ = self.reports.push(report);
            // A signal latches in the handler's bound notification: never lost, never
            // blocking the server.
            let _ = ipc::signal(doorbell);
            return;
        }
        let fault_ep = self.kernel.devices[index].0.fault_ep;
        if fault_ep != 0 {
            let info = MessageInfo::new(IommuLabel::DmaFault.raw(), 4);
            let _ = ipc::nb_send(fault_ep, info, [requester, iova, reason | (write << 8), index as u64]);
        }
    }
}
