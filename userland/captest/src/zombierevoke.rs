//! A preempted Delete's CNode stays a child of its untyped.
//!
//! A CNode being destroyed by a preempted Delete stays a child of its untyped (its
//! Zombie keeps the cap's place in the derivation tree): the untyped cannot be retyped
//! over its live slots meanwhile (the old kernel allowed it, and the resumed Delete then
//! read forged slots), and a Revoke of the untyped finishes the deletion it meets.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, SlotRef, Untyped, FULL_DEPTH};
use libcap::thread::spawn;

use crate::Checker;

/// Stack and IPC buffer of the deleting thread.
const DELETER_REGION: u64 = 0x0000_3300_0000_0000;
/// Where the frame whose only cap is in C is mapped.
const F_VADDR: u64 = 0x0000_3400_0020_0000;
/// C: radix 15 (2 MiB of slots, its own untyped), 28672 notifications in it: enough
/// that deleting them outlasts the two timeslices the deleter gets before it is
/// suspended (counted in wall-clock ticks; with 12288 a faster kernel sometimes
/// finished in time).
const C_RADIX: u64 = 15;
const C_BITS: u64 = 21;
const FILLED: u64 = 28672;
/// log2 of the untyped the notifications come from (1 MiB: 32768 of 32 bytes).
const NOTIFICATION_BITS: u64 = 20;
const PER_RETYPE: u64 = 256;
/// Slot of C holding the frame's only cap.
const F_INDEX: u64 = 32714;
/// TSC cycles without a loop iteration that mean another thread had the CPU.
const GAP: u64 = 2_000_000;

/// The deleter is about to call Delete.
static IN_DELETE: AtomicBool = AtomicBool::new(false);
/// The deleter's Delete returned (1 + 0 for success, 1 + error code otherwise).
static RESULT: AtomicU64 = AtomicU64::new(0);
/// O's slot in the root CNode.
static OUTER: AtomicU64 = AtomicU64::new(0);

fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Deletes O's only cap, records the result and spins.
extern "C" fn deleter(_: u64) -> ! {
    IN_DELETE.store(true, SeqCst);
    let r = CNode::delete(CNode(slots::INIT_CNODE).slot(OUTER.load(SeqCst)));
    RESULT.store(1 + r.map_or_else(|e| e.code.raw(), |()| 0), SeqCst);
    loop {
        core::hint::spin_loop();
    }
}

/// Builds C (only cap in a radix-1 CNode O, full of notifications, holding a mapped
/// frame's only cap), lets another thread start deleting O and stops it half way.
pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let (Some(u_c), Some(u_n), Some(u_f), Some(outer)) = (
        c.ok("zombie: C's own 2 MiB untyped", objects.alloc(slots, ObjectType::Untyped, C_BITS)),
        c.ok("zombie: a 1 MiB untyped for notifications", objects.alloc(slots, ObjectType::Untyped, NOTIFICATION_BITS)),
        c.ok("zombie: the frame's own 4 KiB untyped", objects.alloc(slots, ObjectType::Untyped, 12)),
        c.ok("zombie: a radix-1 CNode O", objects.alloc(slots, ObjectType::CNode, 1)),
    ) else {
        return;
    };
    let (u_c, u_n, u_f) = (Untyped(u_c), Untyped(u_n), Untyped(u_f));
    let Ok(first) = slots.alloc_range(4) else { return c.check("free slots", false) };
    let (c_slot, f_slot, piece, again) = (first, first + 1, first + 2, first + 3);
    let mut built = u_c.retype(ObjectType::CNode, C_RADIX, root, 0, 0, c_slot, 1).is_ok();
    for k in 0..FILLED / PER_RETYPE {
        built &= u_n.retype(ObjectType::Notification, 0, root, c_slot, FULL_DEPTH, k * PER_RETYPE, PER_RETYPE).is_ok();
    }
    built &= u_f.retype(ObjectType::Frame4K, 0, root, 0, 0, f_slot, 1).is_ok()
        && map_frame(objects, slots, Frame(f_slot), F_VADDR, CapRights::ALL, 0).is_ok();
    let in_c = SlotRef { root: CNode(c_slot), index: F_INDEX, depth: C_RADIX };
    built &= CNode::move_cap(in_c, root.slot(f_slot)).is_ok()
        && CNode::move_cap(SlotRef { root: CNode(outer), index: 0, depth: 1 }, root.slot(c_slot)).is_ok();
    c.check("zombie: C (28672 notifications, a mapped frame's only cap) is O's only content", built);

    OUTER.store(outer, SeqCst);
    let Some(t) =
        c.ok("zombie: a thread at our priority deletes O", spawn(objects, slots, deleter, 0, 255, DELETER_REGION, 0))
    else {
        return;
    };
    // Wait until it is inside the Delete and we had the CPU back after a tick.
    while !IN_DELETE.load(SeqCst) {
        core::hint::spin_loop();
    }
    let mut last = rdtsc();
    loop {
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP {
            break;
        }
        last = now;
    }
    c.ok("zombie: suspend the deleter", t.suspend());
    let probe = root.slot(again);
    c.err(
        "zombie: the deleter stopped mid-Delete: a Zombie holds O's slot",
        E::IllegalOperation,
        CNode::copy(probe, root.slot(outer), CapRights::ALL),
    );

    // C's slots are live (the deletion will read them again): its memory is taken.
    let retyped = u_c.retype(ObjectType::Untyped, C_BITS - 1, root, 0, 0, piece, 1);
    let refused = retyped.is_err();
    c.err("zombie: retype of C's untyped while C is being destroyed", E::NotEnoughMemory, retyped);
    if !refused {
        return;
    }
    c.ok("zombie: revoke C's untyped: it finishes the deletion it meets", CNode::revoke(root.slot(u_c.0)));
    c.err(
        "zombie: O's slot is empty afterwards",
        E::FailedLookup,
        CNode::copy(probe, root.slot(outer), CapRights::ALL),
    );
    c.ok("zombie: C's untyped is whole again", u_c.retype(ObjectType::Untyped, C_BITS, root, 0, 0, piece, 1));
    c.ok("zombie: delete that child", CNode::delete(root.slot(piece)));
    // The frame's cap was deleted with C: its mapping went with it.
    let remapped = u_f.retype(ObjectType::Frame4K, 0, root, 0, 0, f_slot, 1).is_ok()
        && map_frame(objects, slots, Frame(f_slot), F_VADDR, CapRights::ALL, 0).is_ok();
    c.check("zombie: the frame's untyped is free and its old address unmapped", remapped);

    c.ok("zombie: resume the deleter", t.resume());
    let mut spins = 0u64;
    while RESULT.load(SeqCst) == 0 && spins < 1 << 32 {
        libcap::ipc::yield_now();
        spins += 1;
    }
    c.check("zombie: its restarted Delete finds the slot empty and returns success", RESULT.load(SeqCst) == 1);
    let _ = t.suspend();
}
