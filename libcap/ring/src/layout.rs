//! Where the rings sit in a queue region: conventions drivers and clients share.
//!
//! A client of a driver gets two shared regions from the system description: a *queue
//! region* holding the rings below, one 4 KiB page each, and a *data region* holding the
//! buffers the entries name by offset. One notification channel each way says "look at
//! the rings" (the waiting flags of each ring say whether a signal is wanted).

/// Bytes of each ring in a queue region (one page).
pub const RING_BYTES: usize = 4096;

/// A NIC client's rings and the link facts, by page index in its queue region
/// ([`net::PAGES`] pages).
pub mod net {
    use super::{ring_base, RING_BYTES};
    use crate::{BufDesc, Consumer, Producer, RingError, RingMemory};
    use core::sync::atomic::{AtomicU32, Ordering};

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
    /// Where the [`NicInfo`] starts in the `INFO` page (after the ready word).
    const INFO_OFFSET: usize = 8;

    fn info_page(base: *mut u8) -> *mut u8 {
        ring_base(base, INFO)
    }

    /// Writes `info` to the queue region at `base`, then marks it ready (release).
    ///
    /// # Safety
    /// As [`driver`].
    pub unsafe fn publish_info(base: *mut u8, info: NicInfo) {
        let page = info_page(base);
        // SAFETY: the INFO page is part of the mapped queue region (caller), 8-aligned
        // at `INFO_OFFSET`; the ready word is 4-aligned and only accessed atomically.
        unsafe {
            core::ptr::write_volatile(page.add(INFO_OFFSET).cast::<NicInfo>(), info);
            (*page.cast::<AtomicU32>()).store(INFO_READY, Ordering::Release);
        }
    }

    /// The driver's [`NicInfo`], once it is ready (acquire pairs with the publish).
    ///
    /// # Safety
    /// As [`client`].
    pub unsafe fn read_info(base: *mut u8) -> Option<NicInfo> {
        let page = info_page(base);
        // SAFETY: as in `publish_info`; every bit pattern is a valid `NicInfo`.
        unsafe {
            if (*page.cast::<AtomicU32>()).load(Ordering::Acquire) != INFO_READY {
                return None;
            }
            Some(core::ptr::read_volatile(page.add(INFO_OFFSET).cast::<NicInfo>()))
        }
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

/// A block client's rings, by page index in its queue region (2 pages, 8 KiB).
pub mod block {
    /// Client -> driver: requests ([`crate::BlockRequest`]).
    pub const REQUEST: usize = 0;
    /// Driver -> client: completions (the request with `status` filled in).
    pub const COMPLETION: usize = 1;
    /// Pages in a block client's queue region.
    pub const PAGES: usize = 2;
}

/// The address of ring `index` in a queue region starting at `base`.
pub fn ring_base(base: *mut u8, index: usize) -> *mut u8 {
    base.wrapping_add(index * RING_BYTES)
}
