//! The DMA fault queue: drained faults wait here for their IOSpace.
//!
//! Every fault the remapping units record is drained by the kernel (fault interrupt or
//! timer poll) and queued here, tagged with its domain, so none is lost while the
//! IOSpace's handler is busy: the handler pops its domain's records in arrival order
//! with `IoSpaceNextFault`. One bounded queue of [`CAPACITY`] records serves every
//! domain (the kernel allocates nothing after boot); a domain may hold at most
//! [`PER_DOMAIN`] of them, so a domain in a fault storm loses only its own faults. Each
//! domain counts what it lost ([`DomainFaults`]) until its next pop. Records of a
//! destroyed IOSpace are dropped with it, so the next owner of the domain id sees none.
//!
//! Pure logic, tested on the host; `iommu::iospace` keeps the queue and the per-domain
//! counters in its state.

use abi::fault::{DmaFaultRecord, NextFault};

/// Records the queue holds (all domains).
pub const CAPACITY: usize = abi::fault::DMA_FAULT_QUEUE;
/// Records one domain may hold.
pub const PER_DOMAIN: usize = abi::fault::DMA_FAULTS_PER_DOMAIN;

/// One queued fault and its domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Domain id of the IOSpace the requester was in when the fault was drained.
    pub domain: u16,
    /// What the unit recorded.
    pub record: DmaFaultRecord,
}

/// The queue: entries in arrival order, `len` of them valid.
pub struct FaultQueue {
    entries: [Entry; CAPACITY],
    len: usize,
}

impl Default for FaultQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        const EMPTY: Entry =
            Entry { domain: 0, record: DmaFaultRecord { requester: 0, reason: 0, is_write: false, iova: 0 } };
        FaultQueue { entries: [EMPTY; CAPACITY], len: 0 }
    }

    /// Records queued (all domains).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `entry`; false (nothing changed) if the queue is full.
    fn push(&mut self, entry: Entry) -> bool {
        if self.len == CAPACITY {
            return false;
        }
        self.entries[self.len] = entry;
        self.len += 1;
        true
    }

    /// Position of `domain`'s oldest record.
    fn oldest(&self, domain: u16) -> Option<usize> {
        self.entries[..self.len].iter().position(|e| e.domain == domain)
    }

    /// `domain`'s oldest record, left queued.
    pub fn peek(&self, domain: u16) -> Option<DmaFaultRecord> {
        self.oldest(domain).map(|i| self.entries[i].record)
    }

    /// Removes `domain`'s oldest record (the others keep their order).
    fn take(&mut self, domain: u16) -> Option<DmaFaultRecord> {
        let i = self.oldest(domain)?;
        let record = self.entries[i].record;
        self.entries.copy_within(i + 1..self.len, i);
        self.len -= 1;
        Some(record)
    }

    /// Drops every record of `domain` (its IOSpace is destroyed); returns how many.
    pub fn drop_domain(&mut self, domain: u16) -> usize {
        let before = self.len;
        let mut kept = 0;
        for i in 0..self.len {
            if self.entries[i].domain != domain {
                self.entries[kept] = self.entries[i];
                kept += 1;
            }
        }
        self.len = kept;
        before - kept
    }
}

/// What became of a drained fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Queued for its IOSpace.
    Yes,
    /// Lost: the queue is full (counted in the domain's `lost`).
    QueueFull,
    /// Lost: the domain already holds [`PER_DOMAIN`] records (counted likewise).
    DomainFull,
}

/// Per-domain counters, kept in the domain's record (4 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainFaults {
    /// Records of this domain in the queue.
    pub pending: u16,
    /// Faults lost since the domain's last pop (saturating).
    pub lost: u16,
}

impl DomainFaults {
    /// Queues a drained fault of `domain` (whose counters these are), or counts it lost.
    pub fn record(&mut self, queue: &mut FaultQueue, domain: u16, record: DmaFaultRecord) -> Queued {
        let outcome = if usize::from(self.pending) >= PER_DOMAIN {
            Queued::DomainFull
        } else if !queue.push(Entry { domain, record }) {
            Queued::QueueFull
        } else {
            self.pending += 1;
            Queued::Yes
        };
        if outcome != Queued::Yes {
            self.lost = self.lost.saturating_add(1);
        }
        outcome
    }

    /// Pops `domain`'s oldest record for `IoSpaceNextFault`, with the lost count since
    /// the last pop (reset). None when nothing is queued and nothing was lost.
    pub fn next(&mut self, queue: &mut FaultQueue, domain: u16) -> Option<NextFault> {
        let record = queue.take(domain);
        if record.is_none() && self.lost == 0 {
            return None;
        }
        if record.is_some() {
            self.pending = self.pending.saturating_sub(1);
        }
        let lost = u64::from(core::mem::take(&mut self.lost));
        Some(NextFault { record, has_more: self.pending > 0, lost })
    }

    /// Whether [`DomainFaults::next`] would return something.
    pub fn has_next(&self) -> bool {
        self.pending > 0 || self.lost > 0
    }

    /// Takes `domain`'s oldest record out for a `DmaFault` message that was delivered
    /// (the caller peeked it first).
    pub fn delivered(&mut self, queue: &mut FaultQueue, domain: u16) {
        if queue.take(domain).is_some() {
            self.pending = self.pending.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    fn rec(iova: u64) -> DmaFaultRecord {
        DmaFaultRecord { requester: 0x18, reason: 5, is_write: true, iova }
    }

    /// Two domains interleaved: each pops its own records, oldest first, with has_more
    /// right, and never sees the other's.
    #[test]
    fn each_domain_pops_its_own_in_order() {
        let mut q = Box::new(FaultQueue::new());
        let (mut a, mut b) = (DomainFaults::default(), DomainFaults::default());
        for i in 0..5 {
            assert_eq!(a.record(&mut q, 1, rec(0x1000 * i)), Queued::Yes);
            assert_eq!(b.record(&mut q, 2, rec(0x10_0000 + i)), Queued::Yes);
        }
        assert_eq!(q.len(), 10);
        for i in 0..5 {
            let f = a.next(&mut q, 1).expect("a record");
            assert_eq!(f.record, Some(rec(0x1000 * i)));
            assert_eq!(f.has_more, i < 4);
            assert_eq!(f.lost, 0);
        }
        assert_eq!(a.next(&mut q, 1), None, "empty and nothing lost");
        assert!(!a.has_next());
        let got: Vec<u64> = (0..5).map(|_| b.next(&mut q, 2).unwrap().record.unwrap().iova).collect();
        assert_eq!(got, (0..5).map(|i| 0x10_0000 + i).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    /// A storm in one domain stops at its share and is counted; the others still queue
    /// theirs; the lost count is reported once, with the next pop.
    #[test]
    fn a_storm_loses_only_its_own_faults_and_counts_them() {
        let mut q = Box::new(FaultQueue::new());
        let (mut storm, mut quiet) = (DomainFaults::default(), DomainFaults::default());
        let outcomes: Vec<Queued> = (0..PER_DOMAIN as u64 + 10).map(|i| storm.record(&mut q, 3, rec(i))).collect();
        assert_eq!(outcomes.iter().filter(|&&o| o == Queued::Yes).count(), PER_DOMAIN);
        assert_eq!(outcomes.iter().filter(|&&o| o == Queued::DomainFull).count(), 10);
        assert_eq!(quiet.record(&mut q, 4, rec(7)), Queued::Yes);
        let first = storm.next(&mut q, 3).unwrap();
        assert_eq!((first.record, first.has_more, first.lost), (Some(rec(0)), true, 10));
        assert_eq!(storm.next(&mut q, 3).unwrap().lost, 0, "reported once");
        assert_eq!(quiet.next(&mut q, 4).unwrap().record, Some(rec(7)));
    }

    /// A full queue loses the fault (counted); with only lost faults to report, the pop
    /// says so without a record.
    #[test]
    fn full_queue_counts_lost_and_reports_them_without_a_record() {
        let mut q = Box::new(FaultQueue::new());
        let mut many: Vec<DomainFaults> = (0..CAPACITY / PER_DOMAIN).map(|_| DomainFaults::default()).collect();
        for (d, counters) in many.iter_mut().enumerate() {
            for i in 0..PER_DOMAIN as u64 {
                assert_eq!(counters.record(&mut q, 10 + d as u16, rec(i)), Queued::Yes);
            }
        }
        assert_eq!(q.len(), CAPACITY);
        let mut late = DomainFaults::default();
        assert_eq!(late.record(&mut q, 99, rec(1)), Queued::QueueFull);
        assert_eq!(late.record(&mut q, 99, rec(2)), Queued::QueueFull);
        assert!(late.has_next());
        let f = late.next(&mut q, 99).unwrap();
        assert_eq!((f.record, f.has_more, f.lost), (None, false, 2));
        assert_eq!(late.next(&mut q, 99), None);
        // Room again after a pop: the late domain queues.
        many[0].next(&mut q, 10);
        assert_eq!(late.record(&mut q, 99, rec(3)), Queued::Yes);
    }

    /// Destroying a domain drops its records; the next owner of the id sees none of them,
    /// and the other domains keep theirs in order.
    #[test]
    fn destroy_drops_only_that_domains_records() {
        let mut q = Box::new(FaultQueue::new());
        let (mut old, mut other) = (DomainFaults::default(), DomainFaults::default());
        for i in 0..4 {
            old.record(&mut q, 5, rec(i));
            other.record(&mut q, 6, rec(100 + i));
        }
        assert_eq!(q.drop_domain(5), 4);
        let mut next_owner = DomainFaults::default(); // the domain record is reset at destroy
        assert_eq!(next_owner.next(&mut q, 5), None);
        let got: Vec<u64> = (0..4).map(|_| other.next(&mut q, 6).unwrap().record.unwrap().iova).collect();
        assert_eq!(got, [100, 101, 102, 103]);
    }

    /// A record delivered by message leaves the queue; peek shows the oldest.
    #[test]
    fn peek_then_delivered() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = DomainFaults::default();
        d.record(&mut q, 1, rec(1));
        d.record(&mut q, 1, rec(2));
        assert_eq!(q.peek(1), Some(rec(1)));
        assert_eq!(q.peek(2), None);
        d.delivered(&mut q, 1);
        assert_eq!(d.pending, 1);
        assert_eq!(d.next(&mut q, 1).unwrap().record, Some(rec(2)));
        d.delivered(&mut q, 1); // nothing left: no change
        assert_eq!(d.pending, 0);
    }

    /// The lost count saturates instead of wrapping.
    #[test]
    fn lost_saturates() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = DomainFaults { pending: PER_DOMAIN as u16, lost: u16::MAX - 1 };
        for _ in 0..3 {
            assert_eq!(d.record(&mut q, 1, rec(0)), Queued::DomainFull);
        }
        assert_eq!(d.lost, u16::MAX);
    }
}
