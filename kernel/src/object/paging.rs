//! x86_64 four-level page tables over a small memory trait.
//!
//! x86_64 four-level page tables over a small memory trait, so the walk, the index
//! arithmetic and the permission rules are tested on the host.

use bitflags::bitflags;

bitflags! {
    /// Page-table entry flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PteFlags: u64 {
        /// Entry is valid.
        const PRESENT = 1 << 0;
        /// Writes allowed.
        const WRITABLE = 1 << 1;
        /// User mode may access.
        const USER = 1 << 2;
        /// Write-through caching.
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled.
        const CACHE_DISABLE = 1 << 4;
        /// Set by the CPU on access.
        const ACCESSED = 1 << 5;
        /// Set by the CPU on write.
        const DIRTY = 1 << 6;
        /// A 2 MiB / 1 GiB leaf at PD / PDPT level.
        const HUGE = 1 << 7;
        /// Not flushed on CR3 reload.
        const GLOBAL = 1 << 8;
        /// Instruction fetches fault.
        const NO_EXECUTE = 1 << 63;
    }
}

/// Physical-address bits of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Entries per table.
pub const ENTRIES: usize = 512;

/// Size of a leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB, a PT entry.
    Size4K,
    /// 2 MiB, a PD entry with HUGE.
    Size2M,
}

impl PageSize {
    /// Bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
        }
    }
    /// Level of the table holding the leaf (0 = PT).
    const fn leaf_level(self) -> usize {
        match self {
            PageSize::Size4K => 0,
            PageSize::Size2M => 1,
        }
    }
}

/// Access to page-table frames by physical address.
pub trait TableMemory {
    /// Reads entry `index` of the table at `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: u64, index: usize, value: u64);
    /// A fresh zeroed table frame.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Clears every entry of the table at `table` (an unmapped table must not carry its
    /// old entries to wherever it is mapped next).
    fn clear_table(&mut self, table: u64) {
        for index in 0..512 {
            self.write(table, index, 0);
        }
    }
    /// Whether `root` is still a live VSpace root, so a mapping record naming it may be
    /// followed (boot tables and host tests have only live roots).
    fn is_live_vspace(&self, _root: u64) -> bool {
        true
    }
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address not aligned to the page size.
    Misaligned,
    /// Virtual address not canonical.
    NonCanonical,
    /// Something is already mapped there.
    AlreadyMapped,
    /// A table frame could not be allocated.
    OutOfMemory,
}

/// Table index of `vaddr` at `level` (0 = PT, 3 = PML4).
pub const fn index(vaddr: u64, level: usize) -> usize {
    ((vaddr >> (12 + 9 * level)) & 0x1ff) as usize
}

/// Whether `vaddr` is a canonical 48-bit address.
pub const fn is_canonical(vaddr: u64) -> bool {
    let top = vaddr >> 47;
    top == 0 || top == 0x1ffff
}

/// Maps `vaddr` to `paddr`. Intermediate tables get PRESENT|WRITABLE and USER if the
/// leaf has USER; the leaf's own flags decide the effective rights.
pub fn map(
    mem: &mut impl TableMemory,
    root: u64,
    vaddr: u64,
    paddr: u64,
    size: PageSize,
    flags: PteFlags,
) -> Result<(), MapError> {
    if !vaddr.is_multiple_of(size.bytes()) || !paddr.is_multiple_of(size.bytes()) {
        return Err(MapError::Misaligned);
    }
    if !is_canonical(vaddr) {
        return Err(MapError::NonCanonical);
    }
    let inner = PteFlags::PRESENT | PteFlags::WRITABLE | (flags & PteFlags::USER);
    let mut table = root;
    for level in (size.leaf_level() + 1..=3).rev() {
        let i = index(vaddr, level);
        let entry = mem.read(table, i);
        table = if entry & PteFlags::PRESENT.bits() == 0 {
            let next = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            mem.write(table, i, next | inner.bits());
            next
        } else if entry & PteFlags::HUGE.bits() != 0 {
            return Err(MapError::AlreadyMapped);
        } else {
            if entry & inner.bits() != inner.bits() {
                mem.write(table, i, entry | inner.bits());
            }
            entry & ADDR_MASK
        };
    }
    let i = index(vaddr, size.leaf_level());
    if mem.read(table, i) & PteFlags::PRESENT.bits() != 0 {
        return Err(MapError::AlreadyMapped);
    }
    let huge = if size == PageSize::Size2M { PteFlags::HUGE } else { PteFlags::empty() };
    mem.write(table, i, paddr | (flags | huge | PteFlags::PRESENT).bits());
    Ok(())
}

/// A resolved virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address `vaddr` reaches.
    pub paddr: u64,
    /// Effective rights: USER and WRITABLE only if every level grants them,
    /// NO_EXECUTE if any level sets it.
    pub flags: PteFlags,
}

/// Walks the tables for `vaddr`.
pub fn translate(mem: &impl TableMemory, root: u64, vaddr: u64) -> Option<Translation> {
    if !is_canonical(vaddr) {
        return None;
    }
    let mut rights = PteFlags::USER | PteFlags::WRITABLE;
    let mut nx = PteFlags::empty();
    let mut table = root;
    for level in (0..=3).rev() {
        let entry = mem.read(table, index(vaddr, level));
        let flags = PteFlags::from_bits_retain(entry);
        if !flags.contains(PteFlags::PRESENT) {
            return None;
        }
        rights &= flags;
        nx |= flags & PteFlags::NO_EXECUTE;
        let leaf = level == 0 || (level <= 2 && flags.contains(PteFlags::HUGE));
        if leaf {
            let offset_mask = (1u64 << (12 + 9 * level)) - 1;
            let paddr = (entry & ADDR_MASK & !offset_mask) | (vaddr & offset_mask);
            return Some(Translation { paddr, flags: rights | nx | PteFlags::PRESENT });
        }
        table = entry & ADDR_MASK;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        tables: HashMap<u64, [u64; ENTRIES]>,
        next: u64,
        limit: usize,
    }

    impl TableMemory for Fake {
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables.get(&table).map_or(0, |t| t[index])
        }
        fn write(&mut self, table: u64, index: usize, value: u64) {
            self.tables.entry(table).or_insert([0; ENTRIES])[index] = value;
        }
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            self.next += 0x1000;
            self.tables.insert(self.next, [0; ENTRIES]);
            Some(self.next)
        }
    }

    fn fake() -> (Fake, u64) {
        let mut f = Fake { next: 0x10_0000, limit: 64, ..Default::default() };
        let root = f.alloc_table().unwrap();
        (f, root)
    }

    #[test]
    fn index_math() {
        let v = 0xffff_8000_4020_3000u64;
        assert_eq!(index(v, 3), 256);
        assert_eq!(index(v, 2), 1);
        assert_eq!(index(v, 1), 1);
        assert_eq!(index(v, 0), 3);
        assert!(is_canonical(v) && !is_canonical(0x0000_8000_0000_0000));
    }

    #[test]
    fn map_translate_and_rights() {
        let (mut m, root) = fake();
        let user_rw = PteFlags::USER | PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
        map(&mut m, root, 0x40_0000, 0x20_0000, PageSize::Size4K, PteFlags::USER).unwrap();
        map(&mut m, root, 0x40_1000, 0x30_0000, PageSize::Size4K, user_rw).unwrap();
        let t = translate(&m, root, 0x40_0123).unwrap();
        assert_eq!(t.paddr, 0x20_0123);
        assert!(t.flags.contains(PteFlags::USER) && !t.flags.contains(PteFlags::WRITABLE));
        let t = translate(&m, root, 0x40_1fff).unwrap();
        assert!(t.flags.contains(PteFlags::WRITABLE | PteFlags::NO_EXECUTE));
        assert_eq!(translate(&m, root, 0x40_2000), None);
        assert_eq!(map(&mut m, root, 0x40_0000, 0, PageSize::Size4K, PteFlags::USER), Err(MapError::AlreadyMapped));
        assert_eq!(map(&mut m, root, 0x40_0001, 0, PageSize::Size4K, PteFlags::USER), Err(MapError::Misaligned));
        assert_eq!(
            map(&mut m, root, 0x8000_0000_0000, 0, PageSize::Size4K, PteFlags::USER),
            Err(MapError::NonCanonical)
        );
    }

    #[test]
    fn huge_pages_and_kernel_only() {
        let (mut m, root) = fake();
        map(&mut m, root, 0xffff_8000_0020_0000, 0x20_0000, PageSize::Size2M, PteFlags::WRITABLE).unwrap();
        let t = translate(&m, root, 0xffff_8000_0031_2345).unwrap();
        assert_eq!(t.paddr, 0x31_2345);
        assert!(!t.flags.contains(PteFlags::USER));
        assert_eq!(
            map(&mut m, root, 0xffff_8000_0020_1000, 0, PageSize::Size4K, PteFlags::WRITABLE),
            Err(MapError::AlreadyMapped)
        );
    }

    #[test]
    fn out_of_tables() {
        let (mut m, root) = fake();
        m.limit = 2;
        assert_eq!(map(&mut m, root, 0x40_0000, 0, PageSize::Size4K, PteFlags::USER), Err(MapError::OutOfMemory));
    }
}
