//! Host tests of preemptible Retype: passes, resumption and zeroed objects.
//!
//! Retype zeroes in bounded passes with its progress in the untyped cap. Memory is
//! modelled in 16-byte granules that are dirty until zeroed; every object a Retype
//! hands out must be all zero, however passes interleave with other Retypes, Revoke,
//! Move and Delete of the untyped, and use of the objects (which dirties them).

extern crate std;
use std::vec;
use std::vec::Vec;

use abi::object::ObjectType;
use proptest::prelude::*;

use super::cap::Cap;
use super::cnode::{self, Finaliser};
use super::cte::fake::FakeSlots;
use super::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use super::mdb;
use super::untyped::{self, Cleared, ObjectMemory, RetypeProgress, CLEAR_CHUNK_BYTES, CLEAR_PASS_BYTES, CREATE_BATCH};

const CNODE_BASE: u64 = 0x10_0000;
const BASE: u64 = 0x1000_0000;
const GRANULE: u64 = 16;

/// Memory from `BASE` in granules (true: dirty), the zeroing done per pass, and
/// whether an interrupt is pending.
struct Memory {
    dirty: Vec<bool>,
    zeroed: Vec<(u64, u64)>,
    interrupt: bool,
}

impl Memory {
    fn new(bytes: u64) -> Self {
        Memory { dirty: vec![true; (bytes / GRANULE) as usize], zeroed: Vec::new(), interrupt: false }
    }
    fn range(&mut self, paddr: u64, len: u64) -> &mut [bool] {
        let first = ((paddr - BASE) / GRANULE) as usize;
        &mut self.dirty[first..first + (len / GRANULE) as usize]
    }
    fn is_zero(&mut self, paddr: u64, len: u64) -> bool {
        !self.range(paddr, len).iter().any(|d| *d)
    }
    /// The holder of an object writes to all of it.
    fn use_object(&mut self, cap: &Cap) {
        if let Some((paddr, bits)) = cap.region() {
            self.range(paddr, 1 << bits).fill(true);
        }
    }
}

impl Finaliser for Memory {
    fn unmap_frame(&mut self, _cap: &Cap) {}
    fn unmap_table(&mut self, _cap: &Cap) {}
    fn finalise_object(&mut self, _cap: &Cap) {}
}

impl ObjectMemory for Memory {
    fn zero(&mut self, paddr: u64, len: u64) {
        assert!(len <= CLEAR_CHUNK_BYTES, "one chunk at a time");
        self.range(paddr, len).fill(false);
        self.zeroed.push((paddr, len));
    }
    fn init_vspace(&mut self, _pml4: u64) {}
    fn init_tcb(&mut self, _tcb: u64) {}
    fn free_domains(&self) -> u64 {
        u64::MAX
    }
    fn new_iospace(&mut self, _root: u64) -> (u16, u8) {
        (1, 3)
    }
    fn interrupt_pending(&self) -> bool {
        self.interrupt
    }
}

fn slot(i: u64) -> SlotAddr {
    CNODE_BASE + (i << SLOT_BITS)
}

fn dests(first: u64, count: u64) -> impl DoubleEndedIterator<Item = SlotAddr> + ExactSizeIterator + Clone {
    (first as usize..(first + count) as usize).map(|i| slot(i as u64))
}

fn untyped_cap(bits: u8) -> Cap {
    Cap::Untyped { paddr: BASE, size_bits: bits, is_device: false, free_offset: 0, cleared: Cleared::NONE }
}

fn cleared(m: &FakeSlots, ut: SlotAddr) -> Cleared {
    match m.load(ut).cap {
        Cap::Untyped { cleared, .. } => cleared,
        cap => panic!("not an untyped: {cap:?}"),
    }
}

/// One system call's pass, as the kernel makes it: decode (from the cap as it is now),
/// then one bounded invoke. `None`: the decode refused.
fn pass(
    m: &mut FakeSlots,
    mem: &mut Memory,
    ut: SlotAddr,
    t: ObjectType,
    bits: u32,
    first: u64,
    count: u64,
) -> Option<RetypeProgress> {
    let size_arg = if t == ObjectType::Untyped { bits } else { 0 };
    let plan = untyped::decode_retype(m, ut, t, size_arg, count, dests(first, count), u64::MAX).ok()?;
    Some(untyped::invoke_retype_bounded(m, mem, ut, &plan, dests(first, count)))
}

/// Every object in `first..first+count` exists and is all zero.
fn assert_zeroed_objects(m: &FakeSlots, mem: &mut Memory, first: u64, count: u64) {
    for i in first..first + count {
        let cap = m.load(slot(i)).cap;
        let (paddr, bits) = cap.region().unwrap_or_else(|| panic!("slot {i} holds {cap:?}"));
        assert!(mem.is_zero(paddr, 1 << bits), "object {cap:?} handed out with dirty memory");
    }
}

#[test]
fn sixteen_mib_takes_bounded_passes_and_never_zeroes_twice() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(16 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(24), true);
    let mut passes = 0;
    loop {
        mem.zeroed.clear();
        let r = pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 1, 8).expect("decodes");
        passes += 1;
        let bytes: u64 = mem.zeroed.iter().map(|z| z.1).sum();
        assert!(bytes <= CLEAR_PASS_BYTES, "pass {passes} zeroed {bytes} bytes");
        if r == RetypeProgress::Done {
            break;
        }
        // Nothing exists before the last pass; the progress is in the cap.
        assert!((1..9).all(|i| m.load(slot(i)).cap.is_null()));
        assert_eq!(cleared(&m, slot(0)), Cleared::zeroed(0, passes * CLEAR_PASS_BYTES));
    }
    assert_eq!(passes, (16 << 20) / CLEAR_PASS_BYTES);
    assert_eq!(cleared(&m, slot(0)), Cleared::NONE, "a finished retype leaves no record");
    assert_zeroed_objects(&m, &mut mem, 1, 8);
}

#[test]
fn a_pending_interrupt_ends_the_pass_at_the_next_chunk() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    mem.interrupt = true;
    let mut passes = 0;
    while pass(&mut m, &mut mem, slot(0), ObjectType::Frame4K, 12, 1, 256) == Some(RetypeProgress::Preempted) {
        passes += 1;
    }
    // One chunk per pass: progress even if the interrupt stays pending; then the
    // objects in batches, the first in the pass that ends the zeroing.
    assert_eq!(passes + 1, (1 << 20) / CLEAR_CHUNK_BYTES + 256 / CREATE_BATCH - 1);
    assert_eq!(mem.zeroed.len() as u64, (1 << 20) / CLEAR_CHUNK_BYTES);
    assert_zeroed_objects(&m, &mut mem, 1, 256);
    // A retype of one chunk or less finishes in its first pass, interrupt or not.
    cnode::revoke(&mut m, &mut Memory::new(0), slot(0));
    let one_chunk = CLEAR_CHUNK_BYTES >> 12;
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Frame4K, 12, 1, one_chunk), Some(RetypeProgress::Done));
}

#[test]
fn a_record_that_no_longer_starts_at_the_objects_is_ignored() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(16 << 20);
    let mut hw = Memory::new(0);
    mdb::insert_root(&mut m, slot(0), untyped_cap(24), true);
    // An endpoint at offset 0, written by its holder.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Endpoint, 4, 1, 1), Some(RetypeProgress::Done));
    let ep = m.load(slot(1)).cap;
    mem.use_object(&ep);
    // Two passes of four 2 MiB frames from 2 MiB (the first aligned offset past it).
    for _ in 0..2 {
        assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 2, 4), Some(RetypeProgress::Preempted));
    }
    assert_eq!(cleared(&m, slot(0)), Cleared::zeroed(2 << 20, 2 * CLEAR_PASS_BYTES));
    // Revoke: the endpoint goes, the watermark is 0 again, the frames now start at 0,
    // over the endpoint's dirty memory: the record (at 2 MiB) must not count.
    cnode::revoke(&mut m, &mut hw, slot(0));
    while pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 2, 4) == Some(RetypeProgress::Preempted) {}
    assert_eq!(m.load(slot(2)).cap.region(), Some((BASE, 21)));
    assert_zeroed_objects(&m, &mut mem, 2, 4);
}

#[test]
fn the_record_moves_with_the_cap_and_dies_with_it() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(32 << 20);
    let mut hw = Memory::new(0);
    mdb::insert_root(&mut m, slot(0), untyped_cap(25), true);
    // A 16 MiB child untyped at offset 0 of the parent; three passes on it.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Untyped, 24, 1, 1), Some(RetypeProgress::Done));
    for _ in 0..3 {
        assert_eq!(pass(&mut m, &mut mem, slot(1), ObjectType::Frame2M, 21, 10, 8), Some(RetypeProgress::Preempted));
    }
    // Moved: the next pass continues from the record.
    let cap = m.load(slot(1)).cap;
    cnode::invoke_move(&mut m, slot(1), slot(2), cap);
    mem.zeroed.clear();
    assert_eq!(pass(&mut m, &mut mem, slot(2), ObjectType::Frame2M, 21, 10, 8), Some(RetypeProgress::Preempted));
    assert_eq!(mem.zeroed[0].0, BASE + 3 * CLEAR_PASS_BYTES, "resumed, not restarted");
    // Deleted half done: the parent retypes the memory again and zeroes all of it.
    cnode::delete(&mut m, &mut hw, slot(2));
    while pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 20, 8) == Some(RetypeProgress::Preempted) {}
    assert_zeroed_objects(&m, &mut mem, 20, 8);
}

#[test]
fn a_completed_retype_clears_another_ones_record() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(16 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(24), true);
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 1, 2), Some(RetypeProgress::Preempted));
    // A child untyped at offset 0 (no zeroing), inside the recorded run, then used.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Untyped, 21, 5, 1), Some(RetypeProgress::Done));
    assert_eq!(cleared(&m, slot(0)), Cleared::NONE);
    let child = m.load(slot(5)).cap;
    mem.use_object(&child);
    // The first retype goes on above the child and zeroes its own memory.
    while pass(&mut m, &mut mem, slot(0), ObjectType::Frame2M, 21, 1, 2) == Some(RetypeProgress::Preempted) {}
    assert_eq!(m.load(slot(1)).cap.region(), Some((BASE + (2 << 20), 21)));
    assert_zeroed_objects(&m, &mut mem, 1, 2);
}

#[test]
fn many_objects_are_made_in_batches_from_the_last() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    let mut batches = 0;
    while pass(&mut m, &mut mem, slot(0), ObjectType::Endpoint, 4, 1, 256) == Some(RetypeProgress::Preempted) {
        batches += 1;
        let made = batches * CREATE_BATCH;
        assert_eq!(cleared(&m, slot(0)), Cleared::creating(0, made, ObjectType::Endpoint, 4));
        // The last `made` exist, the others not yet.
        assert!((1..=256).all(|i| m.load(slot(i)).cap.is_null() == (i <= 256 - made)));
    }
    assert_eq!(batches + 1, 256 / CREATE_BATCH);
    assert_eq!(cleared(&m, slot(0)), Cleared::NONE);
    // The same tree as one pass would leave: the children in order after the untyped.
    let mut at = m.load(slot(0)).next;
    for i in 1..=256 {
        assert_eq!(at, slot(i));
        assert_eq!(m.load(at).cap.region(), Some((BASE + 16 * (i - 1), 4)));
        at = m.load(at).next;
    }
    assert_eq!(at, 0);
}

#[test]
fn a_different_request_does_not_continue_a_creation() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    // 64 frames of 4 KiB: the pass that ends the zeroing makes the last 32.
    while cleared(&m, slot(0)).created() == 0 {
        assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Frame4K, 12, 1, 64), Some(RetypeProgress::Preempted));
    }
    assert_eq!(cleared(&m, slot(0)).created(), CREATE_BATCH);
    let made = m.load(slot(33)).cap;
    // Same run, other sizes or kinds, other destinations: not the same Retype, so
    // decoded as new ones (refused: a destination is taken) or placed above the run.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Frame4K, 12, 1, 1), Some(RetypeProgress::Done));
    let above = m.load(slot(1)).cap.region().unwrap();
    assert!(above.0 >= BASE + 64 * 4096, "a new Retype lands above the reserved run: {above:x?}");
    // That completed Retype cleared the record: the first one cannot go on.
    assert_eq!(cleared(&m, slot(0)), Cleared::NONE);
    let plan = untyped::decode_retype(&m, slot(0), ObjectType::Frame4K, 0, 64, dests(2, 64), u64::MAX);
    assert_eq!(plan.map(|p| p.created), Err(abi::error::SyscallError::DeleteFirst));
    assert_eq!(m.load(slot(33)).cap, made);
}

#[test]
fn a_creation_record_names_its_objects_by_size() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    // 64 TCBs (2 KiB): the last 32 made, 128 KiB reserved.
    while cleared(&m, slot(0)).created() == 0 {
        assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Tcb, 11, 1, 64), Some(RetypeProgress::Preempted));
    }
    // 32 frames of 4 KiB fill the same 128 KiB: not a continuation (it would make
    // frames over the TCBs), a new Retype above the run.
    // Likewise 128 CNodes of 1 KiB, and 64 CNodes of 2 KiB (the TCBs' size, another
    // kind).
    for (t, size_arg, count) in [(ObjectType::Frame4K, 0, 32), (ObjectType::CNode, 4, 128), (ObjectType::CNode, 5, 64)]
    {
        let plan = untyped::decode_retype(&m, slot(0), t, size_arg, count, dests(1, count), u64::MAX);
        assert!(plan.map_or(true, |p| p.created == 0 && p.first >= BASE + (128 << 10)), "{t:?}: {plan:?}");
    }
    // Revoke: the TCBs made are gone, and so is the way to go on.
    cnode::revoke(&mut m, &mut Memory::new(0), slot(0));
    let plan = untyped::decode_retype(&m, slot(0), ObjectType::Tcb, 0, 64, dests(1, 64), u64::MAX).unwrap();
    assert_eq!((plan.created, plan.first), (0, BASE));
    while pass(&mut m, &mut mem, slot(0), ObjectType::Tcb, 11, 1, 64) == Some(RetypeProgress::Preempted) {}
    assert_zeroed_objects(&m, &mut mem, 1, 64);
}

#[test]
fn a_longer_request_cannot_make_objects_twice() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    // 64 endpoints into slots 1..=64 (object i in slot 1 + i): the last 32 made.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Endpoint, 4, 1, 64), Some(RetypeProgress::Preempted));
    assert_eq!(cleared(&m, slot(0)).created(), 32);
    // The attacker asks for 70 from slot 1: the lowest "made" would be object 38,
    // which is in slot 39 indeed; it moves objects 32..=37 out of slots 33..=38.
    for i in 33..=38 {
        let cap = m.load(slot(i)).cap;
        cnode::invoke_move(&mut m, slot(i), slot(100 + i), cap);
    }
    // Going on would make objects 0..=37, six of them a second time, and 64..=69
    // above the run: it must be a new Retype instead (refused, slot 39 is taken).
    let plan = untyped::decode_retype(&m, slot(0), ObjectType::Endpoint, 0, 70, dests(1, 70), u64::MAX);
    assert_eq!(plan.map(|p| p.created), Err(abi::error::SyscallError::DeleteFirst));
}

#[test]
fn a_cap_made_from_a_child_untyped_does_not_continue_a_creation() {
    let mut m = FakeSlots::default();
    let mut mem = Memory::new(1 << 20);
    mdb::insert_root(&mut m, slot(0), untyped_cap(20), true);
    // 128 child untypeds of 8 KiB (never zeroed) into slots 1..=128: the last 32 made.
    assert_eq!(pass(&mut m, &mut mem, slot(0), ObjectType::Untyped, 13, 1, 128), Some(RetypeProgress::Preempted));
    assert_eq!(cleared(&m, slot(0)).created(), 32);
    // A frame at the base of child 112 (slot 113) is where the lowest made frame of
    // 256 frames of 4 KiB with 32 made would be: put it in that place of slots 200...
    assert_eq!(pass(&mut m, &mut mem, slot(113), ObjectType::Frame4K, 12, 200 + 224, 1), Some(RetypeProgress::Done));
    assert_eq!(m.load(slot(200 + 224)).cap.region(), Some((BASE + 224 * 4096, 12)));
    // ... which is not the Retype of untypeds going on: going on would make frames
    // over memory never zeroed and over the children 96..=111, which exist.
    let plan = untyped::decode_retype(&m, slot(0), ObjectType::Frame4K, 0, 256, dests(200, 256), u64::MAX);
    assert_eq!(plan.map(|p| p.created), Err(abi::error::SyscallError::DeleteFirst));
    // The untypeds themselves go on.
    while pass(&mut m, &mut mem, slot(0), ObjectType::Untyped, 13, 1, 128) == Some(RetypeProgress::Preempted) {}
    assert!((1..=128).all(|i| m.load(slot(i)).cap.region() == Some((BASE + (i - 1) * 8192, 13))));
}

#[derive(Clone, Debug)]
enum Op {
    /// One pass of a Retype of `count` objects of kind `kind` into slots from `first`.
    Pass {
        kind: u8,
        count: u8,
        first: u8,
    },
    /// A Retype run to completion.
    Whole {
        kind: u8,
        count: u8,
        first: u8,
    },
    /// The holder of the object in a slot writes to it.
    Use {
        slot: u8,
    },
    Delete {
        slot: u8,
    },
    RevokeUntyped,
    /// Move the untyped between slot 0 and slot 63.
    MoveUntyped,
}

fn kind(k: u8) -> (ObjectType, u32) {
    [
        (ObjectType::Frame4K, 12),
        (ObjectType::Frame2M, 21),
        (ObjectType::Endpoint, 4),
        (ObjectType::Untyped, 18),
        (ObjectType::Tcb, 11),
    ][usize::from(k % 5)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5u8, 1..64u8, 1..48u8).prop_map(|(kind, count, first)| Op::Pass { kind, count, first }),
        2 => (0..4u8, 1..8u8, 1..48u8).prop_map(|(kind, count, first)| Op::Whole { kind, count, first }),
        2 => (1..62u8).prop_map(|slot| Op::Use { slot }),
        1 => (1..62u8).prop_map(|slot| Op::Delete { slot }),
        1 => Just(Op::RevokeUntyped),
        1 => Just(Op::MoveUntyped),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever runs between the passes, every object handed out is all zero, and an
    /// untyped's record always describes zero memory.
    #[test]
    fn interleaved_passes_never_hand_out_dirty_memory(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = FakeSlots::default();
        let mut mem = Memory::new(4 << 20);
        let mut hw = Memory::new(0);
        let mut ut = slot(0);
        mdb::insert_root(&mut m, ut, untyped_cap(22), true);
        for op in ops {
            match op {
                Op::Pass { kind: k, count, first } | Op::Whole { kind: k, count, first } => {
                    let (t, bits) = kind(k);
                    let whole = matches!(op, Op::Whole { .. });
                    let (first, count) = (u64::from(first), u64::from(count).min(62 - u64::from(first)).max(1));
                    loop {
                        let empty: Vec<bool> = (first..first + count).map(|i| m.load(slot(i)).cap.is_null()).collect();
                        let r = pass(&mut m, &mut mem, ut, t, bits, first, count);
                        // Every object this pass handed out is all zero.
                        for (k, was_empty) in empty.iter().enumerate() {
                            let cap = m.load(slot(first + k as u64)).cap;
                            if *was_empty && !cap.is_null() && t != ObjectType::Untyped {
                                let (paddr, bits) = cap.region().expect("an object");
                                prop_assert!(mem.is_zero(paddr, 1 << bits), "{cap:?} handed out dirty");
                            }
                        }
                        if !whole || r != Some(RetypeProgress::Preempted) {
                            break;
                        }
                    }
                }
                Op::Use { slot: s } => {
                    let cap = m.load(slot(u64::from(s))).cap;
                    mem.use_object(&cap);
                }
                Op::Delete { slot: s } => cnode::delete(&mut m, &mut hw, slot(u64::from(s))),
                Op::RevokeUntyped => {
                    cnode::revoke(&mut m, &mut hw, ut);
                }
                Op::MoveUntyped => {
                    let to = if ut == slot(0) { slot(63) } else { slot(0) };
                    let cap = m.load(ut).cap;
                    cnode::invoke_move(&mut m, ut, to, cap);
                    ut = to;
                }
            }
            let c = cleared(&m, ut);
            if c.zeroed_len() != 0 {
                prop_assert!(mem.is_zero(BASE + c.start, c.zeroed_len()), "record {c:?} names dirty memory");
            }
            // Live objects never partly overlap (copies name the same object).
            let mut objects: Vec<(u64, u64)> = (0..64)
                .filter_map(|i| match m.load(slot(i)).cap {
                    Cap::Untyped { .. } if slot(i) == ut => None,
                    cap => cap.region().map(|(p, b)| (p, p + (1 << b))),
                })
                .collect();
            objects.sort_unstable();
            objects.dedup();
            for w in objects.windows(2) {
                let nested = w[1].1 <= w[0].1; // a child untyped's objects lie inside it
                prop_assert!(w[0].1 <= w[1].0 || nested, "objects overlap: {w:x?}");
            }
        }
    }
}
