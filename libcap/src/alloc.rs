//! Allocators over the root task's bootinfo: slots, objects, VSpace mappings.
//!
//! Allocators over the root task's bootinfo: free CSpace slots, objects from untyped
//! memory, and a VSpace helper that maps frames, creating missing page-table levels.

use abi::bootinfo::BootInfo;
use abi::error::SyscallError;
use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;

use crate::cap::{CNode, CPtr, Error, Frame, PageTable, Result, Untyped, VSpace};

/// Hands out empty slots of the root CNode, lowest first.
pub struct SlotAllocator {
    next: core::cell::Cell<u64>,
    end: u64,
}

impl SlotAllocator {
    /// Allocates from the bootinfo's empty region.
    pub fn new(bi: &BootInfo) -> Self {
        SlotAllocator { next: core::cell::Cell::new(bi.empty.start), end: bi.empty.end }
    }
    /// Allocates from `range` alone (a window a caller reuses, such as the slots one
    /// component's rebuild takes again after its teardown emptied them).
    pub fn window(range: core::ops::Range<u64>) -> Self {
        SlotAllocator { next: core::cell::Cell::new(range.start), end: range.end }
    }
    /// The next slot [`Self::alloc`] would hand out.
    pub fn peek(&self) -> u64 {
        self.next.get()
    }
    /// One free slot.
    pub fn alloc(&self) -> Result<CPtr> {
        self.alloc_range(1)
    }
    /// `count` consecutive free slots; returns the first.
    pub fn alloc_range(&self, count: u64) -> Result<CPtr> {
        let next = self.next.get();
        if self.end - next < count {
            return Err(Error { code: SyscallError::NotEnoughMemory, detail: count });
        }
        self.next.set(next + count);
        Ok(next)
    }
}

/// How many untyped (in bootinfo order, RAM first) [`ObjectAllocator`] retypes from.
pub const TRACKED_UNTYPED: usize = 256;

/// Retypes objects from the RAM untyped caps in bootinfo, first fit; or, for a
/// component, from its budget untyped caps.
pub struct ObjectAllocator<'a> {
    bi: Option<&'a BootInfo>,
    /// A component's budget untyped caps (used when `bi` is `None`), tried in order.
    budget: core::ops::Range<CPtr>,
    /// Bytes used of each untyped, by bootinfo index (a local mirror of the watermark);
    /// untyped beyond the first [`TRACKED_UNTYPED`] are not used.
    used: [u64; TRACKED_UNTYPED],
}

impl<'a> ObjectAllocator<'a> {
    /// An allocator over `bi`'s untyped list.
    pub fn new(bi: &'a BootInfo) -> Self {
        ObjectAllocator { bi: Some(bi), budget: 0..0, used: [0; TRACKED_UNTYPED] }
    }

    /// An allocator over a component's budget untyped caps (`ComponentInfo::
    /// budget_untyped`), tried in order; the kernel's watermark of each decides where
    /// an object goes, and a full one is skipped.
    pub fn budget(untyped: core::ops::Range<CPtr>) -> ObjectAllocator<'static> {
        ObjectAllocator { bi: None, budget: untyped, used: [0; TRACKED_UNTYPED] }
    }

    /// Creates one object of `object_type` in a fresh slot from `slots`.
    pub fn alloc(&mut self, slots: &SlotAllocator, object_type: ObjectType, size_bits: u64) -> Result<CPtr> {
        self.alloc_from(slots, object_type, size_bits, false)
    }

    /// As [`ObjectAllocator::alloc`], but from the highest-addressed untyped that fits
    /// (init carves component budgets there: DMA pools then lie above 4 GiB when the
    /// machine has RAM there, and low memory stays for what needs it).
    pub fn alloc_high(&mut self, slots: &SlotAllocator, object_type: ObjectType, size_bits: u64) -> Result<CPtr> {
        self.alloc_from(slots, object_type, size_bits, true)
    }

    fn alloc_from(
        &mut self,
        slots: &SlotAllocator,
        object_type: ObjectType,
        size_bits: u64,
        high: bool,
    ) -> Result<CPtr> {
        let bits =
            object_type.size_bits(size_bits as u32).ok_or(Error { code: SyscallError::RangeError, detail: 1 })?;
        let slot = slots.alloc()?;
        let Some(bi) = self.bi else {
            for untyped in self.budget.clone() {
                match Untyped(untyped).retype(object_type, size_bits, CNode(slots::INIT_CNODE), 0, 0, slot, 1) {
                    Err(Error { code: SyscallError::NotEnoughMemory, .. }) => {}
                    other => return other.map(|()| slot),
                }
            }
            return Err(Error { code: SyscallError::NotEnoughMemory, detail: 0 });
        };
        let size = 1u64 << bits;
        let mut order: [usize; TRACKED_UNTYPED] = core::array::from_fn(|i| i);
        let count = bi.untyped().len().min(TRACKED_UNTYPED);
        if high {
            order[..count].sort_unstable_by_key(|&i| core::cmp::Reverse(bi.untyped()[i].paddr));
        }
        for &i in &order[..count] {
            let u = &bi.untyped()[i];
            if u.is_device != 0 || u32::from(u.size_bits) < bits {
                continue;
            }
            let start = self.used[i].div_ceil(size) * size;
            if start + size > 1u64 << u.size_bits {
                continue;
            }
            let untyped = Untyped(bi.untyped_caps.start + i as u64);
            untyped.retype(object_type, size_bits, CNode(slots::INIT_CNODE), 0, 0, slot, 1)?;
            self.used[i] = start + size;
            return Ok(slot);
        }
        Err(Error { code: SyscallError::NotEnoughMemory, detail: 0 })
    }
}

/// Maps `frame` at `vaddr` in the root VSpace, creating PDPT/PD/PT levels as needed.
pub fn map_frame(
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    frame: Frame,
    vaddr: u64,
    rights: CapRights,
    attributes: u64,
) -> Result<()> {
    map_frame_in(objects, slots, VSpace(slots::INIT_VSPACE), frame, vaddr, rights, attributes)
}

/// Maps `frame` at `vaddr` in `vspace`, creating PDPT/PD/PT levels as needed.
pub fn map_frame_in(
    objects: &mut ObjectAllocator<'_>,
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
        let table = PageTable(objects.alloc(slots, level, 0)?);
        match table.map(vspace, vaddr) {
            Ok(()) | Err(Error { code: SyscallError::DeleteFirst, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    frame.map(vspace, vaddr, rights, attributes)
}
