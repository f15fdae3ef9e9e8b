//! IO mappings: frames and IO page tables in an IOSpace's second-level tables.
//!
//! Frame::MapIO / UnmapIO and IOPageTable::Map / Unmap on the tables, through
//! [`VtdAccess`], with the invalidations that make each change take effect before the
//! system call returns (page-selective IOTLB invalidations on unmap, and on map in
//! caching mode). The `mutant-*` features break one step each for the mutation gate
//! (proofs/README.md); no build but that gate's enables them.

use abi::error::SyscallError;
use abi::rights::CapRights;

use crate::iommu::access::VtdAccess;
use crate::iommu::entries::{check_iova, sl, sl_entry, sl_walk};
use crate::iommu::iospace::{domain_of_root, levels};
use crate::object::cap::{Cap, FrameSize, MapKind, Mapping};
use crate::object::roots::{self, RootKind};

/// Walks from the root of a `levels`-deep IOSpace toward `iova`, stopping at the table
/// that holds level-`level` entries. Returns (table, index) or the level that is missing.
fn walk(hw: &impl VtdAccess, root: u64, levels: u8, iova: u64, level: u8) -> Result<(u64, usize), u8> {
    sl_walk(hw, root, levels, iova, level)
}

/// Decodes and performs IOPageTable::Map: the table is installed at the first level
/// missing on the way to `iova`.
pub fn map_table(hw: &mut impl VtdAccess, table: &Cap, iospace: &Cap, iova: u64) -> Result<Cap, SyscallError> {
    let Cap::IoPageTable { paddr, mapping: None, .. } = *table else { return Err(SyscallError::IllegalOperation) };
    let Cap::IoSpace { paddr: root, levels, domain } = *iospace else { return Err(SyscallError::InvalidCapability) };
    check_iova(iova & !0xfff, 0x1000, levels).map_err(|_| SyscallError::InvalidArgument)?;
    // Level-E entries point at tables holding level E-1 entries; the root holds level `levels`.
    for entry_level in (2..=levels).rev() {
        let (t, i) = walk(hw, root, levels, iova, entry_level).map_err(|_| SyscallError::FailedLookup)?;
        if hw.read(t, i) & (sl::READ | sl::WRITE) != 0 {
            continue;
        }
        hw.write(t, i, sl_entry(paddr, true, true, false));
        hw.sync_for_device(t + 8 * i as u64, 8);
        let span = 1u64 << (12 + 9 * (u32::from(entry_level) - 1));
        let mapping = Mapping { vspace: root, vaddr: iova & !(span - 1), kind: MapKind::Io };
        flush_after_map(hw, domain, mapping.vaddr, mapping.vaddr + span);
        return Ok(Cap::IoPageTable { paddr, level: entry_level - 1, mapping: Some(mapping) });
    }
    Err(SyscallError::DeleteFirst)
}

/// Decodes and performs Frame::MapIO.
pub fn map_frame(
    hw: &mut impl VtdAccess,
    frame: &Cap,
    iospace: &Cap,
    iova: u64,
    rights: CapRights,
) -> Result<Cap, SyscallError> {
    let plan = decode_map(hw, frame, iospace, iova, rights, &mut None)?;
    invoke_map(hw, &plan);
    if let (Cap::IoSpace { domain, .. }, Cap::Frame { size, .. }) = (*iospace, *frame) {
        flush_after_map(hw, domain, iova, iova + (1u64 << size.bits()));
    }
    Ok(plan.cap)
}

/// A checked frame mapping, not yet written.
#[derive(Clone, Copy, Debug)]
pub struct MapPlan {
    table: u64,
    index: usize,
    entry: u64,
    /// The frame cap once mapped.
    pub cap: Cap,
}

/// The leaf table last found by a walk within one batch: (root, 2 MiB region, table).
/// Only valid inside one invocation (nothing can change the tables meanwhile).
pub type LeafCache = Option<(u64, u64, u64)>;

/// Checks Frame::MapIO without changing anything.
pub fn decode_map(
    hw: &impl VtdAccess,
    frame: &Cap,
    iospace: &Cap,
    iova: u64,
    rights: CapRights,
    cache: &mut LeafCache,
) -> Result<MapPlan, SyscallError> {
    let Cap::Frame { paddr, size, rights: cap_rights, is_device, mapping } = *frame else {
        return Err(SyscallError::InvalidCapability);
    };
    if is_device {
        // Invariant 4: only RAM frames retyped from untyped ever become DMA-reachable.
        return Err(SyscallError::InvalidCapability);
    }
    if mapping.is_some() {
        return Err(SyscallError::IllegalOperation);
    }
    let Cap::IoSpace { paddr: root, levels, .. } = *iospace else { return Err(SyscallError::InvalidCapability) };
    let rights = rights.intersect(CapRights::READ.union(CapRights::WRITE));
    if rights == CapRights::NONE {
        return Err(SyscallError::InvalidArgument);
    }
    if !cap_rights.contains(rights) {
        return Err(SyscallError::InsufficientRights);
    }
    if size != FrameSize::Small && !hw.all_support_superpage(size) {
        // No second-level leaves of this size on this hardware (CAP.SLLPS).
        return Err(SyscallError::InvalidArgument);
    }
    let bytes = 1u64 << size.bits();
    match check_iova(iova, bytes, levels) {
        Ok(()) => {}
        Err("misaligned") => return Err(SyscallError::AlignmentError),
        Err(_) => return Err(SyscallError::InvalidArgument),
    }
    let leaf_level = size.io_level();
    let (table, index) = match *cache {
        Some((r, region, table)) if leaf_level == 1 && r == root && region == iova >> 21 => {
            (table, ((iova >> 12) & 0x1ff) as usize)
        }
        _ => {
            let found = walk(hw, root, levels, iova, leaf_level).map_err(|_| SyscallError::FailedLookup)?;
            if leaf_level == 1 {
                *cache = Some((root, iova >> 21, found.0));
            }
            found
        }
    };
    if hw.read(table, index) & (sl::READ | sl::WRITE) != 0 {
        return Err(SyscallError::DeleteFirst);
    }
    let entry =
        sl_entry(paddr, rights.contains(CapRights::READ), rights.contains(CapRights::WRITE), size != FrameSize::Small);
    let cap = Cap::Frame {
        paddr,
        size,
        rights: cap_rights,
        is_device,
        mapping: Some(Mapping { vspace: root, vaddr: iova, kind: MapKind::Io }),
    };
    Ok(MapPlan { table, index, entry, cap })
}

/// Writes a checked mapping (batches call this per page, then flush once).
pub fn invoke_map(hw: &mut impl VtdAccess, plan: &MapPlan) {
    hw.write(plan.table, plan.index, plan.entry);
    hw.sync_for_device(plan.table + 8 * plan.index as u64, 8);
    super::counters::leaves_written(1);
}

/// Non-present entries are never cached without caching mode; with it, a map of IOVAs
/// `start..end` in `domain` needs the same (page-selective) invalidation as an unmap.
pub fn flush_after_map(hw: &mut impl VtdAccess, domain: u16, start: u64, end: u64) {
    if !hw.any_caching_mode() {
        return;
    }
    for unit in 0..hw.unit_count() {
        if hw.caching_mode(unit) {
            hw.invalidate_iotlb(unit, domain, Some((start, end)));
        }
    }
}

/// Invalidates IOVAs `start..end` of `domain` on every unit (one page-selective request
/// per unit where CAP.PSI/MAMV allow, else domain-selective) and waits for completion.
pub fn flush_range(hw: &mut impl VtdAccess, domain: u16, start: u64, end: u64) {
    for unit in 0..hw.unit_count() {
        hw.invalidate_iotlb(unit, domain, Some((start, end)));
    }
}

/// As [`flush_range`] for the IOSpace rooted at `root`. A dead IOSpace needs nothing:
/// its devices were cut off and its domain invalidated when it died.
pub fn flush_root_range(hw: &mut impl VtdAccess, root: u64, start: u64, end: u64) {
    if let Some(domain) = domain_of_root(root) {
        flush_range(hw, domain, start, end);
    }
}

/// The IOVAs an IO mapping cap covers: (IOSpace root, start, end).
fn mapped_range(cap: &Cap) -> Option<(u64, u64, u64)> {
    match *cap {
        Cap::Frame { size, mapping: Some(m), .. } if m.is_io() => {
            Some((m.vspace, m.vaddr, m.vaddr + (1 << size.bits())))
        }
        Cap::IoPageTable { level, mapping: Some(m), .. } => {
            Some((m.vspace, m.vaddr, m.vaddr + (1 << (12 + 9 * u32::from(level)))))
        }
        _ => None,
    }
}

/// Removes an IO mapping (frame or table) if its entry still names the object, then
/// invalidates the IOVAs it covered (page-selective; for a table also the
/// paging-structure caches below it) and waits for completion. Returns the unmapped cap.
pub fn unmap(hw: &mut impl VtdAccess, cap: &Cap) -> Option<Cap> {
    let range = mapped_range(cap);
    let unmapped = clear(hw, cap)?;
    // Mutant (mutation gate only): a frame's unmap skips its IOTLB invalidation.
    let skip = cfg!(feature = "mutant-skip-inval") && matches!(cap, Cap::Frame { .. });
    if let Some((root, start, end)) = range.filter(|_| !skip) {
        flush_root_range(hw, root, start, end);
    }
    Some(unmapped)
}

/// Clears an IO mapping's entry without invalidating (callers flush once per batch).
pub fn clear(hw: &mut impl VtdAccess, cap: &Cap) -> Option<Cap> {
    let (paddr, level, mapping) = match *cap {
        Cap::Frame { paddr, size, mapping: Some(m), .. } if m.is_io() => (paddr, size.io_level(), m),
        Cap::IoPageTable { paddr, level, mapping: Some(m) } => (paddr, level + 1, m),
        _ => return None,
    };
    // Every IOSpace has the boot-time depth. A dead IOSpace's root page may be anything
    // now (its devices were cut off when it died): never walk it.
    let live = roots::is_live(RootKind::IoSpace, mapping.vspace);
    let found = if live { walk(hw, mapping.vspace, levels(), mapping.vaddr, level).ok() } else { None };
    if let Some((table, index)) = found {
        let entry = hw.read(table, index);
        // Mutant hole1 (mutation gate only): a frame's unmap keeps its entry.
        let keep = cfg!(feature = "mutant-hole1") && matches!(cap, Cap::Frame { .. });
        if entry & (sl::READ | sl::WRITE) != 0 && entry & sl::ADDR == paddr && !keep {
            hw.write(table, index, 0);
            hw.sync_for_device(table + 8 * index as u64, 8);
            super::counters::leaves_written(1);
        }
    }
    // Mutant (mutation gate only): an unmapped table keeps its entries.
    if let (Cap::IoPageTable { .. }, false) = (*cap, cfg!(feature = "mutant-skip-empty")) {
        // An unmapped IO table is emptied: mapped again elsewhere (another IOSpace, or
        // another level, where a leaf entry would read as a pointer to a table the user
        // can write) its old entries would hand a device memory no mapping names.
        hw.clear_table(paddr);
        hw.sync_for_device(paddr, 4096);
    }
    Some(match *cap {
        Cap::Frame { paddr, size, rights, is_device, .. } => {
            Cap::Frame { paddr, size, rights, is_device, mapping: None }
        }
        Cap::IoPageTable { paddr, .. } => Cap::IoPageTable { paddr, level: 0, mapping: None },
        other => other,
    })
}
