//! IPC fastpath for short `Call` and `ReplyRecv` messages.
//!
//! IPC fastpath for `Call` and `ReplyRecv` with short messages (at most four registers)
//! and no capabilities, between threads whose CSpace root is a single-level CNode.
//!
//! The syscall entry stub (entry.S) saves only what the caller must get back (stack,
//! instruction pointer, flags and the callee-saved registers), keeps the message in
//! registers and calls in here with the cap pointer and message info. These functions
//! read capabilities and objects as raw words, update the endpoint and both threads and
//! switch to the partner; the stub then loads the message into the partner's argument
//! registers and returns to it. A [`SLOWPATH`] answer makes the stub store the rest of
//! the frame and run the general system call path, which has the same effect, only
//! slower. Nothing is changed before the last check passed.

use abi::rights::CapRights;

use crate::arch::kmem::{self, tcb};
use crate::object::cap::{raw, tag, Cap};
use crate::object::cnode;
use crate::object::cte::{nth_slot, SlotAddr, SlotMemory};
use crate::object::tcb::{ThreadState, IPC_IS_FAULT, SLOT_CSPACE};
use crate::thread::sched::ThreadRef;
use crate::thread::tcb_state::{self, frame_of};

/// Message-info bits that must be small: caps, unwrapped mask (must be 0) and length
/// (at most four, which all travel in registers).
const INFO_CAPS_AND_LENGTH: u64 = 0xfff;
/// Longest message the fastpath carries.
const MAX_FAST_LENGTH: u64 = 4;
/// Endpoint word 1: the state in the low bits (see `object::endpoint`).
const EP_STATE_MASK: u64 = 3;
const EP_SENDING: u64 = 1;
const EP_RECEIVING: u64 = 2;

/// The entry stub's instructions: switch to the thread whose register frame starts at
/// `frame` and deliver `badge`, or (frame 0) take the slowpath.
#[repr(C)]
pub struct FastExit {
    /// Kernel address of the partner's [`crate::arch::trap::TrapFrame`], or 0.
    pub frame: u64,
    /// Badge the partner receives in `rdi`.
    pub badge: u64,
}

/// Take the slowpath.
const SLOWPATH: FastExit = FastExit { frame: 0, badge: 0 };

/// The slot `cptr` names in `me`'s CSpace when that is one CNode resolving all 64 bits
/// (guard + radix = 64), read as raw words; `None` for any other shape.
#[inline(always)]
pub(crate) fn single_level_slot(me: ThreadRef, cptr: u64) -> Option<SlotAddr> {
    let root_slot = nth_slot(me, SLOT_CSPACE as u64);
    let w0 = kmem::read_word(root_slot);
    if raw::tag(w0) != tag::CNODE {
        return None;
    }
    let (radix, guard_bits) = (raw::small(w0) as u32, raw::guard_bits(w0) as u32);
    let guard = kmem::read_word(raw::word_addr(root_slot, raw::WORD_GUARD));
    let slots = kmem::read_word(raw::word_addr(root_slot, raw::WORD_ADDR));
    cnode::single_level_slot(slots, radix, guard_bits, guard, cptr)
}

/// The non-null cap `cptr` names in `me`'s single-level CSpace, with its slot: the
/// lookup the slowpath tries before resolving through a decoded CSpace root. `None`
/// sends the caller to the general lookup (which also reports an empty slot).
pub(crate) fn single_level_cap(me: ThreadRef, cptr: u64) -> Option<(SlotAddr, Cap)> {
    let slot = single_level_slot(me, cptr)?;
    let cap = SlotMemory::load(&kmem::DirectMemory, slot).cap;
    (!cap.is_null()).then_some((slot, cap))
}

/// The endpoint cap `cptr` names in `me`'s single-level CSpace, if it has `right`:
/// (endpoint address, badge, the cap's word 0 for its other rights).
#[inline(always)]
fn lookup_endpoint(me: ThreadRef, cptr: u64, right: CapRights) -> Option<(u64, u64, u64)> {
    let slot = single_level_slot(me, cptr)?;
    let w0 = kmem::read_word(slot);
    if !raw::has_tag_and_rights(w0, tag::ENDPOINT, u64::from(right.raw())) {
        return None;
    }
    Some((
        kmem::read_word(raw::word_addr(slot, raw::WORD_ADDR)),
        kmem::read_word(raw::word_addr(slot, raw::WORD_BADGE)),
        w0,
    ))
}

/// Call on an endpoint with a receiver waiting.
#[unsafe(no_mangle)]
extern "C" fn fastpath_call(cptr: u64, info: u64) -> FastExit {
    if info & INFO_CAPS_AND_LENGTH > MAX_FAST_LENGTH {
        return SLOWPATH;
    }
    let me = tcb_state::current();
    let Some((ep, badge, w0)) = lookup_endpoint(me, cptr, CapRights::WRITE) else { return SLOWPATH };
    let ep_tail = kmem::read_word(ep + 8);
    if ep_tail & EP_STATE_MASK != EP_RECEIVING {
        return SLOWPATH;
    }
    let receiver = kmem::read_word(ep);
    let r = tcb(receiver);
    if !tcb_state::none_ready_above(r.priority) {
        return SLOWPATH;
    }
    let Some(root) = tcb_state::vspace_of(receiver) else { return SLOWPATH };
    // Dequeue the receiver (the head, so its prev link is already 0).
    let next = r.ep_next;
    if next == 0 {
        kmem::write_words(ep, [0, 0]);
    } else {
        kmem::write_words(ep, [next, ep_tail]);
        tcb(next).ep_prev = 0;
    }
    r.ep_next = 0;
    r.set_state(ThreadState::Running);
    r.blocked_on = 0;
    r.reply_to = me;
    let m = tcb(me);
    m.set_state(ThreadState::BlockedOnReply);
    // The other half of the reply link (see `ipc::link_reply`).
    m.blocked_on = receiver;
    // Whether the reply may carry a cap: GRANT on the cap called through (as the slow
    // path records it; a reply with caps always takes the slow path). IPC_CAN_GRANT is
    // the GRANT bit's place in word 0, which sets no other flag (see object::tcb).
    m.ipc_flags = w0;
    tcb_state::switch_ipc(me, receiver, root);
    FastExit { frame: frame_of(receiver) as *mut _ as u64, badge }
}

/// ReplyRecv: reply to a caller blocked in Call and wait on an endpoint nobody is
/// sending to.
#[unsafe(no_mangle)]
extern "C" fn fastpath_reply_recv(cptr: u64, info: u64) -> FastExit {
    if info & INFO_CAPS_AND_LENGTH > MAX_FAST_LENGTH {
        return SLOWPATH;
    }
    let me = tcb_state::current();
    let m = tcb(me);
    let caller = m.reply_to;
    if caller == 0 || m.bound_notification != 0 {
        return SLOWPATH;
    }
    let c = tcb(caller);
    if c.thread_state() != ThreadState::BlockedOnReply
        || c.blocked_on != me
        || c.ipc_flags & IPC_IS_FAULT != 0
        || !tcb_state::none_ready_above(c.priority)
    {
        return SLOWPATH;
    }
    let Some(root) = tcb_state::vspace_of(caller) else { return SLOWPATH };
    let Some((ep, _, _)) = lookup_endpoint(me, cptr, CapRights::READ) else { return SLOWPATH };
    let ep_tail = kmem::read_word(ep + 8);
    if ep_tail & EP_STATE_MASK == EP_SENDING {
        return SLOWPATH;
    }
    // Queue `me` last on the endpoint.
    let tail = ep_tail & !EP_STATE_MASK;
    if tail == 0 {
        kmem::write_words(ep, [me, me | EP_RECEIVING]);
    } else {
        tcb(tail).ep_next = me;
        kmem::write_words(ep + 8, [me | EP_RECEIVING]);
    }
    let m = tcb(me);
    m.ep_prev = tail;
    m.ep_next = 0;
    m.reply_to = 0;
    m.set_state(ThreadState::BlockedOnReceive);
    m.blocked_on = ep;
    c.set_state(ThreadState::Running);
    c.blocked_on = 0;
    tcb_state::switch_ipc(me, caller, root);
    FastExit { frame: frame_of(caller) as *mut _ as u64, badge: 0 }
}
