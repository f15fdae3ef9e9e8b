//! Per-vector state behind MSI handler caps.
//!
//! The per-vector state behind MSI handler caps: which vectors are handed out and to
//! which requester, the notification each one signals, and the per-tick rate limit.
//! Pure bookkeeping (the caller writes the interrupt-remapping entries it is told to
//! write), so it is tested on the host.
//!
//! Everything about a vector is reset when it is allocated AND when it is released: a
//! late MSI (already pending in the local APIC when the last cap went) must find a free
//! vector inert. It is not counted, cannot throttle the vector, and the timer tick
//! never restores the entry of a vector that is no longer allocated.

/// Vectors tracked (bit `i` of the masks is vector index `i`).
pub const MSI_SLOTS: usize = 64;

/// What the interrupt handler does with one delivered MSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Signal this notification with this badge.
    Signal(u64, u64),
    /// The vector is allocated but bound to no notification.
    Unbound,
    /// The vector is not allocated (an MSI that was pending when it was released).
    Released,
}

/// The state of every MSI vector.
#[derive(Debug)]
pub struct MsiVectors {
    /// Vectors with an MSI handler cap in existence.
    issued: u64,
    /// Vectors whose entry is suspended until the next tick.
    throttled: u64,
    /// The requester each allocated vector belongs to.
    requesters: [u16; MSI_SLOTS],
    /// MSIs per vector since the last tick.
    counts: [u16; MSI_SLOTS],
    /// Notification and badge signalled per vector.
    handlers: [Option<(u64, u64)>; MSI_SLOTS],
    /// Per vector: 0 for an MSI, else 1 + the MSI-X table entry it was made for.
    msix: [u16; MSI_SLOTS],
}

impl Default for MsiVectors {
    fn default() -> Self {
        Self::new()
    }
}

impl MsiVectors {
    /// Every vector free.
    pub const fn new() -> Self {
        MsiVectors {
            issued: 0,
            throttled: 0,
            requesters: [0; MSI_SLOTS],
            counts: [0; MSI_SLOTS],
            handlers: [None; MSI_SLOTS],
            msix: [0; MSI_SLOTS],
        }
    }

    /// Allocates the lowest free vector index below `limit` for `requester`.
    pub fn allocate(&mut self, requester: u16, limit: usize) -> Option<usize> {
        let index = (0..limit.min(MSI_SLOTS)).find(|&i| self.issued & (1 << i) == 0)?;
        self.clear(index);
        self.issued |= 1 << index;
        self.requesters[index] = requester;
        Some(index)
    }

    /// The last cap for vector `index` is gone: every piece of its state is dropped
    /// (the caller removes its interrupt-remapping entry).
    pub fn release(&mut self, index: usize) {
        self.clear(index);
    }

    fn clear(&mut self, index: usize) {
        self.issued &= !(1 << index);
        self.throttled &= !(1 << index);
        self.requesters[index] = 0;
        self.counts[index] = 0;
        self.handlers[index] = None;
        self.msix[index] = 0;
    }

    /// Allocates the lowest free vector index below `limit` for MSI-X table entry
    /// `entry` (< 2048) of `requester`. `Err(Some(index))` if that entry already has a
    /// vector, `Err(None)` if every vector is taken.
    pub fn allocate_msix(&mut self, requester: u16, entry: u16, limit: usize) -> Result<usize, Option<usize>> {
        if let Some(index) = self.msix_vector(requester, entry) {
            return Err(Some(index));
        }
        let index = self.allocate(requester, limit).ok_or(None)?;
        self.msix[index] = entry + 1;
        Ok(index)
    }

    /// The vector index allocated for MSI-X entry `entry` of `requester`, if any.
    pub fn msix_vector(&self, requester: u16, entry: u16) -> Option<usize> {
        (0..MSI_SLOTS).find(|&i| self.is_allocated(i) && self.requesters[i] == requester && self.msix[i] == entry + 1)
    }

    /// The requester and MSI-X entry of vector `index`, if it is an allocated MSI-X vector.
    pub fn msix_entry(&self, index: usize) -> Option<(u16, u16)> {
        (self.is_allocated(index) && self.msix[index] != 0).then(|| (self.requesters[index], self.msix[index] - 1))
    }

    /// Whether vector `index` has a handler cap.
    pub fn is_allocated(&self, index: usize) -> bool {
        index < MSI_SLOTS && self.issued & (1 << index) != 0
    }

    /// Binds vector `index` to a notification (`None` unbinds); ignored for a free vector.
    pub fn bind(&mut self, index: usize, target: Option<(u64, u64)>) {
        if self.is_allocated(index) {
            self.handlers[index] = target;
        }
    }

    /// The notification at `ntfn` is being destroyed: every vector bound to it is unbound.
    pub fn forget_notification(&mut self, ntfn: u64) {
        for handler in self.handlers.iter_mut().filter(|h| matches!(h, Some((n, _)) if *n == ntfn)) {
            *handler = None;
        }
    }

    /// Whether any vector is bound to a notification.
    pub fn any_bound(&self) -> bool {
        self.handlers.iter().any(Option::is_some)
    }

    /// Counts one delivery of vector `index`. Returns what to do with it and whether the
    /// vector has now gone past `limit` in this tick (the caller suspends its entry).
    pub fn deliver(&mut self, index: usize, limit: u16) -> (Delivery, bool) {
        if !self.is_allocated(index) {
            return (Delivery::Released, false);
        }
        self.counts[index] = self.counts[index].saturating_add(1);
        let throttle = self.counts[index] > limit && self.throttled & (1 << index) == 0;
        if throttle {
            self.throttled |= 1 << index;
        }
        let delivery = self.handlers[index].map_or(Delivery::Unbound, |(n, b)| Delivery::Signal(n, b));
        (delivery, throttle)
    }

    /// Timer tick: counts restart; returns the throttled vectors, each still allocated,
    /// with its requester, whose entries the caller restores (at most one per set bit).
    pub fn tick(&mut self) -> impl Iterator<Item = (usize, u16)> + '_ {
        self.counts = [0; MSI_SLOTS];
        let restore = core::mem::take(&mut self.throttled) & self.issued;
        (0..MSI_SLOTS).filter(move |&i| restore & (1 << i) != 0).map(|i| (i, self.requesters[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    const LIMIT: u16 = 64;

    fn throttled_vector() -> (MsiVectors, usize) {
        let mut v = MsiVectors::new();
        let i = v.allocate(0x18, MSI_SLOTS).unwrap();
        v.bind(i, Some((0x5000, 1)));
        for _ in 0..LIMIT {
            assert_eq!(v.deliver(i, LIMIT), (Delivery::Signal(0x5000, 1), false));
        }
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Signal(0x5000, 1), true), "throttled past the limit");
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Signal(0x5000, 1), false), "throttled once per tick");
        (v, i)
    }

    #[test]
    fn a_throttled_vector_comes_back_on_the_next_tick() {
        let (mut v, i) = throttled_vector();
        assert_eq!(v.tick().collect::<Vec<_>>(), [(i, 0x18)]);
        assert_eq!(v.tick().count(), 0, "restored once");
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Signal(0x5000, 1), false), "counting starts over");
    }

    #[test]
    fn a_released_vector_is_inert_even_for_a_late_msi() {
        // Throttled, then released in the same tick; an MSI that was already pending in
        // the local APIC arrives afterwards.
        let (mut v, i) = throttled_vector();
        v.release(i);
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Released, false), "not counted, never re-throttled");
        assert_eq!(v.tick().count(), 0, "the tick restores no entry for the freed vector");
        // Also when the release comes before the limit is reached.
        let mut v = MsiVectors::new();
        let i = v.allocate(0x20, MSI_SLOTS).unwrap();
        for _ in 0..LIMIT {
            v.deliver(i, LIMIT);
        }
        v.release(i);
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Released, false));
        assert_eq!(v.tick().count(), 0);
        assert!(!v.any_bound() && !v.is_allocated(i));
    }

    #[test]
    fn a_reallocated_vector_starts_clean() {
        let (mut v, i) = throttled_vector();
        v.release(i);
        let again = v.allocate(0x28, MSI_SLOTS).unwrap();
        assert_eq!(again, i, "the lowest free vector");
        assert_eq!(v.deliver(i, LIMIT), (Delivery::Unbound, false), "no old binding, no old count");
        assert_eq!(v.tick().count(), 0, "not throttled");
        v.bind(i, Some((0x6000, 2)));
        v.forget_notification(0x6000);
        assert_eq!(v.deliver(i, LIMIT).0, Delivery::Unbound);
    }

    #[test]
    fn allocation_stops_at_the_limit() {
        let mut v = MsiVectors::new();
        assert!((0..4).all(|_| v.allocate(1, 4).is_some()));
        assert_eq!(v.allocate(1, 4), None);
        v.bind(9, Some((1, 1)));
        assert!(!v.any_bound(), "binding a free vector does nothing");
    }

    #[test]
    fn msix_entries_are_owned_once_and_forgotten_on_release() {
        let mut v = MsiVectors::new();
        let msi = v.allocate(0x18, MSI_SLOTS).unwrap();
        assert_eq!(v.msix_entry(msi), None, "an MSI has no table entry");
        let a = v.allocate_msix(0x18, 0, MSI_SLOTS).unwrap();
        let b = v.allocate_msix(0x20, 0, MSI_SLOTS).unwrap();
        assert_ne!(a, b, "entry 0 of two functions");
        assert_eq!(v.allocate_msix(0x18, 0, MSI_SLOTS), Err(Some(a)), "one vector per entry");
        assert_eq!((v.msix_entry(a), v.msix_vector(0x20, 0)), (Some((0x18, 0)), Some(b)));
        let last = v.allocate_msix(0x18, 2047, MSI_SLOTS).unwrap();
        assert_eq!(v.msix_entry(last), Some((0x18, 2047)));
        v.release(a);
        assert_eq!((v.msix_entry(a), v.msix_vector(0x18, 0)), (None, None));
        assert_eq!(v.allocate(0x30, MSI_SLOTS), Some(a), "reused as a plain MSI");
        assert_eq!(v.msix_entry(a), None, "with no stale entry");
        assert_eq!(v.allocate_msix(0x18, 1, 4), Err(None), "every vector below the limit taken");
    }
}
