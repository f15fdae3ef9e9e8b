//! Init's builder: one component's objects from its own budget, then its start.
//!
//! Everything init creates for a component comes out of its budget pieces (child
//! untyped init keeps, so one Revoke of each piece destroys every object of the
//! component): CNode (guarded: CPtrs are small integers), VSpace and page tables,
//! program frames, stack (an unmapped guard page below), IPC buffer, heap, info page,
//! TCB, DMA pools of the devices it drives (handed to the iommu-server) and the
//! untyped left over (its spare, from `abi::component::BUDGET_UNTYPED`). Objects
//! shared by two components (channel endpoints, region frames) are init's.

use alloc::vec::Vec;

use libcap::abi::component::{
    self as comp, CapEntry, CapKind, ComponentInfo, COMPONENT_HEAP_VADDR, COMPONENT_INFO_VADDR,
    COMPONENT_IPC_BUFFER_VADDR, COMPONENT_STACK_TOP,
};
use libcap::abi::error::SyscallError;
use libcap::abi::layout::PAGE_SIZE;
use libcap::abi::object::{ObjectType, UNTYPED_MIN_BITS};
use libcap::abi::registers::UserRegisters;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::SlotAllocator;
use libcap::cap::{CNode, CPtr, Error, Frame, PageTable, Result, SlotRef, Tcb, Untyped, VSpace, ATTR_EXECUTABLE};

use crate::plan::{segment_pages, ComponentPlan};

/// Where init maps a frame for a moment to fill it.
pub const SCRATCH_VADDR: u64 = 0x0000_5f00_0000_0000;

/// Slots of the root CNode hold init's own caps.
pub fn root(index: u64) -> SlotRef {
    CNode(slots::INIT_CNODE).slot(index)
}

/// One budget piece: a child untyped init keeps (the component's parent cap).
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    /// Slot in init's CNode.
    pub cap: CPtr,
    /// log2 size.
    pub bits: u8,
    /// Bytes used (watermark mirror).
    pub used: u64,
}

/// The component's budget: allocates objects first fit, largest piece first.
pub struct Budget {
    /// The pieces, largest first.
    pub pieces: Vec<Piece>,
}

impl Budget {
    /// Creates one object of `ty` in a fresh init slot.
    pub fn alloc(&mut self, slots: &SlotAllocator, ty: ObjectType, size_bits: u64) -> Result<CPtr> {
        let bits = ty.size_bits(size_bits as u32).ok_or(Error { code: SyscallError::RangeError, detail: 1 })?;
        let size = 1u64 << bits;
        for p in self.pieces.iter_mut() {
            let start = p.used.div_ceil(size) * size;
            if start + size > 1u64 << p.bits {
                continue;
            }
            let slot = slots.alloc()?;
            Untyped(p.cap).retype(ty, size_bits, CNode(slots::INIT_CNODE), 0, 0, slot, 1)?;
            p.used = start + size;
            return Ok(slot);
        }
        Err(Error { code: SyscallError::NotEnoughMemory, detail: 0 })
    }

    /// Carves what is left into page-aligned untyped (at most `max`); returns (slot,
    /// bits) of each, largest first.
    pub fn spare(&mut self, slots: &SlotAllocator, max: usize) -> Result<Vec<(CPtr, u8)>> {
        // What is left of each piece, cut into blocks aligned at their size (sizes grow
        // from the watermark, then shrink to the end): keep the `max` largest, so a big
        // remainder is not lost to the small blocks at its start.
        let mut blocks: Vec<(usize, u64, u32)> = Vec::new();
        for (i, p) in self.pieces.iter_mut().enumerate() {
            // Page-aligned chunks only (a TCB may leave the watermark mid-page).
            p.used = p.used.next_multiple_of(1 << 12).min(1u64 << p.bits);
            let (mut at, end) = (p.used, 1u64 << p.bits);
            while end - at >= 1 << UNTYPED_MIN_BITS.max(12) {
                let align = if at == 0 { u32::from(p.bits) } else { at.trailing_zeros() };
                let bits = align.min(63 - (end - at).leading_zeros());
                blocks.push((i, at, bits));
                at += 1u64 << bits;
            }
        }
        blocks.sort_unstable_by_key(|&(i, at, bits)| (core::cmp::Reverse(bits), i, at));
        blocks.truncate(max);
        // Retyped in address order: the kernel aligns each child up from the watermark,
        // which skips exactly the smaller blocks left out before it.
        blocks.sort_unstable_by_key(|&(i, at, _)| (i, at));
        let mut out = Vec::new();
        for (i, at, bits) in blocks {
            let p = &mut self.pieces[i];
            let slot = slots.alloc()?;
            Untyped(p.cap).retype(ObjectType::Untyped, u64::from(bits), CNode(slots::INIT_CNODE), 0, 0, slot, 1)?;
            p.used = at + (1u64 << bits);
            out.push((slot, bits as u8));
        }
        out.sort_unstable_by_key(|&(_, bits)| core::cmp::Reverse(bits));
        Ok(out)
    }
}

/// Maps `frame` at `vaddr` in `vspace`, creating missing table levels from `budget`.
pub fn map_in(
    budget: &mut Budget,
    slots: &SlotAllocator,
    vspace: VSpace,
    frame: Frame,
    vaddr: u64,
    rights: CapRights,
    attributes: u64,
) -> Result<()> {
    for level in [ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable] {
        match frame.map(vspace, vaddr, rights, attributes) {
            Err(Error { code: SyscallError::FailedLookup, .. }) => {}
            other => return other,
        }
        let table = PageTable(budget.alloc(slots, level, 0)?);
        match table.map(vspace, vaddr) {
            Ok(()) | Err(Error { code: SyscallError::DeleteFirst, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    frame.map(vspace, vaddr, rights, attributes)
}

/// Writes `bytes` at `offset` into `frame` through init's scratch mapping.
pub fn fill(frame: Frame, offset: usize, bytes: &[u8]) -> Result<()> {
    frame.map(VSpace(slots::INIT_VSPACE), SCRATCH_VADDR, CapRights::ALL, 0)?;
    // SAFETY: the frame is mapped read-write at SCRATCH_VADDR (one page) until the unmap
    // below; `offset + len` stays inside the page (callers pass page slices); nothing
    // else uses the scratch address.
    unsafe {
        let dst = (SCRATCH_VADDR as *mut u8).add(offset);
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len().min(PAGE_SIZE as usize - offset));
    }
    frame.unmap()
}

/// A component's CSpace seen from init: its guarded CNode cap in init's CNode.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    /// Init slot of the guarded CNode cap.
    pub cnode: CPtr,
    /// Init slot of the TCB.
    pub tcb: Tcb,
}

impl Space {
    /// Slot `index` of the component's CNode.
    pub fn slot(&self, index: u64) -> SlotRef {
        SlotRef { root: CNode(self.cnode), index, depth: 64 }
    }
}

/// What building leaves for the supervisor and for the other components.
pub struct Built {
    /// The component's objects seen from init.
    pub space: Space,
    /// Its info page contents (named caps appended by the system builder).
    pub info: ComponentInfo,
    /// The info frame (init slot), rewritten once the named caps are known.
    pub info_frame: Frame,
    /// Next free named slot in its CNode.
    pub next_slot: u64,
    /// Bytes of spare untyped given.
    pub spare_bytes: u64,
    /// Init slots of region frame copies mapped in its VSpace (deleted on teardown).
    pub extra: Vec<CPtr>,
}

/// One shared region as a component maps it.
pub struct RegionMapping<'a> {
    /// Init's frame caps of the region, in order.
    pub frames: &'a [CPtr],
    /// Where.
    pub vaddr: u64,
    /// READ, or READ + WRITE.
    pub rights: CapRights,
}

/// Builds the component's CSpace, VSpace and TCB from `budget`; the named caps and
/// start come later. `pools` untyped (log2 sizes) are retyped first (largest objects
/// first: the budget then packs without waste) and returned as init slots.
pub fn build(
    plan: &ComponentPlan<'_>,
    budget: &mut Budget,
    slots: &SlotAllocator,
    generation: u32,
    pools: &[u32],
    maps: &[RegionMapping<'_>],
    fault_ep: CPtr,
) -> Result<(Built, Vec<CPtr>)> {
    let rec = &plan.rec;
    let radix = u64::from(rec.cnode_radix);
    let cnode_bits = ObjectType::CNode.size_bits(radix as u32).unwrap_or(0);
    let cnode_big = cnode_bits >= 12;
    // Largest objects first: pools and a page-sized or bigger CNode, by size.
    let mut pool_caps = alloc::vec![0; pools.len()];
    let mut order: Vec<(u32, Option<usize>)> = pools.iter().enumerate().map(|(i, &b)| (b, Some(i))).collect();
    if cnode_big {
        order.push((cnode_bits, None));
    }
    order.sort_unstable_by_key(|b| core::cmp::Reverse(b.0));
    let mut cnode_raw = None;
    for (bits, pool) in order {
        match pool {
            Some(i) => pool_caps[i] = budget.alloc(slots, ObjectType::Untyped, u64::from(bits))?,
            None => cnode_raw = Some(budget.alloc(slots, ObjectType::CNode, radix)?),
        }
    }
    let vspace = VSpace(budget.alloc(slots, ObjectType::Pml4, 0)?);
    // Program pages: one frame each, filled from the file, mapped with the union of
    // the rights of the segments that touch it.
    let pages = segment_pages(&plan.segments);
    for &page in &pages {
        let frame = Frame(budget.alloc(slots, ObjectType::Frame4K, 0)?);
        let (mut write, mut exec) = (false, false);
        for s in plan.segments.iter().filter(|s| s.vaddr < page + PAGE_SIZE && page < s.vaddr + s.mem) {
            write |= s.write;
            exec |= s.exec;
            // File bytes of this segment inside this page.
            let lo = s.vaddr.max(page);
            let hi = (s.vaddr + s.file).min(page + PAGE_SIZE);
            if lo < hi {
                let off = (s.offset + (lo - s.vaddr)) as usize;
                fill(frame, (lo - page) as usize, &plan.elf[off..off + (hi - lo) as usize])?;
            }
        }
        let rights = if write { CapRights::ALL } else { CapRights::READ };
        map_in(budget, slots, vspace, frame, page, rights, if exec { ATTR_EXECUTABLE } else { 0 })?;
    }
    // Stack (the page below it stays unmapped: the guard), IPC buffer, heap, info page.
    let stack = u64::from(rec.stack_bytes).max(PAGE_SIZE).div_ceil(PAGE_SIZE);
    for i in 1..=stack {
        let frame = Frame(budget.alloc(slots, ObjectType::Frame4K, 0)?);
        map_in(budget, slots, vspace, frame, COMPONENT_STACK_TOP - i * PAGE_SIZE, CapRights::ALL, 0)?;
    }
    let ipc = Frame(budget.alloc(slots, ObjectType::Frame4K, 0)?);
    map_in(budget, slots, vspace, ipc, COMPONENT_IPC_BUFFER_VADDR, CapRights::ALL, 0)?;
    let heap = u64::from(rec.heap_bytes).div_ceil(PAGE_SIZE);
    for i in 0..heap {
        let frame = Frame(budget.alloc(slots, ObjectType::Frame4K, 0)?);
        map_in(budget, slots, vspace, frame, COMPONENT_HEAP_VADDR + i * PAGE_SIZE, CapRights::ALL, 0)?;
    }
    // Shared regions: a copy of each init frame cap per page (init keeps the copies).
    let mut extra = Vec::new();
    for m in maps {
        for (p, &frame) in m.frames.iter().enumerate() {
            let copy = slots.alloc()?;
            CNode::copy(root(copy), root(frame), m.rights)?;
            map_in(budget, slots, vspace, Frame(copy), m.vaddr + p as u64 * PAGE_SIZE, m.rights, 0)?;
            extra.push(copy);
        }
    }
    let info_mapped = Frame(budget.alloc(slots, ObjectType::Frame4K, 0)?);
    map_in(budget, slots, vspace, info_mapped, COMPONENT_INFO_VADDR, CapRights::READ, 0)?;
    // A second cap to the page: init maps it at its scratch address to write the page.
    let info_frame = Frame(slots.alloc()?);
    CNode::copy(root(info_frame.0), root(info_mapped.0), CapRights::ALL)?;
    let tcb = Tcb(budget.alloc(slots, ObjectType::Tcb, 0)?);
    if cnode_raw.is_none() {
        cnode_raw = Some(budget.alloc(slots, ObjectType::CNode, radix)?);
    }
    let cnode_raw = cnode_raw.unwrap_or(0);
    // The guarded cap: guard 0 of 64 - radix bits, so CPtrs are the slot numbers.
    let cnode = slots.alloc()?;
    CNode::mint(root(cnode), root(cnode_raw), CapRights::ALL, 64 - radix)?;
    let space = Space { cnode, tcb };
    CNode::copy(space.slot(comp::TCB), root(tcb.0), CapRights::ALL)?;
    CNode::copy(space.slot(comp::CNODE), root(cnode), CapRights::ALL)?;
    CNode::copy(space.slot(comp::IPC_BUFFER), root(ipc.0), CapRights::ALL)?;
    CNode::copy(space.slot(comp::DEBUG_CONSOLE), root(slots::DEBUG_CONSOLE), CapRights::READ.union(CapRights::WRITE))?;
    CNode::mint(space.slot(comp::FAULT_EP), root(fault_ep), CapRights::WRITE, u64::from(plan.index))?;
    // What is left of the budget: the component's own untyped.
    let max = (comp::FIRST_NAMED - comp::BUDGET_UNTYPED) as usize;
    let spare = budget.spare(slots, max)?;
    let mut spare_bytes = 0;
    for (i, &(slot, bits)) in spare.iter().enumerate() {
        CNode::move_cap(space.slot(comp::BUDGET_UNTYPED + i as u64), root(slot))?;
        spare_bytes += 1u64 << bits;
    }
    let mut info = ComponentInfo::new(plan.name, plan.index, generation);
    info.budget_untyped.start = comp::BUDGET_UNTYPED;
    info.budget_untyped.end = comp::BUDGET_UNTYPED + spare.len() as u64;
    info.budget_bytes = spare_bytes;
    info.cnode_radix = radix;
    info.heap_vaddr = COMPONENT_HEAP_VADDR;
    info.heap_bytes = heap * PAGE_SIZE;
    info.stack_top = COMPONENT_STACK_TOP;
    info.stack_bytes = stack * PAGE_SIZE;
    tcb.configure(comp::FAULT_EP, CNode(cnode), vspace, COMPONENT_IPC_BUFFER_VADDR, ipc)?;
    let regs = UserRegisters {
        rip: plan.entry,
        rsp: COMPONENT_STACK_TOP,
        rflags: 0x202,
        rdi: COMPONENT_INFO_VADDR,
        ..Default::default()
    };
    tcb.write_registers(false, &regs)?;
    // Everything is mapped: the VSpace cap (a page-table cap: never copied) moves to
    // the component, which maps frames of its own untyped with it.
    CNode::move_cap(space.slot(comp::VSPACE), root(vspace.0))?;
    tcb.set_mcp(Tcb(slots::INIT_TCB), rec.mcp)?;
    tcb.set_priority(Tcb(slots::INIT_TCB), rec.priority)?;
    let built = Built { space, info, info_frame, next_slot: comp::FIRST_NAMED, spare_bytes, extra };
    Ok((built, pool_caps))
}

/// Gives the component a named cap: `src` (init slot) copied or minted into its next
/// named slot, listed in its info page. `badge` 0 copies.
pub fn give(built: &mut Built, src: CPtr, mut entry: CapEntry, rights: CapRights, badge: u64) -> Result<()> {
    let slot = built.next_slot;
    if badge != 0 {
        CNode::mint(built.space.slot(slot), root(src), rights, badge)?;
    } else {
        CNode::copy(built.space.slot(slot), root(src), rights)?;
    }
    built.next_slot += 1;
    entry.slot = slot;
    entry.rights = rights.raw();
    built.info.push(entry).map_err(|_| Error { code: SyscallError::RangeError, detail: 0 })
}

/// Moves `src` (init slot; untyped caps are never copied) into the next named slot.
pub fn give_moved(built: &mut Built, src: CPtr, mut entry: CapEntry) -> Result<()> {
    let slot = built.next_slot;
    CNode::move_cap(built.space.slot(slot), root(src))?;
    built.next_slot += 1;
    entry.slot = slot;
    built.info.push(entry).map_err(|_| Error { code: SyscallError::RangeError, detail: 0 })
}

/// Lists a cap that lives in no slot of the component (a mapped region).
pub fn list(built: &mut Built, entry: CapEntry) -> Result<()> {
    built.info.push(entry).map_err(|_| Error { code: SyscallError::RangeError, detail: 0 })
}

/// Writes the info page and lets the component run.
pub fn start(built: &Built) -> Result<()> {
    fill(built.info_frame, 0, built.info.as_bytes())?;
    built.space.tcb.resume()
}

/// The kind name for summaries.
pub fn kind_name(k: CapKind) -> &'static str {
    match k {
        CapKind::Endpoint => "ep",
        CapKind::Notification => "ntfn",
        CapKind::Region => "region",
        CapKind::PciDevice => "device",
        CapKind::DeviceFrame => "bar",
        CapKind::IoPort => "ports",
        CapKind::IommuClient => "dma via iommu-server",
        CapKind::Untyped => "dma pool",
        CapKind::Msi => "msi",
        CapKind::Msix => "msi-x",
        CapKind::FaultDoorbell => "fault doorbell",
        CapKind::IrqLine => "irq",
        CapKind::Supervisor => "supervisor",
        CapKind::FaultSource => "faults of",
        CapKind::Peer => "peer",
        CapKind::FilterRule => "rule for",
    }
}
