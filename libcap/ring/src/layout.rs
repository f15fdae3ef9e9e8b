//! Where the rings sit in a queue region: conventions drivers and clients share.
//!
//! A client of a driver gets two shared regions from the system description: a *queue
//! region* holding the rings below, one 4 KiB page each, and a *data region* holding the
//! buffers the entries name by offset. One notification channel each way says "look at
//! the rings" (the waiting flags of each ring say whether a signal is wanted).

use core::sync::atomic::{AtomicU32, Ordering};

/// Bytes of each ring in a queue region (one page).
pub const RING_BYTES: usize = 4096;

/// A NIC client's rings and the link facts, by page index in its queue region
/// ([`net::PAGES`] pages).
pub mod net {
    use super::{ring_base, RING_BYTES};
    use crate::{BufDesc, Consumer, Producer, RingError, RingMemory};

    /// What the driver tells its client about the link (page [`INFO`]).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct NicInfo {
        /// The station address frames go out with.
        pub mac: [u8; 6],
        /// [`NIC_LOOPBACK`] and zeros.
        pub flags: u16,
        /// The largest frame the driver sends or receives, in bytes.
        pub max_frame: u32,
    }

    /// [`NicInfo::flags`]: the device loops every frame sent back to the receive ring
    /// (nothing reaches the wire; the benchmarks use it).
    pub const NIC_LOOPBACK: u16 = 1;

    /// `INFO` page word 0 once the driver has written a [`NicInfo`] after it.
    pub const INFO_READY: u32 = 0x4e49_4331;

    /// Writes `info` to the queue region at `base`, then marks it ready (release).
    ///
    /// # Safety
    /// As [`driver`].
    pub unsafe fn publish_info(base: *mut u8, info: NicInfo) {
        // SAFETY: forwarded to the caller; the INFO page is part of the queue region.
        unsafe { super::publish(ring_base(base, INFO), info, INFO_READY) }
    }

    /// The driver's [`NicInfo`], once it is ready (acquire pairs with the publish).
    ///
    /// # Safety
    /// As [`client`].
    pub unsafe fn read_info(base: *mut u8) -> Option<NicInfo> {
        // SAFETY: as in `publish_info`; every bit pattern is a valid `NicInfo`.
        unsafe { super::read(ring_base(base, INFO), INFO_READY) }
    }

    /// The driver's ends: it consumes offered and outgoing buffers and produces
    /// received and sent ones.
    pub struct DriverEnds {
        /// Empty buffers the client offers.
        pub rx_free: Consumer<BufDesc>,
        /// Received frames for the client.
        pub rx_active: Producer<BufDesc>,
        /// Frames the client wants sent.
        pub tx_active: Consumer<BufDesc>,
        /// Sent buffers handed back.
        pub tx_free: Producer<BufDesc>,
    }

    /// The client's ends (the mirror image).
    pub struct ClientEnds {
        /// Empty buffers offered to the driver.
        pub rx_free: Producer<BufDesc>,
        /// Received frames.
        pub rx_active: Consumer<BufDesc>,
        /// Frames to send.
        pub tx_active: Producer<BufDesc>,
        /// Sent buffers back from the driver.
        pub tx_free: Consumer<BufDesc>,
    }

    /// The ring at page `index` of the queue region at `base`.
    ///
    /// # Safety
    /// As [`RingMemory::new`]: the page stays mapped and is used only as this ring.
    unsafe fn ring(base: *mut u8, index: usize) -> Result<RingMemory<BufDesc>, RingError> {
        // SAFETY: forwarded to the caller.
        unsafe { RingMemory::new(ring_base(base, index), RING_BYTES) }
    }

    /// The driver's ends of the queue region at `base` ([`PAGES`] pages).
    ///
    /// # Safety
    /// `base` must map the whole queue region for as long as the ends live, shared
    /// with exactly one client.
    pub unsafe fn driver(base: *mut u8) -> Result<DriverEnds, RingError> {
        // SAFETY: forwarded to the caller, one page per ring.
        unsafe {
            Ok(DriverEnds {
                rx_free: Consumer::new(ring(base, RX_FREE)?)?,
                rx_active: Producer::new(ring(base, RX_ACTIVE)?)?,
                tx_active: Consumer::new(ring(base, TX_ACTIVE)?)?,
                tx_free: Producer::new(ring(base, TX_FREE)?)?,
            })
        }
    }

    /// The client's ends of the queue region at `base`.
    ///
    /// # Safety
    /// As [`driver`], shared with exactly one driver.
    pub unsafe fn client(base: *mut u8) -> Result<ClientEnds, RingError> {
        // SAFETY: forwarded to the caller.
        unsafe {
            Ok(ClientEnds {
                rx_free: Producer::new(ring(base, RX_FREE)?)?,
                rx_active: Consumer::new(ring(base, RX_ACTIVE)?)?,
                tx_active: Producer::new(ring(base, TX_ACTIVE)?)?,
                tx_free: Consumer::new(ring(base, TX_FREE)?)?,
            })
        }
    }

    /// Client -> driver: empty buffers the driver may fill with received frames.
    pub const RX_FREE: usize = 0;
    /// Driver -> client: filled buffers (`len` = frame length).
    pub const RX_ACTIVE: usize = 1;
    /// Client -> driver: frames to send.
    pub const TX_ACTIVE: usize = 2;
    /// Driver -> client: sent buffers handed back.
    pub const TX_FREE: usize = 3;
    /// Driver -> client: the [`NicInfo`].
    pub const INFO: usize = 4;
    /// Pages in a NIC client's queue region.
    pub const PAGES: usize = 5;
}

/// A block client's rings and the disk facts, by page index in its queue region
/// ([`block::PAGES`] pages).
pub mod block {
    use super::{ring_base, RING_BYTES};
    use crate::{BlockRequest, Consumer, Producer, RingError, RingMemory};

    /// Client -> driver: requests ([`crate::BlockRequest`]).
    pub const REQUEST: usize = 0;
    /// Driver -> client: completions (the request with `status` filled in).
    pub const COMPLETION: usize = 1;
    /// Driver -> client: the [`BlockInfo`].
    pub const INFO: usize = 2;
    /// Pages in a block client's queue region.
    pub const PAGES: usize = 3;

    /// Completion status: done.
    pub const STATUS_OK: u32 = 0;
    /// Completion status: `op` is no [`crate::BlockOp`].
    pub const STATUS_BAD_OP: u32 = 1;
    /// Completion status: the buffer lies outside the data region (refused, not followed).
    pub const STATUS_OUT_OF_REGION: u32 = 2;
    /// Completion status: more than [`BlockInfo::max_blocks`] blocks, or none.
    pub const STATUS_TOO_LARGE: u32 = 3;
    /// Completion status: the blocks lie past the end of the disk.
    pub const STATUS_OUT_OF_DISK: u32 = 4;
    /// Completion status: the device reported an error.
    pub const STATUS_DEVICE: u32 = 5;

    /// What the driver tells its client about the disk (page [`INFO`]).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BlockInfo {
        /// Logical blocks on the disk.
        pub blocks: u64,
        /// Bytes per block.
        pub block_size: u32,
        /// Most blocks one request may move.
        pub max_blocks: u32,
    }

    /// `INFO` page word 0 once the driver has written a [`BlockInfo`] after it.
    pub const INFO_READY: u32 = 0x424c_4b31;

    /// The driver's ends.
    pub struct DriverEnds {
        /// Requests from the client.
        pub request: Consumer<BlockRequest>,
        /// Completions to the client.
        pub completion: Producer<BlockRequest>,
    }

    /// The client's ends.
    pub struct ClientEnds {
        /// Requests to the driver.
        pub request: Producer<BlockRequest>,
        /// Completions from the driver.
        pub completion: Consumer<BlockRequest>,
    }

    /// # Safety
    /// As [`RingMemory::new`]: the page stays mapped and is used only as this ring.
    unsafe fn ring(base: *mut u8, index: usize) -> Result<RingMemory<BlockRequest>, RingError> {
        // SAFETY: forwarded to the caller.
        unsafe { RingMemory::new(ring_base(base, index), RING_BYTES) }
    }

    /// The driver's ends of the queue region at `base` ([`PAGES`] pages).
    ///
    /// # Safety
    /// `base` must map the whole queue region for as long as the ends live, shared
    /// with exactly one client.
    pub unsafe fn driver(base: *mut u8) -> Result<DriverEnds, RingError> {
        // SAFETY: forwarded to the caller, one page per ring.
        unsafe {
            Ok(DriverEnds {
                request: Consumer::new(ring(base, REQUEST)?)?,
                completion: Producer::new(ring(base, COMPLETION)?)?,
            })
        }
    }

    /// The client's ends of the queue region at `base`.
    ///
    /// # Safety
    /// As [`driver`], shared with exactly one driver.
    pub unsafe fn client(base: *mut u8) -> Result<ClientEnds, RingError> {
        // SAFETY: forwarded to the caller.
        unsafe {
            Ok(ClientEnds {
                request: Producer::new(ring(base, REQUEST)?)?,
                completion: Consumer::new(ring(base, COMPLETION)?)?,
            })
        }
    }

    /// Writes `info` to the queue region at `base`, then marks it ready (release).
    ///
    /// # Safety
    /// As [`driver`].
    pub unsafe fn publish_info(base: *mut u8, info: BlockInfo) {
        // SAFETY: forwarded to the caller; the INFO page is part of the queue region.
        unsafe { super::publish(ring_base(base, INFO), info, INFO_READY) }
    }

    /// The driver's [`BlockInfo`], once it is ready.
    ///
    /// # Safety
    /// As [`client`].
    pub unsafe fn read_info(base: *mut u8) -> Option<BlockInfo> {
        // SAFETY: as in `publish_info`; every bit pattern is a valid `BlockInfo`.
        unsafe { super::read(ring_base(base, INFO), INFO_READY) }
    }
}

/// Where an information record starts in its page (after the ready word).
const INFO_OFFSET: usize = 8;

/// Writes `value` after the ready word of `page`, then stores `ready` (release).
///
/// # Safety
/// `page` must map a page of the queue region, 8-aligned; `T` plain data.
unsafe fn publish<T: Copy>(page: *mut u8, value: T, ready: u32) {
    // SAFETY: the caller's page holds `INFO_OFFSET + size_of::<T>()` bytes (both info
    // records are a few bytes); the ready word is 4-aligned and only accessed atomically.
    unsafe {
        core::ptr::write_volatile(page.add(INFO_OFFSET).cast::<T>(), value);
        (*page.cast::<AtomicU32>()).store(ready, Ordering::Release);
    }
}

/// The record after `page`'s ready word once that word is `ready` (acquire).
///
/// # Safety
/// As [`publish`], and every bit pattern must be a valid `T`.
unsafe fn read<T: Copy>(page: *mut u8, ready: u32) -> Option<T> {
    // SAFETY: as in `publish`.
    unsafe {
        if (*page.cast::<AtomicU32>()).load(Ordering::Acquire) != ready {
            return None;
        }
        Some(core::ptr::read_volatile(page.add(INFO_OFFSET).cast::<T>()))
    }
}

/// The address of ring `index` in a queue region starting at `base`.
pub fn ring_base(base: *mut u8, index: usize) -> *mut u8 {
    base.wrapping_add(index * RING_BYTES)
}
