//! The DMA fault queue: drained faults wait here for their IOSpace.
//!
//! Every fault the remapping units record is drained by the kernel (fault interrupt or
//! timer poll) and queued here, tagged with its domain, so none is lost while the
//! IOSpace's handler is busy: the handler pops its domain's records in arrival order
//! with `IoSpaceNextFault`. One bounded queue of [`CAPACITY`] records serves every
//! domain (the kernel allocates nothing after boot); a domain may hold at most
//! [`PER_DOMAIN`] of them, so a domain in a fault storm loses only its own faults.
//! Only an IOSpace with a fault handler gets records queued (nobody would pop the others:
//! their faults are only counted lost). When the queue is full, a domain holding fewer
//! than its fair share (`CAPACITY` / domains holding records, itself included, and at
//! least one) still queues: the oldest record of the domain holding the most is evicted
//! (counted lost there), so domains whose handlers never pop cannot starve the others.
//! Each domain counts what it lost ([`DomainFaults`]) until its next pop. Records of a
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

    /// Domains holding records, `domain` counted even if it holds none, and the domain
    /// holding the most with its count (ties: the lowest id).
    fn census(&self, domain: u16) -> (usize, u16, usize) {
        let mut ids = [0u16; CAPACITY];
        for (id, e) in ids.iter_mut().zip(&self.entries[..self.len]) {
            *id = e.domain;
        }
        let ids = &mut ids[..self.len];
        ids.sort_unstable();
        let (mut holders, mut counted_self, mut top, mut top_n) = (0, false, domain, 0);
        for run in ids.chunk_by(|a, b| a == b) {
            holders += 1;
            counted_self |= run[0] == domain;
            if run.len() > top_n {
                (top, top_n) = (run[0], run.len());
            }
        }
        (holders + usize::from(!counted_self), top, top_n)
    }

    /// Full queue: makes room for `domain`, which holds `held` records, if it holds fewer
    /// than its fair share, by evicting the oldest record of the domain holding the most.
    /// Returns that domain, or None (nothing changed).
    fn evict_for(&mut self, domain: u16, held: usize) -> Option<u16> {
        let (holders, top, top_n) = self.census(domain);
        let share = (CAPACITY / holders).max(1);
        if held >= share || top == domain || top_n <= held {
            return None;
        }
        self.take(top).map(|_| top)
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
    /// Lost: the IOSpace has no fault handler (counted likewise).
    NoHandler,
    /// Queued for its IOSpace in a full queue, in place of the oldest record of the
    /// domain given, which holds the most: the caller counts it lost there
    /// ([`DomainFaults::evicted`]).
    Evicted(u16),
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
    /// A drained fault of `domain` (whose counters these are), whose IOSpace has a fault
    /// handler or not: queued (see [`DomainFaults::record`]) or, without one, counted lost.
    pub fn report(&mut self, queue: &mut FaultQueue, domain: u16, has_handler: bool, record: DmaFaultRecord) -> Queued {
        if has_handler {
            return self.record(queue, domain, record);
        }
        self.lost = self.lost.saturating_add(1);
        Queued::NoHandler
    }

    /// Queues a drained fault of `domain` (whose counters these are), or counts it lost.
    /// In a full queue it may evict another domain's record ([`Queued::Evicted`]: the
    /// caller must then call [`DomainFaults::evicted`] on that domain's counters).
    pub fn record(&mut self, queue: &mut FaultQueue, domain: u16, record: DmaFaultRecord) -> Queued {
        let entry = Entry { domain, record };
        let outcome = if usize::from(self.pending) >= PER_DOMAIN {
            Queued::DomainFull
        } else if queue.push(entry) {
            Queued::Yes
        } else if let Some(victim) = queue.evict_for(domain, usize::from(self.pending)) {
            // The eviction made room: the push cannot fail.
            let _ = queue.push(entry);
            Queued::Evicted(victim)
        } else {
            Queued::QueueFull
        };
        match outcome {
            Queued::Yes | Queued::Evicted(_) => self.pending += 1,
            _ => self.lost = self.lost.saturating_add(1),
        }
        outcome
    }

    /// This domain's oldest record was evicted by [`DomainFaults::record`] of another
    /// domain: one fewer pending, one more lost.
    pub fn evicted(&mut self) {
        self.pending = self.pending.saturating_sub(1);
        self.lost = self.lost.saturating_add(1);
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

    /// Counters of domains 0..64 and the record call the kernel makes (eviction applied).
    struct Domains(Vec<DomainFaults>);

    impl Domains {
        fn new() -> Self {
            Domains(std::vec![DomainFaults::default(); 64])
        }
        fn record(&mut self, q: &mut FaultQueue, domain: u16, r: DmaFaultRecord) -> Queued {
            let out = self.0[usize::from(domain)].record(q, domain, r);
            if let Queued::Evicted(v) = out {
                self.0[usize::from(v)].evicted();
            }
            out
        }
    }

    /// A full queue loses the fault (counted) of a domain holding its fair share; with
    /// only lost faults to report, the pop says so without a record.
    #[test]
    fn full_queue_counts_lost_and_reports_them_without_a_record() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = Domains::new();
        // Five domains fill the queue: 51 each, domain 14 one more (fair share 256/5 = 51).
        for dom in 10..15u16 {
            let n = if dom == 14 { 52 } else { 51 };
            for i in 0..n {
                assert_eq!(d.record(&mut q, dom, rec(i)), Queued::Yes);
            }
        }
        assert_eq!(q.len(), CAPACITY);
        assert_eq!(d.record(&mut q, 10, rec(1000)), Queued::QueueFull, "domain 10 holds its share");
        assert_eq!(d.record(&mut q, 10, rec(1001)), Queued::QueueFull);
        let f = d.0[10].next(&mut q, 10).unwrap();
        assert_eq!((f.record, f.has_more, f.lost), (Some(rec(0)), true, 2));
        // Room again after a pop: domain 10 queues.
        assert_eq!(d.record(&mut q, 10, rec(1002)), Queued::Yes);
        // With only lost faults to report, the pop has no record.
        let mut late = DomainFaults { pending: 0, lost: 2 };
        let f = late.next(&mut q, 99).unwrap();
        assert_eq!((f.record, f.has_more, f.lost), (None, false, 2));
        assert_eq!(late.next(&mut q, 99), None);
    }

    /// A full queue: a domain below its fair share evicts the oldest record of the domain
    /// holding the most, which counts it lost; the evicting domain pops its own record.
    #[test]
    fn below_its_share_a_domain_evicts_the_biggest_holders_oldest() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = Domains::new();
        for dom in 10..15u16 {
            let n = if dom == 14 { 52 } else { 51 };
            for i in 0..n {
                d.record(&mut q, dom, rec(0x100 * u64::from(dom) + i));
            }
        }
        // Six holders now: share 42; domain 14 holds the most (52).
        assert_eq!(d.record(&mut q, 20, rec(7)), Queued::Evicted(14));
        assert_eq!(q.len(), CAPACITY);
        assert_eq!((d.0[14].pending, d.0[14].lost), (51, 1));
        let f = d.0[14].next(&mut q, 14).unwrap();
        assert_eq!((f.record, f.lost), (Some(rec(0x100 * 14 + 1)), 1), "its oldest went");
        let f = d.0[20].next(&mut q, 20).unwrap();
        assert_eq!((f.record, f.has_more, f.lost), (Some(rec(7)), false, 0));
    }

    /// Without a fault handler nothing is queued: the fault is counted lost, reported by
    /// the next pop (after a handler is set, say).
    #[test]
    fn no_handler_no_record() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = DomainFaults::default();
        assert_eq!(d.report(&mut q, 3, false, rec(1)), Queued::NoHandler);
        assert!(q.is_empty());
        assert_eq!(d.report(&mut q, 3, true, rec(2)), Queued::Yes);
        let f = d.next(&mut q, 3).unwrap();
        assert_eq!((f.record, f.has_more, f.lost), (Some(rec(2)), false, 1));
    }

    /// Regression (attack 8): four domains whose handlers never pop fill the queue (4 x
    /// 64); a fifth domain's fault is still queued for it (it evicts a hog's oldest).
    #[test]
    fn four_storming_domains_starve_no_other_domain() {
        let mut q = Box::new(FaultQueue::new());
        let mut d = Domains::new();
        for dom in 20..20 + (CAPACITY / PER_DOMAIN) as u16 {
            for i in 0..1000u64 {
                d.record(&mut q, dom, rec(i));
            }
        }
        assert_eq!(q.len(), CAPACITY);
        let outcome = d.record(&mut q, 7, rec(0xdead_0000));
        let popped = d.0[7].next(&mut q, 7).unwrap();
        assert!(matches!(outcome, Queued::Evicted(20..=23)), "victim's fault lost: {outcome:?}");
        assert_eq!(popped.record, Some(rec(0xdead_0000)));
        // Each of many victims gets in, down to the hogs' fair share.
        for v in 30..40u16 {
            assert!(matches!(d.record(&mut q, v, rec(1)), Queued::Yes | Queued::Evicted(_)), "domain {v}");
        }
        assert!((20..24).all(|h| d.0[h].pending >= 61), "evictions spread over the hogs");
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
