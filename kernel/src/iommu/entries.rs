//! VT-d root, context and second-level entries; IOVA checks and table walks.

use crate::object::paging::TableMemory;

/// Second-level page-table entry bits.
pub mod sl {
    /// Readable.
    pub const READ: u64 = 1 << 0;
    /// Writable.
    pub const WRITE: u64 = 1 << 1;
    /// A 2 MiB / 1 GiB leaf.
    pub const SUPERPAGE: u64 = 1 << 7;
    /// Address bits.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// A root-table entry (legacy mode) pointing at a bus's context table.
pub const fn root_entry(context_table: u64) -> [u64; 2] {
    [(context_table & sl::ADDR) | 1, 0]
}

/// A present context entry: untranslated requests go through the second-level table at
/// `sl_root` (`levels` deep: 3 = 39-bit, 4 = 48-bit) tagged with `domain`.
pub const fn context_entry(sl_root: u64, levels: u8, domain: u16) -> [u64; 2] {
    let address_width = (levels as u64).saturating_sub(2); // 1: 39-bit, 2: 48-bit
    [(sl_root & sl::ADDR) | 1, address_width | ((domain as u64) << 8)]
}

/// Domain id of a context entry, if present.
pub const fn context_domain(entry: [u64; 2]) -> Option<u16> {
    if entry[0] & 1 == 0 {
        None
    } else {
        Some((entry[1] >> 8) as u16)
    }
}

/// A second-level leaf (or, with READ|WRITE, a table pointer).
pub const fn sl_entry(paddr: u64, read: bool, write: bool, superpage: bool) -> u64 {
    (paddr & sl::ADDR)
        | if read { sl::READ } else { 0 }
        | if write { sl::WRITE } else { 0 }
        | if superpage { sl::SUPERPAGE } else { 0 }
}

/// IOVAs the IOMMU must never translate: the MSI window (interrupt messages).
pub use abi::reserved::MSI_WINDOW;

/// Checks an IOVA range for a `levels`-deep IOSpace: aligned to `size`, inside the
/// address width, and clear of the MSI window.
pub fn check_iova(iova: u64, size: u64, levels: u8) -> Result<(), &'static str> {
    check_iova_aligned(iova, size, size, levels)
}

/// As [`check_iova`] for `pages` consecutive 4 KiB pages (a batch): aligned to a page,
/// not to the whole run (a batch of 3 pages may start at any page).
pub fn check_iova_pages(iova: u64, pages: u64, levels: u8) -> Result<(), &'static str> {
    check_iova_aligned(iova, pages.saturating_mul(4096), 4096, levels)
}

/// `size` bytes from `iova`, aligned to `align`: inside the width, clear of the MSI window.
fn check_iova_aligned(iova: u64, size: u64, align: u64, levels: u8) -> Result<(), &'static str> {
    if !iova.is_multiple_of(align) {
        return Err("misaligned");
    }
    let limit = 1u64 << (12 + 9 * u32::from(levels));
    if iova.checked_add(size).is_none_or(|end| end > limit) {
        return Err("beyond the address width");
    }
    if iova < MSI_WINDOW.1 && iova + size > MSI_WINDOW.0 {
        return Err("inside the MSI window");
    }
    Ok(())
}

/// Index of `iova`'s entry in a table holding level-`level` entries (1 = 4 KiB leaves).
pub const fn sl_index(iova: u64, level: u8) -> usize {
    ((iova >> (12 + 9 * (level as u32 - 1))) & 0x1ff) as usize
}

/// Walks the second-level tables of a `levels`-deep IOSpace rooted at `root` toward
/// `iova`, stopping at the table that holds level-`level` entries. Returns (table,
/// index), or the level of the first entry on the way that is missing (not present,
/// or a superpage leaf where a table was expected).
pub fn sl_walk(mem: &impl TableMemory, root: u64, levels: u8, iova: u64, level: u8) -> Result<(u64, usize), u8> {
    let mut table = root;
    for l in (level + 1..=levels).rev() {
        let entry = mem.read(table, sl_index(iova, l));
        if entry & (sl::READ | sl::WRITE) == 0 || entry & sl::SUPERPAGE != 0 {
            return Err(l - 1);
        }
        table = entry & sl::ADDR;
    }
    Ok((table, sl_index(iova, level)))
}

/// The table holding `iova`'s 4 KiB leaf entries, as `sl_walk(.., 1)` finds it but
/// unrolled into one shift per level (the single-page and batch short paths).
#[inline(always)]
pub fn sl_leaf_table(mem: &impl TableMemory, root: u64, levels: u8, iova: u64) -> Option<u64> {
    let mut table = root;
    // Level-l entries are indexed by IOVA bits from 12 + 9 (l - 1) = 3 + 9 l.
    let mut shift = 3 + 9 * u32::from(levels);
    while shift > 12 {
        let entry = mem.read(table, ((iova >> shift) & 0x1ff) as usize);
        if entry & (sl::READ | sl::WRITE) == 0 || entry & sl::SUPERPAGE != 0 {
            return None;
        }
        table = entry & sl::ADDR;
        shift -= 9;
    }
    Some(table)
}

/// Whether one 4 KiB page at `iova` passes [`check_iova`] (with the MSI window's ends
/// page-aligned, the same test in three compares).
#[inline(always)]
pub const fn page_iova_ok(iova: u64, levels: u8) -> bool {
    iova & 0xfff == 0 && iova >> (12 + 9 * levels as u32) == 0 && !(iova >= MSI_WINDOW.0 && iova < MSI_WINDOW.1)
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Tables(HashMap<(u64, usize), u64>);
    impl TableMemory for Tables {
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

    #[test]
    fn walks_three_and_four_levels() {
        let iova = (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12);
        assert_eq!([4, 3, 2, 1].map(|l| sl_index(iova, l)), [1, 2, 3, 4]);
        // 4 levels: root 0x1000 -> 0x2000 -> 0x3000 -> leaf table 0x4000.
        let mut t = Tables::default();
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(3), "nothing below the root");
        t.write(0x1000, 1, sl_entry(0x2000, true, true, false));
        t.write(0x2000, 2, sl_entry(0x3000, true, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(1));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 2), Ok((0x3000, 3)), "2 MiB leaves live in level-2 tables");
        t.write(0x3000, 3, sl_entry(0x4000, true, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Ok((0x4000, 4)));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 4), Ok((0x1000, 1)), "the root holds level-4 entries");
        // A superpage where a table was expected stops the walk.
        t.write(0x3000, 3, sl_entry(0x20_0000, true, true, true));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(1));
        // A write-only table pointer counts as present; a zero entry does not.
        t.write(0x3000, 3, sl_entry(0x4000, false, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Ok((0x4000, 4)));
        // 3 levels: the root holds level-3 entries, bit 39 of the IOVA is not used.
        let low = iova & ((1 << 39) - 1);
        let mut t = Tables::default();
        t.write(0x1000, 2, sl_entry(0x3000, true, true, false));
        t.write(0x3000, 3, sl_entry(0x4000, true, false, false));
        assert_eq!(sl_walk(&t, 0x1000, 3, low, 1), Ok((0x4000, 4)));
        assert_eq!(sl_walk(&t, 0x1000, 3, low + (1 << 21), 1), Err(1), "the next 2 MiB has no table");
    }

    #[test]
    fn a_batch_is_aligned_to_a_page_not_to_its_length() {
        assert_eq!(check_iova_pages(0x1000, 3, 3), Ok(()), "three pages from any page");
        assert_eq!(check_iova(0x1000, 3 * 4096, 3), Err("misaligned"), "a frame is aligned to its size");
        assert_eq!(check_iova_pages(0x1800, 3, 3), Err("misaligned"));
        assert!(check_iova_pages(MSI_WINDOW.0 - 0x1000, 2, 3).is_err(), "into the MSI window");
        assert!(check_iova_pages((1 << 39) - 0x1000, 2, 3).is_err(), "past the width");
        assert_eq!(check_iova_pages((1 << 39) - 0x2000, 2, 3), Ok(()));
        assert!(check_iova_pages(!0xfff, 64, 4).is_err(), "wraps");
    }

    #[test]
    fn leaf_table_and_page_check_agree_with_the_general_ones() {
        static_assertions::const_assert!(MSI_WINDOW.0.is_multiple_of(4096) && MSI_WINDOW.1.is_multiple_of(4096));
        let mut t = Tables::default();
        t.write(0x1000, 0, sl_entry(0x2000, true, true, false));
        t.write(0x1000, 1, sl_entry(0x4000_0000, true, true, true));
        t.write(0x2000, 0, sl_entry(0x3000, true, false, false));
        t.write(0x2000, 1, sl_entry(0x20_0000, true, true, true));
        t.write(0x3000, 0, sl_entry(0x5000, false, true, false));
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..50_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let iova = match i % 4 {
                0 => x,
                1 => x & ((1 << 32) - 1),
                2 => (x & 0x3f) << 21 | (x >> 32 & 0x1ff) << 12,
                _ => MSI_WINDOW.0 - 0x2000 + (x & 0x3fff),
            };
            for levels in [3, 4] {
                let general = sl_walk(&t, 0x1000, levels, iova, 1).ok().map(|(table, _)| table);
                assert_eq!(sl_leaf_table(&t, 0x1000, levels, iova), general, "{iova:#x} {levels}");
                assert_eq!(page_iova_ok(iova, levels), check_iova(iova, 4096, levels).is_ok(), "{iova:#x} {levels}");
            }
        }
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn entry_encodings() {
        assert_eq!(root_entry(0x5000), [0x5001, 0]);
        let c = context_entry(0x9000, 3, 7);
        assert_eq!(c, [0x9001, 1 | (7 << 8)]);
        assert_eq!(context_domain(c), Some(7));
        assert_eq!(context_domain([0, 0]), None);
        assert_eq!(context_entry(0x9000, 4, 1)[1] & 7, 2);
        assert_eq!(sl_entry(0x20_0000, true, false, true), 0x20_0000 | sl::READ | sl::SUPERPAGE);
    }

    #[test]
    fn iova_checks() {
        assert!(check_iova(0x1000, 0x1000, 3).is_ok());
        assert_eq!(check_iova(0x1800, 0x1000, 3), Err("misaligned"));
        assert_eq!(check_iova(1 << 39, 0x1000, 3), Err("beyond the address width"));
        assert!(check_iova(1 << 39, 0x1000, 4).is_ok());
        assert_eq!(check_iova(0xfee0_0000, 0x1000, 3), Err("inside the MSI window"));
        assert_eq!(check_iova(0xfee0_0000 - 0x20_0000, 0x20_0000, 3), Ok(()));
        // 16 MiB from 0xfe000000 covers the MSI window.
        assert!(check_iova(0xfe00_0000, 0x100_0000, 3).is_err());
    }
}
