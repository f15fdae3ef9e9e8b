//! The ring itself: header, slots, and the producer and consumer ends.

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU32, Ordering};

/// Bytes of the ring header before the first slot (two 64-byte halves).
pub const HEADER_BYTES: usize = 128;
/// Byte offset of the producer's half (`tail`, `producer_waiting`).
const TAIL: usize = 0;
const PRODUCER_WAITING: usize = 4;
/// Byte offset of the consumer's half (`head`, `consumer_waiting`).
const HEAD: usize = 64;
const CONSUMER_WAITING: usize = 68;

/// A plain-old-data ring entry.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value (integers only,
/// no padding, no references): entries are read from memory a peer may have scribbled on.
pub unsafe trait RingEntry: Copy {}

/// Why a ring operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The memory is too small for the header and one entry.
    TooSmall {
        /// Bytes given.
        bytes: usize,
    },
    /// The memory is not 64-byte aligned.
    Misaligned,
    /// The peer's index is impossible (more entries in flight than the capacity): the
    /// peer is corrupt or hostile; nothing was read.
    Corrupt {
        /// `head` as seen.
        head: u32,
        /// `tail` as seen.
        tail: u32,
    },
    /// No free slot (the consumer has not caught up).
    Full,
    /// An entry names bytes outside the data region (or none): refused, never followed.
    OutOfRegion {
        /// The entry's offset.
        offset: u64,
        /// The entry's length in bytes.
        len: u64,
    },
    /// An unknown operation code.
    BadOp(u32),
}

/// A ring's memory: where it is and how many entries of `T` it holds.
pub struct RingMemory<T> {
    base: NonNull<u8>,
    capacity: u32,
    entry: PhantomData<T>,
}

// SAFETY: the memory is shared with another component by design; every access goes
// through atomics (indices) or volatile copies (slots), never through references that
// assume exclusive access, so moving the handle to another thread is sound.
unsafe impl<T: RingEntry> Send for RingMemory<T> {}

impl<T: RingEntry> RingMemory<T> {
    /// The number of entries a ring of `bytes` bytes holds: the largest power of two
    /// that fits after the header (0 if not even one fits).
    pub const fn capacity_for(bytes: usize) -> u32 {
        if bytes <= HEADER_BYTES {
            return 0;
        }
        let slots = (bytes - HEADER_BYTES) / size_of::<T>();
        if slots == 0 {
            return 0;
        }
        let pow = usize::BITS - 1 - slots.leading_zeros();
        let cap = 1usize << pow;
        if cap > u32::MAX as usize / 2 {
            1 << 30
        } else {
            cap as u32
        }
    }

    /// Takes `bytes` bytes at `base` as a ring of `T`.
    ///
    /// # Safety
    /// `base..base+bytes` must stay mapped readable and writable for as long as this value
    /// (and the end built from it) lives, and be used by other parties only as this ring:
    /// by exactly one producer and one consumer in total. It need not be trusted: the
    /// peer may write anything there.
    pub unsafe fn new(base: *mut u8, bytes: usize) -> Result<Self, RingError> {
        let base = NonNull::new(base).ok_or(RingError::Misaligned)?;
        if !(base.as_ptr() as usize).is_multiple_of(64) || align_of::<T>() > 64 {
            return Err(RingError::Misaligned);
        }
        let capacity = Self::capacity_for(bytes);
        if capacity == 0 {
            return Err(RingError::TooSmall { bytes });
        }
        Ok(Self { base, capacity, entry: PhantomData })
    }

    /// Entries the ring holds.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: offset < HEADER_BYTES, 4-aligned, inside the memory (`new` checked its
        // size and 64-byte alignment); AtomicU32 has u32's layout and all accesses to the
        // header are atomic, so a shared reference to it is sound for any peer writes.
        unsafe { &*(self.base.as_ptr().add(offset) as *const AtomicU32) }
    }

    fn slot(&self, index: u32) -> *mut T {
        let slot = (index & (self.capacity - 1)) as usize;
        // SAFETY: slot < capacity, and capacity_for made HEADER + capacity * size_of::<T>()
        // fit in the memory; HEADER_BYTES is a multiple of any entry's alignment (<= 64).
        unsafe { self.base.as_ptr().add(HEADER_BYTES + slot * size_of::<T>()) as *mut T }
    }

    /// In-flight count `tail - head`, refused if above the capacity.
    fn in_flight(&self, head: u32, tail: u32) -> Result<u32, RingError> {
        let used = tail.wrapping_sub(head);
        if used > self.capacity {
            return Err(RingError::Corrupt { head, tail });
        }
        Ok(used)
    }
}

/// The producing end: writes entries and publishes them.
pub struct Producer<T> {
    mem: RingMemory<T>,
    /// Our own count, never read back from shared memory after construction.
    tail: u32,
    /// The consumer's count as last read.
    head: u32,
}

impl<T: RingEntry> Producer<T> {
    /// The producer of `mem`, continuing from the indices in memory (zero for a fresh
    /// region); [`RingError::Corrupt`] if they are impossible.
    pub fn new(mem: RingMemory<T>) -> Result<Self, RingError> {
        let tail = mem.word(TAIL).load(Ordering::Relaxed);
        let head = mem.word(HEAD).load(Ordering::Acquire);
        mem.in_flight(head, tail)?;
        Ok(Self { mem, tail, head })
    }

    /// Entries the ring holds.
    pub fn capacity(&self) -> u32 {
        self.mem.capacity
    }

    /// Free slots now (re-reads the consumer's index).
    pub fn free(&mut self) -> Result<u32, RingError> {
        // Kept only once checked, so a corrupt value is never acted on later.
        let head = self.mem.word(HEAD).load(Ordering::Acquire);
        let used = self.mem.in_flight(head, self.tail)?;
        self.head = head;
        Ok(self.mem.capacity - used)
    }

    /// Writes `entry` into the next slot; the consumer sees it after [`Self::publish`].
    pub fn push(&mut self, entry: T) -> Result<(), RingError> {
        if self.mem.in_flight(self.head, self.tail)? == self.mem.capacity && self.free()? == 0 {
            return Err(RingError::Full);
        }
        // SAFETY: the slot is inside the ring (`slot` masks the index) and free: the
        // consumer's Release store of `head` (read with Acquire) says it copied it out.
        unsafe { self.mem.slot(self.tail).write_volatile(entry) };
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Makes every pushed entry visible; true if the consumer asked to be signalled
    /// (then notify it).
    pub fn publish(&mut self) -> bool {
        self.mem.word(TAIL).store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        self.mem.word(CONSUMER_WAITING).load(Ordering::Relaxed) != 0
    }

    /// Before sleeping on a full ring: raises the waiting flag and re-checks. `Ok(true)`:
    /// still full, sleep (the consumer signals once it frees a slot); `Ok(false)`: space
    /// appeared, the flag is down again, go on.
    pub fn prepare_wait(&mut self) -> Result<bool, RingError> {
        self.mem.word(PRODUCER_WAITING).store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.free()? > 0 {
            self.done_waiting();
            return Ok(false);
        }
        Ok(true)
    }

    /// Lowers the waiting flag after a wake-up.
    pub fn done_waiting(&mut self) {
        self.mem.word(PRODUCER_WAITING).store(0, Ordering::Relaxed);
    }
}

/// The consuming end: copies entries out and frees their slots.
pub struct Consumer<T> {
    mem: RingMemory<T>,
    /// Our own count, never read back from shared memory after construction.
    head: u32,
    /// The producer's count as last read.
    tail: u32,
}

impl<T: RingEntry> Consumer<T> {
    /// The consumer of `mem`, continuing from the indices in memory.
    pub fn new(mem: RingMemory<T>) -> Result<Self, RingError> {
        let head = mem.word(HEAD).load(Ordering::Relaxed);
        let tail = mem.word(TAIL).load(Ordering::Acquire);
        mem.in_flight(head, tail)?;
        Ok(Self { mem, head, tail })
    }

    /// Entries the ring holds.
    pub fn capacity(&self) -> u32 {
        self.mem.capacity
    }

    /// Entries waiting now (re-reads the producer's index).
    pub fn pending(&mut self) -> Result<u32, RingError> {
        // Kept only once checked, so a corrupt value is never acted on later.
        let tail = self.mem.word(TAIL).load(Ordering::Acquire);
        let pending = self.mem.in_flight(self.head, tail)?;
        self.tail = tail;
        Ok(pending)
    }

    /// Copies the next entry out of the ring (`None` when empty). The copy is taken once,
    /// so the producer rewriting the slot later cannot change what the caller checks.
    /// The slot is handed back to the producer by [`Self::release`].
    pub fn pop(&mut self) -> Result<Option<T>, RingError> {
        if self.head == self.tail && self.pending()? == 0 {
            return Ok(None);
        }
        // SAFETY: the slot is inside the ring (masked) and published: the producer's
        // Release store of `tail`, read with Acquire, ordered its write before this read.
        let entry = unsafe { self.mem.slot(self.head).read_volatile() };
        self.head = self.head.wrapping_add(1);
        Ok(Some(entry))
    }

    /// Frees every popped slot; true if the producer asked to be signalled.
    pub fn release(&mut self) -> bool {
        self.mem.word(HEAD).store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        self.mem.word(PRODUCER_WAITING).load(Ordering::Relaxed) != 0
    }

    /// Before sleeping on an empty ring: raises the waiting flag and re-checks. `Ok(true)`:
    /// still empty, sleep; `Ok(false)`: entries arrived, the flag is down again, go on.
    pub fn prepare_wait(&mut self) -> Result<bool, RingError> {
        self.mem.word(CONSUMER_WAITING).store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.pending()? > 0 {
            self.done_waiting();
            return Ok(false);
        }
        Ok(true)
    }

    /// Lowers the waiting flag after a wake-up.
    pub fn done_waiting(&mut self) {
        self.mem.word(CONSUMER_WAITING).store(0, Ordering::Relaxed);
    }
}
