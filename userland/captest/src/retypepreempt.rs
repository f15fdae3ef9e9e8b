//! A Retype preempted half way: what the untyped's holder can do meanwhile.
//!
//! A Retype zeroes its objects in preemptible passes with its progress in the untyped
//! cap. A lower-priority thread retypes 16 MiB of memory that held a pattern into
//! 2 MiB frames; the PIT interrupts it, and at each wakeup, while the Retype is half
//! done, this (higher-priority) thread checks that nothing was handed out yet and
//! attacks with its own caps: moves the untyped away and back, retypes a small frame
//! from it (which must read zero) and writes to it, revokes it. The frames the Retype
//! finally hands out must read zero. Then the untyped is deleted mid-Retype: the call
//! fails and creates nothing. Last, 256 TCBs, made 32 per pass, are attacked while
//! some exist: moving the lowest made away and back lets the Retype finish; deleting
//! it makes the restarted call a new Retype, refused.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPort, IoPortControl, IrqControl, IrqHandler, Notification, Untyped};
use libcap::ipc;
use libcap::println;
use libcap::thread::spawn;

use crate::Checker;

/// Stack and IPC buffer of the retyping thread.
const RETYPER_REGION: u64 = 0x0000_3500_0000_0000;
/// Where the retyped 2 MiB frames are mapped.
const FRAMES_VADDR: u64 = 0x0000_3600_0000_0000;
/// Where a small frame retyped mid-way is mapped.
const SMALL_VADDR: u64 = 0x0000_3700_0000_0000;
/// 2 MiB frames in the 16 MiB.
const FRAMES: u64 = 8;
/// The pattern the memory holds before the Retype.
const PATTERN: u64 = 0xa5a5_5a5a_dead_beef;
/// PIT ports.
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Wakeups that attack; later ones only wait for the Retype to end.
const ATTACKS: u64 = 3;

static UT: AtomicU64 = AtomicU64::new(0);
static DEST: AtomicU64 = AtomicU64::new(0);
static GO: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static IN_RETYPE: AtomicBool = AtomicBool::new(false);
/// 1 + 0 for success, 1 + the error code otherwise; 0 while running.
static RESULT: AtomicU64 = AtomicU64::new(0);
/// The retyper makes [`TCBS`] TCBs (made in batches: the creation attacks) instead of
/// the 2 MiB frames.
static MAKING_TCBS: AtomicBool = AtomicBool::new(false);
/// TCBs in the creation attacks: 512 KiB, made 32 per pass.
const TCBS: u64 = 256;

extern "C" fn retyper(_: u64) -> ! {
    let root = CNode(slots::INIT_CNODE);
    loop {
        let _ = ipc::wait(GO.load(SeqCst));
        IN_RETYPE.store(true, SeqCst);
        let (kind, count) =
            if MAKING_TCBS.load(SeqCst) { (ObjectType::Tcb, TCBS) } else { (ObjectType::Frame2M, FRAMES) };
        let r = Untyped(UT.load(SeqCst)).retype(kind, 0, root, 0, 0, DEST.load(SeqCst), count);
        IN_RETYPE.store(false, SeqCst);
        RESULT.store(1 + r.map_or_else(|e| e.code.raw(), |_| 0), SeqCst);
        let _ = ipc::signal(DONE.load(SeqCst));
    }
}

/// The PIT and its interrupt, for waking this thread.
pub(crate) struct Pit {
    port: IoPort,
    pub(crate) handler: IrqHandler,
    irq: u64,
}

impl Pit {
    /// Starts a one-shot count of `count` input clocks and blocks until it ends.
    pub(crate) fn sleep(&self, count: u16) {
        let armed = self.port.out8(PIT_CHANNEL0, count as u8).is_ok()
            && self.port.out8(PIT_CHANNEL0, (count >> 8) as u8).is_ok();
        if !armed {
            println!("captest: FAIL retype-preempt: cannot program the PIT");
            return;
        }
        // Blocking, so the lower-priority retyper runs; the PIT fires (irqtest checks it).
        let _ = ipc::wait(self.irq);
        let _ = self.handler.ack();
    }
}

/// Whether the 4 KiB at `vaddr` read zero in every word.
fn page_is_zero(vaddr: u64) -> bool {
    // SAFETY: the caller mapped 4 KiB readable at `vaddr`.
    (0..512).all(|i| unsafe { ((vaddr + 8 * i) as *const u64).read_volatile() } == 0)
}

/// Runs the attacks; `objects` provides the 16 MiB untyped and the thread.
pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let (Some(ut), Ok(dest), Ok(spare)) = (
        c.ok("retype-preempt: a 16 MiB untyped", objects.alloc(slots, ObjectType::Untyped, 24)),
        slots.alloc_range(FRAMES),
        slots.alloc_range(4),
    ) else {
        return c.check("retype-preempt: set up", false);
    };
    let Some(pit) = pit(c, objects, slots) else { return };
    // The memory holds a pattern: 2 MiB frames, written through, revoked.
    let mut written = ut_retype(ut, dest).is_ok();
    for i in 0..FRAMES {
        let vaddr = FRAMES_VADDR + (i << 21);
        written &= map_frame(objects, slots, Frame(dest + i), vaddr, CapRights::ALL, 0).is_ok();
        if written {
            // SAFETY: the 2 MiB frame was just mapped writable at `vaddr`.
            (0..1 << 18).for_each(|w| unsafe { ((vaddr + 8 * w) as *mut u64).write_volatile(PATTERN) });
        }
    }
    written &= CNode::revoke(root.slot(ut)).is_ok();
    c.check("retype-preempt: 16 MiB written with a pattern, then its frames revoked", written);

    let (go, done) =
        (objects.alloc(slots, ObjectType::Notification, 0), objects.alloc(slots, ObjectType::Notification, 0));
    let (Ok(go), Ok(done)) = (go, done) else { return c.check("retype-preempt: notifications", false) };
    UT.store(ut, SeqCst);
    DEST.store(dest, SeqCst);
    GO.store(badged(slots, go), SeqCst);
    DONE.store(badged(slots, done), SeqCst);
    let Some(thread) = c.ok(
        "retype-preempt: a thread below our priority retypes",
        spawn(objects, slots, retyper, 0, 100, RETYPER_REGION, 0),
    ) else {
        return;
    };

    // The Retype, attacked at the PIT's wakeups while it is half done. Shorter counts
    // if it ended before the first wakeup (a faster host).
    let mut count = 400u16;
    let mut interrupted = 0;
    let mut spare_next = spare;
    for _ in 0..6 {
        RESULT.store(0, SeqCst);
        let _ = ipc::signal(GO.load(SeqCst));
        while RESULT.load(SeqCst) == 0 {
            pit.sleep(count);
            if RESULT.load(SeqCst) != 0 || !IN_RETYPE.load(SeqCst) {
                continue;
            }
            interrupted += 1;
            if interrupted <= ATTACKS {
                attack(c, objects, slots, ut, dest, spare_next, interrupted);
                spare_next += 1;
            }
        }
        if interrupted > 0 {
            break;
        }
        let _ = CNode::revoke(root.slot(ut));
        count /= 2;
    }
    c.check("retype-preempt: the PIT interrupted the Retype while it was half done", interrupted > 0);
    println!("captest: retype-preempt: {interrupted} wakeups inside the Retype (PIT count {count})");
    c.check("retype-preempt: the attacked Retype succeeds", RESULT.load(SeqCst) == 1);
    let mut zero = true;
    for i in 0..FRAMES {
        let vaddr = FRAMES_VADDR + (i << 21);
        zero &= map_frame(objects, slots, Frame(dest + i), vaddr, CapRights::READ, 0).is_ok()
            && (0..512).all(|p| page_is_zero(vaddr + (p << 12)));
    }
    c.check("retype-preempt: its 2 MiB frames read zero in every word (none of the pattern)", zero);

    // The untyped deleted while a Retype from it is half done.
    let _ = CNode::revoke(root.slot(ut));
    RESULT.store(0, SeqCst);
    let _ = ipc::signal(GO.load(SeqCst));
    let mut deleted = false;
    for _ in 0..64 {
        pit.sleep(count);
        if RESULT.load(SeqCst) != 0 {
            break;
        }
        if IN_RETYPE.load(SeqCst) && !deleted {
            deleted = CNode::delete(root.slot(ut)).is_ok();
        }
    }
    if deleted {
        c.check(
            "retype-preempt: untyped deleted mid-Retype: the restarted call fails",
            RESULT.load(SeqCst) == 1 + E::InvalidCapability.raw() || RESULT.load(SeqCst) == 1 + E::FailedLookup.raw(),
        );
        c.err(
            "retype-preempt: ... and created nothing",
            E::FailedLookup,
            CNode::copy(root.slot(spare + 3), root.slot(dest), CapRights::ALL),
        );
    } else {
        c.check("retype-preempt: the untyped was deleted mid-Retype", false);
    }
    creation_attacks(c, objects, slots, &pit);
    let _ = thread.suspend();
    let _ = pit.handler.clear();
    let _ = CNode::delete(root.slot(pit.handler.0));
}

/// How many of the `TCBS` destinations from `dest` hold a cap, and whether they are
/// the last ones (the objects are made last first).
fn made(dest: u64, probe: u64) -> (u64, bool) {
    let root = CNode(slots::INIT_CNODE);
    let held: [bool; TCBS as usize] = core::array::from_fn(|i| {
        let copied = CNode::copy(root.slot(probe), root.slot(dest + i as u64), CapRights::ALL).is_ok();
        copied && CNode::delete(root.slot(probe)).is_ok()
    });
    let n = held.iter().filter(|h| **h).count() as u64;
    (n, held.iter().enumerate().all(|(i, h)| *h == (i as u64 >= TCBS - n)))
}

/// 256 TCBs are made 32 per pass: wakes inside the Retype while some exist, then
/// (first run) moves the lowest made cap away and back: the Retype goes on and
/// succeeds; (second run) deletes it: the restarted call is no longer that Retype and
/// fails with DeleteFirst, leaving the objects made so far.
fn creation_attacks(c: &mut Checker, objects: &mut ObjectAllocator, slots: &SlotAllocator, pit: &Pit) {
    let root = CNode(slots::INIT_CNODE);
    let (Ok(ut), Ok(dest), Ok(spare)) =
        (objects.alloc(slots, ObjectType::Untyped, 19), slots.alloc_range(TCBS), slots.alloc_range(2))
    else {
        return c.check("retype-preempt: creation: set up", false);
    };
    UT.store(ut, SeqCst);
    DEST.store(dest, SeqCst);
    MAKING_TCBS.store(true, SeqCst);
    for (run, delete) in [(0, false), (1, true)] {
        let mut seen = None;
        let mut count = 200u16;
        for attempt in 0..16 {
            RESULT.store(0, SeqCst);
            let _ = ipc::signal(GO.load(SeqCst));
            while RESULT.load(SeqCst) == 0 {
                pit.sleep(count);
                if seen.is_some() || RESULT.load(SeqCst) != 0 || !IN_RETYPE.load(SeqCst) {
                    continue;
                }
                let (n, last) = made(dest, spare);
                if n == 0 || n == TCBS {
                    continue;
                }
                seen = Some((n, last));
                let lowest = root.slot(dest + TCBS - n);
                let attacked = if delete {
                    CNode::delete(lowest).is_ok()
                } else {
                    CNode::move_cap(root.slot(spare + 1), lowest).is_ok()
                        && CNode::move_cap(lowest, root.slot(spare + 1)).is_ok()
                };
                c.check("retype-preempt: creation: attack the lowest TCB made", attacked);
            }
            if seen.is_some() {
                break;
            }
            let _ = CNode::revoke(root.slot(ut));
            // Land elsewhere in the Retype next time.
            count = [200, 100, 50, 300, 25, 400, 150, 75][attempt % 8];
        }
        let Some((n, last)) = seen else {
            return c.check("retype-preempt: creation: a wakeup came while some TCBs were made", false);
        };
        println!("captest: retype-preempt: creation run {run}: woke with {n} of {TCBS} TCBs made");
        c.check("retype-preempt: creation: half made, the TCBs made are the last ones", last);
        let result = RESULT.load(SeqCst);
        if delete {
            c.check(
                "retype-preempt: creation: its lowest TCB deleted, the restarted call is a new Retype -> DeleteFirst",
                result == 1 + E::DeleteFirst.raw(),
            );
            c.check("retype-preempt: creation: ... and the TCBs made before stay", made(dest, spare).0 == n - 1);
        } else {
            c.check(
                "retype-preempt: creation: moved away and back, the Retype goes on and succeeds",
                result == 1 && made(dest, spare) == (TCBS, true),
            );
        }
        let _ = CNode::revoke(root.slot(ut));
    }
    MAKING_TCBS.store(false, SeqCst);
}

/// Retypes the eight 2 MiB frames (untimed, from this thread).
fn ut_retype(ut: u64, dest: u64) -> libcap::cap::Result<()> {
    Untyped(ut).retype(ObjectType::Frame2M, 0, CNode(slots::INIT_CNODE), 0, 0, dest, FRAMES)
}

/// Attack `n` (1..=ATTACKS) on the untyped while a Retype from it is half done.
fn attack(
    c: &mut Checker,
    objects: &mut ObjectAllocator,
    slots: &SlotAllocator,
    ut: u64,
    dest: u64,
    spare: u64,
    n: u64,
) {
    let root = CNode(slots::INIT_CNODE);
    c.err(
        "retype-preempt: half done: no destination holds a cap yet",
        E::FailedLookup,
        CNode::copy(root.slot(spare), root.slot(dest), CapRights::ALL),
    );
    match n {
        1 => {
            let moved = CNode::move_cap(root.slot(spare), root.slot(ut)).is_ok()
                && CNode::move_cap(root.slot(ut), root.slot(spare)).is_ok();
            c.check("retype-preempt: half done: move the untyped away and back", moved);
        }
        2 => {
            let small = Untyped(ut).retype(ObjectType::Frame4K, 0, root, 0, 0, spare, 1).is_ok()
                && map_frame(objects, slots, Frame(spare), SMALL_VADDR, CapRights::ALL, 0).is_ok();
            c.check(
                "retype-preempt: half done: a 4 KiB frame retyped from the same untyped reads zero",
                small && page_is_zero(SMALL_VADDR),
            );
            if small {
                // Dirty it: memory the resumed Retype must zero again (its run was
                // recorded before this frame existed).
                // SAFETY: the frame was just mapped writable at SMALL_VADDR.
                (0..512).for_each(|w| unsafe { ((SMALL_VADDR + 8 * w) as *mut u64).write_volatile(PATTERN) });
            }
            c.ok("retype-preempt: half done: write to it and delete it", CNode::delete(root.slot(spare)));
        }
        _ => {
            c.ok("retype-preempt: half done: revoke the untyped", CNode::revoke(root.slot(ut)));
        }
    }
}

/// A copy of `ntfn` with badge 1.
pub(crate) fn badged(slots: &SlotAllocator, ntfn: u64) -> u64 {
    let root = CNode(slots::INIT_CNODE);
    let b = slots.alloc().expect("slot");
    CNode::mint(root.slot(b), root.slot(ntfn), CapRights::ALL, 1).expect("badged notification");
    b
}

/// The PIT's channel 0 in mode 0 (interrupt on terminal count) on ISA IRQ 0.
pub(crate) fn pit(c: &mut Checker, objects: &mut ObjectAllocator, slots: &SlotAllocator) -> Option<Pit> {
    let root = CNode(slots::INIT_CNODE);
    let port = IoPort(slots.alloc().ok()?);
    let handler = IrqHandler(slots.alloc().ok()?);
    let irq = objects.alloc(slots, ObjectType::Notification, 0).ok()?;
    let ready = IoPortControl(slots::IOPORT_CONTROL).issue(PIT_CHANNEL0, PIT_COMMAND, root.slot(port.0)).is_ok()
        && IrqControl(slots::IRQ_CONTROL).get(0, root.slot(handler.0)).is_ok()
        && handler.set_notification(Notification(badged(slots, irq))).is_ok()
        && port.out8(PIT_COMMAND, 0b0011_0000).is_ok();
    c.check("retype-preempt: the PIT on ISA IRQ 0, one-shot", ready);
    ready.then_some(Pit { port, handler, irq })
}
