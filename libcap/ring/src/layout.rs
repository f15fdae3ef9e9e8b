//! Where the rings sit in a queue region: conventions drivers and clients share.
//!
//! A client of a driver gets two shared regions from the system description: a *queue
//! region* holding the rings below, one 4 KiB page each, and a *data region* holding the
//! buffers the entries name by offset. One notification channel each way says "look at
//! the rings" (the waiting flags of each ring say whether a signal is wanted).

/// Bytes of each ring in a queue region (one page).
pub const RING_BYTES: usize = 4096;

/// A NIC client's rings, by page index in its queue region (4 pages, 16 KiB).
pub mod net {
    /// Client -> driver: empty buffers the driver may fill with received frames.
    pub const RX_FREE: usize = 0;
    /// Driver -> client: filled buffers (`len` = frame length).
    pub const RX_ACTIVE: usize = 1;
    /// Client -> driver: frames to send.
    pub const TX_ACTIVE: usize = 2;
    /// Driver -> client: sent buffers handed back.
    pub const TX_FREE: usize = 3;
    /// Pages in a NIC client's queue region.
    pub const PAGES: usize = 4;
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
