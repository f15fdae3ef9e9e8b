//! DMA pages from one region the iommu-server mapped: IOVA and CPU address.
//!
//! The driver asks its iommu-server once for a region (at most 64 pages); the pool hands
//! out page runs of it (first fit, one bitmap word) for virtqueues and bounce buffers.
//! Nothing is mapped or unmapped per packet: the IOMMU work per frame is zero.

/// Page size of the pool.
pub const PAGE: u64 = 4096;

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The run is not inside the pool, not page aligned, or not (wholly) allocated.
    NotAllocated(u64),
}

/// A region of `pages` pages at `iova` for the device and `vaddr` for the CPU.
#[derive(Debug)]
pub struct Pool {
    iova: u64,
    vaddr: u64,
    pages: u32,
    used: u64,
}

impl Pool {
    /// A pool over `pages` (1..=64) pages mapped at `vaddr` whose device address is `iova`.
    pub fn new(iova: u64, vaddr: u64, pages: u32) -> Option<Self> {
        ((1..=64).contains(&pages) && iova.is_multiple_of(PAGE) && vaddr.is_multiple_of(PAGE)).then_some(Pool {
            iova,
            vaddr,
            pages,
            used: 0,
        })
    }

    fn mask(first: u32, count: u32) -> u64 {
        let ones = if count == 64 { u64::MAX } else { (1u64 << count) - 1 };
        ones << first
    }

    /// `count` contiguous pages (first fit): their IOVA and CPU address, zeroed by the caller.
    pub fn alloc(&mut self, count: u32) -> Option<(u64, u64)> {
        if count == 0 || count > self.pages {
            return None;
        }
        let first = (0..=self.pages - count).find(|&f| self.used & Self::mask(f, count) == 0)?;
        self.used |= Self::mask(first, count);
        let off = u64::from(first) * PAGE;
        Some((self.iova + off, self.vaddr + off))
    }

    /// Gives back the `count` pages at `iova`.
    pub fn free(&mut self, iova: u64, count: u32) -> Result<(), PoolError> {
        let first = self.page_of(iova, count).ok_or(PoolError::NotAllocated(iova))?;
        let m = Self::mask(first, count);
        if self.used & m != m {
            return Err(PoolError::NotAllocated(iova));
        }
        self.used &= !m;
        Ok(())
    }

    fn page_of(&self, iova: u64, count: u32) -> Option<u32> {
        let off = iova.checked_sub(self.iova)?;
        let first = u32::try_from(off / PAGE).ok()?;
        (off % PAGE == 0 && count > 0 && first.checked_add(count)? <= self.pages).then_some(first)
    }

    /// The CPU address of `len` bytes at `iova`, if inside the pool.
    pub fn vaddr_of(&self, iova: u64, len: u64) -> Option<u64> {
        let off = iova.checked_sub(self.iova)?;
        (off.checked_add(len)? <= u64::from(self.pages) * PAGE).then(|| self.vaddr + off)
    }

    /// Pages in use.
    pub fn used_pages(&self) -> u32 {
        self.used.count_ones()
    }
}

/// Pages needed for `bytes` (at least one).
pub fn pages_for(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(PAGE as usize).max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_free_and_bounds() {
        assert!(Pool::new(0x10_0000, 0x5000_0000, 65).is_none());
        assert!(Pool::new(0x10_0001, 0x5000_0000, 4).is_none());
        let mut p = Pool::new(0x10_0000, 0x5000_0000, 4).unwrap();
        assert_eq!(p.alloc(2), Some((0x10_0000, 0x5000_0000)));
        assert_eq!(p.alloc(1), Some((0x10_2000, 0x5000_2000)));
        assert_eq!(p.alloc(2), None);
        assert_eq!(p.free(0x10_0000, 2), Ok(()));
        assert_eq!(p.free(0x10_0000, 2), Err(PoolError::NotAllocated(0x10_0000)), "double free");
        assert_eq!(p.free(0x10_3000, 2), Err(PoolError::NotAllocated(0x10_3000)), "past the end");
        assert_eq!(p.free(0x10_0800, 1), Err(PoolError::NotAllocated(0x10_0800)));
        assert_eq!(p.free(0xf000, 1), Err(PoolError::NotAllocated(0xf000)));
        assert_eq!(p.alloc(2), Some((0x10_0000, 0x5000_0000)));
        assert_eq!(p.used_pages(), 3);
        assert_eq!(p.vaddr_of(0x10_3ff0, 16), Some(0x5000_3ff0));
        assert_eq!(p.vaddr_of(0x10_3ff0, 17), None);
        assert_eq!(p.vaddr_of(u64::MAX, 2), None);
        let mut full = Pool::new(0, 0, 64).unwrap();
        assert_eq!(full.alloc(64), Some((0, 0)));
        assert_eq!(full.free(0, 64), Ok(()));
        assert_eq!(pages_for(0), 1);
        assert_eq!(pages_for(4097), 2);
    }
}
