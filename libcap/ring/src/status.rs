//! A text snapshot one component publishes and others read (a status page).
//!
//! The writer owns the region (mapped writable for it alone); readers map it
//! read-only. Layout: a `u32` sequence number at byte 0 (odd while a write is under
//! way), the text's length at byte 4, the text from byte 8. A reader copies the text
//! and keeps it only if the sequence number was even and unchanged around the copy
//! (a seqlock): a torn snapshot is retried, never shown, and the length is checked
//! against the region before anything is copied.
//!
//! The text is lines; `httpd` renders them as HTML tables: `# caption` starts a table,
//! `! a | b` is its header row, `a | b` a row (cells split at ` | `); any other line
//! is a row of its own, split at its first `: ` into a label and a value.

use core::sync::atomic::{fence, AtomicU32, Ordering};

/// Bytes before the text.
pub const HEADER: usize = 8;

/// The header of a page holding `len` bytes of text, written by a writer that fills
/// the region before any reader runs (init filling a region it built).
pub fn header(len: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&2u32.to_le_bytes());
    h[4..].copy_from_slice(&len.to_le_bytes());
    h
}

/// A status page at `base`, `len` bytes.
pub struct StatusPage {
    base: *mut u8,
    len: usize,
}

// SAFETY: the page is shared memory accessed only through atomics and raw copies.
unsafe impl Send for StatusPage {}

impl StatusPage {
    /// The page at `base`.
    ///
    /// # Safety
    /// `base..base+len` must stay mapped (writable for [`Self::publish`]) while this
    /// value lives, 4-aligned, and be used only as a status page.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        StatusPage { base, len }
    }

    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is 0 or 4, inside the mapping (`new`), 4-aligned.
        unsafe { &*self.base.add(at).cast::<AtomicU32>() }
    }

    /// Replaces the text with `text` (cut to what fits).
    pub fn publish(&self, text: &[u8]) {
        if self.len < HEADER {
            return;
        }
        let n = text.len().min(self.len - HEADER);
        let seq = self.word(0).load(Ordering::Relaxed);
        self.word(0).store(seq | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        // SAFETY: HEADER + n <= len: inside the writable mapping.
        unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), self.base.add(HEADER), n) };
        self.word(4).store(n as u32, Ordering::Relaxed);
        self.word(0).store((seq | 1).wrapping_add(1), Ordering::Release);
    }

    /// Copies the current text into `out`; its length, or `None` if no consistent
    /// snapshot was seen in a few tries (the writer was busy) or nothing was published.
    pub fn read(&self, out: &mut [u8]) -> Option<usize> {
        if self.len < HEADER {
            return None;
        }
        for _ in 0..16 {
            let before = self.word(0).load(Ordering::Acquire);
            if before & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            let n = (self.word(4).load(Ordering::Relaxed) as usize).min(self.len - HEADER).min(out.len());
            // SAFETY: HEADER + n <= len: inside the mapping.
            unsafe { core::ptr::copy_nonoverlapping(self.base.add(HEADER), out.as_mut_ptr(), n) };
            fence(Ordering::Acquire);
            if self.word(0).load(Ordering::Relaxed) == before {
                return (before != 0).then_some(n);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn a_published_text_is_read_back_and_cut_to_fit() {
        let mut mem = vec![0u32; 8]; // 32 bytes, 4-aligned
                                     // SAFETY: `mem` outlives the page.
        let page = unsafe { StatusPage::new(mem.as_mut_ptr().cast(), 32) };
        let mut out = [0u8; 64];
        assert_eq!(page.read(&mut out), None, "nothing published yet");
        page.publish(b"faults 1");
        assert_eq!(page.read(&mut out), Some(8));
        assert_eq!(&out[..8], b"faults 1");
        page.publish(b"a text longer than the twenty-four bytes left");
        assert_eq!(page.read(&mut out), Some(24));
        // A page filled by hand with `header` reads as published.
        let mut filled = vec![0u32; 8];
        let bytes = [&header(5)[..], b"init!"].concat();
        // SAFETY: `filled` is 32 bytes, more than the 13 copied.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), filled.as_mut_ptr().cast::<u8>(), bytes.len()) };
        // SAFETY: `filled` outlives the page.
        let by_hand = unsafe { StatusPage::new(filled.as_mut_ptr().cast(), 32) };
        assert_eq!(by_hand.read(&mut out), Some(5));
        assert_eq!(&out[..5], b"init!");
        // A write under way (odd sequence) is never shown.
        page.word(0).fetch_add(1, Ordering::Relaxed);
        assert_eq!(page.read(&mut out), None);
    }
}
