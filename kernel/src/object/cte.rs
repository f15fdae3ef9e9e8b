//! Capability table entries (slots) and the memory they live in.
//!
//! A slot is [`SLOT_BYTES`] (64) bytes: the encoded cap, the derivation-tree links,
//! and its flags.

use super::cap::{Cap, CapWords};

/// Physical address of a slot (64-byte aligned); 0 means "no slot".
pub type SlotAddr = u64;
/// log2 of a slot's size.
pub const SLOT_BITS: u32 = abi::object::CNODE_SLOT_BITS;
/// Bytes per slot.
pub const SLOT_BYTES: u64 = 1 << SLOT_BITS;

/// The slot `index` slots past `base` (in a CNode's slot array or a TCB's slots).
#[inline(always)]
pub const fn nth_slot(base: SlotAddr, index: u64) -> SlotAddr {
    base + (index << SLOT_BITS)
}

/// One slot: a cap and its place in the derivation tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cte {
    /// The capability.
    pub cap: Cap,
    /// Previous slot in the tree's preorder list (0 = none).
    pub prev: SlotAddr,
    /// Next slot in the tree's preorder list (0 = none).
    pub next: SlotAddr,
    /// Revoking this cap deletes the caps derived from it.
    pub revocable: bool,
    /// The first cap to carry its badge (badged endpoint/notification derivation).
    pub first_badged: bool,
}

impl Cte {
    /// The empty slot.
    pub const NULL: Cte = Cte { cap: Cap::Null, prev: 0, next: 0, revocable: false, first_badged: false };

    /// Stored form.
    pub fn to_words(&self) -> [u64; 8] {
        let c = self.cap.encode();
        let flags = u64::from(self.revocable) | (u64::from(self.first_badged) << 1);
        [c[0], c[1], c[2], c[3], self.prev, self.next, flags, 0]
    }

    /// Parses the stored form; `None` if the cap encoding is invalid.
    // Every slot load goes through here: keep it inlined as the decode grows.
    #[inline]
    pub fn from_words(w: [u64; 8]) -> Option<Cte> {
        let cap: CapWords = [w[0], w[1], w[2], w[3]];
        Some(Cte {
            cap: Cap::decode(cap)?,
            prev: w[4],
            next: w[5],
            revocable: w[6] & 1 != 0,
            first_badged: w[6] & 2 != 0,
        })
    }
}

/// Where slots live: the direct map on hardware, a map in host tests.
pub trait SlotMemory {
    /// Reads the slot at `slot`.
    fn load(&self, slot: SlotAddr) -> Cte;
    /// Writes the slot at `slot`.
    fn store(&mut self, slot: SlotAddr, cte: Cte);
    /// Whether `slot` is empty (Retype checks up to 256 destinations per pass).
    fn is_empty(&self, slot: SlotAddr) -> bool {
        self.load(slot).cap.is_null()
    }
    /// Replaces only the cap in `slot`, keeping its tree links and flags.
    fn store_cap(&mut self, slot: SlotAddr, cap: Cap) {
        let mut cte = self.load(slot);
        cte.cap = cap;
        self.store(slot, cte);
    }
}

#[cfg(test)]
pub mod fake {
    //! Slot memory for host tests.
    extern crate std;
    use std::collections::HashMap;

    use super::*;

    /// Slots in a hash map; absent slots read as empty.
    #[derive(Default, Debug)]
    pub struct FakeSlots {
        /// Stored words by address.
        pub slots: HashMap<SlotAddr, [u64; 8]>,
    }

    impl SlotMemory for FakeSlots {
        fn load(&self, slot: SlotAddr) -> Cte {
            assert!(slot != 0 && slot.is_multiple_of(SLOT_BYTES), "bad slot address {slot:#x}");
            self.slots.get(&slot).map_or(Cte::NULL, |w| Cte::from_words(*w).expect("valid slot"))
        }
        fn store(&mut self, slot: SlotAddr, cte: Cte) {
            assert!(slot != 0 && slot.is_multiple_of(SLOT_BYTES), "bad slot address {slot:#x}");
            self.slots.insert(slot, cte.to_words());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::rights::CapRights;

    #[test]
    fn words_round_trip() {
        let cte = Cte {
            cap: Cap::Endpoint { paddr: 0x1000, badge: 3, rights: CapRights::WRITE },
            prev: 0x40,
            next: 0x80,
            revocable: true,
            first_badged: false,
        };
        assert_eq!(Cte::from_words(cte.to_words()), Some(cte));
        assert_eq!(Cte::from_words(Cte::NULL.to_words()), Some(Cte::NULL));
    }
}
