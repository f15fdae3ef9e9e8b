//! The kernel's longest interrupts-off stretch during its longest operations.
//!
//! The kernel runs with interrupts off from a trap to its return, so its longest
//! stretch bounds how late an interrupt, and the higher-priority thread it wakes, is
//! served. Each row is the longest stretch (DebugConsole KernelStretch) while this
//! unprivileged thread deletes a CNode holding 65,536 caps (a preemptible Zombie
//! deletion), revokes a frame whose 4,096 copies each hold an IO mapping (preemptible),
//! and retypes 16 MiB of frames in one Retype (zeroed in preemptible passes), and,
//! meanwhile, how late a higher-priority thread woken by the PIT runs (`wakeup`); and
//! retypes 256 TCBs (made in batches of 32).
//! Only with the kernel booted `latency=on` (`make bench` part `latency`);
//! tests/tests/latency.rs holds each to its bound.

use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, Untyped};
use libcap::console::DebugConsole;
use libcap::println;

use crate::wakeup::{Lateness, Waker};

/// The retype rows' name.
const RETYPE: &str = "retyping 16 MiB (eight 2 MiB frames, one call)";

/// The rows of 256 TCBs.
const TCBS: &str = "retyping 256 TCBs (one call)";

/// Where the revoked copies are mapped (8 leaf tables: 16 MiB).
const IOVA: u64 = 0xc000_0000;

fn row(name: &str, stretch: u64) {
    println!("bench: longest interrupts-off stretch: {name} min={stretch} median={stretch} runs=1");
}

/// The longest lateness as the row (as `min` and `median`: one worst case), the
/// shortest on a line of its own.
fn wake_row(name: &str, lateness: Option<Lateness>) {
    let Some(l) = lateness else { return };
    println!("bench: longest wakeup lateness: {name} min={} median={} runs={}", l.longest, l.longest, l.samples);
    println!("bench: wakeup lateness {name}: shortest {} of {} interrupts", l.shortest, l.samples);
    if l.took != 0 {
        println!("bench: {name} took {} guest instructions in all (the waker's share included)", l.took);
    }
}

/// The rows; `scratch` holds 4,096 empty slots (empty again afterwards).
pub fn rows(objects: &mut ObjectAllocator, slots: &SlotAllocator, scratch: u64) {
    let console = DebugConsole(slots::DEBUG_CONSOLE);
    if console.kernel_stretch().is_err() {
        println!("bench: the kernel does not measure its stretches (boot with latency=on): latency rows skipped");
        return;
    }
    let root = CNode(slots::INIT_CNODE);
    let stretch = || console.kernel_stretch().expect("KernelStretch");
    let waker = Waker::start(objects, slots);
    wake_row("the worker idle (the wakeup path alone)", waker.measure(None));

    // A CNode of 2^16 slots, every one holding a notification cap.
    let tree = objects.alloc(slots, ObjectType::CNode, 16).expect("a 2^16-slot CNode");
    let notifications = Untyped(objects.alloc(slots, ObjectType::Untyped, 21).expect("2 MiB untyped"));
    for batch in 0..256 {
        notifications
            .retype(ObjectType::Notification, 0, root, tree, 64, batch * 256, 256)
            .expect("256 notifications into the tree");
    }
    stretch();
    let late = waker.measure(Some(&mut || CNode::delete(root.slot(tree)).expect("delete the tree")));
    row("deleting a CNode of 65,536 caps", stretch());
    wake_row("deleting a CNode of 65,536 caps", late);

    // A frame whose 4,096 copies each hold an IO mapping.
    let space = crate::scaling::iospace_with_tables(objects, slots, IOVA, 8);
    let parent = objects.alloc(slots, ObjectType::Frame4K, 0).expect("frame");
    for i in 0..4096 {
        CNode::copy(root.slot(scratch + i), root.slot(parent), CapRights::ALL).expect("copy");
        Frame(scratch + i).map_io(space, IOVA + i * 4096, CapRights::ALL).expect("map_io");
    }
    stretch();
    let late = waker.measure(Some(&mut || CNode::revoke(root.slot(parent)).expect("revoke")));
    row("revoking 4,096 IO mappings", stretch());
    wake_row("revoking 4,096 IO mappings", late);

    // 16 MiB of 2 MiB frames in one Retype: zeroed in passes of at most 128 KiB.
    let big = Untyped(objects.alloc(slots, ObjectType::Untyped, 24).expect("16 MiB untyped"));
    stretch();
    let late = waker.measure(Some(&mut || {
        big.retype(ObjectType::Frame2M, 0, root, 0, 0, scratch, 8).expect("retype 16 MiB");
    }));
    row(RETYPE, stretch());
    wake_row(RETYPE, late);
    CNode::revoke(root.slot(big.0)).expect("revoke the frames");

    // 256 TCBs (512 KiB) in one Retype: zeroed in passes, then made 32 per pass (each
    // TCB's register frame and FPU state, each cap linked).
    let tcbs = Untyped(objects.alloc(slots, ObjectType::Untyped, 19).expect("512 KiB untyped"));
    waker.stop();
    stretch();
    tcbs.retype(ObjectType::Tcb, 0, root, 0, 0, scratch, 256).expect("retype 256 TCBs");
    row(TCBS, stretch());
    CNode::revoke(root.slot(tcbs.0)).expect("revoke the TCBs");
}
