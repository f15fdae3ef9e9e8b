//! Physical memory at boot: RAM map, boot frame allocator, untyped split.
//!
//! Physical memory at boot: RAM ranges minus reserved ranges, a frame allocator for the
//! few structures the kernel builds before the root task runs, and the split of what is
//! left into naturally aligned power-of-two untyped regions.

use core::fmt;

/// Page size (the ABI's; re-exported under the name the boot code uses).
pub use abi::layout::PAGE_SIZE as PAGE;
/// Most ranges any list here holds.
pub const MAX_RANGES: usize = 64;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// A range from `start` of `len` bytes (saturating at the top of the address space).
    pub const fn new(start: u64, len: u64) -> Self {
        Range { start, end: start.saturating_add(len) }
    }
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// Whether it holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// Shrinks to whole pages (empty if no whole page fits; a start in the last page of
    /// the address space rounds to an empty range there, never wraps to 0).
    pub const fn page_inner(&self) -> Range {
        let end = self.end & !(PAGE - 1);
        let start = match self.start.checked_add(PAGE - 1) {
            Some(s) => s & !(PAGE - 1),
            None => end,
        };
        Range { start, end: if end < start { start } else { end } }
    }
    /// Grows to whole pages (an end in the last page of the address space stays at
    /// `u64::MAX`, the highest representable bound, instead of rounding down).
    pub const fn page_outer(&self) -> Range {
        let end = match self.end.checked_add(PAGE - 1) {
            Some(e) => e & !(PAGE - 1),
            None => u64::MAX,
        };
        Range { start: self.start & !(PAGE - 1), end }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#014x}..{:#014x}", self.start, self.end)
    }
}

/// A sorted, non-overlapping, fixed-capacity set of ranges.
#[derive(Clone, Debug)]
pub struct RangeSet {
    ranges: [Range; MAX_RANGES],
    len: usize,
}

/// The set is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeSetFull;

impl Default for RangeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeSet {
    /// An empty set.
    pub const fn new() -> Self {
        RangeSet { ranges: [Range { start: 0, end: 0 }; MAX_RANGES], len: 0 }
    }

    /// The ranges in ascending order.
    pub fn as_slice(&self) -> &[Range] {
        &self.ranges[..self.len]
    }

    /// Adds `r`, merging with neighbours it overlaps or touches.
    pub fn add(&mut self, r: Range) -> Result<(), RangeSetFull> {
        if r.is_empty() {
            return Ok(());
        }
        let mut merged = r;
        let mut out = [Range::default(); MAX_RANGES];
        let mut n = 0;
        let mut placed = false;
        for &cur in self.as_slice() {
            if cur.end < merged.start {
                out[n] = cur;
                n += 1;
            } else if merged.end < cur.start {
                if !placed {
                    if n == MAX_RANGES {
                        return Err(RangeSetFull);
                    }
                    out[n] = merged;
                    n += 1;
                    placed = true;
                }
                if n == MAX_RANGES {
                    return Err(RangeSetFull);
                }
                out[n] = cur;
                n += 1;
            } else {
                merged = Range { start: merged.start.min(cur.start), end: merged.end.max(cur.end) };
            }
        }
        if !placed {
            if n == MAX_RANGES {
                return Err(RangeSetFull);
            }
            out[n] = merged;
            n += 1;
        }
        self.ranges = out;
        self.len = n;
        Ok(())
    }

    /// Removes every byte of `r`.
    pub fn remove(&mut self, r: Range) -> Result<(), RangeSetFull> {
        if r.is_empty() {
            return Ok(());
        }
        let mut out = [Range::default(); MAX_RANGES];
        let mut n = 0;
        for &cur in self.as_slice() {
            let pieces = [
                Range { start: cur.start, end: cur.end.min(r.start) },
                Range { start: cur.start.max(r.end), end: cur.end },
            ];
            for piece in pieces {
                if !piece.is_empty() {
                    if n == MAX_RANGES {
                        return Err(RangeSetFull);
                    }
                    out[n] = piece;
                    n += 1;
                }
            }
        }
        self.ranges = out;
        self.len = n;
        Ok(())
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(Range::len).sum()
    }

    /// Whether `[start, start+len)` lies entirely inside one range.
    pub fn contains(&self, r: Range) -> bool {
        self.as_slice().iter().any(|c| c.start <= r.start && r.end <= c.end)
    }

    /// Whether any byte of `r` is in the set.
    pub fn overlaps(&self, r: Range) -> bool {
        self.as_slice().iter().any(|c| c.start < r.end && r.start < c.end)
    }
}

/// Hands out zeroable 4 KiB frames from free RAM during boot, lowest address first,
/// and remembers how much it handed out so the rest can become untyped memory.
#[derive(Clone, Debug)]
pub struct BootAllocator {
    free: RangeSet,
    allocated: u64,
}

/// Boot memory ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBootMemory;

impl BootAllocator {
    /// An allocator over the page-aligned parts of `free`.
    pub fn new(free: &RangeSet) -> Self {
        let mut aligned = RangeSet::new();
        for r in free.as_slice() {
            // Cannot overflow: the input set had no more ranges than the capacity.
            let _ = aligned.add(r.page_inner());
        }
        BootAllocator { free: aligned, allocated: 0 }
    }

    /// Takes `count` physically contiguous frames aligned to `align` bytes (a power of two >= 4096).
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Result<u64, OutOfBootMemory> {
        let size = count.checked_mul(PAGE).ok_or(OutOfBootMemory)?;
        let found = self.free.as_slice().iter().find_map(|r| {
            let start = r.start.checked_add(align - 1)? & !(align - 1);
            (start.checked_add(size)? <= r.end).then_some(start)
        });
        let start = found.ok_or(OutOfBootMemory)?;
        self.free.remove(Range::new(start, size)).map_err(|_| OutOfBootMemory)?;
        self.allocated += size;
        Ok(start)
    }

    /// Takes one frame.
    pub fn alloc_frame(&mut self) -> Result<u64, OutOfBootMemory> {
        self.alloc_contiguous(1, PAGE)
    }

    /// Bytes handed out so far.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// What is still free.
    pub fn free(&self) -> &RangeSet {
        &self.free
    }
}

/// One naturally aligned power-of-two region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Base address, aligned to `1 << size_bits`.
    pub paddr: u64,
    /// log2 of the size.
    pub size_bits: u8,
}

/// Splits `[start, end)` into the fewest naturally aligned power-of-two blocks of at
/// least `1 << min_bits` and at most `1 << max_bits` bytes, calling `emit` for each.
/// Bytes that cannot form a block of `min_bits` (unaligned head/tail) are skipped.
pub fn split_power_of_two(range: Range, min_bits: u32, max_bits: u32, mut emit: impl FnMut(Block)) {
    let min = 1u64 << min_bits;
    let mut start = match range.start.checked_add(min - 1) {
        Some(s) => s & !(min - 1),
        None => return,
    };
    let end = range.end & !(min - 1);
    while start < end {
        let align_bits = if start == 0 { 63 } else { start.trailing_zeros() };
        let fit_bits = 63 - (end - start).leading_zeros();
        let bits = align_bits.min(fit_bits).min(max_bits);
        emit(Block { paddr: start, size_bits: bits as u8 });
        start += 1u64 << bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn add_merges_and_remove_splits() {
        let mut s = RangeSet::new();
        s.add(Range { start: 0x1000, end: 0x3000 }).unwrap();
        s.add(Range { start: 0x5000, end: 0x6000 }).unwrap();
        s.add(Range { start: 0x3000, end: 0x4000 }).unwrap();
        assert_eq!(s.as_slice(), &[Range { start: 0x1000, end: 0x4000 }, Range { start: 0x5000, end: 0x6000 }]);
        s.remove(Range { start: 0x2000, end: 0x5800 }).unwrap();
        assert_eq!(s.as_slice(), &[Range { start: 0x1000, end: 0x2000 }, Range { start: 0x5800, end: 0x6000 }]);
        assert_eq!(s.total(), 0x1800);
        assert!(s.overlaps(Range::new(0x1fff, 1)) && !s.overlaps(Range::new(0x2000, 0x3800)));
    }

    #[test]
    fn full_set_reports_error() {
        let mut s = RangeSet::new();
        for i in 0..MAX_RANGES as u64 {
            s.add(Range::new(i * 0x10000, 0x1000)).unwrap();
        }
        assert_eq!(s.add(Range::new(0x1000_0000, 0x1000)), Err(RangeSetFull));
        // Removing from the middle of a range would need one more slot.
        assert_eq!(s.remove(Range::new(0x400, 0x100)), Err(RangeSetFull));
    }

    #[test]
    fn split_covers_exactly_with_aligned_blocks() {
        let r = Range { start: 0x10_3000, end: 0x7fe0_0000 };
        let mut blocks = Vec::new();
        split_power_of_two(r, 12, 47, |b| blocks.push(b));
        let mut at = r.start;
        for b in &blocks {
            assert_eq!(b.paddr, at);
            assert_eq!(b.paddr % (1 << b.size_bits), 0);
            at += 1 << b.size_bits;
        }
        assert_eq!(at, r.end);
        assert!(blocks.len() < 40);
    }

    #[test]
    fn split_respects_limits_and_skips_slivers() {
        let mut blocks = Vec::new();
        split_power_of_two(Range { start: 0x800, end: 0x2_0000_0800 }, 12, 30, |b| blocks.push(b));
        assert!(blocks.iter().all(|b| (12..=30).contains(&(b.size_bits as u32))));
        assert_eq!(blocks[0].paddr, 0x1000);
        let total: u64 = blocks.iter().map(|b| 1u64 << b.size_bits).sum();
        assert_eq!(total, 0x2_0000_0000 - 0x1000);
    }

    #[test]
    fn page_rounding_near_the_top_does_not_wrap() {
        // A memory-map entry at the very top: rounding its start up must not wrap to 0.
        let top = Range { start: u64::MAX - 0x800, end: u64::MAX };
        assert!(top.page_inner().is_empty());
        assert_ne!(top.page_inner().start, 0);
        assert_eq!(top.page_outer(), Range { start: !(PAGE - 1), end: u64::MAX });
        let near = Range::new(0xffff_ffff_ffff_e000, 0x1_0000);
        assert_eq!(near.page_inner(), Range { start: 0xffff_ffff_ffff_e000, end: 0xffff_ffff_ffff_f000 });
        let mut free = RangeSet::new();
        free.add(Range { start: 0x10_0000, end: 0x20_0000 }).unwrap();
        free.add(Range { start: u64::MAX - 0x10, end: u64::MAX }).unwrap();
        let mut a = BootAllocator::new(&free);
        assert_eq!(a.alloc_frame(), Ok(0x10_0000), "the first boot frame is never 0");
        assert!(!a.free().overlaps(Range::new(0, 0x10_0000)));
    }

    proptest::proptest! {
        /// Page rounding stays inside (inner) or around (outer) the range, never wraps.
        #[test]
        fn page_rounding_is_sound(
            below_top in proptest::prop_oneof![0u64..0x2000, 0u64..(1 << 20)],
            len in 0u64..(1 << 21),
        ) {
            let r = Range::new(u64::MAX - below_top, len);
            let inner = r.page_inner();
            proptest::prop_assert!(inner.is_empty() || (r.start <= inner.start && inner.end <= r.end));
            proptest::prop_assert!(inner.start.is_multiple_of(PAGE) && inner.end.is_multiple_of(PAGE));
            let outer = r.page_outer();
            proptest::prop_assert!(outer.start <= r.start && (r.end <= outer.end || outer.end == u64::MAX));
        }

        /// The untyped split of a range near 2^64 covers exactly its aligned part.
        #[test]
        fn split_near_the_top_stays_inside(
            below_top in proptest::prop_oneof![0u64..0x2000, 0u64..(1 << 40)],
            len in 0u64..(1 << 40),
        ) {
            let r = Range::new(u64::MAX - below_top, len);
            let mut covered = 0u64;
            split_power_of_two(r, 12, 47, |b| {
                let end = b.paddr.checked_add(1 << b.size_bits);
                assert!(b.paddr >= r.start && end.is_some_and(|e| e <= r.end), "{b:?} outside {r}");
                covered += 1 << b.size_bits;
            });
            proptest::prop_assert_eq!(covered, r.page_inner().len());
        }

        /// The boot allocator never hands out a frame outside the (page-aligned) input.
        #[test]
        fn allocator_stays_inside_free_memory(
            below_top in proptest::prop_oneof![0u64..0x2000, 0u64..(1 << 24)],
            len in 1u64..(1 << 24),
        ) {
            let mut free = RangeSet::new();
            free.add(Range { start: 0x10_0000, end: 0x10_2000 }).unwrap();
            free.add(Range::new(u64::MAX - below_top, len)).unwrap();
            let mut a = BootAllocator::new(&free);
            while let Ok(frame) = a.alloc_frame() {
                proptest::prop_assert!(free.contains(Range::new(frame, PAGE)), "frame {:#x}", frame);
                proptest::prop_assert!(frame.checked_add(PAGE).is_some());
            }
        }
    }

    #[test]
    fn allocator_takes_aligned_frames_and_accounts() {
        let mut free = RangeSet::new();
        free.add(Range { start: 0x1800, end: 0x4000 }).unwrap();
        free.add(Range { start: 0x10_0000, end: 0x20_0000 }).unwrap();
        let mut a = BootAllocator::new(&free);
        assert_eq!(a.alloc_frame(), Ok(0x2000));
        assert_eq!(a.alloc_contiguous(2, 0x1000), Ok(0x10_0000));
        assert_eq!(a.alloc_contiguous(1, 0x4000), Ok(0x10_4000));
        assert_eq!(a.allocated(), 4 * PAGE);
        assert_eq!(a.alloc_contiguous(0x1000, PAGE), Err(OutOfBootMemory));
        assert!(!a.free().overlaps(Range::new(0x2000, PAGE)));
    }
}
