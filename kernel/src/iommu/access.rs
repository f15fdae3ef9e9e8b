//! `VtdAccess`: the IO tables and VT-d invalidations IOSpace code goes through.
//!
//! IOSpace logic (`iospace`: mapping, table installation, assignment, destruction)
//! reaches the hardware only through this trait: second-level table entries (its
//! `TableMemory` supertrait), 16-byte root and context entries, making writes visible
//! to a non-coherent unit, and the context-cache and IOTLB invalidations. On bare
//! metal [`Vtd`] (a zero-sized type, statically dispatched) forwards each call to
//! `arch::kmem` and `unit`; host tests run the same logic against a VT-d simulator
//! whose caches drop an entry only when one of these invalidations covers it.

use crate::iommu::invalidation::ContextInvalidation;
use crate::object::cap::FrameSize;
use crate::object::paging::TableMemory;

/// What IOSpace code needs of VT-d: table memory, entries, invalidations.
pub trait VtdAccess: TableMemory {
    /// Reads the 16-byte root or context entry at `paddr`.
    fn read_entry16(&self, paddr: u64) -> [u64; 2];
    /// Writes one 8-byte half of a root or context entry (callers order the halves).
    fn write_word(&mut self, paddr: u64, value: u64);
    /// Makes `len` bytes at `paddr` the CPU wrote visible to every unit.
    fn sync_for_device(&mut self, paddr: u64, len: u64);
    /// The remapping units.
    fn unit_count(&self) -> usize;
    /// Whether unit `unit` caches not-present entries (CAP.CM).
    fn caching_mode(&self, unit: usize) -> bool;
    /// Whether any unit does (the map paths skip their scan of the units otherwise).
    fn any_caching_mode(&self) -> bool {
        (0..self.unit_count()).any(|unit| self.caching_mode(unit))
    }
    /// Whether every unit takes second-level superpage leaves of `size` (CAP.SLLPS:
    /// bit 0 for 2 MiB, bit 1 for 1 GiB; a 4 KiB leaf is always taken).
    fn all_support_superpage(&self, size: FrameSize) -> bool;
    /// Invalidates context-cache entries of unit `unit` and waits for completion.
    fn invalidate_context(&mut self, unit: usize, what: ContextInvalidation);
    /// Invalidates `domain`'s IOTLB entries for IOVAs `range` (None: all) on unit
    /// `unit` and waits for completion.
    fn invalidate_iotlb(&mut self, unit: usize, domain: u16, range: Option<(u64, u64)>);
}

/// The real hardware: the direct map and the remapping units.
#[cfg(target_os = "none")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Vtd;

#[cfg(target_os = "none")]
mod hardware {
    use super::{FrameSize, Vtd, VtdAccess};
    use crate::arch::kmem::{self, DirectMemory};
    use crate::iommu::invalidation::ContextInvalidation;
    use crate::iommu::unit;
    use crate::object::paging::TableMemory;

    impl TableMemory for Vtd {
        #[inline(always)]
        fn read(&self, table: u64, index: usize) -> u64 {
            DirectMemory.read(table, index)
        }
        #[inline(always)]
        fn write(&mut self, table: u64, index: usize, value: u64) {
            DirectMemory.write(table, index, value);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            None
        }
        #[inline(always)]
        fn clear_table(&mut self, table: u64) {
            DirectMemory.clear_table(table);
        }
    }

    impl VtdAccess for Vtd {
        #[inline(always)]
        fn read_entry16(&self, paddr: u64) -> [u64; 2] {
            kmem::read_words::<2>(paddr)
        }
        #[inline(always)]
        fn write_word(&mut self, paddr: u64, value: u64) {
            kmem::write_words(paddr, [value]);
        }
        #[inline(always)]
        fn sync_for_device(&mut self, paddr: u64, len: u64) {
            unit::sync_for_device(paddr, len);
        }
        #[inline(always)]
        fn unit_count(&self) -> usize {
            unit::unit_count()
        }
        #[inline(always)]
        fn caching_mode(&self, index: usize) -> bool {
            unit::caching_mode(index)
        }
        #[inline(always)]
        fn any_caching_mode(&self) -> bool {
            unit::any_caching_mode()
        }
        #[inline(always)]
        fn all_support_superpage(&self, size: FrameSize) -> bool {
            unit::all_support_superpage(size)
        }
        #[inline(always)]
        fn invalidate_context(&mut self, index: usize, what: ContextInvalidation) {
            unit::invalidate_context(index, what);
        }
        #[inline(always)]
        fn invalidate_iotlb(&mut self, index: usize, domain: u16, range: Option<(u64, u64)>) {
            unit::invalidate_iotlb(index, domain, range);
        }
    }
}
