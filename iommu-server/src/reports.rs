//! DMA fault reports queued per device until its handler fetches them.
//!
//! Each device has its own bounded queue ([`FAULT_REPORT_QUEUE`] reports) and its own
//! count of reports lost to a full queue, so a device that faults without end can
//! drop only its own reports, never another device's. A handler fetches the oldest
//! report among the devices it handles (a global sequence number keeps their order)
//! together with the losses of those devices since its last fetch; it never sees a
//! report of a device another handler handles.

use abi::iommu::{FaultReport, FAULT_REPORT_QUEUE};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The queues of every device.
pub struct FaultQueues {
    /// Per device: (sequence number, report) oldest first, and reports lost.
    queues: Vec<(VecDeque<(u64, FaultReport)>, u64)>,
    next: u64,
}

impl FaultQueues {
    /// Empty queues for `devices` devices.
    pub fn new(devices: usize) -> Self {
        FaultQueues { queues: (0..devices).map(|_| (VecDeque::new(), 0)).collect(), next: 0 }
    }

    /// Queues `report` for its device; `false` (counted lost) if that device's queue
    /// is full or the device unknown.
    pub fn push(&mut self, report: FaultReport) -> bool {
        let Some((queue, lost)) = self.queues.get_mut(usize::from(report.device)) else { return false };
        if queue.len() >= FAULT_REPORT_QUEUE {
            *lost += 1;
            return false;
        }
        queue.push_back((self.next, report));
        self.next += 1;
        true
    }

    /// The oldest report of the devices `mine` accepts, and the reports those devices
    /// lost since the previous fetch (counted once).
    pub fn pop(&mut self, mine: impl Fn(usize) -> bool) -> (Option<FaultReport>, u64) {
        let mut lost = 0;
        let mut oldest: Option<(u64, usize)> = None;
        for (d, (queue, dropped)) in self.queues.iter_mut().enumerate().filter(|(d, _)| mine(*d)) {
            lost += core::mem::take(dropped);
            if let Some(&(seq, _)) = queue.front() {
                if oldest.is_none_or(|(s, _)| seq < s) {
                    oldest = Some((seq, d));
                }
            }
        }
        let report = oldest.and_then(|(_, d)| self.queues[d].0.pop_front()).map(|(_, r)| r);
        (report, lost)
    }

    /// Reports waiting for the devices `mine` accepts.
    pub fn pending(&self, mine: impl Fn(usize) -> bool) -> usize {
        self.queues.iter().enumerate().filter(|(d, _)| mine(*d)).map(|(_, (q, _))| q.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(device: u16, iova: u64) -> FaultReport {
        FaultReport { device, requester: 0x18, reason: 6, is_write: false, iova }
    }

    #[test]
    fn one_devices_flood_drops_only_its_own_reports() {
        let mut q = FaultQueues::new(2);
        for i in 0..200 {
            let kept = q.push(report(0, i));
            assert_eq!(kept, i < FAULT_REPORT_QUEUE as u64);
        }
        assert!(q.push(report(1, 0x8000_0000)), "device 1 still has room");
        // Device 1's handler sees its report and no loss; device 0's the 72 lost.
        assert_eq!(q.pop(|d| d == 1), (Some(report(1, 0x8000_0000)), 0));
        assert_eq!(q.pop(|d| d == 0), (Some(report(0, 0)), 200 - FAULT_REPORT_QUEUE as u64));
        assert_eq!(q.pop(|d| d == 0).1, 0, "losses are counted once");
    }

    #[test]
    fn a_handler_sees_only_its_devices_oldest_first() {
        let mut q = FaultQueues::new(3);
        q.push(report(2, 1));
        q.push(report(0, 2));
        q.push(report(2, 3));
        q.push(report(1, 4));
        // Handler of devices 0 and 2 gets them in order; never device 1's.
        let mine = |d: usize| d != 1;
        let got: Vec<u64> = core::iter::from_fn(|| q.pop(mine).0.map(|r| r.iova)).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(q.pending(|d| d == 1), 1);
        // A handler of nothing gets nothing.
        assert_eq!(q.pop(|_| false), (None, 0));
        assert!(!q.push(report(9, 0)), "an unknown device is refused");
    }
}
