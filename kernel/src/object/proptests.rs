//! Property tests of retype, the CNode operations and Revoke.
//!
//! Property tests: random sequences of retype and CNode operations keep the derivation
//! tree consistent, and Revoke leaves no descendant behind.

extern crate std;
use std::vec::Vec;

use abi::object::ObjectType;
use abi::rights::CapRights;
use proptest::prelude::*;

use super::cap::Cap;
use super::cnode::{self, Finaliser};
use super::cte::fake::FakeSlots;
use super::cte::{SlotAddr, SlotMemory, SLOT_BITS, SLOT_BYTES};
use super::mdb;
use super::untyped::{self, ObjectMemory};

const CNODE_BASE: u64 = 0x10_0000;
const SLOTS: u64 = 32;
const UNTYPED_BASE: u64 = 0x1000_0000;

struct NoHardware;
impl Finaliser for NoHardware {
    fn unmap_frame(&mut self, _cap: &Cap) {}
    fn unmap_table(&mut self, _cap: &Cap) {}
    fn finalise_object(&mut self, _cap: &Cap) {}
}
impl ObjectMemory for NoHardware {
    fn zero(&mut self, _paddr: u64, _len: u64) {}
    fn init_vspace(&mut self, _pml4: u64) {}
    fn init_tcb(&mut self, _tcb: u64) {}
    fn free_domains(&self) -> u64 {
        u64::MAX
    }
    fn new_iospace(&mut self, _root: u64) -> (u16, u8) {
        (1, 3)
    }
}

fn slot(i: u8) -> SlotAddr {
    CNODE_BASE + ((u64::from(i) % SLOTS) << SLOT_BITS)
}

#[derive(Clone, Debug)]
enum Op {
    Retype { src: u8, kind: u8, dest: u8, count: u8 },
    Copy { src: u8, dest: u8, rights: u8 },
    Mint { src: u8, dest: u8, badge: u8 },
    Move { src: u8, dest: u8 },
    Delete { slot: u8 },
    Revoke { slot: u8 },
    Rotate { dest: u8, pivot: u8, src: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), 0..4u8, any::<u8>(), 1..4u8).prop_map(|(src, kind, dest, count)| Op::Retype {
            src,
            kind,
            dest,
            count
        }),
        (any::<u8>(), any::<u8>(), 0..16u8).prop_map(|(src, dest, rights)| Op::Copy { src, dest, rights }),
        (any::<u8>(), any::<u8>(), 0..4u8).prop_map(|(src, dest, badge)| Op::Mint { src, dest, badge }),
        (any::<u8>(), any::<u8>()).prop_map(|(src, dest)| Op::Move { src, dest }),
        any::<u8>().prop_map(|slot| Op::Delete { slot }),
        any::<u8>().prop_map(|slot| Op::Revoke { slot }),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(dest, pivot, src)| Op::Rotate { dest, pivot, src }),
    ]
}

fn setup() -> FakeSlots {
    let mut m = FakeSlots::default();
    let ut = Cap::Untyped {
        paddr: UNTYPED_BASE,
        size_bits: 20,
        is_device: false,
        free_offset: 0,
        cleared: crate::object::untyped::Cleared::NONE,
    };
    mdb::insert_root(&mut m, slot(0), ut, true);
    m
}

/// Links are symmetric, empty slots are unlinked, and every link stays in the CNode.
fn check_links(m: &FakeSlots) {
    for i in 0..SLOTS as u8 {
        let s = slot(i);
        let cte = m.load(s);
        if cte.cap.is_null() {
            assert_eq!((cte.prev, cte.next), (0, 0), "empty slot {i} is linked");
            continue;
        }
        for link in [cte.prev, cte.next] {
            assert!(link == 0 || (CNODE_BASE..CNODE_BASE + (SLOTS << SLOT_BITS)).contains(&link));
        }
        if cte.next != 0 {
            assert_eq!(m.load(cte.next).prev, s, "next.prev of slot {i}");
        }
        if cte.prev != 0 {
            assert_eq!(m.load(cte.prev).next, s, "prev.next of slot {i}");
        }
    }
}

/// Every cap of an object from the untyped lies inside the untyped and after it.
fn check_objects(m: &FakeSlots) {
    for i in 0..SLOTS as u8 {
        if let Some((base, bits)) = m.load(slot(i)).cap.region() {
            assert!(base >= UNTYPED_BASE && base + (1 << bits) <= UNTYPED_BASE + (1 << 20));
        }
    }
}

fn apply(m: &mut FakeSlots, op: &Op) {
    let mut hw = NoHardware;
    let before = m.slots.clone();
    let decoded_error = match *op {
        Op::Retype { src, kind, dest, count } => {
            let t = [ObjectType::Endpoint, ObjectType::Notification, ObjectType::Untyped, ObjectType::Frame4K]
                [kind as usize];
            let dests = || (0..count).map(|k| slot(dest.wrapping_add(k)));
            let distinct = dests().collect::<std::collections::BTreeSet<_>>().len() == count as usize;
            match untyped::decode_retype(m, slot(src), t, 14, u64::from(count), dests(), u64::MAX) {
                Ok(plan) if distinct => {
                    untyped::invoke_retype(m, &mut hw, slot(src), &plan, dests());
                    false
                }
                Ok(_) => false,
                Err(_) => true,
            }
        }
        Op::Copy { src, dest, rights } => {
            match cnode::decode_empty(m, slot(dest))
                .and_then(|_| cnode::decode_derive(m, slot(src), CapRights::from_raw(rights.into()).unwrap(), None))
            {
                Ok(cap) => {
                    cnode::invoke_copy(m, slot(src), slot(dest), cap);
                    false
                }
                Err(_) => true,
            }
        }
        Op::Mint { src, dest, badge } => {
            match cnode::decode_empty(m, slot(dest))
                .and_then(|_| cnode::decode_derive(m, slot(src), CapRights::ALL, Some(badge.into())))
            {
                Ok(cap) => {
                    cnode::invoke_copy(m, slot(src), slot(dest), cap);
                    false
                }
                Err(_) => true,
            }
        }
        Op::Move { src, dest } => {
            let cap = m.load(slot(src)).cap;
            if cap.is_null() || cnode::decode_empty(m, slot(dest)).is_err() {
                true
            } else {
                cnode::invoke_move(m, slot(src), slot(dest), cap);
                false
            }
        }
        Op::Delete { slot: s } => {
            cnode::delete(m, &mut hw, slot(s));
            false
        }
        Op::Revoke { slot: s } => {
            let victim = m.load(slot(s));
            cnode::revoke(m, &mut hw, slot(s));
            assert!(!mdb::has_children(m, slot(s)));
            // Independent check: after revoking an untyped, no cap names memory in it;
            // after revoking an object's original cap, no other cap names that object.
            let original_object = victim.revocable && victim.cap.badge() == 0;
            for i in 0..SLOTS as u8 {
                let other = m.load(slot(i)).cap;
                if slot(i) == slot(s) || other.is_null() {
                    continue;
                }
                if matches!(victim.cap, Cap::Untyped { .. }) {
                    let ancestor = matches!(other, Cap::Untyped { .. }) && other.same_region_as(&victim.cap);
                    assert!(
                        !victim.cap.same_region_as(&other) || ancestor,
                        "revoked untyped still has {other:?} in slot {i}"
                    );
                } else if original_object && matches!(victim.cap, Cap::Endpoint { .. } | Cap::Notification { .. }) {
                    assert!(!victim.cap.same_object_as(&other), "revoked {victim:?} still has {other:?} in slot {i}");
                }
            }
            false
        }
        Op::Rotate { dest, pivot, src } => {
            let scratch = CNODE_BASE + (SLOTS << SLOT_BITS);
            if cnode::decode_rotate(m, slot(dest), slot(pivot), slot(src)).is_ok() {
                cnode::invoke_rotate(m, slot(dest), slot(pivot), slot(src), scratch);
                assert!(m.load(scratch).cap.is_null());
                m.slots.remove(&scratch);
                false
            } else {
                true
            }
        }
    };
    if decoded_error {
        assert_eq!(m.slots, before, "a rejected operation changed state: {op:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_tree_consistent(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = setup();
        for op in &ops {
            apply(&mut m, op);
            check_links(&m);
            check_objects(&m);
        }
    }
}

#[test]
fn revoking_the_untyped_removes_everything_and_resets_the_watermark() {
    let mut m = setup();
    let mut hw = NoHardware;
    let dests = [slot(1), slot(2), slot(3)];
    let plan = untyped::decode_retype(&m, slot(0), ObjectType::Endpoint, 0, 3, dests.into_iter(), u64::MAX).unwrap();
    untyped::invoke_retype(&mut m, &mut hw, slot(0), &plan, dests.into_iter());
    let copy = cnode::decode_derive(&m, slot(2), CapRights::READ, Some(7)).unwrap();
    cnode::invoke_copy(&mut m, slot(2), slot(4), copy);
    // A used region cannot be retyped again while children live.
    let plan2 =
        untyped::decode_retype(&m, slot(0), ObjectType::Frame4K, 0, 1, [slot(5)].into_iter(), u64::MAX).unwrap();
    assert!(plan2.first >= UNTYPED_BASE + 3 * 16);
    assert_eq!(cnode::revoke(&mut m, &mut hw, slot(0)), 4);
    for i in 1..5 {
        assert!(m.load(slot(i)).cap.is_null());
    }
    let plan3 =
        untyped::decode_retype(&m, slot(0), ObjectType::Frame4K, 0, 1, [slot(5)].into_iter(), u64::MAX).unwrap();
    assert_eq!(plan3.first, UNTYPED_BASE);
}

#[test]
fn revoke_is_preemptible_and_resumes() {
    let mut m = FakeSlots::default();
    let mut hw = NoHardware;
    let ep = Cap::Endpoint { paddr: 0x40, badge: 0, rights: CapRights::ALL };
    mdb::insert_root(&mut m, 0x1_0000, ep, true);
    for i in 1..=10u64 {
        let derived = cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, None).unwrap();
        cnode::invoke_copy(&mut m, 0x1_0000, 0x1_0000 + i * SLOT_BYTES, derived);
    }
    let four = 4 * cnode::DELETE_COST;
    let preempted = cnode::RevokeProgress::Preempted { deleted: 4 };
    assert_eq!(cnode::revoke_bounded(&mut m, &mut hw, 0x1_0000, four), preempted);
    assert_eq!(cnode::revoke_bounded(&mut m, &mut hw, 0x1_0000, four), preempted);
    assert!(mdb::has_children(&m, 0x1_0000));
    assert_eq!(cnode::revoke_bounded(&mut m, &mut hw, 0x1_0000, four), cnode::RevokeProgress::Done { deleted: 2 });
    assert!(!mdb::has_children(&m, 0x1_0000));
    assert!((1..=10u64).all(|i| m.load(0x1_0000 + i * SLOT_BYTES).cap.is_null()));
}

#[test]
fn table_caps_are_never_copied() {
    let mut m = FakeSlots::default();
    let installed =
        crate::object::cap::Mapping { vspace: 0x7000, vaddr: 0x20_0000, kind: crate::object::cap::MapKind::Io };
    let loose = Cap::IoPageTable { paddr: 0x8000, level: 0, mapping: None };
    let linked = Cap::IoPageTable { paddr: 0x9000, level: 1, mapping: Some(installed) };
    mdb::insert_root(&mut m, 0x1_0000, loose, true);
    mdb::insert_root(&mut m, 0x2_0000, linked, true);
    mdb::insert_root(&mut m, 0x3_0000, Cap::PageTable { paddr: 0xa000, level: 1, mapping: None }, true);
    assert_eq!(
        cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, None),
        Err(abi::error::SyscallError::IllegalOperation)
    );
    assert_eq!(
        cnode::decode_derive(&m, 0x2_0000, CapRights::ALL, None),
        Err(abi::error::SyscallError::IllegalOperation),
        "not even while installed: unmapping one copy would free the table for a second installation"
    );
    assert_eq!(
        cnode::decode_derive(&m, 0x3_0000, CapRights::ALL, None),
        Err(abi::error::SyscallError::IllegalOperation)
    );
}

/// TCB Configure's hazard: the slot being replaced holds the last cap to a CNode that
/// holds the source of the copy. `long_running_delete` flags it before anything changes.
fn cnode_holding_the_source() -> (FakeSlots, Cap) {
    let mut m = FakeSlots::default();
    let inner = Cap::CNode { paddr: 0x2_0000, radix: 2, guard_bits: 0, guard: 0 };
    mdb::insert_root(&mut m, 0x1_0000, inner, true);
    let ep = Cap::Endpoint { paddr: 0x40, badge: 0, rights: CapRights::ALL };
    mdb::insert_root(&mut m, 0x2_0000, ep, true);
    let derived = cnode::decode_derive(&m, 0x2_0000, CapRights::ALL, None).unwrap();
    (m, derived)
}

#[test]
fn a_delete_that_would_empty_other_slots_is_detected() {
    let (mut m, _) = cnode_holding_the_source();
    assert!(cnode::long_running_delete(&m, 0x1_0000), "the last cap to a CNode");
    assert!(!cnode::long_running_delete(&m, 0x2_0000), "an endpoint has no slots");
    assert!(!cnode::long_running_delete(&m, 0x3_0000), "an empty slot");
    let copy = cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, None).unwrap();
    cnode::invoke_copy(&mut m, 0x1_0000, 0x1_0040, copy);
    assert!(!cnode::long_running_delete(&m, 0x1_0000), "a copy remains");
    mdb::insert_root(&mut m, 0x4_0000, Cap::Tcb { paddr: 0x5_0000 }, true);
    assert!(cnode::long_running_delete(&m, 0x4_0000), "the last cap to a TCB");
}

/// Issue 9 hole 2 on TCB Configure's slot update (`decode_replace`, then
/// `invoke_replace`, as `invoke/tcb.rs` runs them): the TCB slot it replaces holds the
/// last cap to the CNode that holds the new CSpace's source. The kernel must refuse;
/// the hole deleted the CNode (emptying the source) and then linked a copy of the
/// source's old cap to the empty slot.
#[test]
fn hole2_configure_never_copies_from_a_source_its_deletion_empties() {
    let (mut m, derived) = cnode_holding_the_source();
    let (target, src, dest) = (0x1_0000, 0x2_0000, 0x3_0000);
    let before = m.slots.clone();
    let decoded = cnode::decode_replace(&m, &[target]);
    if decoded.is_ok() {
        cnode::invoke_replace(&mut m, &mut NoHardware, &[target], &[(src, dest, derived)]);
    }
    assert!(m.load(dest).cap.is_null(), "Configure copied from a slot its own deletion emptied");
    assert_eq!((m.load(src).next, m.load(src).prev), (0, 0), "a cap is linked to an emptied slot");
    assert_eq!(decoded, Err(abi::error::SyscallError::IllegalOperation));
    assert_eq!(m.slots, before, "a refused Configure changes nothing");
}

/// The same update where the deletion is local (another cap to the CNode remains):
/// allowed, and the copy lands in the TCB's slot.
#[test]
fn hole2_configure_replaces_a_slot_whose_deletion_empties_nothing() {
    let (mut m, derived) = cnode_holding_the_source();
    let copy = cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, None).unwrap();
    cnode::invoke_copy(&mut m, 0x1_0000, 0x1_0040, copy);
    assert_eq!(cnode::decode_replace(&m, &[0x1_0000]), Ok(()));
    cnode::invoke_replace(&mut m, &mut NoHardware, &[0x1_0000], &[(0x2_0000, 0x3_0000, derived)]);
    assert!(m.load(0x1_0000).cap.is_null());
    assert_eq!(m.load(0x3_0000).cap, derived);
    assert_eq!(m.load(0x2_0000).next, 0x3_0000, "the copy is the source's child");
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "copy from a slot that changed since decode"))]
fn a_copy_from_a_slot_emptied_after_decode_links_nothing() {
    let (mut m, derived) = cnode_holding_the_source();
    cnode::delete(&mut m, &mut NoHardware, 0x1_0000);
    assert!(m.load(0x2_0000).cap.is_null(), "the CNode's slots went with it");
    cnode::invoke_copy(&mut m, 0x2_0000, 0x3_0000, derived);
    assert!(m.load(0x3_0000).cap.is_null(), "nothing copied from the empty slot");
    assert_eq!((m.load(0x2_0000).next, m.load(0x2_0000).prev), (0, 0), "nothing linked to it");
}

#[test]
fn the_debug_console_is_delegable_by_copy_and_mint() {
    let mut m = FakeSlots::default();
    let full = Cap::DebugConsole { rights: CapRights::ALL };
    mdb::insert_root(&mut m, 0x1_0000, full, false);
    let print_only = Cap::DebugConsole { rights: CapRights::READ };
    assert_eq!(cnode::decode_derive(&m, 0x1_0000, CapRights::READ, None), Ok(print_only));
    // It carries no badge: Mint with badge 0 is a copy, a real badge is refused.
    let minted = cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, Some(0));
    assert_eq!(minted, Ok(full));
    cnode::invoke_copy(&mut m, 0x1_0000, 0x2_0000, minted.unwrap());
    assert_eq!(m.load(0x2_0000).cap, full);
    assert_eq!(
        cnode::decode_derive(&m, 0x1_0000, CapRights::ALL, Some(5)),
        Err(abi::error::SyscallError::IllegalOperation)
    );
    // Rights only shrink: a copy without GRANT (no Halt) never gets it back.
    let write_only = cnode::decode_derive(&m, 0x1_0000, CapRights::WRITE, Some(0)).unwrap();
    cnode::invoke_copy(&mut m, 0x1_0000, 0x3_0000, write_only);
    assert_eq!(
        cnode::decode_derive(&m, 0x3_0000, CapRights::ALL, None),
        Ok(Cap::DebugConsole { rights: CapRights::WRITE })
    );
}

#[test]
fn deleting_a_deep_chain_of_cnodes_uses_no_recursion() {
    // 50000 CNodes, each holding the only cap to the next (the kernel's 32 KiB trap
    // stack held about a hundred levels of the old recursive delete; a host test thread
    // a few thousand).
    const DEPTH: u64 = 50_000;
    let mut m = FakeSlots::default();
    let mut hw = NoHardware;
    let node = |i: u64| 0x1000_0000 + i * 0x1000;
    let cap = |i: u64| Cap::CNode { paddr: node(i), radix: 1, guard_bits: 0, guard: 0 };
    mdb::insert_root(&mut m, 0x100, cap(0), true);
    for i in 0..DEPTH - 1 {
        mdb::insert_root(&mut m, node(i), cap(i + 1), true);
        // A second cap in each node: an endpoint, deleted along the way.
        mdb::insert_root(
            &mut m,
            node(i) + 64,
            Cap::Endpoint { paddr: 0x40 + i * 16, badge: 0, rights: CapRights::ALL },
            true,
        );
    }
    cnode::delete(&mut m, &mut hw, 0x100);
    assert!(m.load(0x100).cap.is_null());
    for i in 0..DEPTH {
        assert!(m.load(node(i)).cap.is_null() && m.load(node(i) + 64).cap.is_null(), "node {i} emptied");
        assert_eq!((m.load(node(i)).next, m.load(node(i)).prev), (0, 0), "no record left in node {i}");
    }
}

#[test]
fn retype_errors() {
    let m = setup();
    let one = || [slot(1)].into_iter();
    use abi::error::SyscallError as E;
    assert_eq!(
        untyped::decode_retype(&m, slot(1), ObjectType::Endpoint, 0, 1, one(), u64::MAX),
        Err(E::InvalidCapability)
    );
    assert_eq!(untyped::decode_retype(&m, slot(0), ObjectType::Endpoint, 0, 0, one(), u64::MAX), Err(E::RangeError));
    assert_eq!(
        untyped::decode_retype(&m, slot(0), ObjectType::Untyped, 21, 1, one(), u64::MAX),
        Err(E::NotEnoughMemory)
    );
    assert_eq!(untyped::decode_retype(&m, slot(0), ObjectType::Frame4K, 0, 257, one(), u64::MAX), Err(E::RangeError));
    assert_eq!(
        untyped::decode_retype(&m, slot(0), ObjectType::Untyped, 20, 1, [slot(0)].into_iter(), u64::MAX),
        Err(E::DeleteFirst)
    );
    let mut dev = FakeSlots::default();
    mdb::insert_root(
        &mut dev,
        slot(0),
        Cap::Untyped {
            paddr: 0xfe00_0000,
            size_bits: 20,
            is_device: true,
            free_offset: 0,
            cleared: crate::object::untyped::Cleared::NONE,
        },
        true,
    );
    assert_eq!(
        untyped::decode_retype(&dev, slot(0), ObjectType::Endpoint, 0, 1, one(), u64::MAX),
        Err(E::InvalidArgument)
    );
    assert!(untyped::decode_retype(&dev, slot(0), ObjectType::Frame4K, 0, 1, one(), u64::MAX).is_ok());
}

#[test]
fn lookup_with_guards_and_two_levels() {
    use super::cnode::{lookup_cap, lookup_slot, resolve, LookupError};
    let mut m = FakeSlots::default();
    // Root: radix 4, guard 4 bits = 0b1010; slot 3 holds a level-2 CNode radix 8, no guard.
    let l2 = Cap::CNode { paddr: 0x20_0000, radix: 8, guard_bits: 0, guard: 0 };
    let root = Cap::CNode { paddr: CNODE_BASE, radix: 4, guard_bits: 4, guard: 0b1010 };
    mdb::insert_root(&mut m, CNODE_BASE + (3 << SLOT_BITS), l2, true);
    let ep = Cap::Endpoint { paddr: 0x30_0000, badge: 0, rights: CapRights::ALL };
    mdb::insert_root(&mut m, 0x20_0000 + (0x42 << SLOT_BITS), ep, true);
    // 16 bits: guard 1010, index 0011, index 0x42.
    let cptr = (0b1010_0011 << 8) | 0x42;
    assert_eq!(lookup_slot(&m, &root, cptr, 16), Ok(0x20_0000 + (0x42 << SLOT_BITS)));
    assert_eq!(lookup_slot(&m, &root, cptr >> 8, 8), Ok(CNODE_BASE + (3 << SLOT_BITS)));
    assert!(matches!(lookup_slot(&m, &root, cptr >> 4, 12), Err(LookupError::DepthMismatch { .. })));
    assert!(matches!(lookup_slot(&m, &root, 0b0101_0011 << 8, 16), Err(LookupError::GuardMismatch { .. })));
    assert_eq!(resolve(&m, &ep, 0, 8), Err(LookupError::InvalidRoot));
    assert_eq!(lookup_slot(&m, &root, 0, 0), Err(LookupError::BadDepth));
    assert_eq!(lookup_slot(&m, &root, 0, 65), Err(LookupError::BadDepth));
    // Invocation lookup uses all 64 bits: the high bits carry the address.
    assert_eq!(lookup_cap(&m, &root, cptr << 48).map(|(_, c)| c), Ok(ep));
    assert!(matches!(lookup_cap(&m, &root, 0b1010_0001 << 56), Err(LookupError::MissingCapability { .. })));
    let _ = Vec::<u8>::new();
}

proptest! {
    /// The single-level short cut finds exactly the slot the general lookup finds, and
    /// declines every CSpace root of another shape or a guard that does not match.
    #[test]
    fn single_level_lookup_agrees_with_resolve(
        radix in 1..=16u8,
        other_guard_bits in 0..=63u8,
        exact in any::<bool>(),
        guard in any::<u64>(),
        cptr in any::<u64>(),
        matching in any::<bool>(),
    ) {
        let m = FakeSlots::default();
        let guard_bits = if exact { 64 - radix } else { other_guard_bits };
        let guard = guard & ((1u64 << guard_bits) - 1);
        let cptr = if matching { (guard << radix) | (cptr & ((1u64 << radix) - 1)) } else { cptr };
        let root = Cap::CNode { paddr: CNODE_BASE, radix, guard_bits, guard };
        let short = cnode::single_level_slot(CNODE_BASE, radix.into(), guard_bits.into(), guard, cptr);
        let general = cnode::resolve(&m, &root, cptr, 64);
        if u32::from(radix) + u32::from(guard_bits) == 64 {
            prop_assert_eq!(short, general.ok().map(|(slot, _)| slot));
            prop_assert_eq!(short.is_some(), cptr >> radix == guard);
        } else {
            prop_assert_eq!(short, None);
        }
    }
}
