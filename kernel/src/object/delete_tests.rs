//! Tests of restartable deletion (Delete in bounded steps with a Zombie).
//!
//! Restartable deletion: a Delete cut into bounded steps (a Zombie holding the slot in
//! between) ends in exactly the state of an uninterrupted one, no slot of an object
//! being destroyed is reachable between steps, and the Zombie can be used for nothing
//! but finishing the deletion.

extern crate std;
use std::collections::BTreeSet;
use std::vec::Vec;

use abi::error::SyscallError;
use abi::rights::CapRights;
use proptest::prelude::*;

use super::cap::Cap;
use super::cnode::{self, Finaliser, Progress};
use super::cte::fake::FakeSlots;
use super::cte::{Cte, SlotAddr, SlotMemory, SLOT_BITS};
use super::mdb;
use super::tcb::TCB_SLOTS;

/// Slot of the untyped every object comes from.
const UNTYPED_SLOT: SlotAddr = 0x40;
/// The live CSpace root (radix 4); its slot 0 holds the tree's only cap.
const ROOT: u64 = 0x10_0000;
const TOP: SlotAddr = ROOT;
/// Where objects live: CNodes every 64 KiB, endpoints and TCBs further up.
const UNTYPED_BASE: u64 = 0x100_0000;
const EP_BASE: u64 = 0x180_0000;
const TCB_BASE: u64 = 0x190_0000;

/// Records every object finalisation (shared with `zombie_tests`).
#[derive(Default)]
pub(super) struct Recorder(pub(super) Vec<Cap>);
impl Finaliser for Recorder {
    fn unmap_frame(&mut self, _cap: &Cap) {}
    fn unmap_table(&mut self, _cap: &Cap) {}
    fn finalise_object(&mut self, cap: &Cap) {
        self.0.push(*cap);
    }
}

fn cnode_at(i: u64, radix: u8) -> Cap {
    Cap::CNode { paddr: UNTYPED_BASE + i * 0x1_0000, radix, guard_bits: 0, guard: 0 }
}

fn ep_at(k: u64) -> Cap {
    Cap::Endpoint { paddr: EP_BASE + k * 16, badge: 0, rights: CapRights::ALL }
}

/// Memory with the untyped, the live root CNode and nothing else.
fn base() -> FakeSlots {
    let mut m = FakeSlots::default();
    let ut = Cap::Untyped {
        paddr: UNTYPED_BASE,
        size_bits: 24,
        is_device: false,
        free_offset: 0,
        cleared: crate::object::untyped::Cleared::NONE,
    };
    mdb::insert_root(&mut m, UNTYPED_SLOT, ut, true);
    m
}

fn put(m: &mut FakeSlots, dest: SlotAddr, cap: Cap) {
    mdb::insert_child(m, UNTYPED_SLOT, dest, cap, false, false);
}

/// A tree from a recipe: node 0 (its cap in TOP) and nodes 1.. each in a slot of an
/// earlier node; `leaves` endpoints (every other one also copied into the live root,
/// so its deletion is not final) and a TCB holding an endpoint and a CNode.
/// Returns the memory and every object's slot range.
fn tree(parents: &[(u8, u8)], leaves: &[(u8, u8)]) -> (FakeSlots, Vec<(u64, u64)>) {
    let mut m = base();
    let radix = 3u8;
    let mut ranges = Vec::new();
    put(&mut m, TOP, cnode_at(0, radix));
    ranges.push((UNTYPED_BASE, 1u64 << radix));
    let free_slot = |m: &FakeSlots, node: u64, hint: u8| -> Option<SlotAddr> {
        let base = UNTYPED_BASE + node * 0x1_0000;
        (0..8u64).map(|k| base + (((u64::from(hint) + k) % 8) << SLOT_BITS)).find(|&s| m.load(s).cap.is_null())
    };
    for (i, &(parent, hint)) in parents.iter().enumerate() {
        let node = i as u64 + 1;
        let parent = u64::from(parent) % node;
        if let Some(s) = free_slot(&m, parent, hint) {
            put(&mut m, s, cnode_at(node, radix));
            ranges.push((UNTYPED_BASE + node * 0x1_0000, 1u64 << radix));
        }
    }
    let nodes = ranges.len() as u64;
    for (k, &(node, hint)) in leaves.iter().enumerate() {
        let Some(s) = free_slot(&m, u64::from(node) % nodes, hint) else { continue };
        if k == 0 {
            // A TCB whose slots hold an endpoint and a small CNode.
            let tcb = Cap::Tcb { paddr: TCB_BASE };
            put(&mut m, s, tcb);
            put(&mut m, TCB_BASE, ep_at(1000));
            put(&mut m, TCB_BASE + 64, cnode_at(200, 1));
            put(&mut m, UNTYPED_BASE + 200 * 0x1_0000, ep_at(1001));
            ranges.push((TCB_BASE, TCB_SLOTS as u64));
            ranges.push((UNTYPED_BASE + 200 * 0x1_0000, 2));
            continue;
        }
        put(&mut m, s, ep_at(k as u64));
        if k % 2 == 0 {
            let copy = cnode::decode_derive(&m, s, CapRights::ALL, None).unwrap();
            cnode::invoke_copy(&mut m, s, ROOT + ((1 + k as u64 % 15) << SLOT_BITS), copy);
        }
    }
    (m, ranges)
}

/// Slots reachable from the live root by following CNode caps (each CNode once).
fn reachable(m: &FakeSlots) -> BTreeSet<SlotAddr> {
    let mut seen = BTreeSet::new();
    let mut nodes = std::vec![(ROOT, 4u8)];
    let mut visited = BTreeSet::new();
    while let Some((base, radix)) = nodes.pop() {
        if !visited.insert(base) {
            continue;
        }
        for i in 0..1u64 << radix {
            let s = base + (i << SLOT_BITS);
            seen.insert(s);
            if let Cap::CNode { paddr, radix, .. } = m.load(s).cap {
                nodes.push((paddr, radix));
            }
        }
    }
    seen
}

/// The derivation list from the untyped: every link is mirrored, no slot in it is empty.
fn check_list(m: &FakeSlots) {
    let mut prev = UNTYPED_SLOT;
    let mut at = m.load(UNTYPED_SLOT).next;
    while at != 0 {
        let cte = m.load(at);
        assert_eq!(cte.prev, prev, "broken back link at {at:#x}");
        assert!(!cte.cap.is_null(), "an empty slot {at:#x} in the list");
        prev = at;
        at = cte.next;
    }
}

fn in_ranges(ranges: &[(u64, u64)], s: SlotAddr) -> bool {
    ranges.iter().any(|&(base, count)| s >= base && s < base + (count << SLOT_BITS))
}

/// Deletes TOP in steps of the given budgets (cycled), checking the invariants between
/// steps; returns the finalisations and the number of steps.
fn delete_in_steps(m: &mut FakeSlots, ranges: &[(u64, u64)], budgets: &[u64]) -> (Vec<Cap>, usize) {
    let mut fx = Recorder::default();
    for step in 0.. {
        let budget = budgets[step % budgets.len()].max(cnode::DELETE_COST);
        let before = fx.0.len() as u64;
        let mut left = budget;
        let progress = cnode::delete_bounded(m, &mut fx, TOP, &mut left);
        assert!((fx.0.len() as u64 - before) * cnode::DELETE_COST <= budget, "a step did more than its budget");
        check_list(m);
        if progress == Progress::Done {
            return (fx.0, step + 1);
        }
        assert!(matches!(m.load(TOP).cap, Cap::Zombie { .. }), "a Zombie holds the slot between steps");
        assert!(mdb::has_children(m, UNTYPED_SLOT), "the Zombie keeps its untyped from being reused");
        for s in reachable(m) {
            assert!(!in_ranges(ranges, s), "slot {s:#x} of an object being destroyed is reachable");
        }
        assert_eq!(cnode::decode_derive(m, TOP, CapRights::ALL, None), Err(SyscallError::IllegalOperation));
        assert_eq!(cnode::decode_movable(m, TOP), Err(SyscallError::IllegalOperation));
        assert!(cnode::long_running_delete(m, TOP));
    }
    unreachable!()
}

fn assert_all_gone(m: &FakeSlots, ranges: &[(u64, u64)]) {
    assert_eq!(m.load(TOP), Cte::NULL);
    for &(base, count) in ranges {
        for i in 0..count {
            assert_eq!(m.load(base + (i << SLOT_BITS)), Cte::NULL, "slot {i} of the object at {base:#x} left over");
        }
    }
    check_list(m);
}

fn sorted(mut caps: Vec<Cap>) -> Vec<u64> {
    caps.sort_by_key(|c| c.region().map_or(0, |r| r.0));
    caps.iter().map(|c| c.region().map_or(0, |r| r.0)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn partial_deletes_plus_restarts_equal_one_delete(
        parents in prop::collection::vec((any::<u8>(), any::<u8>()), 0..12),
        leaves in prop::collection::vec((any::<u8>(), any::<u8>()), 0..40),
        budgets in prop::collection::vec(1u64..24, 1..6),
    ) {
        let (mut whole, ranges) = tree(&parents, &leaves);
        let (mut cut, _) = tree(&parents, &leaves);
        let mut fx = Recorder::default();
        cnode::delete(&mut whole, &mut fx, TOP);
        let (stepped, _) = delete_in_steps(&mut cut, &ranges, &budgets);
        assert_all_gone(&cut, &ranges);
        prop_assert_eq!(&whole.slots.iter().filter(|(_, w)| **w != [0; 8]).collect::<BTreeSet<_>>(),
            &cut.slots.iter().filter(|(_, w)| **w != [0; 8]).collect::<BTreeSet<_>>());
        prop_assert_eq!(sorted(fx.0), sorted(stepped));
    }
}

#[test]
fn a_big_tree_takes_several_bounded_calls() {
    // One CNode of radix 2 holding four of radix 8, each full of endpoints.
    let mut m = base();
    put(&mut m, TOP, cnode_at(0, 2));
    let mut ranges = std::vec![(UNTYPED_BASE, 4)];
    for i in 0..4u64 {
        put(&mut m, UNTYPED_BASE + (i << SLOT_BITS), cnode_at(i + 1, 8));
        ranges.push((UNTYPED_BASE + (i + 1) * 0x1_0000, 256));
        for k in 0..256 {
            put(&mut m, UNTYPED_BASE + (i + 1) * 0x1_0000 + (k << SLOT_BITS), ep_at(i * 256 + k));
        }
    }
    let (finalised, steps) = delete_in_steps(&mut m, &ranges, &[cnode::WORK_BATCH]);
    assert_eq!(finalised.len(), 1024, "every endpoint finalised once");
    assert!(steps >= 4, "1024 deletions need at least 4 batches, took {steps}");
    assert_all_gone(&m, &ranges);
    assert!(!mdb::has_children(&m, UNTYPED_SLOT), "the untyped has no child left");
}

#[test]
fn a_cnode_holding_its_own_last_cap_is_destroyed() {
    let mut m = base();
    let own = UNTYPED_BASE + (5 << SLOT_BITS);
    put(&mut m, own, cnode_at(0, 3));
    put(&mut m, UNTYPED_BASE, ep_at(0));
    let mut fx = Recorder::default();
    let mut budget = 2 * cnode::DELETE_COST;
    assert_eq!(cnode::delete_bounded(&mut m, &mut fx, own, &mut budget), Progress::Preempted);
    cnode::delete(&mut m, &mut fx, own);
    assert_all_gone(&m, &[(UNTYPED_BASE, 8)]);
    assert!(!mdb::has_children(&m, UNTYPED_SLOT));
}

#[test]
fn a_preempted_zombie_met_by_another_delete_is_taken_over() {
    // CNode A (radix 4, full of endpoints) has its last cap in CNode B's slot 1; a
    // delete of that slot stops half way, then B's last cap (in TOP) is deleted.
    let mut m = base();
    let (a, b) = (cnode_at(1, 4), cnode_at(2, 2));
    let a_base = UNTYPED_BASE + 0x1_0000;
    let b_base = UNTYPED_BASE + 2 * 0x1_0000;
    put(&mut m, TOP, b);
    put(&mut m, b_base + 64, a);
    for k in (0..16).filter(|&k| k != 3) {
        put(&mut m, a_base + (k << SLOT_BITS), ep_at(k));
    }
    // A's slot 3 holds the last cap to C (radix 2, two endpoints): records get made.
    let c_base = UNTYPED_BASE + 3 * 0x1_0000;
    put(&mut m, a_base + (3 << SLOT_BITS), cnode_at(3, 2));
    put(&mut m, c_base, ep_at(100));
    put(&mut m, c_base + 64, ep_at(101));
    let mut fx = Recorder::default();
    let mut budget = 5 * cnode::DELETE_COST;
    assert_eq!(cnode::delete_bounded(&mut m, &mut fx, b_base + 64, &mut budget), Progress::Preempted);
    assert!(matches!(m.load(b_base + 64).cap, Cap::Zombie { next, .. } if next == a_base + (3 << SLOT_BITS)));
    let ranges = [(a_base, 16), (b_base, 4), (c_base, 4)];
    let (rest, _) = delete_in_steps(&mut m, &ranges, &[3, 7, 1]);
    fx.0.extend(rest);
    assert_all_gone(&m, &ranges);
    assert_eq!(fx.0.len(), 15 + 2, "every endpoint finalised exactly once");
    assert!(!mdb::has_children(&m, UNTYPED_SLOT));
}

#[test]
fn revoking_the_untyped_finishes_a_zombie() {
    let (mut m, ranges) = tree(&[(0, 1), (1, 2), (0, 5)], &[(1, 0), (2, 3), (3, 1), (0, 7)]);
    let mut fx = Recorder::default();
    let mut budget = 3 * cnode::DELETE_COST;
    assert_eq!(cnode::delete_bounded(&mut m, &mut fx, TOP, &mut budget), Progress::Preempted);
    cnode::revoke(&mut m, &mut fx, UNTYPED_SLOT);
    assert_all_gone(&m, &ranges);
    assert!(!mdb::has_children(&m, UNTYPED_SLOT));
}
