//! `virtio_drivers::Hal` over the driver's IOVA pool and bounce buffers.
//!
//! The crate asks for DMA memory (virtqueues) and shares caller memory (frame buffers on
//! the heap, which the device cannot reach). Both come from the [`Pool`] installed with
//! [`PoolHal::install`]: `share` copies the caller's bytes into pool pages (for buffers
//! the device reads) and returns their IOVA, `unshare` copies back what the device wrote.
//! BAR addresses are the synthetic ones of [`crate::config`], turned into the driver's
//! BAR mappings.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::config::{window_of, BarWindow};
use crate::pool::{pages_for, Pool};

static POOL: Mutex<Option<Pool>> = Mutex::new(None);
static BARS: Mutex<[Option<BarWindow>; 6]> = Mutex::new([None; 6]);
/// The fault scenarios' wrong address for the next `share` (0: none).
static MISDIRECT: AtomicU64 = AtomicU64::new(0);

/// The Hal: every address it gives the device is an IOVA of the installed pool.
pub struct PoolHal;

impl PoolHal {
    /// Installs the pool and BAR windows (replacing earlier ones).
    pub fn install(pool: Pool, bars: [Option<BarWindow>; 6]) {
        *POOL.lock() = Some(pool);
        *BARS.lock() = bars;
    }

    /// Makes the next `share` hand the device `iova` instead of its bounce buffer: what
    /// a buggy or hostile driver can make its device do. The fault scenarios use it to
    /// show that the device's domain blocks the access and the iommu-server reports it;
    /// nothing in the driver's own memory depends on the outcome.
    pub fn misdirect_next_share(iova: u64) {
        MISDIRECT.store(iova, Ordering::Relaxed);
    }

    /// Pages of the pool in use (queues and buffers shared right now).
    pub fn used_pages() -> u32 {
        POOL.lock().as_ref().map_or(0, Pool::used_pages)
    }

    fn alloc(pages: u32) -> Option<(u64, u64)> {
        let (iova, vaddr) = POOL.lock().as_mut()?.alloc(pages)?;
        // SAFETY: the pool's pages are mapped read-write at `vaddr` for this driver alone and
        // were just taken from the free set, so nothing else refers to them.
        unsafe { core::ptr::write_bytes(vaddr as *mut u8, 0, pages as usize * 4096) };
        Some((iova, vaddr))
    }
}

// SAFETY: `dma_alloc` returns zeroed pool pages that stay mapped (pool memory is never
// unmapped while the driver runs) and are not handed out again until `dma_dealloc`;
// `share` returns IOVAs of private bounce pages holding the buffer's bytes; addresses
// from `mmio_phys_to_virt` lie inside a BAR mapping (checked, or it panics).
unsafe impl Hal for PoolHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let got = u32::try_from(pages).ok().and_then(Self::alloc);
        match got.and_then(|(iova, vaddr)| Some((iova, NonNull::new(vaddr as *mut u8)?))) {
            Some(ok) => ok,
            None => (0, NonNull::dangling()), // the crate reports Error::DmaError
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        let freed = POOL.lock().as_mut().map(|p| p.free(paddr, u32::try_from(pages).unwrap_or(0)));
        if matches!(freed, Some(Ok(()))) {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let vaddr = window_of(&BARS.lock(), paddr, size as u64);
        match vaddr.and_then(|v| NonNull::new(v as *mut u8)) {
            Some(v) => v,
            None => panic!("virtio-net: MMIO {paddr:#x}+{size:#x} is in no BAR mapping"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let Some((iova, vaddr)) = Self::alloc(pages_for(len)) else {
            panic!("virtio-net: bounce pool exhausted sharing {len} bytes");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes (Hal::share's contract);
            // the bounce pages hold at least `len` bytes and do not overlap it.
            unsafe { core::ptr::copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), vaddr as *mut u8, len) };
        }
        match MISDIRECT.swap(0, Ordering::Relaxed) {
            0 => iova,
            // The bounce pages stay allocated: `unshare` cannot name them any more.
            wrong => wrong,
        }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        let mut pool = POOL.lock();
        let Some(pool) = pool.as_mut() else { return };
        if direction != BufferDirection::DriverToDevice {
            if let Some(vaddr) = pool.vaddr_of(paddr, len as u64) {
                // SAFETY: `paddr` came from `share` for this buffer, so `vaddr` holds `len`
                // bytes of bounce pages; the caller's buffer is valid and writable for `len`.
                unsafe { core::ptr::copy_nonoverlapping(vaddr as *const u8, buffer.as_ptr().cast::<u8>(), len) };
            }
        }
        let _ = pool.free(paddr, pages_for(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::bar_address;

    #[test]
    fn bounce_buffers_copy_both_ways_and_queues_come_from_the_pool() {
        let region = alloc::vec![0x5au8; 8 * 4096 + 4096];
        let base = (region.as_ptr() as u64).next_multiple_of(4096);
        let mut bars = [None; 6];
        bars[4] = Some(BarWindow { vaddr: 0x7000_0000, size: 0x4000 });
        PoolHal::install(Pool::new(0x10_0000, base, 8).unwrap(), bars);

        let (iova, vaddr) = PoolHal::dma_alloc(2, BufferDirection::Both);
        assert_eq!(iova, 0x10_0000);
        // SAFETY: the pool pages lie inside `region`.
        assert!(unsafe { core::slice::from_raw_parts(vaddr.as_ptr(), 8192) }.iter().all(|&b| b == 0), "zeroed");

        let mut out = [1u8, 2, 3, 4];
        let shared = NonNull::from(&mut out[..]);
        // SAFETY: `out` outlives the share; the pool is installed.
        let at = unsafe { PoolHal::share(shared, BufferDirection::DriverToDevice) };
        assert_eq!(at, 0x10_2000);
        let dev = (base + 0x2000) as *mut u8;
        // SAFETY: the bounce page lies inside `region`.
        assert_eq!(unsafe { core::slice::from_raw_parts(dev, 4) }, &[1, 2, 3, 4]);
        // SAFETY: as above; the device "writes" the bounce page.
        unsafe { dev.write_bytes(9, 4) };
        // SAFETY: `at` came from `share` of this buffer.
        unsafe { PoolHal::unshare(at, shared, BufferDirection::DeviceToDriver) };
        assert_eq!(out, [9, 9, 9, 9], "the device's bytes reach the caller's buffer");
        assert_eq!(PoolHal::used_pages(), 2, "the bounce page went back");

        // SAFETY: freeing what dma_alloc gave; a second free is refused.
        assert_eq!(unsafe { PoolHal::dma_dealloc(iova, vaddr, 2) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { PoolHal::dma_dealloc(iova, vaddr, 2) }, -1);
        assert_eq!(PoolHal::dma_alloc(9, BufferDirection::Both).0, 0, "too large: DmaError");
        // SAFETY: inside BAR 4's window.
        assert_eq!(unsafe { PoolHal::mmio_phys_to_virt(bar_address(4) + 0x1000, 4) }.as_ptr() as u64, 0x7000_1000);
        let outside = std::panic::catch_unwind(|| {
            // SAFETY: the call only computes an address (and panics outside every window).
            unsafe { PoolHal::mmio_phys_to_virt(bar_address(4) + 0x3ffc, 8) }
        });
        assert!(outside.is_err(), "MMIO past the BAR's end is refused");
    }
}
