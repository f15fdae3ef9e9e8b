//! Tests that Zombies keep objects being destroyed in the derivation tree.
//!
//! Zombies keep the memory of every object being destroyed in the derivation tree: at
//! every preemption point of a Delete (or of a Revoke that meets one), an untyped
//! without children has no live slot in its range, so it cannot be retyped over the
//! slots a restarted deletion will still read. Each CNode and TCB here comes from an
//! untyped of its own, so the check is not hidden by a shared parent.

extern crate std;
use std::collections::BTreeMap;
use std::vec::Vec;

use abi::error::SyscallError;
use abi::object::ObjectType;
use abi::rights::CapRights;
use proptest::prelude::*;

use super::cap::Cap;
use super::cnode::{self, Progress, RevokeProgress};
use super::cte::fake::FakeSlots;
use super::cte::{SlotAddr, SlotMemory, SLOT_BITS, SLOT_BYTES};
use super::delete_tests::Recorder;
use super::mdb;
use super::untyped;

/// Slots of the untypeds (one per object), and of the live root CNode (radix 4).
const UT_SLOTS: SlotAddr = 0x8000;
const ROOT: u64 = 0x10_0000;
/// The slot whose deletion the tests drive.
const TOP: SlotAddr = ROOT;
/// Objects: 64 KiB apart, endpoints in a region of their own.
const OBJ_BASE: u64 = 0x100_0000;
const EP_BASE: u64 = 0x900_0000;

/// A world of objects each retyped from its own untyped: `(untyped slot, base, bits)`.
#[derive(Default)]
struct World {
    m: FakeSlots,
    untypeds: Vec<(SlotAddr, u64, u32)>,
    endpoints: u64,
}

impl World {
    /// Retypes the CNode (`radix`) or TCB (`radix` None) number `i` into `dest`.
    fn object(&mut self, i: u64, radix: Option<u8>, dest: SlotAddr) -> u64 {
        let base = OBJ_BASE + i * 0x1_0000;
        let (cap, bits) = match radix {
            Some(r) => (Cap::CNode { paddr: base, radix: r, guard_bits: 0, guard: 0 }, u32::from(r) + SLOT_BITS),
            None => (Cap::Tcb { paddr: base }, 11),
        };
        let ut_slot = UT_SLOTS + (self.untypeds.len() as u64) * SLOT_BYTES;
        let ut = Cap::Untyped {
            paddr: base,
            size_bits: bits as u8,
            is_device: false,
            free_offset: 1 << bits,
            cleared: crate::object::untyped::Cleared::NONE,
        };
        mdb::insert_root(&mut self.m, ut_slot, ut, true);
        mdb::insert_child(&mut self.m, ut_slot, dest, cap, true, true);
        self.untypeds.push((ut_slot, base, bits));
        base
    }

    /// An endpoint (from a root of its own) in `dest`.
    fn endpoint(&mut self, dest: SlotAddr) {
        let ep = Cap::Endpoint { paddr: EP_BASE + self.endpoints * 16, badge: 0, rights: CapRights::ALL };
        self.endpoints += 1;
        mdb::insert_root(&mut self.m, dest, ep, false);
    }

    /// The invariant: an untyped that could be reset (no children) has no live slot in
    /// its range, and an untyped whose range holds a live slot refuses a full retype.
    fn check(&self) {
        for &(ut, base, bits) in &self.untypeds {
            let live = (0..1u64 << (bits - SLOT_BITS))
                .map(|k| base + (k << SLOT_BITS))
                .find(|&s| !self.m.load(s).cap.is_null());
            let Some(live) = live else { continue };
            assert!(
                mdb::has_children(&self.m, ut),
                "untyped at {base:#x} has no child but slot {live:#x} holds {:?}",
                self.m.load(live).cap
            );
            let free = ROOT + (15 << SLOT_BITS);
            let retyped = untyped::decode_retype(&self.m, ut, ObjectType::Endpoint, 0, 1, [free].into_iter(), 0);
            assert_eq!(retyped.err(), Some(SyscallError::NotEnoughMemory), "retype over live slot {live:#x}");
        }
    }

    fn all_gone(&self) {
        for &(ut, base, bits) in &self.untypeds {
            assert!(!mdb::has_children(&self.m, ut), "untyped at {base:#x} keeps a child");
            for k in 0..1u64 << (bits - SLOT_BITS) {
                assert!(self.m.load(base + (k << SLOT_BITS)).cap.is_null(), "slot {k} of {base:#x} left over");
            }
        }
        assert!(self.m.load(TOP).cap.is_null());
    }
}

/// Each endpoint finalised exactly once.
fn assert_each_once(fx: &Recorder, endpoints: u64) {
    let mut seen = BTreeMap::new();
    for cap in fx.0.iter().filter(|c| matches!(c, Cap::Endpoint { .. })) {
        *seen.entry(cap.region()).or_insert(0) += 1;
    }
    assert_eq!(seen.len() as u64, endpoints, "every endpoint finalised");
    assert!(seen.values().all(|&n| n == 1), "an endpoint finalised twice");
}

/// Revokes untyped `ut` in steps of `budget`, checking the invariant between steps.
fn revoke_in_steps(w: &mut World, fx: &mut Recorder, ut: SlotAddr, budget: u64) {
    for _ in 0..100_000 {
        let step = cnode::revoke_bounded(&mut w.m, fx, ut, budget);
        w.check();
        if let RevokeProgress::Done { .. } = step {
            return;
        }
    }
    panic!("revoke made no progress");
}

/// The attacker's layout: a radix-1 CNode O in TOP whose slot 0 holds the only cap to
/// a CNode C full of endpoints (and a nested CNode E); a Delete of TOP stops once C is
/// being destroyed, then C's untyped is revoked.
#[test]
fn an_object_being_destroyed_keeps_its_untyped_busy_and_revoke_finishes_it() {
    let mut w = World::default();
    let o = w.object(0, Some(1), TOP);
    let c = w.object(1, Some(5), o);
    for k in 0..31 {
        w.endpoint(c + (k << SLOT_BITS));
    }
    let e = w.object(2, Some(2), c + (31 << SLOT_BITS));
    w.endpoint(e);
    let mut fx = Recorder::default();
    let mut budget = 3 * cnode::DELETE_COST;
    assert_eq!(cnode::delete_bounded(&mut w.m, &mut fx, TOP, &mut budget), Progress::Preempted);
    // C is being destroyed and some of its endpoints are still there.
    assert!(!w.m.load(c + (20 << SLOT_BITS)).cap.is_null());
    w.check();
    let u_c = w.untypeds[1].0;
    revoke_in_steps(&mut w, &mut fx, u_c, 2 * cnode::DELETE_COST + 1);
    assert!(w.m.load(TOP).cap.is_null(), "the Revoke finished the whole deletion it met");
    w.all_gone();
    assert_each_once(&fx, 32);
}

/// A thread deleting its own TCB whose CSpace root (its only cap in the TCB) holds the
/// TCB's only cap: the user's Zombie sits inside a CNode the deletion destroys.
#[test]
fn a_zombie_inside_an_object_it_destroys_outlives_nothing() {
    for budget in cnode::DELETE_COST..40 {
        let mut w = World::default();
        let c_base = OBJ_BASE + 0x1_0000;
        let own = c_base + (5 << SLOT_BITS);
        let t = w.object(0, None, own);
        let c = w.object(1, Some(3), t);
        assert_eq!(c, c_base);
        for k in [0, 1, 6, 7] {
            w.endpoint(c + (k << SLOT_BITS));
        }
        let d = w.object(2, Some(2), t + 64);
        for k in 0..4 {
            w.endpoint(d + (k << SLOT_BITS));
        }
        let mut fx = Recorder::default();
        let mut steps = 0;
        // Until the slot is empty: done, or the Zombie moved out of the dying CNode.
        while !w.m.load(own).cap.is_null() {
            let mut left = budget;
            cnode::delete_bounded(&mut w.m, &mut fx, own, &mut left);
            w.check();
            steps += 1;
            assert!(steps < 10_000, "no progress");
        }
        // Whatever is left is reachable only through the untypeds: revoke them.
        for u in 0..w.untypeds.len() {
            let ut = w.untypeds[u].0;
            revoke_in_steps(&mut w, &mut fx, ut, budget);
        }
        w.all_gone();
        assert_each_once(&fx, 8);
    }
}

/// Builds a random tree of CNodes (each from its own untyped) in TOP with endpoints.
fn random_tree(w: &mut World, parents: &[(u8, u8)], leaves: &[(u8, u8)]) -> Vec<u64> {
    let mut nodes = std::vec![w.object(0, Some(3), TOP)];
    let free = |w: &World, base: u64, hint: u8| {
        (0..8u64).map(|k| base + (((u64::from(hint) + k) % 8) << SLOT_BITS)).find(|&s| w.m.load(s).cap.is_null())
    };
    for &(parent, hint) in parents {
        let p = nodes[usize::from(parent) % nodes.len()];
        if let Some(s) = free(w, p, hint) {
            let n = w.object(nodes.len() as u64, Some(3), s);
            nodes.push(n);
        }
    }
    for &(node, hint) in leaves {
        if let Some(s) = free(w, nodes[usize::from(node) % nodes.len()], hint) {
            w.endpoint(s);
        }
    }
    nodes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A Delete cut at any point, then a Revoke of any object's untyped, then the
    /// Delete again: the invariant holds at every step and everything goes once.
    #[test]
    fn every_preemption_point_keeps_live_slots_covered(
        parents in prop::collection::vec((any::<u8>(), any::<u8>()), 1..10),
        leaves in prop::collection::vec((any::<u8>(), any::<u8>()), 0..40),
        budget in cnode::DELETE_COST..24,
        delete_steps in 0usize..12,
        victim in any::<u8>(),
    ) {
        let mut w = World::default();
        random_tree(&mut w, &parents, &leaves);
        let mut fx = Recorder::default();
        for _ in 0..delete_steps {
            let mut left = budget;
            let done = cnode::delete_bounded(&mut w.m, &mut fx, TOP, &mut left) == Progress::Done;
            w.check();
            if done {
                break;
            }
        }
        let victim = w.untypeds[usize::from(victim) % w.untypeds.len()].0;
        revoke_in_steps(&mut w, &mut fx, victim, budget.max(cnode::DELETE_COST));
        for _ in 0..100_000 {
            let mut left = budget;
            let done = cnode::delete_bounded(&mut w.m, &mut fx, TOP, &mut left) == Progress::Done;
            w.check();
            if done {
                break;
            }
        }
        w.all_gone();
        assert_each_once(&fx, w.endpoints);
    }
}

/// Slot memory that counts loads: the work one bounded call really does.
struct Counting<'a>(&'a mut FakeSlots, core::cell::Cell<u64>);
impl SlotMemory for Counting<'_> {
    fn load(&self, slot: SlotAddr) -> super::cte::Cte {
        self.1.set(self.1.get() + 1);
        self.0.load(slot)
    }
    fn store(&mut self, slot: SlotAddr, cte: super::cte::Cte) {
        self.0.store(slot, cte)
    }
}

/// Most slot loads one call may do for `budget` units (a unit is a slot visit, a walk
/// step or a quarter of a cap deletion, each a few loads).
fn load_bound(budget: u64) -> u64 {
    4 * budget + 32
}

/// A chain of 3000 nested radix-1 CNodes, each holding the next in its last slot:
/// deleting it stacks thousands of records, and a Revoke of a deep one's untyped meets
/// its record 2800 records away from the oldest. Every call, Delete or Revoke, stays within its budget: the walk to the
/// stack's top and the pops of finished records are charged like the rest.
#[test]
fn a_deep_stack_costs_bounded_work_per_call() {
    const DEPTH: u64 = 3000;
    let mut w = World::default();
    let mut at = TOP;
    for i in 0..DEPTH {
        let node = w.object(i, Some(1), at);
        w.endpoint(node);
        at = node + 64;
    }
    let mut fx = Recorder::default();
    let budget = cnode::WORK_BATCH;
    // Delete until every CNode is on the stack (3000 pushes), then stop.
    // A CNode 2800 records up the stack: pushed, and well before its turn to go.
    let deep = w.untypeds[DEPTH as usize - 200].0;
    let stacked = |m: &FakeSlots| matches!(m.load(m.load(deep).next).cap, Cap::Zombie { record: true, .. });
    while !stacked(&w.m) {
        let mut left = budget;
        let mut m = Counting(&mut w.m, core::cell::Cell::new(0));
        let progress = cnode::delete_bounded(&mut m, &mut fx, TOP, &mut left);
        assert!(m.1.get() <= load_bound(budget), "a delete call did {} loads", m.1.get());
        assert_eq!(progress, Progress::Preempted);
    }
    let mut calls = 0;
    loop {
        let mut m = Counting(&mut w.m, core::cell::Cell::new(0));
        let step = cnode::revoke_bounded(&mut m, &mut fx, deep, budget);
        assert!(m.1.get() <= load_bound(budget), "a revoke call did {} loads", m.1.get());
        calls += 1;
        if let RevokeProgress::Done { .. } = step {
            break;
        }
        assert!(calls < 1000, "no progress");
    }
    assert!(calls > 3, "the walk and the pops took {calls} calls");
    w.check();
    // The Revoke stops once its own child is gone; the Delete finishes the rest.
    loop {
        let mut left = budget;
        let mut m = Counting(&mut w.m, core::cell::Cell::new(0));
        let progress = cnode::delete_bounded(&mut m, &mut fx, TOP, &mut left);
        assert!(m.1.get() <= load_bound(budget), "a delete call did {} loads", m.1.get());
        if progress == Progress::Done {
            break;
        }
    }
    w.all_gone();
    assert_each_once(&fx, DEPTH);
}
