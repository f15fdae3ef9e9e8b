//! The data region a ring's entries point into, with checked copies in and out.

use crate::desc::RegionRange;
use crate::RingError;

/// A shared data region: buffers named by [`crate::BufDesc`] offsets.
///
/// The peer may write the region at any time; copies out give a snapshot (payload is
/// data, never trusted structure), and every range is checked against the length.
pub struct DataRegion {
    base: *mut u8,
    len: usize,
}

// SAFETY: the region is shared memory by design; all access is by explicit copies
// through raw pointers (no references that assume exclusivity), so the handle may move.
unsafe impl Send for DataRegion {}

impl DataRegion {
    /// The `len` bytes at `base`.
    ///
    /// # Safety
    /// `base..base+len` must stay mapped readable and writable while this value lives.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        DataRegion { base, len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), RingError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(RingError::OutOfRegion { offset: offset as u64, len: len as u64 }),
        }
    }

    /// Copies `out.len()` bytes from `range.offset` (at most `range.len`) into `out`;
    /// returns how many.
    pub fn read(&self, range: RegionRange, out: &mut [u8]) -> Result<usize, RingError> {
        let n = out.len().min(range.len);
        self.check(range.offset, n)?;
        // SAFETY: offset + n <= len (checked): inside the mapping `new` was given.
        unsafe { core::ptr::copy_nonoverlapping(self.base.add(range.offset), out.as_mut_ptr(), n) };
        Ok(n)
    }

    /// Copies `data` to `range.offset`; refused if it does not fit `range`.
    pub fn write(&self, range: RegionRange, data: &[u8]) -> Result<(), RingError> {
        if data.len() > range.len {
            return Err(RingError::OutOfRegion { offset: range.offset as u64, len: data.len() as u64 });
        }
        self.check(range.offset, data.len())?;
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(range.offset), data.len()) };
        Ok(())
    }
}
