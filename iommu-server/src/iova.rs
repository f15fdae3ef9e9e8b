//! IOVA allocation: DMA mask, guard pages, never the MSI window.
//!
//! Besides first-fit buffers, a driver may place single frames at IOVAs it names
//! ([`IovaAllocator::reserve`]): anywhere below the limit, 0 included, but never in the
//! MSI window or on a range (buffer, guard page, placed frame, quarantine) in use.

use abi::iommu::{GUARD_PAGES, IOVA_BASE, MSI_WINDOW};
use abi::layout::PAGE_SIZE;
use alloc::vec::Vec;

/// One allocated IOVA range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First IOVA (page aligned).
    pub start: u64,
    /// Pages of the buffer (guard pages not counted).
    pub pages: u64,
    /// Unmapped guard pages after it: [`GUARD_PAGES`] for a buffer, 0 for a frame the
    /// driver placed itself (`reserve`) and for the quarantine record.
    pub guard: u64,
}

impl Range {
    /// One past the last byte of the buffer.
    pub const fn end(&self) -> u64 {
        self.start + self.pages * PAGE_SIZE
    }
    /// One past the last byte of the buffer and its guard.
    const fn guarded_end(&self) -> u64 {
        self.end() + self.guard * PAGE_SIZE
    }
}

/// First-fit IOVA allocator of one domain. Every buffer is followed by
/// [`GUARD_PAGES`] unmapped pages, no range touches [`MSI_WINDOW`] (nor the guard page
/// in front of it), and every IOVA lies below `limit` (`2^dma_mask_bits`, capped by the
/// IOMMU's address width).
#[derive(Debug)]
pub struct IovaAllocator {
    limit: u64,
    /// Allocated ranges, sorted by start.
    ranges: Vec<Range>,
}

/// The exclusive IOVA limit for a device with `dma_mask_bits` behind an IOMMU that
/// translates `address_bits`; `None` if the mask is outside 12..=64.
pub fn iova_limit(dma_mask_bits: u8, address_bits: u8) -> Option<u64> {
    if !(12..=64).contains(&dma_mask_bits) {
        return None;
    }
    let bits = dma_mask_bits.min(address_bits).min(63);
    Some(1u64 << bits)
}

impl IovaAllocator {
    /// An empty allocator handing out IOVAs below `limit`.
    pub fn new(limit: u64) -> Self {
        IovaAllocator { limit, ranges: Vec::new() }
    }

    /// The exclusive upper bound of every IOVA.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Allocated ranges, lowest first.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// A range of `pages` pages, lowest address first; `None` if nothing fits.
    pub fn alloc(&mut self, pages: u64) -> Option<u64> {
        if pages == 0 {
            return None;
        }
        let span = (pages + GUARD_PAGES).checked_mul(PAGE_SIZE)?;
        let mut candidate = IOVA_BASE;
        let mut at = 0;
        loop {
            // The buffer and its guard end before the MSI window or start after it.
            if candidate < MSI_WINDOW.end && candidate.checked_add(span)? > MSI_WINDOW.start {
                candidate = MSI_WINDOW.end;
            }
            if candidate.checked_add(span)? > self.limit {
                return None;
            }
            while self.ranges.get(at).is_some_and(|r| r.guarded_end() <= candidate) {
                at += 1;
            }
            match self.ranges.get(at) {
                Some(next) if candidate + span > next.start => candidate = next.guarded_end(),
                _ => {
                    self.ranges.insert(at, Range { start: candidate, pages, guard: GUARD_PAGES });
                    return Some(candidate);
                }
            }
        }
    }

    /// The range starting at `iova`.
    pub fn find(&self, iova: u64) -> Option<Range> {
        self.ranges.iter().copied().find(|r| r.start == iova)
    }

    /// Frees the range starting at `iova`; returns it.
    pub fn free(&mut self, iova: u64) -> Option<Range> {
        let at = self.ranges.iter().position(|r| r.start == iova)?;
        Some(self.ranges.remove(at))
    }

    /// Turns every allocated range into one dead range from the lowest start to the
    /// highest guarded end (quarantine with bounded bookkeeping: however many instances
    /// come and go, the dead IOVAs of all of them take one record; the gaps between
    /// them die too, and the domain's IOVA space only ever moves up).
    pub fn quarantine_all(&mut self) {
        let (Some(first), Some(last)) = (self.ranges.first().copied(), self.ranges.last().copied()) else {
            return;
        };
        let end = self.ranges.iter().map(Range::guarded_end).max().unwrap_or(last.guarded_end());
        let pages = (end - first.start) / PAGE_SIZE;
        self.ranges.clear();
        self.ranges.push(Range { start: first.start, pages, guard: 0 });
    }

    /// Reserves `pages` pages at `start` with no guard page (a frame the driver places
    /// itself); `false` (nothing reserved) if `start` is unaligned, the range reaches the limit or the MSI
    /// window, or touches a range in use (a buffer's guard page included).
    pub fn reserve(&mut self, start: u64, pages: u64) -> bool {
        let Some(end) = pages.checked_mul(PAGE_SIZE).and_then(|b| start.checked_add(b)) else { return false };
        if !start.is_multiple_of(PAGE_SIZE) || pages == 0 || end > self.limit {
            return false;
        }
        if start < MSI_WINDOW.end && end > MSI_WINDOW.start {
            return false;
        }
        let at = self.ranges.partition_point(|r| r.start < start);
        let before_ok = at == 0 || self.ranges[at - 1].guarded_end() <= start;
        let after_ok = self.ranges.get(at).is_none_or(|r| end <= r.start);
        if !(before_ok && after_ok) {
            return false;
        }
        self.ranges.insert(at, Range { start, pages, guard: 0 });
        true
    }

    /// Forgets every range (a reset domain starts empty).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_mask_and_the_unit() {
        assert_eq!(iova_limit(28, 39), Some(1 << 28));
        assert_eq!(iova_limit(64, 39), Some(1 << 39));
        assert_eq!(iova_limit(64, 64), Some(1 << 63));
        assert_eq!(iova_limit(11, 39), None);
        assert_eq!(iova_limit(65, 39), None);
    }

    #[test]
    fn buffers_are_separated_by_a_guard_page() {
        let mut a = IovaAllocator::new(1 << 28);
        let x = a.alloc(1).unwrap();
        let y = a.alloc(2).unwrap();
        let z = a.alloc(1).unwrap();
        assert_eq!(x, IOVA_BASE);
        assert_eq!(y, x + 2 * PAGE_SIZE);
        assert_eq!(z, y + 3 * PAGE_SIZE);
        // A freed hole is reused only when the buffer and its guard fit.
        assert_eq!(a.free(y), Some(Range { start: y, pages: 2, guard: GUARD_PAGES }));
        assert_eq!(a.alloc(3), Some(z + 2 * PAGE_SIZE));
        assert_eq!(a.alloc(2), Some(y));
        assert_eq!(a.free(0x1234), None);
    }

    #[test]
    fn everything_below_the_limit() {
        // 8 pages above IOVA_BASE: buffer + guard pairs until the limit.
        let mut a = IovaAllocator::new(IOVA_BASE + 8 * PAGE_SIZE);
        let got: Vec<u64> = core::iter::from_fn(|| a.alloc(1)).collect();
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|&i| i + 2 * PAGE_SIZE <= a.limit()));
        assert_eq!(a.alloc(1), None);
        let mut small = IovaAllocator::new(IOVA_BASE);
        assert_eq!(small.alloc(1), None);
    }

    #[test]
    fn never_the_msi_window() {
        let mut a = IovaAllocator::new(1 << 39);
        // Fill up to just below the window with one big buffer ...
        let below = (MSI_WINDOW.start - IOVA_BASE) / PAGE_SIZE - 3;
        let mut placed = Vec::new();
        let mut left = below;
        while left > 0 {
            let n = left.min(64);
            placed.push(a.alloc(n).unwrap());
            left = left.saturating_sub(n + 1);
        }
        // ... the next buffers land after the window, never in it.
        for _ in 0..8 {
            let at = a.alloc(16).unwrap();
            let r = a.find(at).unwrap();
            assert!(r.end() + PAGE_SIZE <= MSI_WINDOW.start || r.start >= MSI_WINDOW.end, "{r:?}");
        }
        for r in a.ranges() {
            assert!(r.guarded_end() <= MSI_WINDOW.start || r.start >= MSI_WINDOW.end, "{r:?}");
        }
        assert_eq!(a.alloc(0), None);
    }

    #[test]
    fn a_limit_at_the_msi_window_leaves_no_room_above() {
        let mut a = IovaAllocator::new(MSI_WINDOW.start + 0x1_0000);
        while let Some(at) = a.alloc(64) {
            let r = a.find(at).unwrap();
            assert!(r.guarded_end() <= MSI_WINDOW.start, "{r:?}");
        }
    }

    #[test]
    fn quarantine_keeps_one_record_however_many_instances_die() {
        let mut a = IovaAllocator::new(1 << 28);
        for _ in 0..1000 {
            a.alloc(4).unwrap();
            a.alloc(1).unwrap();
            a.quarantine_all();
            assert_eq!(a.ranges().len(), 1, "one dead record");
        }
        let dead = a.ranges()[0];
        let next = a.alloc(1).unwrap();
        assert!(next >= dead.guarded_end(), "a new IOVA {next:#x} inside the dead range");
    }

    #[test]
    fn reserved_frames_go_where_the_driver_says_or_nowhere() {
        let mut a = IovaAllocator::new(1 << 28);
        // IOVA 0 and the pages after it, contiguous (no guard between them).
        for page in 0..4 {
            assert!(a.reserve(page * PAGE_SIZE, 1));
        }
        assert!(!a.reserve(PAGE_SIZE, 1), "in use");
        assert!(!a.reserve(0x123, 1), "unaligned");
        assert!(!a.reserve((1 << 28) - PAGE_SIZE, 2), "past the limit");
        assert!(!a.reserve(!0xfff, 1), "wraps");
        let mut big = IovaAllocator::new(1 << 39);
        assert!(!big.reserve(MSI_WINDOW.start, 1), "the MSI window");
        assert!(!big.reserve(MSI_WINDOW.start - PAGE_SIZE, 2), "reaches into the MSI window");
        // Buffers keep away from placed frames, and placed frames from buffers and guards.
        let buf = a.alloc(1).unwrap();
        assert_eq!(buf, IOVA_BASE);
        assert!(!a.reserve(buf, 1), "on a buffer");
        assert!(!a.reserve(buf + PAGE_SIZE, 1), "on a buffer's guard page");
        assert!(a.reserve(buf + 2 * PAGE_SIZE, 1));
        assert_eq!(a.alloc(1), Some(buf + 3 * PAGE_SIZE), "first fit skips the placed frame");
        assert!(a.reserve(buf - PAGE_SIZE, 1), "right below a buffer");
        // Quarantine covers placed frames too.
        a.quarantine_all();
        assert_eq!(a.ranges().len(), 1);
        assert!(!a.reserve(0, 1));
        assert!(!a.reserve(buf + 2 * PAGE_SIZE, 1));
        assert!(a.alloc(1).unwrap() >= buf + 5 * PAGE_SIZE);
    }
}
