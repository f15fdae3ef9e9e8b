//! A higher-priority thread woken by the PIT: its lateness in guest instructions.
//!
//! The waker thread (priority [`WAKER_PRIORITY`], above the bench thread's
//! [`WORKER_PRIORITY`] during these rows) starts the PIT's channel 0 in mode 0
//! (interrupt on terminal count) with a count of N input clocks and blocks on the
//! notification bound to ISA IRQ 0. Under `-icount shift=0,sleep=off` QEMU's virtual
//! clock advances one nanosecond per guest instruction, the TSC reads that clock, and
//! the PIT raises its output (and the interrupt) exactly `N * 10^9 / 1,193,182`
//! nanoseconds after the write of the count's high byte, so the interrupt's due time
//! is known in TSC ticks (guest instructions). The waker reads the TSC just before the
//! system call that writes that byte, adds the count's duration, and on waking takes
//! the difference: its lateness, an upper bound (it includes the part of the port
//! write's system call before its `out`, and the whole wakeup path: interrupt entry,
//! signal, scheduling, return to user mode). Counts vary (50,000 to 130,000
//! instructions) so the interrupts fall at every phase of the worker's passes.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, IoPort, IoPortControl, IrqControl, IrqHandler, Notification, Tcb};
use libcap::deadline::Deadline;
use libcap::ipc;
use libcap::println;

/// The waker's priority, above the worker's.
pub const WAKER_PRIORITY: u8 = 200;
/// The bench thread's priority while it is the worker.
pub const WORKER_PRIORITY: u8 = 100;
/// Where the waker's stack and IPC buffer go.
const WAKER_REGION: u64 = 0x0000_5400_0000_0000;
/// PIT input clock (Hz).
const PIT_HZ: u64 = 1_193_182;
/// PIT ports: channel 0 data, mode/command.
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Samples taken with the worker idle.
const IDLE_SAMPLES: u64 = 32;

/// The waker's caps (set before it starts).
static PORT: AtomicU64 = AtomicU64::new(0);
static IRQ_NTFN: AtomicU64 = AtomicU64::new(0);
static HANDLER: AtomicU64 = AtomicU64::new(0);
static START: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
/// Samples to take (0: until `END` is set).
static TARGET: AtomicU64 = AtomicU64::new(0);
/// When the worker finished (0: still working); interrupts due later are not counted.
static END: AtomicU64 = AtomicU64::new(0);
/// Results of the last measurement: samples, shortest and longest lateness.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
static SHORTEST: AtomicU64 = AtomicU64::new(0);
static LONGEST: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
fn now() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads the time-stamp counter; lfence orders it after earlier work.
    unsafe { core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The PIT count for sample `i`: 60 to 156 input clocks, in a sequence that does not
/// line up with the worker's passes.
fn count(i: u64) -> u64 {
    60 + (i * 37) % 97
}

/// Starts the count and returns its due time in TSC ticks (guest instructions).
fn arm(port: IoPort, count: u64) -> u64 {
    port.out8(PIT_CHANNEL0, count as u8).expect("PIT count, low byte");
    let t0 = now();
    port.out8(PIT_CHANNEL0, (count >> 8) as u8).expect("PIT count, high byte");
    // QEMU's i8254: the output rises at load time + count * 10^9 / PIT_HZ ns (floored).
    t0 + count * 1_000_000_000 / PIT_HZ
}

extern "C" fn waker(_: u64) -> ! {
    let port = IoPort(PORT.load(SeqCst));
    let handler = IrqHandler(HANDLER.load(SeqCst));
    let mut i = 0;
    loop {
        let _ = ipc::wait(START.load(SeqCst));
        let (mut samples, mut shortest, mut longest) = (0, u64::MAX, 0);
        loop {
            let due = arm(port, count(i));
            i += 1;
            // Blocking: the worker below runs meanwhile. The worker's bounded wait for
            // DONE reports an interrupt that never comes.
            let _ = ipc::wait(IRQ_NTFN.load(SeqCst));
            let woke = now();
            handler.ack().expect("ack ISA IRQ 0");
            let end = END.load(SeqCst);
            if end == 0 || due < end {
                let late = woke.saturating_sub(due);
                (samples, shortest, longest) = (samples + 1, shortest.min(late), longest.max(late));
            }
            let target = TARGET.load(SeqCst);
            if (target == 0 && end != 0) || (target != 0 && samples >= target) {
                break;
            }
        }
        SAMPLES.store(samples, SeqCst);
        SHORTEST.store(shortest, SeqCst);
        LONGEST.store(longest, SeqCst);
        let _ = ipc::signal(DONE.load(SeqCst));
    }
}

/// The waker thread and the PIT's interrupt line, ready for measurements.
pub struct Waker {
    thread: Tcb,
    handler: IrqHandler,
}

/// One measurement: samples, shortest and longest lateness, and how long the work
/// took (guest instructions, the waker's share included).
pub struct Lateness {
    /// Interrupts counted.
    pub samples: u64,
    /// The shortest lateness.
    pub shortest: u64,
    /// The longest lateness.
    pub longest: u64,
    /// From the start of the work to its end (0 for no work).
    pub took: u64,
}

impl Waker {
    /// Takes the PIT's ports and ISA IRQ 0 and starts the waker (blocked until a
    /// measurement starts). The caller then runs at [`WORKER_PRIORITY`].
    pub fn start(objects: &mut ObjectAllocator, slots: &SlotAllocator) -> Waker {
        let root = CNode(slots::INIT_CNODE);
        let port = IoPort(slots.alloc().expect("slot"));
        IoPortControl(slots::IOPORT_CONTROL).issue(PIT_CHANNEL0, PIT_COMMAND, root.slot(port.0)).expect("PIT ports");
        let badged = |slots: &SlotAllocator, ntfn: u64| {
            let b = slots.alloc().expect("slot");
            CNode::mint(root.slot(b), root.slot(ntfn), CapRights::ALL, 1).expect("badged notification");
            b
        };
        let irq = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
        let handler = IrqHandler(slots.alloc().expect("slot"));
        IrqControl(slots::IRQ_CONTROL).get(0, root.slot(handler.0)).expect("ISA IRQ 0");
        handler.set_notification(Notification(badged(slots, irq))).expect("bind IRQ 0");
        let start = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
        let done = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
        // Channel 0, low byte then high byte, mode 0 (interrupt on terminal count), binary.
        port.out8(PIT_COMMAND, 0b0011_0000).expect("PIT mode");
        PORT.store(port.0, SeqCst);
        IRQ_NTFN.store(irq, SeqCst);
        HANDLER.store(handler.0, SeqCst);
        START.store(badged(slots, start), SeqCst);
        DONE.store(badged(slots, done), SeqCst);
        let me = Tcb(slots::INIT_TCB);
        me.set_priority(me, WORKER_PRIORITY).expect("worker priority");
        let thread = libcap::thread::spawn(objects, slots, waker, 0, WAKER_PRIORITY, WAKER_REGION, 0).expect("waker");
        Waker { thread, handler }
    }

    /// Measures the waker's lateness while `work` runs (with the worker idle, blocked
    /// in a wait, for [`IDLE_SAMPLES`] interrupts, if `work` is `None`).
    pub fn measure(&self, work: Option<&mut dyn FnMut()>) -> Option<Lateness> {
        END.store(0, SeqCst);
        TARGET.store(if work.is_some() { 0 } else { IDLE_SAMPLES }, SeqCst);
        let _ = ipc::signal(START.load(SeqCst));
        let mut took = 0;
        if let Some(work) = work {
            let t0 = now();
            work();
            let end = now();
            END.store(end, SeqCst);
            took = end - t0;
        }
        match ipc::wait_until(DONE.load(SeqCst), Deadline::default_wait()) {
            Ok(Some(_)) => Some(Lateness {
                samples: SAMPLES.load(SeqCst),
                shortest: SHORTEST.load(SeqCst),
                longest: LONGEST.load(SeqCst),
                took,
            }),
            _ => {
                println!("bench: FAIL the waker's PIT interrupt (ISA IRQ 0) did not come");
                None
            }
        }
    }

    /// Stops the waker, masks the line and gives the bench thread its priority back.
    pub fn stop(self) {
        let _ = self.thread.suspend();
        let _ = self.handler.clear();
        let me = Tcb(slots::INIT_TCB);
        let _ = me.set_priority(me, 255);
    }
}
