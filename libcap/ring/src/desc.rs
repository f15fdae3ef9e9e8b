//! Ring entries: buffer descriptors for NICs, requests for block devices.

use crate::ring::RingEntry;
use crate::RingError;
use core::mem::size_of;

/// A byte range of the data region, checked: `offset + len <= region_len`, `len > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRange {
    /// First byte, from the start of the data region.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
}

/// A buffer in the data region (a frame to send, or an empty/filled receive buffer).
///
/// `id` is the producer's own tag, returned unchanged by the peer; it means nothing to
/// the side that did not choose it, so a peer's `id` is never used as an index unchecked.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufDesc {
    /// Byte offset of the buffer in the data region.
    pub offset: u64,
    /// Length in bytes (the buffer's size when offered, the data's size when filled).
    pub len: u32,
    /// The producer's tag for this buffer.
    pub id: u32,
}
const _: () = assert!(size_of::<BufDesc>() == 16);

// SAFETY: `BufDesc` is `repr(C)` with only integer fields and no padding (asserted 16
// bytes = 8 + 4 + 4): every bit pattern is a valid value.
unsafe impl RingEntry for BufDesc {}

/// Checks `offset..offset+len` against a region of `region_len` bytes.
fn check_range(offset: u64, len: u64, region_len: usize) -> Result<RegionRange, RingError> {
    let end = offset.checked_add(len).ok_or(RingError::OutOfRegion { offset, len })?;
    if len == 0 || end > region_len as u64 {
        return Err(RingError::OutOfRegion { offset, len });
    }
    Ok(RegionRange { offset: offset as usize, len: len as usize })
}

impl BufDesc {
    /// The buffer's byte range, if it lies entirely inside a region of `region_len` bytes
    /// and is not empty; otherwise [`RingError::OutOfRegion`] (the entry is refused).
    pub fn range(&self, region_len: usize) -> Result<RegionRange, RingError> {
        check_range(self.offset, u64::from(self.len), region_len)
    }
}

/// What a [`BlockRequest`] asks for.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// Read `count` blocks at `lba` into the buffer.
    Read = 1,
    /// Write `count` blocks from the buffer to `lba`.
    Write = 2,
    /// Make every completed write durable.
    Flush = 3,
}

impl BlockOp {
    /// Decodes an operation code written by the peer.
    pub fn from_raw(raw: u32) -> Result<Self, RingError> {
        match raw {
            1 => Ok(Self::Read),
            2 => Ok(Self::Write),
            3 => Ok(Self::Flush),
            _ => Err(RingError::BadOp(raw)),
        }
    }
}

/// A block request (client to driver) and, on the completion ring, its answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockRequest {
    /// A [`BlockOp`] code.
    pub op: u32,
    /// 0 on the request; on the completion 0 for success, else the driver's error code.
    pub status: u32,
    /// Byte offset of the buffer in the data region (unused by `Flush`).
    pub offset: u64,
    /// First logical block.
    pub lba: u64,
    /// Number of blocks.
    pub count: u32,
    /// The client's tag, returned on the completion.
    pub id: u32,
}
const _: () = assert!(size_of::<BlockRequest>() == 32);

// SAFETY: `repr(C)` of integers without padding (asserted 32 bytes = 4+4+8+8+4+4): every
// bit pattern is a valid value.
unsafe impl RingEntry for BlockRequest {}

impl BlockRequest {
    /// The buffer's byte range for `count` blocks of `block_size` bytes, checked against
    /// a region of `region_len` bytes (not for `Flush`, which names no buffer).
    pub fn range(&self, block_size: u32, region_len: usize) -> Result<RegionRange, RingError> {
        let len = u64::from(self.count) * u64::from(block_size);
        check_range(self.offset, len, region_len)
    }
}
