//! A Retype of another type posing as the continuation of a half-made Retype.
//!
//! A Retype of more than 32 objects makes them in batches, its progress (the run and the
//! count made) kept in the untyped cap; the restarted call is taken as the same Retype
//! when the destinations below the lowest object made are empty and that lowest
//! destination holds a cap to an object of the requested kind and size at the address
//! this request would give it. A lower-priority thread retypes 1 MiB that held a
//! pattern into 128 child untypeds of 8 KiB (which are never zeroed); woken by the PIT
//! while some exist, this thread retypes a 4 KiB frame at the base of one of them, puts
//! it where a 256-frame Retype's lowest made frame would be, and asks the untyped for
//! 256 frames. That must be refused (it is not the Retype that was preempted): taken as
//! a continuation, it makes frames over memory never zeroed and over the child
//! untypeds that still exist.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, SlotRef, Untyped};
use libcap::ipc;
use libcap::println;
use libcap::thread::spawn;

use crate::retypepreempt::{badged, pit};
use crate::Checker;

/// Stack and IPC buffer of the retyping thread.
const RETYPER_REGION: u64 = 0x0000_3800_0000_0000;
/// Where the 1 MiB is mapped to write the pattern.
const PATTERN_VADDR: u64 = 0x0000_3900_0000_0000;
/// Where the frames of the posing Retype are mapped.
const PROBE_VADDR: u64 = 0x0000_3a00_0000_0000;
/// The pattern the memory holds before the Retypes.
const PATTERN: u64 = 0x5a5a_a5a5_feed_f00d;
/// Child untypeds of 8 KiB the preempted Retype makes (four passes of 32).
const CHILDREN: u64 = 128;
/// 4 KiB frames over the same 1 MiB.
const FRAMES: u64 = 256;

static UT: AtomicU64 = AtomicU64::new(0);
static DEST: AtomicU64 = AtomicU64::new(0);
static GO: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static IN_RETYPE: AtomicBool = AtomicBool::new(false);
/// 1 + 0 for success, 1 + the error code otherwise; 0 while running.
static RESULT: AtomicU64 = AtomicU64::new(0);

extern "C" fn retyper(_: u64) -> ! {
    let root = CNode(slots::INIT_CNODE);
    loop {
        let _ = ipc::wait(GO.load(SeqCst));
        IN_RETYPE.store(true, SeqCst);
        let r = Untyped(UT.load(SeqCst)).retype(ObjectType::Untyped, 13, root, 0, 0, DEST.load(SeqCst), CHILDREN);
        IN_RETYPE.store(false, SeqCst);
        RESULT.store(1 + r.map_or_else(|e| e.code.raw(), |_| 0), SeqCst);
        let _ = ipc::signal(DONE.load(SeqCst));
    }
}

/// Whether slot `s` holds a cap (moved to `probe` and back).
fn held(s: u64, probe: u64) -> bool {
    let root = CNode(slots::INIT_CNODE);
    CNode::move_cap(root.slot(probe), root.slot(s)).is_ok() && CNode::move_cap(root.slot(s), root.slot(probe)).is_ok()
}

/// Runs the attack; `objects` provides the 1 MiB untyped and the thread.
pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let (Some(ut), Ok(dest), Ok(frames), Ok(spare)) = (
        c.ok("retype-confuse: a 1 MiB untyped", objects.alloc(slots, ObjectType::Untyped, 20)),
        slots.alloc_range(CHILDREN),
        slots.alloc_range(FRAMES),
        slots.alloc_range(4),
    ) else {
        return c.check("retype-confuse: set up", false);
    };
    let Some(pit) = pit(c, objects, slots) else { return };
    // The memory holds a pattern: 4 KiB frames, written through, revoked.
    let mut written = Untyped(ut).retype(ObjectType::Frame4K, 0, root, 0, 0, frames, FRAMES).is_ok();
    for i in 0..FRAMES {
        let vaddr = PATTERN_VADDR + (i << 12);
        written &= map_frame(objects, slots, Frame(frames + i), vaddr, CapRights::ALL, 0).is_ok();
        if written {
            // SAFETY: the frame was just mapped writable at `vaddr`.
            (0..512).for_each(|w| unsafe { ((vaddr + 8 * w) as *mut u64).write_volatile(PATTERN) });
        }
    }
    written &= CNode::revoke(root.slot(ut)).is_ok();
    c.check("retype-confuse: 1 MiB written with a pattern, then its frames revoked", written);

    let (go, done) =
        (objects.alloc(slots, ObjectType::Notification, 0), objects.alloc(slots, ObjectType::Notification, 0));
    let (Ok(go), Ok(done)) = (go, done) else { return c.check("retype-confuse: notifications", false) };
    UT.store(ut, SeqCst);
    DEST.store(dest, SeqCst);
    GO.store(badged(slots, go), SeqCst);
    DONE.store(badged(slots, done), SeqCst);
    let Some(thread) = c.ok(
        "retype-confuse: a thread below our priority retypes 128 child untypeds",
        spawn(objects, slots, retyper, 0, 100, RETYPER_REGION, 0),
    ) else {
        return;
    };

    let mut made = 0;
    for attempt in 0..48 {
        RESULT.store(0, SeqCst);
        let _ = ipc::signal(GO.load(SeqCst));
        let count = [20u16, 40, 60, 10, 80, 30, 120, 5, 160, 50, 240, 15][attempt % 12];
        while RESULT.load(SeqCst) == 0 {
            pit.sleep(count);
            if made != 0 || RESULT.load(SeqCst) != 0 || !IN_RETYPE.load(SeqCst) {
                continue;
            }
            let n = (0..CHILDREN).rev().take_while(|&i| held(dest + i, spare)).count() as u64;
            if n == 0 || n == CHILDREN {
                continue;
            }
            made = n;
            attack(c, objects, slots, ut, dest, frames, spare, n);
        }
        if made != 0 {
            break;
        }
        let _ = CNode::revoke(root.slot(ut));
    }
    c.check("retype-confuse: the PIT woke us while the child untypeds were half made", made != 0);
    println!("captest: retype-confuse: woke with {made} of {CHILDREN} child untypeds made");
    let _ = thread.suspend();
    let _ = CNode::revoke(root.slot(ut));
    let _ = pit.handler.clear();
    let _ = CNode::delete(root.slot(pit.handler.0));
}

/// The posing Retype, `n` child untypeds made (the last `n`).
#[allow(clippy::too_many_arguments)]
fn attack(
    c: &mut Checker,
    objects: &mut ObjectAllocator,
    slots: &SlotAllocator,
    ut: u64,
    dest: u64,
    frames: u64,
    spare: u64,
    n: u64,
) {
    let root = CNode(slots::INIT_CNODE);
    // A 256-frame Retype that had made the last `n` frames: its lowest made one is frame
    // 256 - n, at the base of child untyped 128 - n / 2 (which exists).
    let lowest = FRAMES - n;
    let child = CHILDREN - n / 2;
    let base = Untyped(dest + child).retype(ObjectType::Frame4K, 0, root, 0, 0, frames + lowest, 1).is_ok();
    c.check("retype-confuse: a 4 KiB frame at the base of a child untyped, in the lowest-made place", base);
    let posing = Untyped(ut).retype(ObjectType::Frame4K, 0, root, 0, 0, frames, FRAMES);
    let taken = posing.is_ok();
    c.err("retype-confuse: 256 frames posing as the continuation of the 128-untyped Retype", E::DeleteFirst, posing);
    if !taken {
        return;
    }
    // Taken as a continuation: frames were made below the lowest one, without zeroing.
    let first = map_frame(objects, slots, Frame(frames), PROBE_VADDR, CapRights::ALL, 0).is_ok();
    // SAFETY: mapped readable at PROBE_VADDR just above.
    let word = if first { unsafe { (PROBE_VADDR as *const u64).read_volatile() } } else { 0 };
    c.check("retype-confuse: the first frame made reads zero (not the old pattern)", first && word == 0);
    println!("captest: retype-confuse: first frame's word 0 = {word:#x}");
    // Frame `lowest - 2` lies at the base of child untyped `child - 1`, which still
    // exists: a CNode retyped from that child is kernel memory under a user frame.
    let (alias, cnode) = (frames + lowest - 2, spare + 2);
    let made = Untyped(dest + child - 1).retype(ObjectType::CNode, 7, root, 0, 0, cnode, 1).is_ok()
        && map_frame(objects, slots, Frame(alias), PROBE_VADDR + 0x1000, CapRights::ALL, 0).is_ok()
        && CNode::copy(SlotRef { root: CNode(cnode), index: 0, depth: 7 }, root.slot(frames), CapRights::READ).is_ok();
    let words: [u64; 2] = core::array::from_fn(|i| {
        if made {
            // SAFETY: mapped readable at PROBE_VADDR + 0x1000 just above.
            unsafe { ((PROBE_VADDR + 0x1000 + 8 * i as u64) as *const u64).read_volatile() }
        } else {
            0
        }
    });
    println!("captest: retype-confuse: a user frame over a CNode's slot 0 reads {:#x} {:#x}", words[0], words[1]);
    let (a, b) = (Frame(alias).address().unwrap_or(0), Frame(frames).address().unwrap_or(0));
    c.check("retype-confuse: no user frame reads a CNode's slots", !(made && words[1] == b && a != 0));
}
