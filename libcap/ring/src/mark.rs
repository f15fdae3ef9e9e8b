//! A benchmark mark: an application says "a batch starts now" to its NIC driver.
//!
//! Used only by benchmark systems (`systems/bench-appliance.toml`): the application
//! at the far end of a chain of relays maps a `bench-mark` region writable, the NIC
//! driver read-only. Before a batch the application writes the start time, the
//! batch's frame count and its run number, then bumps `seq` (release); the driver
//! counts the frames it hands to the device after it sees a new `seq` (acquire) and
//! takes the time when the batch is complete. So the figure spans the whole path from
//! the application's first send to the device, which neither end sees alone.

use core::sync::atomic::{AtomicU64, Ordering};

/// The mark as it sits at the start of the region (five words).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// Bumped after the other fields are written; 0: no batch yet.
    pub seq: u64,
    /// TSC when the batch started.
    pub t0: u64,
    /// Frames in the batch.
    pub frames: u64,
    /// The batch's run number (0 is the warm-up, not counted).
    pub run: u64,
    /// Runs the application makes after the warm-up (the driver reports then).
    pub runs: u64,
}

/// Words of [`Mark`].
const WORDS: usize = 5;

/// A mark region at `base`.
pub struct MarkRegion {
    base: *mut u8,
}

// SAFETY: the region is shared memory accessed only through atomics.
unsafe impl Send for MarkRegion {}

impl MarkRegion {
    /// The region at `base`.
    ///
    /// # Safety
    /// `base` must be 8-aligned and `base..base+40` stay mapped (writable for
    /// [`Self::write`]) while this value lives, used only as a mark region.
    pub unsafe fn new(base: *mut u8) -> Self {
        MarkRegion { base }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < WORDS);
        // SAFETY: `i` < WORDS, inside the mapping (`new`), 8-aligned.
        unsafe { &*self.base.add(i * 8).cast::<AtomicU64>() }
    }

    /// Starts a new batch: the fields, then `seq` + 1 (release).
    pub fn write(&self, t0: u64, frames: u64, run: u64, runs: u64) {
        self.word(1).store(t0, Ordering::Relaxed);
        self.word(2).store(frames, Ordering::Relaxed);
        self.word(3).store(run, Ordering::Relaxed);
        self.word(4).store(runs, Ordering::Relaxed);
        let seq = self.word(0).load(Ordering::Relaxed);
        self.word(0).store(seq.wrapping_add(1), Ordering::Release);
    }

    /// The current `seq` (acquire: the fields written before it are visible).
    pub fn seq(&self) -> u64 {
        self.word(0).load(Ordering::Acquire)
    }

    /// The whole mark, if `seq` did not change while it was read.
    pub fn read(&self) -> Option<Mark> {
        let seq = self.seq();
        let mark = Mark {
            seq,
            t0: self.word(1).load(Ordering::Relaxed),
            frames: self.word(2).load(Ordering::Relaxed),
            run: self.word(3).load(Ordering::Relaxed),
            runs: self.word(4).load(Ordering::Relaxed),
        };
        (self.word(0).load(Ordering::Acquire) == seq).then_some(mark)
    }
}

/// The driver's side: counts frames against the current mark, collects per-frame
/// samples of complete batches.
#[derive(Debug)]
pub struct MarkCounter {
    seen: u64,
    current: Mark,
    counted: u64,
    /// Per-frame figures of the complete, counted batches.
    pub samples: [u64; 64],
    /// Entries used in `samples`.
    pub taken: usize,
}

impl Default for MarkCounter {
    fn default() -> Self {
        MarkCounter { seen: 0, current: Mark::default(), counted: 0, samples: [0; 64], taken: 0 }
    }
}

impl MarkCounter {
    /// One frame handed to the device at `now`; returns `true` when this completed the
    /// last run (then `samples[..taken]` is the result).
    pub fn frame(&mut self, region: &MarkRegion, now: u64) -> bool {
        if region.seq() != self.seen {
            let Some(mark) = region.read() else { return false };
            self.seen = mark.seq;
            self.current = mark;
            self.counted = 0;
        }
        let m = self.current;
        if m.seq == 0 || m.frames == 0 || self.counted >= m.frames {
            return false;
        }
        self.counted += 1;
        if self.counted < m.frames || m.run == 0 || self.taken >= self.samples.len() {
            return false;
        }
        self.samples[self.taken] = now.saturating_sub(m.t0) / m.frames;
        self.taken += 1;
        m.run >= m.runs
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn batches_are_counted_from_their_mark() {
        let mut words = [0u64; WORDS];
        // SAFETY: `words` is 8-aligned, 40 bytes, and outlives the region.
        let region = unsafe { MarkRegion::new(words.as_mut_ptr().cast()) };
        let mut c = MarkCounter::default();
        assert!(!c.frame(&region, 5), "no mark yet: nothing counted");
        region.write(100, 2, 0, 2);
        assert!(!c.frame(&region, 110) && !c.frame(&region, 120), "warm-up run not sampled");
        assert_eq!(c.taken, 0);
        region.write(1000, 2, 1, 2);
        assert!(!c.frame(&region, 1100));
        assert!(!c.frame(&region, 1200));
        assert_eq!(&c.samples[..c.taken], &[100]);
        assert!(!c.frame(&region, 1300), "frames after the batch are not counted");
        region.write(2000, 4, 2, 2);
        for t in [2100, 2200, 2300] {
            assert!(!c.frame(&region, t));
        }
        assert!(c.frame(&region, 2400), "the last run completes the result");
        assert_eq!(&c.samples[..c.taken], &[100, 100]);
    }
}
