//! Client of the iommu-server: DMA buffers, MSIs, config access for a driver.
//!
//! A driver holds a send cap (Write + Grant) to the iommu-server's endpoint, badged
//! with its device (docs/iommu-server.md). [`IommuClient::dma_alloc`] asks for a buffer,
//! receives its frame caps in the reply (one per page, `DmaFrame` for pages after the
//! first) and maps them in the driver's own VSpace; the device uses the returned IOVA.
//! [`IommuClient::dma_free`] gives it back: the server revokes the frames, which
//! removes this driver's caps and CPU mappings too.

use abi::error::SyscallError;
use abi::iommu::{buffer_pages, IommuLabel, IommuStatus};
use abi::layout::PAGE_SIZE;
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;

use crate::cap::{CNode, CPtr, Frame, IrqHandler, Msi, PageTable, Untyped, VSpace, FULL_DEPTH};
use crate::ipc;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IommuError {
    /// The server refused it with this status.
    Status(IommuStatus),
    /// The reply should have carried a cap and did not (the endpoint cap lacks Grant,
    /// or the kernel does not transfer caps on Reply).
    NoCap,
    /// The IPC itself failed.
    Ipc(SyscallError),
    /// The client ran out of slots or virtual space, or mapping failed.
    Space(SyscallError),
}

/// A DMA buffer: the device uses `iova`, the CPU `vaddr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaBuffer {
    /// The address the device puts on the bus (first page).
    pub iova: u64,
    /// Pages of the buffer.
    pub pages: u64,
    /// The frame caps of its pages, one per slot, in this driver's CSpace.
    pub frames: core::ops::Range<CPtr>,
    /// Where the buffer is mapped (read-write) in this driver's VSpace.
    pub vaddr: u64,
}

/// The driver's own resources the client uses to receive and map frames.
#[derive(Clone, Debug)]
pub struct ClientSpace {
    /// The driver's CNode, guarded so that slot `i` is CPtr `i` at depth 64.
    pub cnode: CPtr,
    /// The driver's VSpace.
    pub vspace: VSpace,
    /// Untyped for the page tables mappings need.
    pub untyped: CPtr,
    /// Free slots of `cnode` the client may use.
    pub slots: core::ops::Range<u64>,
    /// Free virtual space the client maps buffers in (page aligned).
    pub vaddrs: core::ops::Range<u64>,
}

/// A driver's connection to the iommu-server.
pub struct IommuClient {
    endpoint: CPtr,
    space: ClientSpace,
}

fn status(word: u64) -> Result<(), IommuError> {
    match IommuStatus::try_from(word) {
        Ok(IommuStatus::Ok) => Ok(()),
        Ok(s) => Err(IommuError::Status(s)),
        Err(_) => Err(IommuError::Status(IommuStatus::BadRequest)),
    }
}

impl IommuClient {
    /// A client calling the server on `endpoint` (a send cap with Grant).
    pub fn new(endpoint: CPtr, space: ClientSpace) -> Self {
        IommuClient { endpoint, space }
    }

    /// The send cap to the server (for requests this client has no method for).
    pub fn endpoint(&self) -> CPtr {
        self.endpoint
    }

    fn call(&self, label: IommuLabel, mrs: [u64; 4]) -> Result<ipc::Message, IommuError> {
        let reply = ipc::call(self.endpoint, MessageInfo::new(label.raw(), 4), mrs).map_err(IommuError::Ipc)?;
        status(reply.mrs[0])?;
        Ok(reply)
    }

    /// A call whose reply carries a cap into `slot`.
    fn call_for_cap(&self, label: IommuLabel, mrs: [u64; 4], slot: u64) -> Result<ipc::Message, IommuError> {
        ipc::set_receive_slot(self.space.cnode, slot, FULL_DEPTH);
        let reply = self.call(label, mrs)?;
        if reply.info.extra_caps != 1 {
            return Err(IommuError::NoCap);
        }
        Ok(reply)
    }

    fn take_slots(&mut self, count: u64) -> Result<u64, IommuError> {
        let first = self.space.slots.start;
        if self.space.slots.end - first < count {
            return Err(IommuError::Space(SyscallError::NotEnoughMemory));
        }
        self.space.slots.start += count;
        Ok(first)
    }

    /// Maps `frame` read-write at `vaddr`, creating page-table levels from the untyped.
    fn map(&mut self, frame: Frame, vaddr: u64) -> Result<(), IommuError> {
        for level in [ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable] {
            match frame.map(self.space.vspace, vaddr, CapRights::ALL, 0) {
                Err(e) if e.code == SyscallError::FailedLookup => {}
                other => return other.map_err(|e| IommuError::Space(e.code)),
            }
            let slot = self.take_slots(1)?;
            Untyped(self.space.untyped)
                .retype(level, 0, CNode(self.space.cnode), 0, 0, slot, 1)
                .map_err(|e| IommuError::Space(e.code))?;
            match PageTable(slot).map(self.space.vspace, vaddr) {
                Ok(()) => {}
                Err(e) if e.code == SyscallError::DeleteFirst => {}
                Err(e) => return Err(IommuError::Space(e.code)),
            }
        }
        frame.map(self.space.vspace, vaddr, CapRights::ALL, 0).map_err(|e| IommuError::Space(e.code))
    }

    /// A buffer of at least `bytes` the device may access with `rights` (READ: the
    /// device reads it, WRITE: the device writes it), mapped read-write for the CPU.
    pub fn dma_alloc(&mut self, bytes: u64, rights: CapRights) -> Result<DmaBuffer, IommuError> {
        let pages = buffer_pages(bytes).ok_or(IommuError::Status(IommuStatus::BadRequest))?;
        let span = pages * PAGE_SIZE;
        if self.space.vaddrs.end - self.space.vaddrs.start < span {
            return Err(IommuError::Space(SyscallError::NotEnoughMemory));
        }
        let first = self.take_slots(pages)?;
        let reply = self.call_for_cap(IommuLabel::DmaAlloc, [bytes, u64::from(rights.raw()), 0, 0], first)?;
        let iova = reply.mrs[1];
        for page in 1..pages {
            self.call_for_cap(IommuLabel::DmaFrame, [iova, page, 0, 0], first + page)?;
        }
        let vaddr = self.space.vaddrs.start;
        for page in 0..pages {
            self.map(Frame(first + page), vaddr + page * PAGE_SIZE)?;
        }
        self.space.vaddrs.start += span;
        Ok(DmaBuffer { iova, pages, frames: first..first + pages, vaddr })
    }

    /// Frees `buffer`: the server unmaps it from the device (invalidation completed)
    /// and revokes its frames, so this driver's caps and CPU mapping are gone too.
    /// Returns the pages freed.
    pub fn dma_free(&mut self, buffer: &DmaBuffer) -> Result<u64, IommuError> {
        let reply = self.call(IommuLabel::DmaFree, [buffer.iova, 0, 0, 0])?;
        // The most recent buffer's slots and virtual space are reused.
        if buffer.frames.end == self.space.slots.start {
            self.space.slots.start = buffer.frames.start;
        }
        if buffer.vaddr + buffer.pages * PAGE_SIZE == self.space.vaddrs.start {
            self.space.vaddrs.start = buffer.vaddr;
        }
        Ok(reply.mrs[1])
    }

    /// The device's MSI (programmed into its MSI capability by the server) and a copy
    /// of its handler cap, to bind to a notification.
    pub fn msi(&mut self) -> Result<(IrqHandler, Msi), IommuError> {
        let slot = self.take_slots(1)?;
        let reply = self.call_for_cap(IommuLabel::MsiAlloc, [0; 4], slot)?;
        let [_, vector, address, data] = reply.mrs;
        Ok((IrqHandler(slot), Msi { vector: vector as u8, address, data: data as u32 }))
    }

    /// Reads the command register or the MSI capability.
    pub fn config_read(&self, offset: u64, width: u64) -> Result<u64, IommuError> {
        self.call(IommuLabel::ConfigRead, [offset, width, 0, 0]).map(|r| r.mrs[1])
    }

    /// Writes the command register (the kernel's bus-mastering rules apply) or the MSI
    /// capability.
    pub fn config_write(&self, offset: u64, width: u64, value: u64) -> Result<(), IommuError> {
        self.call(IommuLabel::ConfigWrite, [offset, width, value, 0]).map(|_| ())
    }

    /// A call carrying `cap` (a copy goes to the server; the endpoint cap needs Grant).
    fn call_with_cap(&self, label: IommuLabel, mrs: [u64; 4], cap: CPtr) -> Result<ipc::Message, IommuError> {
        ipc::set_extra_cap(cap);
        let info = MessageInfo { label: label.raw(), caps_unwrapped: 0, extra_caps: 1, length: 4 };
        let reply = ipc::call(self.endpoint, info, mrs).map_err(IommuError::Ipc)?;
        status(reply.mrs[0])?;
        Ok(reply)
    }

    /// Has the server map a copy of `frame` (a 4 KiB RAM frame this driver holds;
    /// mapped or not) at `iova` for the device, which may access it with `rights`
    /// (READ/WRITE, within the cap's). Any free page-aligned IOVA below the device's
    /// limit, 0 included; `IovaInUse` if a buffer, a guard page, an earlier frame or
    /// the MSI window is there. A VMM mirrors guest memory this way.
    pub fn map_frame(&self, frame: Frame, iova: u64, rights: CapRights) -> Result<(), IommuError> {
        self.call_with_cap(IommuLabel::DmaMapFrame, [iova, u64::from(rights.raw()), 0, 0], frame.0).map(|_| ())
    }

    /// Unmaps the frame [`Self::map_frame`] placed at `iova` (invalidation completed).
    pub fn unmap_frame(&self, iova: u64) -> Result<(), IommuError> {
        self.call(IommuLabel::DmaUnmapFrame, [iova, 0, 0, 0]).map(|_| ())
    }

    /// Asks the server to signal `ntfn` (a notification cap with Write) on each DMA
    /// fault of the device and queue the reports for [`Self::fault_next`].
    pub fn watch_faults(&self, ntfn: CPtr) -> Result<(), IommuError> {
        self.call_with_cap(IommuLabel::FaultWatch, [0; 4], ntfn).map(|_| ())
    }

    /// The oldest DMA fault report queued for this driver (`None`: none queued) and
    /// how many were lost to a full queue since the last fetch.
    pub fn fault_next(&self) -> Result<(Option<abi::iommu::FaultReport>, u64), IommuError> {
        let info = MessageInfo::new(IommuLabel::DriverFaultNext.raw(), 4);
        let reply = ipc::call(self.endpoint, info, [0; 4]).map_err(IommuError::Ipc)?;
        match status(reply.mrs[0]) {
            Ok(()) => Ok((Some(abi::iommu::FaultReport::decode(reply.mrs[1], reply.mrs[2])), reply.mrs[3])),
            Err(IommuError::Status(IommuStatus::NotFound)) => Ok((None, reply.mrs[3])),
            Err(e) => Err(e),
        }
    }
}

/// What [`driver_client`] sets up for a driver component.
pub struct DriverClient {
    /// The connection to the iommu-server.
    pub client: IommuClient,
    /// The device's name (its `IommuClient` entry's).
    pub device: &'static str,
    /// A notification for the device's interrupt: wait on this one...
    pub ntfn: CPtr,
    /// ...and bind the handler to this copy, badged 1 (an unbadged signal leaves the
    /// word 0, which a bounded wait cannot tell from no signal).
    pub badged: CPtr,
    /// The first free slot past the client's range (for the driver's own use).
    pub spare: CPtr,
}

/// The iommu-server client of a driver component: its `IommuClient` cap, 64 KiB of its
/// spare budget retyped for the page tables its mappings need, a notification and its
/// badged copy for the device's interrupt, and `slots` free slots for the client; the
/// client maps buffers in `vaddrs`.
pub fn driver_client(
    info: &'static abi::component::ComponentInfo,
    vaddrs: core::ops::Range<u64>,
    slots: u64,
) -> Result<DriverClient, &'static str> {
    use abi::component::{CapKind, BUDGET_UNTYPED, CNODE, VSPACE};
    let cap =
        info.caps().iter().find(|c| c.kind() == Some(CapKind::IommuClient)).ok_or("no iommu-server client cap")?;
    let used = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(BUDGET_UNTYPED + 6);
    let (untyped, ntfn, badged) = (used + 1, used + 2, used + 3);
    let root = CNode(CNODE);
    (info.budget_untyped.start..info.budget_untyped.end)
        .find(|&u| Untyped(u).retype(ObjectType::Untyped, 16, root, 0, 0, untyped, 1).is_ok())
        .ok_or("no 64 KiB of spare untyped for page tables")?;
    Untyped(untyped)
        .retype(ObjectType::Notification, 0, root, 0, 0, ntfn, 1)
        .map_err(|_| "cannot make a notification")?;
    CNode::mint(root.slot(badged), root.slot(ntfn), CapRights::ALL, 1)
        .map_err(|_| "cannot mint the interrupt badge")?;
    let first = badged + 1;
    let space = ClientSpace { cnode: CNODE, vspace: VSpace(VSPACE), untyped, slots: first..first + slots, vaddrs };
    Ok(DriverClient {
        client: IommuClient::new(cap.slot, space),
        device: cap.name(),
        ntfn,
        badged,
        spare: first + slots,
    })
}
