//! Message passing: endpoints, notifications, transfers and fault messages.
//!
//! Message passing: endpoints (Send, Recv, Call, Reply and their non-blocking forms),
//! notifications (Signal, Wait, Poll, binding), message and capability transfer, and
//! faults delivered as messages to a thread's fault handler.

use abi::error::SyscallError;
use abi::fault::{fault_length, FaultKind};
use abi::ipc_buffer::{CAPS_OFFSET, MSG_OFFSET, REGISTER_MRS};
use abi::msginfo::{MessageInfo, MAX_MESSAGE_LENGTH};
use abi::rights::CapRights;

use crate::arch::kmem::{self, tcb, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::{nth_slot, SlotMemory};
use crate::object::endpoint::{Endpoint, EndpointState, Notification};
use crate::object::tcb::{on_cancel, Cancelled, ThreadState, IPC_CAN_GRANT, IPC_IS_CALL, IPC_IS_FAULT, SLOT_CSPACE};
use crate::thread::sched::ThreadRef;
use crate::thread::tcb_state::{self, current, with_frame, EpLinks};

/// Word index of the receive-slot fields in the IPC buffer.
const RECEIVE_CNODE_WORD: usize = CAPS_OFFSET / 8 + 3;

fn mr_regs(f: &TrapFrame) -> [u64; REGISTER_MRS] {
    [f.rdx, f.r10, f.r8, f.r9]
}

fn set_mr_regs(f: &mut TrapFrame, mrs: [u64; REGISTER_MRS]) {
    [f.rdx, f.r10, f.r8, f.r9] = mrs;
}

/// The CSpace root cap of `t`.
pub fn cspace_of(t: ThreadRef) -> Cap {
    DirectMemory.load(nth_slot(t, SLOT_CSPACE as u64)).cap
}

/// Copies a message from `sender` to `receiver` and sets the receiver's result
/// registers (rax = 0, rdi = badge, rsi = message info, MRs).
fn transfer(sender: ThreadRef, receiver: ThreadRef, info: MessageInfo, badge: u64, grant: bool, fault: bool) {
    let s = tcb(sender);
    let (label, mut length, regs) = if fault {
        let kind = FaultKind::try_from(s.fault[0]).unwrap_or(FaultKind::UserException);
        let len = fault_length(kind);
        (s.fault[0], len, [s.fault[1], s.fault[2], s.fault[3], s.fault[4]])
    } else {
        (info.label, info.length.min(MAX_MESSAGE_LENGTH as u8), with_frame(sender, |f| mr_regs(f)))
    };
    let send_buf = tcb_state::ipc_buffer(sender);
    let recv_buf = tcb_state::ipc_buffer(receiver);
    for i in REGISTER_MRS..usize::from(length) {
        if recv_buf == 0 || (send_buf == 0 && !fault) {
            length = REGISTER_MRS as u8;
            break;
        }
        let word = if fault { tcb(sender).fault[1 + i] } else { kmem::ipc_word(send_buf, MSG_OFFSET / 8 + i) };
        kmem::set_ipc_word(recv_buf, MSG_OFFSET / 8 + i, word);
    }
    let transferred = if grant && !fault && info.extra_caps > 0 { transfer_cap(sender, receiver) } else { 0 };
    let delivered = MessageInfo { label, caps_unwrapped: 0, extra_caps: transferred, length };
    with_frame(receiver, |f| {
        f.rax = 0;
        f.rdi = badge;
        f.rsi = delivered.to_word();
        set_mr_regs(f, regs);
    });
}

/// Moves the sender's first extra cap into the receiver's receive slot, if both are
/// valid. Returns how many caps were transferred (0 or 1).
fn transfer_cap(sender: ThreadRef, receiver: ThreadRef) -> u8 {
    let (send_buf, recv_buf) = (tcb_state::ipc_buffer(sender), tcb_state::ipc_buffer(receiver));
    if send_buf == 0 || recv_buf == 0 {
        return 0;
    }
    let mut mem = DirectMemory;
    let cptr = kmem::ipc_word(send_buf, CAPS_OFFSET / 8);
    let Ok((src, _)) = cnode::lookup_cap(&mem, &cspace_of(sender), cptr) else { return 0 };
    let (cnode_cptr, index, depth) = (
        kmem::ipc_word(recv_buf, RECEIVE_CNODE_WORD),
        kmem::ipc_word(recv_buf, RECEIVE_CNODE_WORD + 1),
        kmem::ipc_word(recv_buf, RECEIVE_CNODE_WORD + 2),
    );
    let Ok((_, root)) = cnode::lookup_cap(&mem, &cspace_of(receiver), cnode_cptr) else { return 0 };
    let Ok(depth) = u32::try_from(depth) else { return 0 };
    let Ok(dest) = cnode::lookup_slot(&mem, &root, index, depth) else { return 0 };
    if cnode::decode_empty(&mem, dest).is_err() {
        return 0;
    }
    match cnode::decode_derive(&mem, src, CapRights::ALL, None) {
        Ok(derived) => {
            cnode::invoke_copy(&mut mem, src, dest, derived);
            1
        }
        Err(_) => 0,
    }
}

fn load_ep(paddr: u64) -> Endpoint {
    Endpoint::from_words(kmem::read_words::<2>(paddr))
}

fn store_ep(paddr: u64, ep: Endpoint) {
    kmem::write_words(paddr, ep.to_words());
}

/// Makes `server` owe `caller` (now blocked on the reply) a reply. The link is kept on
/// both sides (`server.reply_to`, `caller.blocked_on`) so that the server discarding it
/// (receiving again), either thread's teardown or the caller's cancellation cuts it:
/// a Reply never reaches a thread that is waiting for something else, or is gone.
fn link_reply(server: ThreadRef, caller: ThreadRef) {
    drop_reply(server);
    tcb(server).reply_to = caller;
    tcb(caller).blocked_on = server;
}

/// A TCB is being destroyed (after `tcb_state::suspend`, which cut the link of a reply it
/// waits for): the reply it owes and its notification binding are dropped, so nothing
/// keeps its address once the memory is reused.
pub fn forget_thread(t: ThreadRef) {
    drop_reply(t);
    let bound = core::mem::take(&mut tcb(t).bound_notification);
    if bound != 0 {
        let mut n = Notification::from_words(kmem::read_words::<4>(bound));
        if n.bound == t {
            n.bound = 0;
            kmem::write_words(bound, n.to_words());
        }
    }
}

/// `server` no longer owes a reply (its caller stays blocked, as in seL4 when the reply
/// cap is dropped).
pub fn drop_reply(server: ThreadRef) {
    let caller = core::mem::take(&mut tcb(server).reply_to);
    if caller != 0 && tcb(caller).blocked_on == server {
        tcb(caller).blocked_on = 0;
    }
}

/// Send on an endpoint by the current thread (`is_call`: wait for the reply).
pub fn send(ep_paddr: u64, badge: u64, rights: CapRights, info: MessageInfo, blocking: bool, is_call: bool) {
    let me = current();
    let grant = rights.contains(CapRights::GRANT);
    let mut ep = load_ep(ep_paddr);
    if ep.state == EndpointState::Receiving {
        let receiver = ep.queue.pop_front(&mut EpLinks).expect("receiving endpoint has a waiter");
        store_ep(ep_paddr, ep);
        transfer(me, receiver, info, badge, grant, false);
        tcb(receiver).blocked_on = 0;
        tcb_state::make_runnable(receiver);
        if is_call {
            // A flag left from an earlier, cancelled fault IPC must not turn this call's
            // reply into a fault reply (which carries no message). GRANT on the caller's
            // cap is recorded: only then may the reply carry a cap (see `reply`).
            tcb(me).ipc_flags = IPC_IS_CALL | if grant { IPC_CAN_GRANT } else { 0 };
            link_reply(receiver, me);
            tcb(me).set_state(ThreadState::BlockedOnReply);
        } else {
            with_frame(me, |f| f.rax = 0);
        }
        return;
    }
    if !blocking {
        with_frame(me, |f| f.rax = 0);
        return;
    }
    let t = tcb(me);
    t.ipc_badge = badge;
    t.ipc_info = info.to_word();
    t.ipc_flags = if is_call { IPC_IS_CALL } else { 0 } | if grant { IPC_CAN_GRANT } else { 0 };
    ep.state = EndpointState::Sending;
    tcb_state::block_current_in(&mut ep.queue, ep_paddr, ThreadState::BlockedOnSend);
    store_ep(ep_paddr, ep);
}

/// Receive on an endpoint by the current thread. A bound notification that is already
/// signalled is delivered first.
pub fn recv(ep_paddr: u64, blocking: bool) {
    let me = current();
    drop_reply(me);
    let bound = tcb(me).bound_notification;
    if bound != 0 {
        let mut n = Notification::from_words(kmem::read_words::<4>(bound));
        if n.word != 0 {
            let word = n.word;
            n.word = 0;
            kmem::write_words(bound, n.to_words());
            with_frame(me, |f| {
                f.rax = 0;
                f.rdi = word;
                f.rsi = MessageInfo::new(0, 0).to_word();
            });
            return;
        }
    }
    let mut ep = load_ep(ep_paddr);
    if ep.state == EndpointState::Sending {
        let sender = ep.queue.pop_front(&mut EpLinks).expect("sending endpoint has a waiter");
        store_ep(ep_paddr, ep);
        let s = tcb(sender);
        let (badge, flags) = (s.ipc_badge, s.ipc_flags);
        let info = MessageInfo::from_word(s.ipc_info).unwrap_or(MessageInfo::new(0, 0));
        transfer(sender, me, info, badge, flags & IPC_CAN_GRANT != 0, flags & IPC_IS_FAULT != 0);
        tcb(sender).blocked_on = 0;
        if flags & (IPC_IS_CALL | IPC_IS_FAULT) != 0 {
            link_reply(me, sender);
            tcb(sender).set_state(ThreadState::BlockedOnReply);
        } else {
            with_frame(sender, |f| f.rax = 0);
            tcb_state::make_runnable(sender);
        }
        return;
    }
    if !blocking {
        with_frame(me, |f| {
            f.rax = 0;
            f.rdi = 0;
            f.rsi = MessageInfo::new(0, 0).to_word();
        });
        return;
    }
    ep.state = EndpointState::Receiving;
    tcb_state::block_current_in(&mut ep.queue, ep_paddr, ThreadState::BlockedOnReceive);
    store_ep(ep_paddr, ep);
}

/// Reply to the thread that called (or faulted to) the current thread. A faulted
/// thread resumes where it faulted; a caller gets the message and, if its Call was made
/// with a GRANT cap (recorded at Call time, `IPC_CAN_GRANT`) and it named an empty
/// receive slot, the replier's first extra cap: a caller that did not opt in never
/// gets a cap pushed into its CSpace, and an occupied slot is never overwritten.
pub fn reply(info: MessageInfo) {
    let me = current();
    let caller = core::mem::take(&mut tcb(me).reply_to);
    if caller == 0 || tcb(caller).thread_state() != ThreadState::BlockedOnReply || tcb(caller).blocked_on != me {
        return;
    }
    tcb(caller).blocked_on = 0;
    let flags = tcb(caller).ipc_flags;
    if flags & IPC_IS_FAULT == 0 {
        transfer(me, caller, info, 0, flags & IPC_CAN_GRANT != 0, false);
    }
    tcb(caller).ipc_flags = 0;
    tcb_state::make_runnable(caller);
}

/// Signal: OR the badge into the word, or wake one waiter with it.
pub fn signal(ntfn_paddr: u64, badge: u64) {
    let mut n = Notification::from_words(kmem::read_words::<4>(ntfn_paddr));
    if let Some(waiter) = n.queue.pop_front(&mut EpLinks) {
        kmem::write_words(ntfn_paddr, n.to_words());
        with_frame(waiter, |f| {
            f.rax = 0;
            f.rdi = badge;
        });
        tcb_state::make_runnable(waiter);
        return;
    }
    // A bound thread blocked in Recv on an endpoint is woken with the badge.
    let bound = n.bound;
    if bound != 0 && tcb(bound).thread_state() == ThreadState::BlockedOnReceive {
        tcb_state::cancel_ipc(bound);
        with_frame(bound, |f| {
            f.rax = 0;
            f.rdi = badge;
            f.rsi = MessageInfo::new(0, 0).to_word();
        });
        tcb_state::make_runnable(bound);
        return;
    }
    n.word |= badge;
    kmem::write_words(ntfn_paddr, n.to_words());
}

/// Wait (blocking) or Poll on a notification: collects and clears the word.
pub fn wait(ntfn_paddr: u64, blocking: bool) {
    let me = current();
    let mut n = Notification::from_words(kmem::read_words::<4>(ntfn_paddr));
    if n.word != 0 || !blocking {
        let word = core::mem::take(&mut n.word);
        kmem::write_words(ntfn_paddr, n.to_words());
        with_frame(me, |f| {
            f.rax = 0;
            f.rdi = word;
        });
        return;
    }
    tcb_state::block_current_in(&mut n.queue, ntfn_paddr, ThreadState::BlockedOnNotification);
    kmem::write_words(ntfn_paddr, n.to_words());
}

/// `t` was taken off an endpoint or notification queue without its IPC happening. A
/// thread in a system call returns `error` in rax. A thread blocked sending a fault
/// message never ran a call that could return an error: as seL4 does, it is restarted
/// (registers untouched) so it faults again, finding its handler or, with the handler
/// gone, being suspended as unhandled. An unknown system call is faulted on again by
/// re-executing its `syscall`; the other faults recorded the instruction to re-run.
/// The decision is `object::tcb::on_cancel` (host-tested).
fn wake_cancelled(t: ThreadRef, error: SyscallError) {
    let tt = tcb(t);
    let action = on_cancel(tt.thread_state(), tt.ipc_flags, tt.fault[0]);
    tt.blocked_on = 0;
    match action {
        Cancelled::Restart { rewind_syscall } => {
            tt.ipc_flags = 0;
            if rewind_syscall {
                with_frame(t, |f| f.rip -= crate::thread::syscall::SYSCALL_INSTRUCTION_LEN);
            }
        }
        Cancelled::Error => with_frame(t, |f| f.rax = error.raw()),
    }
    tcb_state::make_runnable(t);
}

/// Aborts every send blocked on `ep_paddr` with `badge`: senders in a system call
/// return `IllegalOperation` (seL4 restarts them; here they fail visibly instead);
/// senders of a fault message are restarted and fault again (see [`wake_cancelled`]).
pub fn cancel_badged_sends(ep_paddr: u64, badge: u64) -> u64 {
    let mut ep = load_ep(ep_paddr);
    if ep.state != EndpointState::Sending {
        return 0;
    }
    let mut cancelled = 0;
    let mut t = ep.queue.head;
    while t != 0 {
        let next = tcb(t).ep_next;
        if tcb(t).ipc_badge == badge {
            ep.queue.remove(&mut EpLinks, t);
            wake_cancelled(t, SyscallError::IllegalOperation);
            cancelled += 1;
        }
        t = next;
    }
    store_ep(ep_paddr, ep);
    cancelled
}

/// Wakes every thread queued on a deleted endpoint or notification with an error (a
/// fault sender is restarted instead, see [`wake_cancelled`]).
pub fn abort_queue(object: u64, words: usize) {
    let queue =
        if words == 2 { load_ep(object).queue } else { Notification::from_words(kmem::read_words::<4>(object)).queue };
    let mut q = queue;
    while let Some(t) = q.pop_front(&mut EpLinks) {
        wake_cancelled(t, SyscallError::InvalidCapability);
    }
    if words == 2 {
        store_ep(object, Endpoint { queue: q, state: EndpointState::Idle });
    } else {
        let mut n = Notification::from_words(kmem::read_words::<4>(object));
        n.queue = q;
        if n.bound != 0 {
            tcb(n.bound).bound_notification = 0;
            n.bound = 0;
        }
        kmem::write_words(object, n.to_words());
    }
}

/// Sends a fault message for thread `t` to its fault handler, blocking `t` until the
/// handler replies. Returns false if `t` has no usable fault handler.
pub fn deliver_fault(t: ThreadRef, kind: FaultKind, mrs: [u64; 5]) -> bool {
    let handler = tcb(t).fault_handler;
    if handler == 0 {
        return false;
    }
    let Ok((_, cap)) = cnode::lookup_cap(&DirectMemory, &cspace_of(t), handler) else { return false };
    let Cap::Endpoint { paddr, badge, rights } = cap else { return false };
    if !rights.contains(CapRights::WRITE) {
        return false;
    }
    let tt = tcb(t);
    tt.fault = [kind.raw(), mrs[0], mrs[1], mrs[2], mrs[3], mrs[4]];
    let mut ep = load_ep(paddr);
    if ep.state == EndpointState::Receiving {
        let receiver = ep.queue.pop_front(&mut EpLinks).expect("receiving endpoint has a waiter");
        store_ep(paddr, ep);
        transfer(t, receiver, MessageInfo::new(kind.raw(), fault_length(kind)), badge, false, true);
        link_reply(receiver, t);
        tcb(t).ipc_flags = IPC_IS_FAULT;
        tcb(t).set_state(ThreadState::BlockedOnReply);
        tcb_state::make_runnable(receiver);
    } else {
        let tt = tcb(t);
        tt.ipc_badge = badge;
        tt.ipc_flags = IPC_IS_FAULT;
        tt.ipc_info = MessageInfo::new(kind.raw(), fault_length(kind)).to_word();
        ep.state = EndpointState::Sending;
        tt.set_state(ThreadState::BlockedOnSend);
        tt.blocked_on = paddr;
        ep.queue.push_back(&mut EpLinks, t);
        store_ep(paddr, ep);
    }
    true
}

/// A message from the kernel itself (a DMA fault report) to a thread waiting on
/// `ep_paddr`. The kernel never blocks: with nobody waiting the message is dropped and
/// false returned (the fault is still in the log).
pub fn kernel_message(ep_paddr: u64, badge: u64, label: u64, mrs: [u64; 4]) -> bool {
    let mut ep = load_ep(ep_paddr);
    if ep.state != EndpointState::Receiving {
        return false;
    }
    let Some(receiver) = ep.queue.pop_front(&mut EpLinks) else { return false };
    store_ep(ep_paddr, ep);
    with_frame(receiver, |f| {
        f.rax = 0;
        f.rdi = badge;
        f.rsi = MessageInfo::new(label, 4).to_word();
        set_mr_regs(f, mrs);
    });
    drop_reply(receiver);
    tcb_state::make_runnable(receiver);
    true
}
