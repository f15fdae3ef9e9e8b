//! IPC fastpath for `Call` and `ReplyRecv` with short messages (at most four registers)
//! and no capabilities, between threads whose CSpace root is a single-level CNode.
//! It reads capabilities and objects as raw words, hands the message over in
//! registers and switches straight to the partner. Anything unusual goes to the
//! slowpath, which has the same effect, only slower.

use abi::rights::CapRights;

use crate::arch::kmem::{self, tcb};
use crate::arch::trap::TrapFrame;
use crate::object::cap::tag;
use crate::object::cte::SLOT_BITS;
use crate::object::endpoint::{Endpoint, EndpointState};
use crate::object::tcb::{ThreadState, IPC_IS_FAULT, SLOT_CSPACE};
use crate::sched::ThreadRef;
use crate::thread::{self, frame_of, EpLinks};

/// Message-info bits that must be zero: extra caps and unwrapped-cap mask.
const INFO_CAPS_MASK: u64 = 0x1f << 7;
/// Message-info length field.
const INFO_LENGTH_MASK: u64 = 0x7f;

/// An endpoint cap found by the fast lookup: (object, badge, rights).
fn lookup_endpoint(me: ThreadRef, cptr: u64) -> Option<(u64, u64, CapRights)> {
    let root_slot = me + ((SLOT_CSPACE as u64) << SLOT_BITS);
    let w0 = kmem::read_word(root_slot);
    if w0 & 0xff != tag::CNODE {
        return None;
    }
    let radix = (w0 >> 24) & 0xff;
    let guard_bits = (w0 >> 32) & 0xff;
    if radix + guard_bits != 64 || radix == 0 || radix >= 64 || cptr >> radix != kmem::read_word(root_slot + 16) {
        return None;
    }
    let slot = kmem::read_word(root_slot + 8) + ((cptr & ((1 << radix) - 1)) << SLOT_BITS);
    let c0 = kmem::read_word(slot);
    if c0 & 0xff != tag::ENDPOINT {
        return None;
    }
    Some((kmem::read_word(slot + 8), kmem::read_word(slot + 16), CapRights::from_raw((c0 >> 8) & 0xff)?))
}

fn deliver(from: &TrapFrame, to: ThreadRef, badge: u64, info: u64) {
    let f = frame_of(to);
    f.rax = 0;
    f.rdi = badge;
    f.rsi = info;
    (f.rdx, f.r10, f.r8, f.r9) = (from.rdx, from.r10, from.r8, from.r9);
}

/// Call on an endpoint with a receiver waiting. Returns false to take the slowpath.
pub fn call(frame: &mut TrapFrame) -> bool {
    let info = frame.rsi;
    if info & INFO_CAPS_MASK != 0 || info & INFO_LENGTH_MASK > 4 {
        return false;
    }
    let me = thread::current();
    let Some((ep_paddr, badge, rights)) = lookup_endpoint(me, frame.rdi) else { return false };
    if !rights.contains(CapRights::WRITE) {
        return false;
    }
    let mut ep = Endpoint::from_words(kmem::read_words::<2>(ep_paddr));
    if ep.state != EndpointState::Receiving {
        return false;
    }
    let receiver = ep.queue.head;
    let r = tcb(receiver);
    if i32::from(r.priority as u8) < thread::highest_ready()
        || r.priority < tcb(me).priority
        || thread::vspace_of(receiver).is_none()
    {
        return false;
    }
    ep.queue.pop_front(&mut EpLinks);
    kmem::write_words(ep_paddr, ep.to_words());
    deliver(frame, receiver, badge, info);
    let r = tcb(receiver);
    r.set_state(ThreadState::Running);
    r.blocked_on = 0;
    r.reply_to = me;
    let m = tcb(me);
    m.set_state(ThreadState::BlockedOnReply);
    m.ipc_flags = 0;
    thread::switch_to(receiver);
    true
}

/// ReplyRecv: reply to a caller blocked in Call and wait on an endpoint nobody is
/// sending to. Returns false to take the slowpath.
pub fn reply_recv(frame: &mut TrapFrame) -> bool {
    let info = frame.rsi;
    if info & INFO_CAPS_MASK != 0 || info & INFO_LENGTH_MASK > 4 {
        return false;
    }
    let me = thread::current();
    let m = tcb(me);
    let caller = m.reply_to;
    if caller == 0 || m.bound_notification != 0 {
        return false;
    }
    let c = tcb(caller);
    if c.thread_state() != ThreadState::BlockedOnReply
        || c.ipc_flags & IPC_IS_FAULT != 0
        || i32::from(c.priority as u8) < thread::highest_ready()
        || thread::vspace_of(caller).is_none()
    {
        return false;
    }
    let Some((ep_paddr, _, rights)) = lookup_endpoint(me, frame.rdi) else { return false };
    if !rights.contains(CapRights::READ) {
        return false;
    }
    let mut ep = Endpoint::from_words(kmem::read_words::<2>(ep_paddr));
    if ep.state == EndpointState::Sending {
        return false;
    }
    deliver(frame, caller, 0, info);
    tcb(caller).set_state(ThreadState::Running);
    let m = tcb(me);
    m.reply_to = 0;
    m.set_state(ThreadState::BlockedOnReceive);
    m.blocked_on = ep_paddr;
    ep.queue.push_back(&mut EpLinks, me);
    ep.state = EndpointState::Receiving;
    kmem::write_words(ep_paddr, ep.to_words());
    thread::switch_to(caller);
    true
}
