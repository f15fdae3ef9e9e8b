//! Thread queues: intrusive TCB lists and the ready-queue bitmap.
//!
//! Thread queues: intrusive doubly linked lists threaded through TCBs (ready queues per
//! priority, endpoint and notification wait queues), and the 256-level ready-queue
//! bitmap. Pure logic over a link-access trait, tested on the host.

/// A thread, named by its TCB's physical address (never 0).
pub type ThreadRef = u64;

/// Access to one pair of links (prev, next) in each TCB.
pub trait Links {
    /// The thread's (prev, next) links.
    fn links(&self, t: ThreadRef) -> (ThreadRef, ThreadRef);
    /// Sets the thread's links.
    fn set_links(&mut self, t: ThreadRef, prev: ThreadRef, next: ThreadRef);
}

/// A FIFO queue of threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// First thread (0 = empty).
    pub head: ThreadRef,
    /// Last thread.
    pub tail: ThreadRef,
}

impl Queue {
    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.head == 0
    }

    /// Appends `t` (which must not be in any queue using these links).
    pub fn push_back(&mut self, links: &mut impl Links, t: ThreadRef) {
        links.set_links(t, self.tail, 0);
        if self.tail != 0 {
            let (prev, _) = links.links(self.tail);
            links.set_links(self.tail, prev, t);
        } else {
            self.head = t;
        }
        self.tail = t;
    }

    /// Removes `t` (which must be in this queue).
    pub fn remove(&mut self, links: &mut impl Links, t: ThreadRef) {
        let (prev, next) = links.links(t);
        if prev != 0 {
            let (pp, _) = links.links(prev);
            links.set_links(prev, pp, next);
        } else {
            self.head = next;
        }
        if next != 0 {
            let (_, nn) = links.links(next);
            links.set_links(next, prev, nn);
        } else {
            self.tail = prev;
        }
        links.set_links(t, 0, 0);
    }

    /// Removes and returns the first thread.
    pub fn pop_front(&mut self, links: &mut impl Links) -> Option<ThreadRef> {
        let t = self.head;
        if t == 0 {
            return None;
        }
        self.remove(links, t);
        Some(t)
    }
}

/// Number of priorities.
pub const PRIORITIES: usize = 256;

/// One queue per priority plus a two-level bitmap of the non-empty ones (bit `w` of
/// `summary` says word `w` of `bitmap` is non-zero), so the IPC fastpath answers "is
/// anybody ready above this priority" in a few instructions.
#[derive(Clone, Debug)]
pub struct ReadyQueues {
    queues: [Queue; PRIORITIES],
    bitmap: [u64; PRIORITIES / 64],
    summary: u64,
}

impl Default for ReadyQueues {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadyQueues {
    /// Offset of the summary word (bit `w`: word `w` of the bitmap is non-zero), for
    /// the IPC fastpath's assembly.
    pub const SUMMARY_OFFSET: usize = core::mem::offset_of!(ReadyQueues, summary);
    /// Offset of the bitmap (bit `p % 64` of word `p / 64`: priority `p` has a thread).
    pub const BITMAP_OFFSET: usize = core::mem::offset_of!(ReadyQueues, bitmap);

    /// All empty.
    pub const fn new() -> Self {
        ReadyQueues { queues: [Queue { head: 0, tail: 0 }; PRIORITIES], bitmap: [0; PRIORITIES / 64], summary: 0 }
    }

    /// Appends `t` at priority `prio` (round robin: newcomers go last).
    pub fn enqueue(&mut self, links: &mut impl Links, t: ThreadRef, prio: u8) {
        let p = usize::from(prio);
        self.queues[p].push_back(links, t);
        self.bitmap[p / 64] |= 1 << (p % 64);
        self.summary |= 1 << (p / 64);
    }

    /// Removes `t` from priority `prio`.
    pub fn dequeue(&mut self, links: &mut impl Links, t: ThreadRef, prio: u8) {
        let p = usize::from(prio);
        self.queues[p].remove(links, t);
        if self.queues[p].is_empty() {
            self.bitmap[p / 64] &= !(1 << (p % 64));
            if self.bitmap[p / 64] == 0 {
                self.summary &= !(1 << (p / 64));
            }
        }
    }

    /// The highest priority with a ready thread.
    pub fn highest(&self) -> Option<u8> {
        if self.summary == 0 {
            return None;
        }
        let w = 63 - self.summary.leading_zeros() as usize;
        Some((w * 64 + 63 - self.bitmap[w].leading_zeros() as usize) as u8)
    }

    /// Whether no thread is ready at a priority above `prio`. The IPC fastpath asks
    /// this on every call: two shifts and a load, whatever waits at lower priorities
    /// (a call to a scan here cost every fastpath IPC 13 more guest instructions as
    /// soon as any thread was ready, `make bench` with 256 runnable threads).
    #[inline]
    pub fn none_above(&self, prio: u8) -> bool {
        let (word, bit) = (usize::from(prio) / 64, u32::from(prio) % 64);
        // No word above `prio`'s has a ready priority, and none above it in its word
        // (shifted twice so that bit 63 shifts out without overflowing).
        self.summary >> word >> 1 == 0 && self.bitmap[word] >> bit >> 1 == 0
    }

    /// The first thread of the highest non-empty priority, without removing it.
    pub fn peek_highest(&self) -> Option<(ThreadRef, u8)> {
        let p = self.highest()?;
        Some((self.queues[usize::from(p)].head, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Map(HashMap<ThreadRef, (ThreadRef, ThreadRef)>);
    impl Links for Map {
        fn links(&self, t: ThreadRef) -> (ThreadRef, ThreadRef) {
            *self.0.get(&t).unwrap_or(&(0, 0))
        }
        fn set_links(&mut self, t: ThreadRef, prev: ThreadRef, next: ThreadRef) {
            self.0.insert(t, (prev, next));
        }
    }

    #[test]
    fn fifo_and_remove_from_middle() {
        let mut l = Map::default();
        let mut q = Queue::default();
        for t in [0x1000, 0x2000, 0x3000] {
            q.push_back(&mut l, t);
        }
        q.remove(&mut l, 0x2000);
        assert_eq!(l.links(0x1000), (0, 0x3000));
        assert_eq!(q.pop_front(&mut l), Some(0x1000));
        assert_eq!(q.pop_front(&mut l), Some(0x3000));
        assert_eq!(q.pop_front(&mut l), None);
        assert!(q.is_empty() && q.tail == 0);
    }

    #[test]
    fn highest_priority_first_round_robin_within() {
        let mut l = Map::default();
        let mut r = ReadyQueues::new();
        assert_eq!(r.highest(), None);
        r.enqueue(&mut l, 0x1000, 10);
        r.enqueue(&mut l, 0x2000, 200);
        r.enqueue(&mut l, 0x3000, 200);
        r.enqueue(&mut l, 0x4000, 255);
        assert_eq!(r.peek_highest(), Some((0x4000, 255)));
        r.dequeue(&mut l, 0x4000, 255);
        assert_eq!(r.peek_highest(), Some((0x2000, 200)));
        // Round robin: the head goes to the back.
        r.dequeue(&mut l, 0x2000, 200);
        r.enqueue(&mut l, 0x2000, 200);
        assert_eq!(r.peek_highest(), Some((0x3000, 200)));
        r.dequeue(&mut l, 0x3000, 200);
        r.dequeue(&mut l, 0x2000, 200);
        assert_eq!(r.highest(), Some(10));
        r.enqueue(&mut l, 0x5000, 0);
        r.dequeue(&mut l, 0x1000, 10);
        assert_eq!(r.peek_highest(), Some((0x5000, 0)));
    }

    #[test]
    fn none_above_matches_a_scan_of_every_priority() {
        let mut l = Map::default();
        let mut r = ReadyQueues::new();
        let mut ready = std::vec::Vec::new();
        // A deterministic walk through enqueues and dequeues across all four words.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let prio = (x % 256) as u8;
            let t = 0x1000 * (step + 1);
            if x & (1 << 40) != 0 || ready.is_empty() {
                r.enqueue(&mut l, t, prio);
                ready.push((t, prio));
            } else {
                let (t, p) = ready.remove((x as usize >> 8) % ready.len());
                r.dequeue(&mut l, t, p);
            }
            let top = ready.iter().map(|&(_, p)| p).max();
            assert_eq!(r.highest(), top);
            for probe in [0u8, 63, 64, 127, 128, 191, 192, 255, prio] {
                assert_eq!(r.none_above(probe), top.is_none_or(|h| h <= probe), "probe {probe} top {top:?}");
            }
        }
    }

    /// Exhaustive over the states that decide the answer: no thread ready, or threads
    /// ready at any one or two priorities (0 and 255, bits 0 and 63 of every word, both
    /// in one word or in two), asked about every priority; the answer must be that of
    /// a plain scan of the ready priorities above the probe.
    #[test]
    fn none_above_is_a_scan_for_every_pair_of_ready_priorities_and_every_probe() {
        let mut l = Map::default();
        let mut r = ReadyQueues::new();
        let scan = |ready: &[u8], probe: u8| !ready.iter().any(|&p| p > probe);
        for probe in 0..=255u8 {
            assert!(r.none_above(probe), "nothing ready, probe {probe}");
        }
        for a in 0..=255u8 {
            for b in a..=255u8 {
                r.enqueue(&mut l, 0x1000, a);
                r.enqueue(&mut l, 0x2000, b);
                for probe in 0..=255u8 {
                    assert_eq!(r.none_above(probe), scan(&[a, b], probe), "ready {a} and {b}, probe {probe}");
                }
                // Take the higher one away first: the lower one alone must answer too.
                r.dequeue(&mut l, 0x2000, b);
                for probe in 0..=255u8 {
                    assert_eq!(r.none_above(probe), scan(&[a], probe), "ready {a} (after {b} left), probe {probe}");
                }
                r.dequeue(&mut l, 0x1000, a);
                assert_eq!(r.highest(), None, "empty again after {a} and {b}");
            }
        }
    }

    /// Every priority ready, then emptied from the top down and from the bottom up:
    /// each step asks about every priority.
    #[test]
    fn none_above_while_a_full_run_queue_drains_both_ways() {
        for top_down in [true, false] {
            let mut l = Map::default();
            let mut r = ReadyQueues::new();
            for p in 0..=255u8 {
                r.enqueue(&mut l, 0x1000 * (u64::from(p) + 1), p);
            }
            let mut ready: std::vec::Vec<u8> = (0..=255).collect();
            while !ready.is_empty() {
                for probe in 0..=255u8 {
                    let want = !ready.iter().any(|&p| p > probe);
                    assert_eq!(r.none_above(probe), want, "ready {ready:?}, probe {probe}");
                }
                let p = if top_down { ready.pop() } else { Some(ready.remove(0)) }.expect("not empty");
                r.dequeue(&mut l, 0x1000 * (u64::from(p) + 1), p);
            }
            assert!((0..=255u8).all(|probe| r.none_above(probe)));
        }
    }
}
