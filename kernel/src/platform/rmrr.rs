//! RMRR identity maps, planned without hardware.
//!
//! RMRR identity maps, planned without hardware: which firmware-reported reserved
//! regions are acceptable, which requester ids their device scopes name, which pages
//! get which leaf level, how many tables that takes, and the identity mapping itself
//! over any `TableMemory` (boot memory in the kernel, a map in host tests).
//!
//! A device named by an RMRR keeps doing DMA the firmware set up (USB legacy
//! emulation, integrated graphics) to that region, so the kernel gives it a context
//! entry in a boot-time identity domain covering exactly the RMRR regions and nothing
//! else; every other device stays blocked until an IOSpace assigns it.

use core::fmt;

use abi::layout::PAGE_SIZE;

use crate::iommu::entries::{sl, sl_entry, sl_index, MSI_WINDOW};
use crate::object::paging::TableMemory;
use crate::platform::dmar::{scope_kind, DeviceScope};

/// Bytes of a 2 MiB superpage.
const LARGE: u64 = 1 << 21;
/// Largest region accepted (bounds the boot memory spent on its tables).
pub const MAX_RMRR_BYTES: u64 = 1 << 30;

/// Why an RMRR is refused (its devices then stay blocked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmrrError {
    /// Base or limit + 1 is not 4 KiB aligned.
    Misaligned,
    /// The limit is below the base.
    Inverted,
    /// Larger than [`MAX_RMRR_BYTES`].
    TooLarge,
    /// Above what the IOSpace depth translates.
    BeyondWidth,
    /// Overlaps the MSI window (interrupt messages, never translated).
    MsiWindow,
    /// Overlaps the kernel image.
    Kernel,
    /// Overlaps RAM the kernel manages (boot structures, objects, user frames).
    Ram {
        /// First byte of the RAM range hit.
        start: u64,
        /// End (exclusive) of the RAM range hit.
        end: u64,
    },
}

impl fmt::Display for RmrrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RmrrError::Misaligned => write!(f, "base or limit+1 not 4 KiB aligned"),
            RmrrError::Inverted => write!(f, "limit below base"),
            RmrrError::TooLarge => write!(f, "larger than {} MiB", MAX_RMRR_BYTES >> 20),
            RmrrError::BeyondWidth => write!(f, "beyond the IOSpace address width"),
            RmrrError::MsiWindow => write!(f, "overlaps the MSI window"),
            RmrrError::Kernel => write!(f, "overlaps the kernel image"),
            RmrrError::Ram { start, end } => write!(f, "overlaps kernel-managed RAM {start:#x}..{end:#x}"),
        }
    }
}

/// Checks an RMRR (`base`, inclusive `limit`) for a `levels`-deep domain against the
/// kernel image and the RAM ranges (start, end exclusive). Returns the region as
/// (start, end exclusive).
pub fn check_rmrr(
    base: u64,
    limit: u64,
    levels: u8,
    kernel: (u64, u64),
    ram: impl IntoIterator<Item = (u64, u64)>,
) -> Result<(u64, u64), RmrrError> {
    let end = limit.checked_add(1).ok_or(RmrrError::Misaligned)?;
    if !base.is_multiple_of(PAGE_SIZE) || !end.is_multiple_of(PAGE_SIZE) {
        return Err(RmrrError::Misaligned);
    }
    if limit < base {
        return Err(RmrrError::Inverted);
    }
    if end - base > MAX_RMRR_BYTES {
        return Err(RmrrError::TooLarge);
    }
    if end > 1u64 << (12 + 9 * u32::from(levels)) {
        return Err(RmrrError::BeyondWidth);
    }
    let overlaps = |(s, e): (u64, u64)| base < e && s < end;
    if overlaps(MSI_WINDOW) {
        return Err(RmrrError::MsiWindow);
    }
    if overlaps(kernel) {
        return Err(RmrrError::Kernel);
    }
    if let Some((start, end)) = ram.into_iter().find(|&r| overlaps(r)) {
        return Err(RmrrError::Ram { start, end });
    }
    Ok((base, end))
}

/// The requester id of a device scope, if it names one PCI function directly on its
/// start bus. Sub-hierarchies and paths through bridges would need the bridges'
/// secondary bus numbers from configuration space: not supported (the caller logs it).
pub fn scope_requester(scope: &DeviceScope) -> Option<u16> {
    match (scope.kind, scope.path()) {
        (scope_kind::PCI_ENDPOINT, &[(device, function)]) if device < 32 && function < 8 => {
            Some((u16::from(scope.start_bus) << 8) | (u16::from(device) << 3) | u16::from(function))
        }
        _ => None,
    }
}

/// Synthetic RMRRs for QEMU scenarios (it reports none): `BASE-LIMIT@BB:DD.F` entries
/// joined by `+`, numbers in hex (`0x` optional). Yields (base, inclusive limit,
/// requester id) per entry, `None` for an entry that does not parse.
pub fn parse_test_rmrrs(text: &str) -> impl Iterator<Item = Option<(u64, u64, u16)>> + '_ {
    let hex = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok();
    text.split('+').map(move |entry| {
        let (range, device) = entry.split_once('@')?;
        let (base, limit) = range.split_once('-')?;
        let (bus, rest) = device.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        let (bus, dev, func) = (hex(bus)?, hex(dev)?, hex(func)?);
        if bus > 0xff || dev > 0x1f || func > 7 {
            return None;
        }
        Some((hex(base)?, hex(limit)?, ((bus << 8) | (dev << 3) | func) as u16))
    })
}

/// The identity leaves covering `start..end` (page aligned): (address, level) with level
/// 2 for each naturally aligned 2 MiB block wholly inside when `superpages`, else 1.
pub fn identity_leaves(start: u64, end: u64, superpages: bool) -> impl Iterator<Item = (u64, u8)> {
    let mut at = start;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let large = superpages && at.is_multiple_of(LARGE) && end - at >= LARGE;
        let leaf = (at, if large { 2 } else { 1 });
        at += if large { LARGE } else { PAGE_SIZE };
        Some(leaf)
    })
}

/// Tables below the root an empty `levels`-deep tree needs to identity-map `start..end`
/// (page aligned): one per 2 MiB block holding small leaves, one per 1 GiB block, and
/// with 4 levels one per 512 GiB block.
pub fn tables_needed(start: u64, end: u64, levels: u8, superpages: bool) -> u64 {
    if start >= end {
        return 0;
    }
    let blocks = |shift: u32| ((end - 1) >> shift) - (start >> shift) + 1;
    let mut small_blocks = blocks(21);
    if superpages {
        // Only the partial 2 MiB blocks at either end hold small leaves.
        let first_full = start.div_ceil(LARGE);
        let last_full = end / LARGE; // exclusive, in blocks
        let full = last_full.saturating_sub(first_full);
        small_blocks -= full;
    }
    let mut tables = small_blocks + blocks(30);
    if levels >= 4 {
        tables += blocks(39);
    }
    tables
}

/// Why an identity map could not be completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// No memory for a table.
    OutOfTables,
    /// A page is already mapped to a different address.
    Conflict(u64),
}

/// Identity-maps `start..end` (page aligned) read-write into the `levels`-deep tree at
/// `root`, with the leaves of [`identity_leaves`]. Entries that already map the same
/// address (an overlapping region) are kept; a 2 MiB block that already has a table
/// gets small leaves in it instead. Returns the number of tables allocated.
pub fn identity_map(
    mem: &mut impl TableMemory,
    root: u64,
    levels: u8,
    start: u64,
    end: u64,
    superpages: bool,
) -> Result<u64, IdentityError> {
    let mut tables = 0;
    for (address, level) in identity_leaves(start, end, superpages) {
        map_leaf(mem, root, levels, address, level, &mut tables)?;
    }
    Ok(tables)
}

fn map_leaf(
    mem: &mut impl TableMemory,
    root: u64,
    levels: u8,
    address: u64,
    level: u8,
    tables: &mut u64,
) -> Result<(), IdentityError> {
    let mut table = root;
    for l in (level + 1..=levels).rev() {
        let index = sl_index(address, l);
        let entry = mem.read(table, index);
        if entry & (sl::READ | sl::WRITE) == 0 {
            let new = mem.alloc_table().ok_or(IdentityError::OutOfTables)?;
            *tables += 1;
            mem.write(table, index, sl_entry(new, true, true, false));
            table = new;
        } else if entry & sl::SUPERPAGE != 0 {
            // An overlapping region already maps this block as a superpage leaf.
            let block = address & !((1u64 << (12 + 9 * u32::from(l - 1))) - 1);
            return if entry & sl::ADDR == block { Ok(()) } else { Err(IdentityError::Conflict(address)) };
        } else {
            table = entry & sl::ADDR;
        }
    }
    let index = sl_index(address, level);
    let entry = mem.read(table, index);
    let wanted = sl_entry(address, true, true, level == 2);
    if entry & (sl::READ | sl::WRITE) == 0 {
        mem.write(table, index, wanted);
        return Ok(());
    }
    if level == 2 && entry & sl::SUPERPAGE == 0 {
        // A table is already there: fill it with small leaves.
        for page in 0..512 {
            map_leaf(mem, root, levels, address + page * PAGE_SIZE, 1, tables)?;
        }
        return Ok(());
    }
    if entry == wanted {
        Ok(())
    } else {
        Err(IdentityError::Conflict(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::entries::sl_walk;
    extern crate std;
    use std::collections::HashMap;
    use std::vec::Vec;

    /// Tables in a map; new tables from 0x100_0000 upwards, at most `budget`.
    struct Tables {
        entries: HashMap<(u64, usize), u64>,
        next: u64,
        budget: u64,
    }
    impl Tables {
        fn new(budget: u64) -> Self {
            Tables { entries: HashMap::new(), next: 0x100_0000, budget }
        }
        /// The leaf mapping `iova`: (entry, level).
        fn leaf(&self, root: u64, levels: u8, iova: u64) -> Option<(u64, u8)> {
            (1..=2).find_map(|level| {
                let (t, i) = sl_walk(self, root, levels, iova, level).ok()?;
                let e = self.read(t, i);
                let is_leaf = level == 1 || e & sl::SUPERPAGE != 0;
                (e & (sl::READ | sl::WRITE) != 0 && is_leaf).then_some((e, level))
            })
        }
    }
    impl TableMemory for Tables {
        fn read(&self, table: u64, index: usize) -> u64 {
            *self.entries.get(&(table, index)).unwrap_or(&0)
        }
        fn write(&mut self, table: u64, index: usize, value: u64) {
            self.entries.insert((table, index), value);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            if self.budget == 0 {
                return None;
            }
            self.budget -= 1;
            self.next += PAGE_SIZE;
            Some(self.next)
        }
    }

    const KERNEL: (u64, u64) = (0x20_0000, 0x40_0000);
    const RAM: [(u64, u64); 2] = [(0x10_0000, 0x7fe_0000), (0x1_0000_0000, 0x1_4000_0000)];

    #[test]
    fn rmrr_checks() {
        assert_eq!(check_rmrr(0xe_0000, 0xe_ffff, 3, KERNEL, RAM), Ok((0xe_0000, 0xf_0000)));
        assert_eq!(check_rmrr(0xe_0800, 0xe_ffff, 3, KERNEL, RAM), Err(RmrrError::Misaligned));
        assert_eq!(check_rmrr(0xe_0000, 0xe_fffe, 3, KERNEL, RAM), Err(RmrrError::Misaligned));
        assert_eq!(check_rmrr(0, u64::MAX, 3, KERNEL, RAM), Err(RmrrError::Misaligned), "limit+1 overflows");
        assert_eq!(check_rmrr(0xf_0000, 0xe_ffff, 3, KERNEL, RAM), Err(RmrrError::Inverted));
        assert_eq!(check_rmrr(0x8000_0000, 0xc000_0fff, 3, KERNEL, RAM), Err(RmrrError::TooLarge));
        assert_eq!(check_rmrr(1 << 39, (1 << 39) + 0xfff, 3, KERNEL, RAM), Err(RmrrError::BeyondWidth));
        assert!(check_rmrr(1 << 39, (1 << 39) + 0xfff, 4, KERNEL, []).is_ok(), "4 levels reach it");
        assert_eq!(check_rmrr(0xfed0_0000, 0xfeef_ffff, 3, KERNEL, RAM), Err(RmrrError::MsiWindow));
        assert_eq!(check_rmrr(0x3f_f000, 0x40_0fff, 3, KERNEL, []), Err(RmrrError::Kernel));
        assert_eq!(
            check_rmrr(0x7fd_f000, 0x7fe_0fff, 3, KERNEL, RAM),
            Err(RmrrError::Ram { start: 0x10_0000, end: 0x7fe_0000 })
        );
        assert!(check_rmrr(0x7fe_0000, 0x7ff_ffff, 3, KERNEL, RAM).is_ok(), "touching RAM is not overlapping");
        assert_eq!(std::format!("{}", RmrrError::Kernel), "overlaps the kernel image");
    }

    #[test]
    fn scope_requesters() {
        let endpoint = |bus, path: &[(u8, u8)]| DeviceScope::new(scope_kind::PCI_ENDPOINT, bus, path);
        assert_eq!(scope_requester(&endpoint(0, &[(0x1d, 0)])), Some(0x00e8));
        assert_eq!(scope_requester(&endpoint(2, &[(3, 1)])), Some(0x0219));
        assert_eq!(scope_requester(&endpoint(0, &[(0x1c, 0), (0, 0)])), None, "behind a bridge");
        assert_eq!(scope_requester(&endpoint(0, &[])), None);
        assert_eq!(scope_requester(&DeviceScope::new(scope_kind::PCI_SUB_HIERARCHY, 0, &[(0x1c, 0)])), None);
        assert_eq!(scope_requester(&DeviceScope::new(scope_kind::IOAPIC, 0xff, &[(0, 0)])), None);
    }

    #[test]
    fn test_rmrr_syntax() {
        let parsed: Vec<_> = parse_test_rmrrs("0xf0000-0xfffff@00:03.0+200000-200fff@1:1f.7").collect();
        assert_eq!(parsed, [Some((0xf_0000, 0xf_ffff, 0x0018)), Some((0x20_0000, 0x20_0fff, 0x01ff))]);
        let bad: Vec<_> = parse_test_rmrrs("0xf0000@00:03.0+1-2@00:20.0+1-2@00:03.8+x-2@0:0.0").collect();
        assert_eq!(bad, [None, None, None, None]);
    }

    #[test]
    fn leaves_and_table_counts() {
        // 64 KiB: sixteen 4 KiB leaves in one table, under one level-2 table.
        let small: Vec<_> = identity_leaves(0xe_0000, 0xf_0000, true).collect();
        assert_eq!(small.len(), 16);
        assert!(small.iter().all(|&(_, level)| level == 1));
        assert_eq!(tables_needed(0xe_0000, 0xf_0000, 3, true), 2);
        assert_eq!(tables_needed(0xe_0000, 0xf_0000, 4, true), 3);
        // 1 MiB .. 5 MiB + 4 KiB: 4..6 MiB is not wholly inside, so 2..4 MiB is the only
        // superpage; small leaves before and after it.
        let mixed: Vec<_> = identity_leaves(0x10_0000, 0x50_1000, true).collect();
        assert_eq!(mixed.iter().filter(|l| l.1 == 2).collect::<Vec<_>>(), [&(0x20_0000, 2)]);
        assert_eq!(mixed.len(), 256 + 1 + 257);
        assert_eq!(tables_needed(0x10_0000, 0x50_1000, 3, true), 2 + 1);
        assert_eq!(tables_needed(0x10_0000, 0x50_1000, 3, false), 3 + 1);
        assert_eq!(identity_leaves(0x10_0000, 0x50_1000, false).count(), 0x401);
        // Across a 1 GiB line: two level-2 tables.
        assert_eq!(tables_needed(0x3fff_f000, 0x4000_1000, 3, true), 2 + 2);
        assert_eq!(tables_needed(0x1000, 0x1000, 3, true), 0);
    }

    #[test]
    fn identity_maps_exactly_the_region() {
        for levels in [3, 4] {
            let mut t = Tables::new(64);
            let root = 0x1000;
            let (start, end) = (0x10_0000, 0x50_1000);
            let made = identity_map(&mut t, root, levels, start, end, true).unwrap();
            assert_eq!(made, tables_needed(start, end, levels, true), "{levels} levels");
            for iova in [start, 0x1f_f000, 0x20_0000, 0x3f_f000, 0x40_0000, end - PAGE_SIZE] {
                let (entry, level) = t.leaf(root, levels, iova).unwrap_or_else(|| panic!("{iova:#x} unmapped"));
                let size = if level == 2 { LARGE } else { PAGE_SIZE };
                assert_eq!(entry & sl::ADDR, iova & !(size - 1), "identity at {iova:#x}");
                assert_eq!(entry & (sl::READ | sl::WRITE), sl::READ | sl::WRITE);
                assert_eq!(level, if (0x20_0000..0x40_0000).contains(&iova) { 2 } else { 1 });
            }
            for outside in [start - PAGE_SIZE, end, 0x60_0000, 0] {
                assert_eq!(t.leaf(root, levels, outside), None, "{outside:#x} must stay unmapped");
            }
        }
    }

    #[test]
    fn overlapping_regions_and_failures() {
        let mut t = Tables::new(8);
        let root = 0x1000;
        identity_map(&mut t, root, 3, 0x1f_0000, 0x21_0000, true).unwrap();
        // Now the 2..4 MiB block has a table: the second region fills it with small leaves.
        assert_eq!(identity_map(&mut t, root, 3, 0x20_0000, 0x40_0000, true), Ok(0));
        assert_eq!(t.leaf(root, 3, 0x3f_f000).map(|(e, l)| (e & sl::ADDR, l)), Some((0x3f_f000, 1)));
        // Mapping the same region again changes nothing.
        assert_eq!(identity_map(&mut t, root, 3, 0x1f_0000, 0x21_0000, true), Ok(0));
        // A page mapped elsewhere is a conflict, not overwritten.
        let table = t.leaf_table(root, 0x50_0000);
        t.write(table, sl_index(0x50_0000, 1), sl_entry(0x9000, true, false, false));
        assert_eq!(identity_map(&mut t, root, 3, 0x50_0000, 0x50_1000, true), Err(IdentityError::Conflict(0x50_0000)));
        // Out of tables.
        let mut empty = Tables::new(0);
        assert_eq!(identity_map(&mut empty, root, 3, 0, 0x1000, true), Err(IdentityError::OutOfTables));
    }

    impl Tables {
        /// The level-1 table for `iova`, made if missing (test set-up).
        fn leaf_table(&mut self, root: u64, iova: u64) -> u64 {
            let mut table = root;
            for l in [3u8, 2] {
                let e = self.read(table, sl_index(iova, l));
                table = if e == 0 {
                    let new = self.alloc_table().unwrap();
                    self.write(table, sl_index(iova, l), sl_entry(new, true, true, false));
                    new
                } else {
                    e & sl::ADDR
                };
            }
            table
        }
    }
}
