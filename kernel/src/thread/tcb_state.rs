//! Threads on the CPU: current thread, ready queues, switches, state changes.
//!
//! Threads on the CPU: the current thread, ready queues, the switch between threads
//! (registers, FPU, FS/GS bases, address space), and the TCB state changes the rest of the kernel
//! uses (make runnable, block, suspend).

use crate::arch::fpu;
use crate::arch::kmem::{self, tcb};
use crate::arch::mmu;
use crate::arch::trap::{self, TrapFrame};
use crate::object::endpoint::{Endpoint, Notification};
use crate::object::kcell::{KernelCell, KernelRef};
use crate::object::tcb::{ThreadState, SLOT_IPC_BUFFER, SLOT_VSPACE};
use crate::thread::sched::{Links, Queue, ReadyQueues, ThreadRef};

/// Scheduler state.
pub(crate) struct Scheduler {
    ready: ReadyQueues,
    current: ThreadRef,
    /// The current thread gave up the CPU (Yield or timeslice end).
    yielded: bool,
}

/// The scheduler; each access borrows it for one statement or a short block.
/// The scheduler (the IPC fastpath's assembly reads `current` and the ready bitmap at
/// the offsets below: `KernelCell` holds its value first).
pub(crate) static SCHED: KernelCell<Scheduler> =
    KernelCell::new(Scheduler { ready: ReadyQueues::new(), current: 0, yielded: false });

/// Offset of the current thread in [`SCHED`] (the fastpath's assembly).
pub(crate) const SCHED_CURRENT_OFFSET: usize = core::mem::offset_of!(Scheduler, current);
/// Offset of the ready bitmap's summary word in [`SCHED`].
pub(crate) const SCHED_SUMMARY_OFFSET: usize =
    core::mem::offset_of!(Scheduler, ready) + crate::thread::sched::ReadyQueues::SUMMARY_OFFSET;
/// Offset of the ready bitmap's first word in [`SCHED`].
pub(crate) const SCHED_BITMAP_OFFSET: usize =
    core::mem::offset_of!(Scheduler, ready) + crate::thread::sched::ReadyQueues::BITMAP_OFFSET;

#[inline(always)]
fn sched() -> KernelRef<'static, Scheduler> {
    SCHED.borrow_mut()
}

/// Ready-queue links of TCBs.
pub struct SchedLinks;
impl Links for SchedLinks {
    fn links(&self, t: ThreadRef) -> (ThreadRef, ThreadRef) {
        let t = tcb(t);
        (t.sched_prev, t.sched_next)
    }
    fn set_links(&mut self, t: ThreadRef, prev: ThreadRef, next: ThreadRef) {
        let t = tcb(t);
        t.sched_prev = prev;
        t.sched_next = next;
    }
}

/// Endpoint/notification queue links of TCBs.
pub struct EpLinks;
impl Links for EpLinks {
    fn links(&self, t: ThreadRef) -> (ThreadRef, ThreadRef) {
        let t = tcb(t);
        (t.ep_prev, t.ep_next)
    }
    fn set_links(&mut self, t: ThreadRef, prev: ThreadRef, next: ThreadRef) {
        let t = tcb(t);
        t.ep_prev = prev;
        t.ep_next = next;
    }
}

/// The highest priority with a ready thread (-1 if none).
pub fn highest_ready() -> i32 {
    sched().ready.highest().map_or(-1, i32::from)
}

/// Whether no ready thread outranks priority `prio` (the IPC fastpath may then switch
/// straight to a thread of that priority).
#[inline(always)]
pub fn none_ready_above(prio: u64) -> bool {
    sched().ready.none_above(prio as u8)
}

/// The running thread (0 before the first thread starts).
pub fn current() -> ThreadRef {
    sched().current
}

/// Sets the first thread at boot.
pub fn set_current(t: ThreadRef) {
    sched().current = t;
    trap::set_current_frame(frame_of(t));
}

/// The saved user registers of `t` (in its TCB; traps from user mode save there).
pub fn with_frame<R>(t: ThreadRef, f: impl FnOnce(&mut TrapFrame) -> R) -> R {
    f(frame_of(t))
}

/// `t`'s register frame.
#[allow(clippy::mut_from_ref)]
pub fn frame_of(t: ThreadRef) -> &'static mut TrapFrame {
    // SAFETY: `frame` is 22 u64 with TrapFrame's layout (both asserted), in a live TCB.
    unsafe { &mut *(core::ptr::addr_of_mut!(tcb(t).frame) as *mut TrapFrame) }
}

fn enqueue(t: ThreadRef) {
    let prio = tcb(t).priority as u8;
    sched().ready.enqueue(&mut SchedLinks, t, prio);
    tcb(t).in_ready_queue = 1;
}

/// Makes `t` runnable and queues it (the switch happens in `schedule`, if it outranks
/// the current thread).
pub fn make_runnable(t: ThreadRef) {
    tcb(t).set_state(ThreadState::Running);
    tcb(t).blocked_on = 0;
    if t != current() && tcb(t).in_ready_queue == 0 {
        enqueue(t);
    }
}

/// Takes `t` out of the ready queue if it is there.
pub fn dequeue_if_queued(t: ThreadRef) {
    if tcb(t).in_ready_queue != 0 {
        let prio = tcb(t).priority as u8;
        sched().ready.dequeue(&mut SchedLinks, t, prio);
        tcb(t).in_ready_queue = 0;
    }
}

/// Current thread gives up the rest of its turn.
pub fn yield_current() {
    sched().yielded = true;
}

/// Changes `t`'s priority, re-queueing it if it waits in a ready queue.
pub fn set_priority(t: ThreadRef, prio: u8) {
    let queued = tcb(t).in_ready_queue != 0;
    dequeue_if_queued(t);
    tcb(t).priority = u64::from(prio);
    if queued {
        enqueue(t);
    }
}

/// Removes `t` from whatever it waits on, making it Inactive.
pub fn suspend(t: ThreadRef) {
    cancel_ipc(t);
    dequeue_if_queued(t);
    tcb(t).set_state(ThreadState::Inactive);
}

/// Takes `t` out of an endpoint or notification queue it is blocked in.
pub fn cancel_ipc(t: ThreadRef) {
    let tt = tcb(t);
    let object = tt.blocked_on;
    match tt.thread_state() {
        ThreadState::BlockedOnSend | ThreadState::BlockedOnReceive => {
            let mut ep = Endpoint::from_words(kmem::read_words::<2>(object));
            ep.queue.remove(&mut EpLinks, t);
            kmem::write_words(object, ep.to_words());
        }
        ThreadState::BlockedOnNotification => {
            let mut n = Notification::from_words(kmem::read_words::<4>(object));
            n.queue.remove(&mut EpLinks, t);
            kmem::write_words(object, n.to_words());
        }
        ThreadState::BlockedOnReply => {
            // The server that owes the reply forgets it: a later Reply must not reach
            // this thread blocked in some other call, or its memory once it is gone.
            if object != 0 && tcb(object).reply_to == t {
                tcb(object).reply_to = 0;
            }
        }
        _ => return,
    }
    let tt = tcb(t);
    tt.blocked_on = 0;
    tt.ipc_flags = 0;
    tt.set_state(ThreadState::Inactive);
}

/// Blocks the current thread in `queue` of `object` with `state`.
pub fn block_current_in(queue: &mut Queue, object: u64, state: ThreadState) {
    let t = current();
    tcb(t).set_state(state);
    tcb(t).blocked_on = object;
    queue.push_back(&mut EpLinks, t);
}

/// The physical address of `t`'s IPC buffer, or 0 if it has none. Checked against the
/// frame cap in its IPC-buffer slot on every use (as seL4's lookupIPCBuffer): once
/// that cap is deleted (by Revoke of an ancestor, say) the frame may be reused, and
/// the cached address must not be followed.
pub fn ipc_buffer(t: ThreadRef) -> u64 {
    use crate::object::cap::raw_frame;
    let paddr = tcb(t).ipc_buffer_paddr;
    let slot = t + ((SLOT_IPC_BUFFER as u64) << crate::object::cte::SLOT_BITS);
    let [w0, frame] = kmem::read_words::<2>(slot);
    if paddr == 0 || !raw_frame::is_frame(w0) || raw_frame::is_device(w0) {
        return 0;
    }
    let size = raw_frame::bytes(w0);
    if (frame..frame + size).contains(&paddr) {
        paddr
    } else {
        0
    }
}

/// The VSpace root of `t`, if its VSpace slot holds one (raw read: this is on the
/// IPC fastpath).
pub fn vspace_of(t: ThreadRef) -> Option<u64> {
    let words = kmem::read_words::<2>(t + ((SLOT_VSPACE as u64) << crate::object::cte::SLOT_BITS));
    (words[0] & 0xff == crate::object::cap::tag::VSPACE).then_some(words[1])
}

/// Picks the thread to run next and switches to it. Called on every return to user
/// mode. Never returns if nothing can run (see `idle`).
pub fn schedule() {
    loop {
        let (cur, cur_runs, next) = {
            let mut s = sched();
            let cur = s.current;
            let cur_runs = cur != 0 && tcb(cur).thread_state() == ThreadState::Running;
            let next = s.ready.peek_highest();
            // Yield gives way to equal priority; otherwise only a higher one preempts.
            let stay = match next {
                None => cur_runs,
                Some((_, prio)) if s.yielded => cur_runs && tcb(cur).priority as u8 > prio,
                Some((_, prio)) => cur_runs && tcb(cur).priority as u8 >= prio,
            };
            s.yielded = false;
            if stay {
                return;
            }
            (cur, cur_runs, next)
        };
        let Some((next, prio)) = next else {
            idle();
            continue;
        };
        sched().ready.dequeue(&mut SchedLinks, next, prio);
        tcb(next).in_ready_queue = 0;
        if cur_runs {
            enqueue(cur);
        }
        if vspace_of(next).is_none() {
            // Its VSpace was deleted: it cannot run.
            crate::warn!("thread {next:#x} has no VSpace; suspended");
            tcb(next).set_state(ThreadState::Inactive);
            continue;
        }
        switch_to(next);
        return;
    }
}

/// Switches to `next` without consulting the ready queues (the IPC fastpath has made
/// sure `next` is the thread that should run).
pub fn switch_to(next: ThreadRef) {
    let cur = current();
    if cur == next {
        return;
    }
    let n = tcb(next);
    let next_bases = (n.fs_base, n.gs_base);
    if cur != 0 {
        let c = tcb(cur);
        fpu::save(&mut c.fpu);
        fpu::switch_bases(Some((&mut c.fs_base, &mut c.gs_base)), next_bases);
    } else {
        fpu::switch_bases(None, next_bases);
    }
    fpu::restore(&n.fpu);
    trap::set_current_frame(frame_of(next));
    let root = vspace_of(next).expect("checked by schedule and the fastpath");
    // SAFETY: every VSpace root is created by retype (kernel half copied in) or is the
    // root task's, built at boot the same way.
    unsafe { mmu::switch_to_if_changed(root) };
    sched().current = next;
}

/// The IPC fastpath's switch from the running thread `me` to `next`, another thread
/// blocked in a system call, whose VSpace root is `root`.
#[inline(always)]
pub fn switch_ipc(me: ThreadRef, next: ThreadRef, root: u64) {
    let m = tcb(me);
    fpu::save(&mut m.fpu);
    let n = tcb(next);
    fpu::swap_bases_fastpath((&mut m.fs_base, &mut m.gs_base), (n.fs_base, n.gs_base));
    fpu::restore(&n.fpu);
    trap::set_current_frame(frame_of(next));
    // SAFETY: as in `switch_to`: every VSpace root maps the kernel half.
    unsafe { mmu::switch_to_if_changed(root) };
    sched().current = next;
}

/// Nothing can run: halt until an interrupt makes a thread runnable. Without any
/// device line bound to a notification nothing could, so the system is deadlocked:
/// report it and stop rather than hang.
fn idle() {
    let runnable = || {
        let cur = sched().current;
        sched().ready.peek_highest().is_some() || (cur != 0 && tcb(cur).thread_state() == ThreadState::Running)
    };
    while !runnable() {
        // Device lines, MSIs and DMA faults (drained on their interrupt) can wake threads.
        if !crate::thread::irq::any_bound() && !crate::iommu::iospace::any_fault_handler() {
            crate::error!("kernel: every thread is blocked or suspended and no interrupt can wake one; stopping");
            crate::arch::cpu::exit_qemu(abi::exit::ExitCode::Deadlock.raw());
        }
        // Interrupts are taken only here in the kernel; their handlers only queue threads.
        x86_64::instructions::interrupts::enable_and_hlt();
        x86_64::instructions::interrupts::disable();
    }
}
