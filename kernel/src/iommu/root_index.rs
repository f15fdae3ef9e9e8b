//! IOSpace root table to domain id in constant time: an open-addressing hash index.
//!
//! An IO mapping's record names its IOSpace by root table; unmapping it must
//! invalidate that IOSpace's domain. A scan of the domain records made UnmapIO grow
//! with the IOSpaces in existence (1,037 guest instructions with one, 7,043 with
//! 1,000: `make bench`). The index holds domain ids only, twice as many slots as ids
//! (a power of two), linear probing, and backward-shift deletion so no tombstones
//! pile up; the domain records stay the one truth about which root an id has: every
//! lookup compares with them, so a stale slot can never answer a wrong id.
//!
//! Constant time for roots the allocator happens to place; not against an adversary. A
//! probe runs the length of the cluster it lands in, and roots are pages whoever holds
//! untyped memory can choose: with 131,072 slots, every 512 MiB of RAM holds about one
//! page per home, so enough RAM lets one owner fill a window of homes and make one long
//! cluster. A probe still visits at most the live ids, never more than the scan of the
//! records it replaced.

/// The index over `slots` (0: empty; else a domain id).
pub struct RootIndex<'a> {
    slots: &'a mut [u16],
}

/// Slots an index needs for `ids` domain ids: a power of two, at least twice `ids`.
pub fn slots_for(ids: usize) -> usize {
    (2 * ids.max(1)).next_power_of_two()
}

impl<'a> RootIndex<'a> {
    /// An index over `slots` (all zero, a power of two long; see [`slots_for`]).
    pub fn new(slots: &'a mut [u16]) -> Self {
        debug_assert!(slots.is_empty() || slots.len().is_power_of_two());
        RootIndex { slots }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where probing for `root` starts (Fibonacci hashing of the page number).
    fn home(&self, root: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        if bits == 0 {
            return 0;
        }
        ((root >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The slot holding the id whose root (per `root_of`) is `root`.
    fn position(&self, root: u64, root_of: &impl Fn(u16) -> u64) -> Option<usize> {
        if self.slots.is_empty() || root == 0 {
            return None;
        }
        let mut i = self.home(root);
        // At most half full: an empty slot comes before the probe wraps around.
        for _ in 0..self.slots.len() {
            match self.slots[i] {
                0 => return None,
                id if root_of(id) == root => return Some(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
        None
    }

    /// The domain id whose root is `root` (`root_of` gives an id's current root).
    #[inline]
    pub fn find(&self, root: u64, root_of: impl Fn(u16) -> u64) -> Option<u16> {
        self.position(root, &root_of).map(|i| self.slots[i])
    }

    /// Records that `id` has `root` (not yet in the index). False if the index is full
    /// (never, sized by [`slots_for`] for every id).
    pub fn insert(&mut self, root: u64, id: u16) -> bool {
        if self.slots.is_empty() || id == 0 {
            return false;
        }
        let mut i = self.home(root);
        for _ in 0..self.slots.len() {
            if self.slots[i] == 0 {
                self.slots[i] = id;
                return true;
            }
            i = (i + 1) & self.mask();
        }
        false
    }

    /// Removes the id whose root is `root`; call it while `root_of` still gives that
    /// id's root (before its record is cleared).
    pub fn remove(&mut self, root: u64, root_of: impl Fn(u16) -> u64) {
        let Some(mut hole) = self.position(root, &root_of) else { return };
        let mask = self.mask();
        loop {
            let mut j = hole;
            loop {
                j = (j + 1) & mask;
                let id = self.slots[j];
                if id == 0 {
                    self.slots[hole] = 0;
                    return;
                }
                // The entry at `j` stays if its home lies cyclically in (hole, j];
                // otherwise the hole would cut it off from its home: move it up.
                let home = self.home(root_of(id));
                let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
                if !stays {
                    self.slots[hole] = id;
                    hole = j;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;
    use std::vec;

    #[test]
    fn sizes_are_powers_of_two_at_least_twice_the_ids() {
        assert_eq!(slots_for(1), 2);
        assert_eq!(slots_for(3), 8);
        assert_eq!(slots_for(65_536), 131_072);
    }

    proptest::proptest! {
        /// Random inserts and removes of roots from 64 consecutive pages agree with a
        /// map after every step. (Fibonacci hashing gives those pages 64 distinct homes:
        /// no entry is ever displaced here; the tests below make homes collide.)
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u16..40, 0u64..64, proptest::bool::ANY), 1..400)) {
            let ids = 40usize;
            let mut slots = vec![0u16; slots_for(ids)];
            let mut roots = vec![0u64; ids + 1];
            let mut truth: HashMap<u64, u16> = HashMap::new();
            for (raw_id, page, add) in ops {
                let id = raw_id + 1;
                let root = 0x10_0000 + page * 0x1000;
                let mut index = RootIndex::new(&mut slots);
                if add && roots[usize::from(id)] == 0 && !truth.contains_key(&root) {
                    assert!(index.insert(root, id));
                    roots[usize::from(id)] = root;
                    truth.insert(root, id);
                } else if !add && roots[usize::from(id)] != 0 {
                    let r = roots[usize::from(id)];
                    index.remove(r, |i| roots[usize::from(i)]);
                    roots[usize::from(id)] = 0;
                    truth.remove(&r);
                }
                let index = RootIndex::new(&mut slots);
                for page in 0..64 {
                    let root = 0x10_0000 + page * 0x1000;
                    proptest::prop_assert_eq!(index.find(root, |i| roots[usize::from(i)]), truth.get(&root).copied());
                }
            }
        }
    }

    /// Per home slot of an index of `slots` slots, `n` distinct page-aligned roots that
    /// hash there (the proptest above draws consecutive pages, which Fibonacci hashing
    /// spreads to distinct homes: no entry there ever sits away from its home).
    fn roots_by_home(slots: usize, n: usize) -> vec::Vec<vec::Vec<u64>> {
        let mut probe = vec![0u16; slots];
        let index = RootIndex::new(&mut probe);
        let mut out = vec![vec::Vec::new(); slots];
        let mut page = 1u64;
        while out.iter().any(|v| v.len() < n) {
            let h = index.home(page << 12);
            if out[h].len() < n {
                out[h].push(page << 12);
            }
            page += 1;
        }
        out
    }

    /// Every live root finds its id, every removed one nothing, and the index holds
    /// exactly the live ids.
    fn check(slots: &mut [u16], roots: &[u64], live: &[bool]) {
        let occupied = slots.iter().filter(|&&s| s != 0).count();
        assert_eq!(occupied, live.iter().filter(|&&l| l).count(), "slots {slots:?}");
        let index = RootIndex::new(slots);
        let root_of = |id: u16| if live[usize::from(id) - 1] { roots[usize::from(id) - 1] } else { 0 };
        for (i, &r) in roots.iter().enumerate() {
            let want = live[i].then_some(i as u16 + 1);
            assert_eq!(index.find(r, root_of), want, "root {r:#x} (id {})", i + 1);
        }
    }

    /// Calls `f` with every permutation of `0..k` (Heap's algorithm).
    fn permutations(k: usize, f: &mut impl FnMut(&[usize])) {
        fn go(n: usize, a: &mut [usize], f: &mut impl FnMut(&[usize])) {
            if n <= 1 {
                return f(a);
            }
            for i in 0..n {
                go(n - 1, a, f);
                a.swap(if n.is_multiple_of(2) { i } else { 0 }, n - 1);
            }
        }
        go(k, &mut (0..k).collect::<vec::Vec<_>>(), f);
    }

    /// Exhaustive over an 8-slot index: every choice of home slot for up to five roots
    /// (collisions, clusters that wrap past the last slot), inserted in id order, then
    /// removed in every order. Backward-shift deletion must keep every survivor
    /// findable after each removal.
    #[test]
    fn every_home_choice_and_removal_order_in_a_small_index() {
        const SLOTS: usize = 8;
        let pool = roots_by_home(SLOTS, 5);
        let mut runs = 0u64;
        for k in 1..=5usize {
            for choice in 0..SLOTS.pow(k as u32) {
                let roots: vec::Vec<u64> = (0..k).map(|i| pool[(choice / SLOTS.pow(i as u32)) % SLOTS][i]).collect();
                let mut base = [0u16; SLOTS];
                for (i, &r) in roots.iter().enumerate() {
                    assert!(RootIndex::new(&mut base).insert(r, i as u16 + 1));
                }
                check(&mut base, &roots, &[true; 5][..k]);
                permutations(k, &mut |order| {
                    let mut slots = base;
                    let mut live = [true; 5];
                    for &gone in order {
                        let root_of = |id: u16| if live[usize::from(id) - 1] { roots[usize::from(id) - 1] } else { 0 };
                        RootIndex::new(&mut slots).remove(roots[gone], root_of);
                        live[gone] = false;
                        check(&mut slots, &roots, &live[..k]);
                    }
                    runs += 1;
                });
            }
        }
        assert_eq!(runs, (1..=5u32).map(|k| 8u64.pow(k) * (1..=u64::from(k)).product::<u64>()).sum::<u64>());
    }

    proptest::proptest! {
        /// Random inserts and removes of roots whose homes are the last two and first
        /// two slots (long clusters that wrap around) agree with a map after every step,
        /// with the index as full as the kernel ever fills it and fuller.
        #[test]
        fn agrees_with_a_map_when_homes_collide(ops in proptest::collection::vec((0usize..12, 0usize..4, 0usize..3, proptest::bool::ANY), 1..300)) {
            const SLOTS: usize = 16;
            let pool = roots_by_home(SLOTS, 3);
            let homes = [SLOTS - 2, SLOTS - 1, 0, 1];
            let mut slots = [0u16; SLOTS];
            // Id i + 1 may hold any pool root; at most 12 of 16 slots ever fill.
            let mut roots = [0u64; 12];
            for (id, home, n, add) in ops {
                let root = pool[homes[home]][n];
                let holder = roots.iter().position(|&r| r == root);
                let root_of = |i: u16| roots[usize::from(i) - 1];
                if add && roots[id] == 0 && holder.is_none() {
                    proptest::prop_assert!(RootIndex::new(&mut slots).insert(root, id as u16 + 1));
                    roots[id] = root;
                } else if !add && roots[id] != 0 {
                    RootIndex::new(&mut slots).remove(roots[id], root_of);
                    roots[id] = 0;
                }
                let live: vec::Vec<bool> = roots.iter().map(|&r| r != 0).collect();
                let index = RootIndex::new(&mut slots);
                let root_of = |i: u16| roots[usize::from(i) - 1];
                for &h in &homes {
                    for &r in &pool[h] {
                        let want = roots.iter().position(|&x| x == r).map(|i| i as u16 + 1);
                        proptest::prop_assert_eq!(index.find(r, root_of), want, "root {:#x}", r);
                    }
                }
                proptest::prop_assert_eq!(slots.iter().filter(|&&s| s != 0).count(), live.iter().filter(|&&l| l).count());
            }
        }
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let mut none: [u16; 0] = [];
        let index = RootIndex::new(&mut none);
        assert_eq!(index.find(0x1000, |_| 0x1000), None);
        let mut slots = [0u16; 4];
        let mut index = RootIndex::new(&mut slots);
        assert_eq!(index.find(0, |_| 0), None, "root 0 is no IOSpace");
        assert!(!index.insert(0x1000, 0), "id 0 is never handed out");
    }
}
