//! Virtual memory objects: mapping frames and page tables into a VSpace.
//!
//! Virtual memory objects: mapping frames and page-table levels into a VSpace (PML4).
//! The caller supplies every paging level: a missing level is a lookup failure, as in
//! seL4, so the kernel never allocates on the user's behalf.

use abi::error::SyscallError;
use abi::layout::is_user_range;
use abi::rights::CapRights;

use super::cap::{Cap, FrameSize, MapKind, Mapping};
use crate::object::paging::{index, PteFlags, TableMemory, ADDR_MASK};

/// Map attribute: allow instruction fetch.
pub const ATTR_EXECUTABLE: u64 = 1 << 0;
/// Map attribute: uncached (device registers).
pub const ATTR_UNCACHED: u64 = 1 << 1;
/// Map attribute: write-combining (mapped as uncached until PAT is programmed).
pub const ATTR_WRITE_COMBINING: u64 = 1 << 2;
const ATTR_ALL: u64 = ATTR_EXECUTABLE | ATTR_UNCACHED | ATTR_WRITE_COMBINING;

/// Where a mapping's entry lives: table frame and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySlot {
    /// Physical address of the table.
    pub table: u64,
    /// Entry index.
    pub index: usize,
}

/// A checked map operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapPlan {
    /// Entry to write.
    pub slot: EntrySlot,
    /// Value to write.
    pub entry: u64,
    /// The cap after mapping.
    pub cap: Cap,
    /// The entry replaces this cap's own mapping (the TLB entry must be flushed).
    pub remap: bool,
}

/// The kind of space a Map names: what addresses it may map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpaceKind {
    /// A VSpace: the user half, without its first and last pages.
    Cpu,
    /// A GuestSpace: guest-physical addresses from 0 up to [`GUEST_PHYS_END`]. Its
    /// root has no kernel half, so nothing else is reachable through it.
    Guest,
}

/// Guest-physical addresses a GuestSpace maps: the lower half of a 4-level table (its
/// upper half stays empty).
pub const GUEST_PHYS_END: u64 = abi::layout::USER_END;

impl SpaceKind {
    fn allows(self, addr: u64, bytes: u64) -> bool {
        match self {
            SpaceKind::Cpu => is_user_range(addr, bytes) && addr + bytes <= abi::layout::USER_MAP_END,
            SpaceKind::Guest => addr.checked_add(bytes).is_some_and(|end| end <= GUEST_PHYS_END),
        }
    }
    fn allows_table(self, addr: u64, end: u64) -> bool {
        match self {
            SpaceKind::Cpu => is_user_range(addr, 1) && end <= abi::layout::USER_END,
            SpaceKind::Guest => end <= GUEST_PHYS_END,
        }
    }
}

/// The root and kind of the space cap a Map names.
fn space_of(cap: &Cap) -> Result<(u64, SpaceKind), SyscallError> {
    match *cap {
        Cap::VSpace { paddr } => Ok((paddr, SpaceKind::Cpu)),
        Cap::GuestSpace { paddr } => Ok((paddr, SpaceKind::Guest)),
        _ => Err(SyscallError::InvalidCapability),
    }
}

/// Walks from `root` down to the table holding level-`level` entries for `vaddr`
/// (level 0 = PT entries). Every table on the way must be present and not a huge leaf.
fn walk_to(mem: &impl TableMemory, root: u64, vaddr: u64, level: usize) -> Result<EntrySlot, SyscallError> {
    let mut table = root;
    for l in (level + 1..=3).rev() {
        let entry = mem.read(table, index(vaddr, l));
        if entry & PteFlags::PRESENT.bits() == 0 || entry & PteFlags::HUGE.bits() != 0 {
            return Err(SyscallError::FailedLookup);
        }
        table = entry & ADDR_MASK;
    }
    Ok(EntrySlot { table, index: index(vaddr, level) })
}

/// Checks Frame::Map(vspace, vaddr, rights, attributes). The requested rights must be
/// a subset of the cap's (asking for more is `InsufficientRights`, not silently less).
pub fn decode_frame_map(
    mem: &impl TableMemory,
    frame: &Cap,
    vspace: &Cap,
    vaddr: u64,
    rights: CapRights,
    attributes: u64,
) -> Result<MapPlan, SyscallError> {
    let Cap::Frame { paddr, size, rights: cap_rights, is_device, mapping } = *frame else {
        return Err(SyscallError::InvalidCapability);
    };
    let (root, space) = space_of(vspace)?;
    // Mapping again at the same place is Remap (new rights/attributes); anywhere else
    // a mapped cap must be unmapped first.
    let remap = match mapping {
        Some(m) if m.kind == MapKind::Cpu && m.vspace == root && m.vaddr == vaddr => true,
        Some(_) => return Err(SyscallError::IllegalOperation),
        None => false,
    };
    let bytes = 1u64 << size.bits();
    if !vaddr.is_multiple_of(bytes) {
        return Err(SyscallError::AlignmentError);
    }
    if !space.allows(vaddr, bytes) {
        return Err(SyscallError::InvalidArgument);
    }
    if attributes & !ATTR_ALL != 0 {
        return Err(SyscallError::InvalidArgument);
    }
    // Only READ and WRITE mean anything for a mapping; GRANT bits are ignored.
    let rights = rights.intersect(CapRights::READ.union(CapRights::WRITE));
    if !cap_rights.contains(rights) {
        return Err(SyscallError::InsufficientRights);
    }
    if !rights.contains(CapRights::READ) {
        // x86 pages are always readable when present: no write-only or no-access maps.
        return Err(SyscallError::InvalidArgument);
    }
    let slot = walk_to(mem, root, vaddr, size.cpu_level())?;
    let existing = mem.read(slot.table, slot.index);
    let ours = existing & PteFlags::PRESENT.bits() != 0 && existing & ADDR_MASK == paddr;
    if remap && !ours {
        // The tables changed under the mapping (its table was unmapped): stale cap.
        return Err(SyscallError::IllegalOperation);
    }
    if !remap && existing & PteFlags::PRESENT.bits() != 0 {
        return Err(SyscallError::DeleteFirst);
    }
    let mut flags = PteFlags::PRESENT | PteFlags::USER;
    if rights.contains(CapRights::WRITE) {
        flags |= PteFlags::WRITABLE;
    }
    if attributes & ATTR_EXECUTABLE == 0 {
        flags |= PteFlags::NO_EXECUTE;
    }
    if is_device || attributes & (ATTR_UNCACHED | ATTR_WRITE_COMBINING) != 0 {
        flags |= PteFlags::CACHE_DISABLE | PteFlags::WRITE_THROUGH;
    }
    if size != FrameSize::Small {
        flags |= PteFlags::HUGE;
    }
    let cap = Cap::Frame {
        paddr,
        size,
        rights: cap_rights,
        is_device,
        mapping: Some(Mapping { vspace: root, vaddr, kind: MapKind::Cpu }),
    };
    Ok(MapPlan { slot, entry: paddr | flags.bits(), cap, remap })
}

/// Checks PageTable::Map(vspace, vaddr) for a level-`n` table (1 PT, 2 PD, 3 PDPT).
pub fn decode_table_map(
    mem: &impl TableMemory,
    table: &Cap,
    vspace: &Cap,
    vaddr: u64,
) -> Result<MapPlan, SyscallError> {
    let Cap::PageTable { paddr, level, mapping } = *table else {
        return Err(SyscallError::InvalidCapability);
    };
    let (root, space) = space_of(vspace)?;
    if mapping.is_some() {
        return Err(SyscallError::IllegalOperation);
    }
    if !(1..=3).contains(&level) {
        return Err(SyscallError::InvalidCapability);
    }
    let span = 1u64 << (12 + 9 * u32::from(level));
    let base = vaddr & !(span - 1);
    // The table may cover the unmapped first pages, but never kernel space (nor, in a
    // GuestSpace, the upper half: a span ending at 2^64 must not wrap to 0).
    let Some(end) = base.checked_add(span) else {
        return Err(SyscallError::InvalidArgument);
    };
    if !space.allows_table(vaddr, end) {
        return Err(SyscallError::InvalidArgument);
    }
    let slot = walk_to(mem, root, base, usize::from(level))?;
    if mem.read(slot.table, slot.index) & PteFlags::PRESENT.bits() != 0 {
        return Err(SyscallError::DeleteFirst);
    }
    let entry = paddr | (PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER).bits();
    Ok(MapPlan {
        slot,
        entry,
        cap: Cap::PageTable { paddr, level, mapping: Some(Mapping { vspace: root, vaddr: base, kind: MapKind::Cpu }) },
        remap: false,
    })
}

/// Writes a checked mapping.
pub fn invoke_map(mem: &mut impl TableMemory, plan: &MapPlan) {
    mem.write(plan.slot.table, plan.slot.index, plan.entry);
}

/// Removes the VSpace mapping a frame or table cap made, if its entry still points at
/// the cap's object (the tables may have changed since). Returns the unmapped cap and
/// the virtual address to flush, or `None` if nothing was mapped in a VSpace. An IO
/// mapping is not this function's to remove (`iospace::unmap` clears its entry and
/// invalidates the IOTLB): it is left, record and all.
pub fn unmap(mem: &mut impl TableMemory, cap: &Cap) -> Option<(Cap, u64)> {
    let (paddr, level, mapping) = match *cap {
        Cap::Frame { paddr, size, mapping: Some(m), .. } if m.kind == MapKind::Cpu => (paddr, size.cpu_level(), m),
        Cap::PageTable { paddr, level, mapping: Some(m) } if m.kind == MapKind::Cpu => (paddr, usize::from(level), m),
        _ => return None,
    };
    // A dead VSpace's root page may be anything now: never walk it.
    let walk =
        if mem.is_live_vspace(mapping.vspace) { walk_to(mem, mapping.vspace, mapping.vaddr, level).ok() } else { None };
    if let Some(slot) = walk {
        let entry = mem.read(slot.table, slot.index);
        if entry & PteFlags::PRESENT.bits() != 0 && entry & ADDR_MASK == paddr {
            mem.write(slot.table, slot.index, 0);
        }
    }
    if let Cap::PageTable { .. } = *cap {
        // As seL4 does: an unmapped table is emptied. Otherwise it could be mapped
        // elsewhere with its old entries, reaching frames whose caps still record the old
        // place, so unmapping them there would leave them mapped here, and they could be
        // freed and reused by the kernel while user level still reaches them.
        mem.clear_table(paddr);
    }
    let unmapped = match *cap {
        Cap::Frame { paddr, size, rights, is_device, .. } => {
            Cap::Frame { paddr, size, rights, is_device, mapping: None }
        }
        Cap::PageTable { paddr, level, .. } => Cap::PageTable { paddr, level, mapping: None },
        other => other,
    };
    Some((unmapped, mapping.vaddr))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Tables(HashMap<(u64, usize), u64>, Option<u64>);
    impl TableMemory for Tables {
        fn is_live_vspace(&self, root: u64) -> bool {
            self.1 != Some(root)
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            *self.0.get(&(table, index)).unwrap_or(&0)
        }
        fn write(&mut self, table: u64, index: usize, value: u64) {
            self.0.insert((table, index), value);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            None
        }
    }

    const ROOT: u64 = 0x1000;
    fn vs() -> Cap {
        Cap::VSpace { paddr: ROOT }
    }
    fn table(paddr: u64, level: u8) -> Cap {
        Cap::PageTable { paddr, level, mapping: None }
    }
    fn frame(paddr: u64) -> Cap {
        Cap::Frame {
            paddr,
            size: FrameSize::Small,
            rights: CapRights::READ.union(CapRights::WRITE),
            is_device: false,
            mapping: None,
        }
    }

    #[test]
    fn map_needs_every_level_then_unmap() {
        let mut t = Tables::default();
        let v = 0x40_0000;
        let rw = CapRights::READ.union(CapRights::WRITE);
        assert_eq!(decode_frame_map(&t, &frame(0x9000), &vs(), v, rw, 0), Err(SyscallError::FailedLookup));
        for (paddr, level) in [(0x2000, 3), (0x3000, 2), (0x4000, 1)] {
            let plan = decode_table_map(&t, &table(paddr, level), &vs(), v).unwrap();
            invoke_map(&mut t, &plan);
        }
        assert_eq!(decode_table_map(&t, &table(0x5000, 1), &vs(), v), Err(SyscallError::DeleteFirst));
        let plan = decode_frame_map(&t, &frame(0x9000), &vs(), v, rw, 0).unwrap();
        invoke_map(&mut t, &plan);
        let tr = crate::object::paging::translate(&t, ROOT, v + 8).unwrap();
        assert_eq!(tr.paddr, 0x9008);
        assert!(tr.flags.contains(PteFlags::WRITABLE | PteFlags::USER | PteFlags::NO_EXECUTE));
        assert_eq!(decode_frame_map(&t, &frame(0xa000), &vs(), v, rw, 0), Err(SyscallError::DeleteFirst));
        assert_eq!(decode_frame_map(&t, &plan.cap, &vs(), v + 0x1000, rw, 0), Err(SyscallError::IllegalOperation));
        // Remap at the same address: read-only now.
        let re = decode_frame_map(&t, &plan.cap, &vs(), v, CapRights::READ, 0).unwrap();
        assert!(re.remap);
        invoke_map(&mut t, &re);
        assert!(!crate::object::paging::translate(&t, ROOT, v).unwrap().flags.contains(PteFlags::WRITABLE));
        let (unmapped, at) = unmap(&mut t, &plan.cap).unwrap();
        assert_eq!(at, v);
        assert_eq!(unmapped, frame(0x9000));
        assert_eq!(crate::object::paging::translate(&t, ROOT, v), None);
    }

    #[test]
    fn an_unmapped_table_is_emptied() {
        let mut t = Tables::default();
        let (v, elsewhere) = (0x40_0000, 0x80_0000);
        let mut caps = [table(0x2000, 3), table(0x3000, 2), table(0x4000, 1)];
        for c in caps.iter_mut() {
            let plan = decode_table_map(&t, c, &vs(), v).unwrap();
            invoke_map(&mut t, &plan);
            *c = plan.cap;
        }
        let plan = decode_frame_map(&t, &frame(0x9000), &vs(), v, CapRights::READ, 0).unwrap();
        invoke_map(&mut t, &plan);
        let (unmapped, _) = unmap(&mut t, &caps[2]).unwrap();
        assert!((0..512).all(|i| t.read(0x4000, i) == 0), "no entry survives the unmap");
        // Mapped again elsewhere, the table does not bring the frame along.
        let again = decode_table_map(&t, &unmapped, &vs(), elsewhere).unwrap();
        invoke_map(&mut t, &again);
        assert_eq!(crate::object::paging::translate(&t, ROOT, elsewhere), None);
    }

    /// Tables with the three levels below `ROOT` mapped for 0x40_0000 and the 4 KiB
    /// frame at 0x9000 mapped read-only there: (tables, vaddr, the frame's map plan).
    fn frame_mapped_below_tables() -> (Tables, u64, MapPlan) {
        let mut t = Tables::default();
        let v = 0x40_0000;
        for (paddr, level) in [(0x2000, 3), (0x3000, 2), (0x4000, 1)] {
            let plan = decode_table_map(&t, &table(paddr, level), &vs(), v).unwrap();
            invoke_map(&mut t, &plan);
        }
        let plan = decode_frame_map(&t, &frame(0x9000), &vs(), v, CapRights::READ, 0).unwrap();
        invoke_map(&mut t, &plan);
        (t, v, plan)
    }

    #[test]
    fn unmap_never_walks_a_dead_root() {
        let (mut t, _, plan) = frame_mapped_below_tables();
        let before = t.0.clone();
        t.1 = Some(ROOT);
        let (unmapped, _) = unmap(&mut t, &plan.cap).unwrap();
        assert_eq!(unmapped, frame(0x9000), "the record is dropped");
        assert_eq!(t.0, before, "no table was touched");
    }

    #[test]
    fn an_io_mapping_is_never_removed_or_remapped_as_a_cpu_one() {
        // An IO mapping recorded at an address that happens to equal this VSpace's root
        // and a mapped virtual address (a dead IOSpace's root page became this PML4).
        let (mut t, v, _) = frame_mapped_below_tables();
        let io = Cap::Frame {
            paddr: 0x9000,
            size: FrameSize::Small,
            rights: CapRights::READ.union(CapRights::WRITE),
            is_device: false,
            mapping: Some(Mapping { vspace: ROOT, vaddr: v, kind: MapKind::Io }),
        };
        let before = t.0.clone();
        assert_eq!(unmap(&mut t, &io), None, "the IO mapping and its record are left to the IO unmap");
        assert_eq!(t.0, before, "no CPU table was touched");
        assert_eq!(
            decode_frame_map(&t, &io, &vs(), v, CapRights::READ, 0),
            Err(SyscallError::IllegalOperation),
            "an IO-mapped cap is not remapped as a CPU mapping"
        );
    }

    #[test]
    fn a_guest_space_takes_no_table_whose_span_wraps() {
        let t = Tables::default();
        let gs = Cap::GuestSpace { paddr: ROOT };
        for (level, vaddr) in [
            (3, u64::MAX),
            (3, 0xffff_ff80_0000_0000),
            (2, 0xffff_ffff_c000_0000),
            (1, 0xffff_ffff_ffe0_0000),
            (3, GUEST_PHYS_END),
        ] {
            assert_eq!(
                decode_table_map(&t, &table(0x2000, level), &gs, vaddr),
                Err(SyscallError::InvalidArgument),
                "level {level} at {vaddr:#x}"
            );
        }
        let plan = decode_table_map(&t, &table(0x2000, 3), &gs, GUEST_PHYS_END - 1).unwrap();
        assert_eq!(plan.slot, EntrySlot { table: ROOT, index: 255 }, "the last lower-half entry");
    }

    #[test]
    fn bad_arguments() {
        let t = Tables::default();
        let r = CapRights::READ;
        assert_eq!(decode_frame_map(&t, &frame(0x9000), &vs(), 0x40_0800, r, 0), Err(SyscallError::AlignmentError));
        assert_eq!(
            decode_frame_map(&t, &frame(0x9000), &vs(), 0xffff_8000_0000_0000, r, 0),
            Err(SyscallError::InvalidArgument)
        );
        // The last page below the canonical boundary is never mapped.
        assert_eq!(
            decode_frame_map(&t, &frame(0x9000), &vs(), abi::layout::USER_END - 0x1000, r, 0),
            Err(SyscallError::InvalidArgument)
        );
        assert_eq!(
            decode_frame_map(&t, &frame(0x9000), &vs(), 0x40_0000, CapRights::WRITE, 0),
            Err(SyscallError::InvalidArgument)
        );
        assert_eq!(decode_frame_map(&t, &frame(0x9000), &vs(), 0x40_0000, r, 0x80), Err(SyscallError::InvalidArgument));
        let read_only =
            Cap::Frame { paddr: 0x9000, size: FrameSize::Small, rights: r, is_device: false, mapping: None };
        assert_eq!(
            decode_frame_map(&t, &read_only, &vs(), 0x40_0000, CapRights::READ.union(CapRights::WRITE), 0),
            Err(SyscallError::InsufficientRights)
        );
        assert_eq!(decode_frame_map(&t, &vs(), &vs(), 0x40_0000, r, 0), Err(SyscallError::InvalidCapability));
        assert_eq!(
            decode_frame_map(&t, &frame(0x9000), &frame(0), 0x40_0000, r, 0),
            Err(SyscallError::InvalidCapability)
        );
    }
}
