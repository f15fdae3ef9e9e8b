//! Counts of IOMMU work since boot, read through the debug-console cap.
//!
//! Two counters: second-level leaf entries written or cleared (MapIO, UnmapIO, their
//! batches, unmaps at Delete/Revoke) and IOTLB invalidations completed. `make bench`
//! reads them around a batch of frames through a NIC driver to show the IOMMU work per
//! packet (`DebugConsole: IommuCounters`); nothing else uses them. One CPU runs the
//! kernel with interrupts off, so a plain load and store is enough (no locked add on
//! the MapIO path).

use core::sync::atomic::{AtomicU64, Ordering};

static LEAF_WRITES: AtomicU64 = AtomicU64::new(0);
static IOTLB_INVALIDATIONS: AtomicU64 = AtomicU64::new(0);

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

/// `n` second-level leaf entries were written or cleared.
#[inline(always)]
pub fn leaves_written(n: u64) {
    bump(&LEAF_WRITES, n);
}

/// One IOTLB invalidation completed.
#[inline(always)]
pub fn iotlb_invalidated() {
    bump(&IOTLB_INVALIDATIONS, 1);
}

/// (leaf entries written or cleared, IOTLB invalidations) since boot.
pub fn read() -> (u64, u64) {
    (LEAF_WRITES.load(Ordering::Relaxed), IOTLB_INVALIDATIONS.load(Ordering::Relaxed))
}
