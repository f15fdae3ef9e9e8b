//! IOSpace root table to domain id in constant time: an open-addressing hash index.
//!
//! An IO mapping's record names its IOSpace by root table; unmapping it must
//! invalidate that IOSpace's domain. A scan of the domain records made UnmapIO grow
//! with the IOSpaces in existence (1,037 guest instructions with one, 7,043 with
//! 1,000: `make bench`). The index holds domain ids only, twice as many slots as ids
//! (a power of two), linear probing, and backward-shift deletion so no tombstones
//! pile up; the domain records stay the one truth about which root an id has: every
//! lookup compares with them, so a stale slot can never answer a wrong id.

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
        /// Random inserts and removes (of roots that collide often: few pages) agree
        /// with a map after every step.
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
