//! The IPC fastpath's conditions, and the single-level CSpace lookup it shares.
//!
//! `Call` and `ReplyRecv` with short messages (at most four registers) and no
//! capabilities, between threads whose CSpace root is a single-level CNode, run in
//! assembly from `syscall` to `iretq` (`arch/x86_64/fastpath.S`, assembled below with
//! every offset and constant it uses taken from the Rust definition it mirrors: no
//! Rust call, so no argument shuffles and no prologue; docs/fastpath.md). So does a
//! `Yield` that changes nothing (no ready thread at or above the caller's priority). The entry saves only what the caller must get back
//! (stack, instruction pointer, flags and the callee-saved registers) and keeps the
//! message in registers. A Call takes it when the cap is an endpoint cap with Write,
//! a receiver waits on the endpoint, no ready thread outranks the receiver and the
//! receiver has a VSpace: the receiver leaves the queue, runs and owes the caller a
//! reply (the caller's `ipc_flags` = the cap's word 0: Grant decides whether the reply
//! may carry a cap). A ReplyRecv takes it when the thread owes a reply to a caller
//! blocked on it through a Call (not a fault), has no bound notification, no ready
//! thread outranks the caller, the caller has a VSpace, and the cap is an endpoint cap
//! with Read nobody is sending on: the thread queues last on the endpoint and the caller
//! runs. Anything else completes the frame and takes the general path, which has the
//! same effect, only slower; nothing is changed before the last check passed.

use crate::arch::kmem;
use crate::object::cap::{raw, tag, Cap};
use crate::object::cnode;
use crate::object::cte::{nth_slot, SlotAddr, SlotMemory};
use crate::object::endpoint::EndpointState;
use crate::object::tcb::SLOT_CSPACE;
use crate::thread::sched::ThreadRef;

/// Message-info bits that must be small: caps, unwrapped mask (must be 0) and length
/// (at most four, which all travel in registers).
pub(crate) const INFO_CAPS_AND_LENGTH: u64 = 0xfff;
/// Longest message the fastpath carries.
pub(crate) const MAX_FAST_LENGTH: u64 = 4;
/// Endpoint word 1: the state in the low bits (see `object::endpoint`).
pub(crate) const EP_STATE_MASK: u64 = 3;
/// Endpoint state: senders wait.
pub(crate) const EP_SENDING: u64 = EndpointState::Sending as u64;
/// Endpoint state: receivers wait.
pub(crate) const EP_RECEIVING: u64 = EndpointState::Receiving as u64;

/// The slot `cptr` names in `me`'s CSpace when that is one CNode resolving all 64 bits
/// (guard + radix = 64), read as raw words; `None` for any other shape.
#[inline(always)]
pub(crate) fn single_level_slot(me: ThreadRef, cptr: u64) -> Option<SlotAddr> {
    flat_cspace(me)?.slot(cptr)
}

/// `me`'s CSpace root when it is one CNode resolving all 64 bits, read as raw words
/// and prepared for lookups (the IO short paths look up several caps with one).
#[inline(always)]
pub(crate) fn flat_cspace(me: ThreadRef) -> Option<cnode::FlatCSpace> {
    let root_slot = nth_slot(me, SLOT_CSPACE as u64);
    let w0 = kmem::read_word(root_slot);
    if raw::tag(w0) != tag::CNODE {
        return None;
    }
    let (radix, guard_bits) = (raw::small(w0) as u32, raw::guard_bits(w0) as u32);
    let guard = kmem::read_word(raw::word_addr(root_slot, raw::WORD_GUARD));
    let slots = kmem::read_word(raw::word_addr(root_slot, raw::WORD_ADDR));
    cnode::FlatCSpace::new(slots, radix, guard_bits, guard)
}

/// The non-null cap `cptr` names in `me`'s single-level CSpace, with its slot: the
/// lookup the slowpath tries before resolving through a decoded CSpace root. `None`
/// sends the caller to the general lookup (which also reports an empty slot).
pub(crate) fn single_level_cap(me: ThreadRef, cptr: u64) -> Option<(SlotAddr, Cap)> {
    let slot = single_level_slot(me, cptr)?;
    let cap = SlotMemory::load(&kmem::DirectMemory, slot).cap;
    (!cap.is_null()).then_some((slot, cap))
}

#[cfg(target_os = "none")]
mod assembly {
    use core::mem::{offset_of, size_of};

    use x86_64::structures::tss::TaskStateSegment;

    use super::*;
    use crate::arch::trap::TrapFrame;
    use crate::object::cte::SLOT_BITS;
    use crate::object::tcb::{Tcb, ThreadState, IPC_IS_FAULT, SLOT_VSPACE};
    use crate::thread::tcb_state;

    // entry.S (CPU exception stubs, the `syscall` entry, the return to user mode) and
    // the fastpath, assembled together from one list of operands.
    core::arch::global_asm!(
        concat!(include_str!("../arch/x86_64/entry.S"), include_str!("../arch/x86_64/fastpath.S")),
        sched = sym tcb_state::SCHED,
        active_root = sym crate::arch::mmu::ACTIVE_ROOT,
        tss_ptr = sym crate::arch::gdt::TSS_PTR,
        SCHED_CURRENT = const tcb_state::SCHED_CURRENT_OFFSET,
        SCHED_SUMMARY = const tcb_state::SCHED_SUMMARY_OFFSET,
        SCHED_BITMAP = const tcb_state::SCHED_BITMAP_OFFSET,
        TSS_RSP0 = const offset_of!(TaskStateSegment, privilege_stack_table),
        PHYS_MAP_BASE = const crate::arch::PHYS_MAP_BASE,
        INFO_CAPS_AND_LENGTH = const INFO_CAPS_AND_LENGTH,
        MAX_FAST_LENGTH = const MAX_FAST_LENGTH,
        EP_STATE_MASK = const EP_STATE_MASK,
        EP_SENDING = const EP_SENDING,
        EP_RECEIVING = const EP_RECEIVING,
        CSPACE_SLOT = const SLOT_CSPACE << SLOT_BITS,
        VSPACE_SLOT = const SLOT_VSPACE << SLOT_BITS,
        SLOT_BITS = const SLOT_BITS,
        TAG_CNODE = const tag::CNODE,
        TAG_ENDPOINT = const tag::ENDPOINT,
        TAG_FRAME = const tag::FRAME,
        TAG_VSPACE = const tag::VSPACE,
        TAG_MASK = const raw::TAG_MASK,
        RIGHTS_SHIFT = const raw::RIGHTS_SHIFT,
        RIGHT_READ = const abi::rights::CapRights::READ.raw(),
        RIGHT_WRITE = const abi::rights::CapRights::WRITE.raw(),
        SMALL_SHIFT = const raw::SMALL_SHIFT,
        GUARD_BITS_SHIFT = const raw::GUARD_BITS_SHIFT,
        FIELD_MASK = const raw::FIELD_MASK,
        WORD_ADDR = const raw::WORD_ADDR,
        WORD_GUARD = const raw::WORD_GUARD,
        WORD_BADGE = const raw::WORD_BADGE,
        TCB_STATE = const offset_of!(Tcb, state),
        TCB_PRIORITY = const offset_of!(Tcb, priority),
        TCB_EP_PREV = const offset_of!(Tcb, ep_prev),
        TCB_EP_NEXT = const offset_of!(Tcb, ep_next),
        TCB_BLOCKED_ON = const offset_of!(Tcb, blocked_on),
        TCB_IPC_FLAGS = const offset_of!(Tcb, ipc_flags),
        TCB_REPLY_TO = const offset_of!(Tcb, reply_to),
        TCB_BOUND_NTFN = const offset_of!(Tcb, bound_notification),
        TCB_FPU = const offset_of!(Tcb, fpu),
        TCB_FS_BASE = const offset_of!(Tcb, fs_base),
        TCB_GS_BASE = const offset_of!(Tcb, gs_base),
        TCB_FRAME = const offset_of!(Tcb, frame),
        IPC_IS_FAULT_BIT = const IPC_IS_FAULT.trailing_zeros(),
        STATE_RUNNING = const ThreadState::Running as u64,
        STATE_BLOCKED_ON_RECEIVE = const ThreadState::BlockedOnReceive as u64,
        STATE_BLOCKED_ON_REPLY = const ThreadState::BlockedOnReply as u64,
        SYSCALL_VECTOR = const crate::arch::trap::SYSCALL_VECTOR,
        FRAME_SIZE = const size_of::<TrapFrame>(),
        FRAME_CS = const offset_of!(TrapFrame, cs),
        FRAME_RFLAGS = const offset_of!(TrapFrame, rflags),
        FRAME_RSP = const offset_of!(TrapFrame, rsp),
        FRAME_VECTOR = const offset_of!(TrapFrame, vector),
        FRAME_RIP = const offset_of!(TrapFrame, rip),
        FRAME_RAX = const offset_of!(TrapFrame, rax),
        FRAME_RBX = const offset_of!(TrapFrame, rbx),
        FRAME_RBP = const offset_of!(TrapFrame, rbp),
        FRAME_R12 = const offset_of!(TrapFrame, r12),
        FRAME_R13 = const offset_of!(TrapFrame, r13),
        FRAME_R14 = const offset_of!(TrapFrame, r14),
        FRAME_R15 = const offset_of!(TrapFrame, r15),
        FRAME_RDI = const offset_of!(TrapFrame, rdi),
        FRAME_RSI = const offset_of!(TrapFrame, rsi),
        FRAME_RDX = const offset_of!(TrapFrame, rdx),
        FRAME_R10 = const offset_of!(TrapFrame, r10),
        FRAME_R8 = const offset_of!(TrapFrame, r8),
        FRAME_R9 = const offset_of!(TrapFrame, r9),
        SYS_CALL = const abi::syscall::Syscall::Call.raw(),
        SYS_REPLY_RECV = const abi::syscall::Syscall::ReplyRecv.raw(),
        SYS_YIELD = const abi::syscall::Syscall::Yield.raw(),
    );

    // The assembly's assumptions about the layouts it reads.
    static_assertions::const_assert_eq!(size_of::<u64>(), 8);
    // The priority is read as its low byte (`prio as u8`, as `none_ready_above` does).
    static_assertions::const_assert!(crate::thread::sched::PRIORITIES == 256);
    // The TSS's rsp0 is one 8-byte word.
    static_assertions::const_assert_eq!(size_of::<x86_64::VirtAddr>(), 8);
    // The radix and guard-bit fields are whole bytes of word 0 (read with byte loads).
    static_assertions::const_assert!(raw::FIELD_MASK == 0xff);
    static_assertions::const_assert!(raw::SMALL_SHIFT.is_multiple_of(8) && raw::GUARD_BITS_SHIFT.is_multiple_of(8));
    // The tag is word 0's low byte (compared as a byte).
    static_assertions::const_assert!(raw::TAG_MASK == 0xff);
    // Tags and rights masks fit the 32-bit compares of word 0.
    static_assertions::const_assert!(((abi::rights::CapRights::ALL.raw() as u64) << raw::RIGHTS_SHIFT) < 1 << 31);
}
