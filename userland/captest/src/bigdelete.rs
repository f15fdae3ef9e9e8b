//! One Delete of a large CNode tree, preempted and restarted.
//!
//! One Delete of a large CNode tree: the kernel works through it in bounded batches
//! and restarts the call in between (a Zombie cap holds the slot meanwhile), so timer
//! ticks keep arriving and another thread of the same priority keeps running. Afterwards
//! every object is gone: the untyped they came from is whole again.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, SlotRef, Untyped, FULL_DEPTH};
use libcap::thread::spawn;

use crate::Checker;

/// Stack and IPC buffer of the thread that runs beside the delete.
const SPINNER_REGION: u64 = 0x0000_3200_0000_0000;
/// Size of the untyped the whole tree is made from (4 MiB).
const TREE_UNTYPED_BITS: u64 = 22;
/// Radix of the outer CNode, the inner CNodes under it, and the radix of each (8 x
/// 4096 notifications). Large enough that the delete spans many timer ticks even on a
/// fast host (turns are counted in wall-clock ticks): with 16384 notifications a faster
/// kernel finished it in a few ticks and the spinner was seen only twice. Taken from the
/// highest untyped: first fit from low memory left the later zombie checks without a
/// 1 MiB untyped.
const OUTER_RADIX: u64 = 3;
const INNER: u64 = 1 << OUTER_RADIX;
const INNER_RADIX: u64 = 12;
/// Notifications one retype call makes.
const PER_RETYPE: u64 = 256;
/// TSC cycles without a loop iteration that mean another thread had the CPU (about
/// 1 ms on a 2 GHz TSC; a loop iteration takes well under a microsecond).
const GAP: u64 = 2_000_000;

/// The root task is inside the Delete call (set just before, cleared just after).
static IN_DELETE: AtomicBool = AtomicBool::new(false);
/// Times the spinner got the CPU back while the root task was inside the Delete call.
static TURNS: AtomicU64 = AtomicU64::new(0);

fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Runs at the root task's priority: counts how often it ran again during the delete.
extern "C" fn spinner(_: u64) -> ! {
    let mut last = rdtsc();
    loop {
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP && IN_DELETE.load(SeqCst) {
            TURNS.fetch_add(1, SeqCst);
        }
        last = now;
        core::hint::spin_loop();
    }
}

/// Builds a CNode (radix 3) holding eight radix-12 CNodes that hold 32768 notifications
/// (every cap the only one to its object), deletes the outer cap in one call and checks
/// that the call was spread over several timeslices and left nothing behind.
pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let Some(ut) =
        c.ok("a 4 MiB untyped for the tree", objects.alloc_high(slots, ObjectType::Untyped, TREE_UNTYPED_BITS))
    else {
        return;
    };
    let ut = Untyped(ut);
    let Ok(first) = slots.alloc_range(INNER + 2) else { return c.check("free slots", false) };
    let (outer, again) = (first + INNER, first + INNER + 1);
    let mut built = ut.retype(ObjectType::CNode, INNER_RADIX, root, 0, 0, first, INNER).is_ok()
        && ut.retype(ObjectType::CNode, OUTER_RADIX, root, 0, 0, outer, 1).is_ok();
    let mut made = 0;
    for i in 0..INNER {
        for k in 0..(1 << INNER_RADIX) / PER_RETYPE {
            let in_inner =
                ut.retype(ObjectType::Notification, 0, root, first + i, FULL_DEPTH, k * PER_RETYPE, PER_RETYPE);
            made += if in_inner.is_ok() { PER_RETYPE } else { 0 };
        }
        let into_outer = SlotRef { root: CNode(outer), index: i, depth: OUTER_RADIX };
        built &= CNode::move_cap(into_outer, root.slot(first + i)).is_ok();
    }
    c.check("build a CNode tree holding 32768 notifications (only caps)", built && made == INNER << INNER_RADIX);

    let Some(other) =
        c.ok("start a thread at the root task's priority", spawn(objects, slots, spinner, 0, 255, SPINNER_REGION, 0))
    else {
        return;
    };
    IN_DELETE.store(true, SeqCst);
    let t0 = rdtsc();
    let deleted = CNode::delete(root.slot(outer));
    let cycles = rdtsc().wrapping_sub(t0);
    IN_DELETE.store(false, SeqCst);
    let turns = TURNS.load(SeqCst);
    let _ = other.suspend();
    c.ok("delete the tree's outer cap in one call", deleted);
    libcap::println!("captest: the other thread ran {turns} times during the delete ({cycles} TSC cycles)");
    c.check("the other thread kept running during the delete (timer ticks arrived)", turns >= 3);
    c.err(
        "the outer slot is empty afterwards",
        E::FailedLookup,
        CNode::copy(root.slot(slots.alloc().unwrap_or(0)), root.slot(outer), CapRights::ALL),
    );
    // A full-size child only fits if the watermark went back to 0: no child is left.
    c.ok(
        "every object of the tree is gone: its untyped is whole again",
        ut.retype(ObjectType::Untyped, TREE_UNTYPED_BITS, root, 0, 0, again, 1),
    );
    c.ok("delete that child", CNode::delete(root.slot(again)));
}
