//! TCB invocations: Configure, registers, Resume/Suspend, priority, binding.
//!
//! Configure, Read/WriteRegisters, Resume, Suspend, SetPriority, SetMCPriority,
//! Bind/UnbindNotification. Decode checks everything first.

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::{MSG_OFFSET, REGISTER_MRS};
use abi::registers::{UserRegisters, USER_REGISTER_COUNT};
use abi::rights::CapRights;

use super::args::{fail, Extra, Message, Reply};
use crate::arch::kmem::{self, tcb, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::object::cap::{Cap, FrameSize};
use crate::object::cnode;
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::endpoint::Notification;
use crate::object::paging::is_canonical;
use crate::object::tcb::{ThreadState, SLOT_CSPACE, SLOT_IPC_BUFFER, SLOT_VSPACE, TCB_SLOTS};
use crate::thread::finalise::KernelObjects;
use crate::thread::sched::ThreadRef;
use crate::thread::tcb_state;

/// RFLAGS bits a user may set: CF, PF, AF, ZF, SF, TF, DF, OF (IF is forced on, IOPL 0).
const USER_RFLAGS: u64 = 0b1100_1101_0101 | (1 << 8);
/// Bits always set in user RFLAGS: IF and the reserved bit 1.
const FORCED_RFLAGS: u64 = (1 << 9) | (1 << 1);
/// Alignment of an IPC buffer.
const IPC_BUFFER_ALIGN: u64 = 1024;

fn tcb_slot(t: ThreadRef, i: usize) -> SlotAddr {
    t + ((i as u64) << SLOT_BITS)
}

/// Handles an invocation of the TCB `target` by thread `me`.
pub fn invoke(msg: &Message<'_>, me: ThreadRef, target: ThreadRef, label: Invocation, extra: Extra<'_>) -> Reply {
    let ok = Ok([0; REGISTER_MRS]);
    match label {
        Invocation::TcbConfigure => {
            let (fault_ep, ipc_vaddr) = (msg.mr(0)?, msg.mr(1)?);
            let (cs_slot, cspace) = extra(0)?;
            let (vs_slot, vspace) = extra(1)?;
            // The IPC buffer frame is optional: without one, messages carry only the
            // four register MRs and no caps.
            let buffer = if msg.info.extra_caps >= 3 { Some(extra(2)?) } else { None };
            if !matches!(cspace, Cap::CNode { .. }) {
                return Err(fail(SyscallError::InvalidCapability, 100));
            }
            if !matches!(vspace, Cap::VSpace { .. }) {
                return Err(fail(SyscallError::InvalidCapability, 101));
            }
            let mut buffer_paddr = 0;
            if let Some((_, buffer)) = buffer {
                let Cap::Frame { paddr: frame, size, is_device, rights, .. } = buffer else {
                    return Err(fail(SyscallError::InvalidCapability, 102));
                };
                if is_device || !rights.contains(CapRights::READ.union(CapRights::WRITE)) {
                    return Err(fail(SyscallError::InvalidCapability, 102));
                }
                if ipc_vaddr % IPC_BUFFER_ALIGN != 0 {
                    return Err(fail(SyscallError::AlignmentError, 1));
                }
                let size_mask = (1u64 << size.bits()) - 1;
                if size == FrameSize::Large && ipc_vaddr & size_mask > size_mask - IPC_BUFFER_ALIGN {
                    return Err(fail(SyscallError::InvalidArgument, 1));
                }
                buffer_paddr = frame + (ipc_vaddr & size_mask);
            }
            if target == me {
                // Replacing one's own CSpace mid-invocation is allowed in seL4 but
                // pointless here; refuse so the caller's lookups stay well defined.
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let mut mem = DirectMemory;
            // As seL4 does: the old caps are deleted before the new ones are copied, so
            // a deletion that would cascade (the last cap to a CNode or TCB, whose slots
            // could hold the very caps copied from, or the caller's own) is refused.
            if (0..TCB_SLOTS).any(|i| cnode::long_running_delete(&mem, tcb_slot(target, i))) {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let cs = cnode::decode_derive(&mem, cs_slot, CapRights::ALL, None).map_err(|e| fail(e, 100))?;
            let vs = cnode::decode_derive(&mem, vs_slot, CapRights::ALL, None).map_err(|e| fail(e, 101))?;
            let buf = match buffer {
                Some((slot, _)) => {
                    Some((slot, cnode::decode_derive(&mem, slot, CapRights::ALL, None).map_err(|e| fail(e, 102))?))
                }
                None => None,
            };
            // Invoke: replace the slots and the plain fields.
            for i in 0..TCB_SLOTS {
                cnode::delete(&mut mem, &mut KernelObjects, tcb_slot(target, i));
            }
            // The deletions finalised nothing with slots, so the sources are as decoded;
            // invoke_copy still links nothing from a slot that changed.
            cnode::invoke_copy(&mut mem, cs_slot, tcb_slot(target, SLOT_CSPACE), cs);
            cnode::invoke_copy(&mut mem, vs_slot, tcb_slot(target, SLOT_VSPACE), vs);
            if let Some((slot, cap)) = buf {
                cnode::invoke_copy(&mut mem, slot, tcb_slot(target, SLOT_IPC_BUFFER), cap);
            }
            let t = tcb(target);
            t.fault_handler = fault_ep;
            t.ipc_buffer = if buffer_paddr != 0 { ipc_vaddr } else { 0 };
            t.ipc_buffer_paddr = buffer_paddr;
            ok
        }
        Invocation::TcbWriteRegisters => {
            if target == me {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let (resume, count) = (msg.mr(0)?, msg.mr(1)?);
            if count as usize > USER_REGISTER_COUNT {
                return Err(fail(SyscallError::RangeError, 1));
            }
            let mut regs = [0u64; USER_REGISTER_COUNT];
            let current = read_registers(target);
            regs.copy_from_slice(&current);
            for (i, r) in regs.iter_mut().enumerate().take(count as usize) {
                *r = msg.mr(2 + i)?;
            }
            let r = UserRegisters::from_array(regs);
            if !is_canonical(r.rip) || r.rip >= abi::layout::USER_END {
                return Err(fail(SyscallError::InvalidArgument, 2));
            }
            if !is_canonical(r.rsp) {
                return Err(fail(SyscallError::InvalidArgument, 3));
            }
            write_registers(target, &r);
            if resume != 0 {
                resume_thread(target);
            }
            ok
        }
        Invocation::TcbReadRegisters => {
            if target == me {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let (suspend, count) = (msg.mr(0)?, msg.mr(1)?);
            if count as usize > USER_REGISTER_COUNT {
                return Err(fail(SyscallError::RangeError, 1));
            }
            if msg.ipc_buffer == 0 {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            if suspend != 0 {
                tcb_state::suspend(target);
            }
            for (i, value) in read_registers(target).iter().enumerate().take(count as usize) {
                kmem::set_ipc_word(msg.ipc_buffer, MSG_OFFSET / 8 + i, *value);
            }
            Ok([count, 0, 0, 0])
        }
        Invocation::TcbResume => {
            resume_thread(target);
            ok
        }
        Invocation::TcbSuspend => {
            tcb_state::suspend(target);
            ok
        }
        Invocation::TcbSetPriority | Invocation::TcbSetMcp => {
            let value = msg.mr(0)?;
            let (_, authority) = extra(0)?;
            let Cap::Tcb { paddr: auth } = authority else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            if value > tcb(auth).mcp {
                return Err(fail(SyscallError::RangeError, 0));
            }
            if label == Invocation::TcbSetPriority {
                tcb_state::set_priority(target, value as u8);
            } else {
                tcb(target).mcp = value;
            }
            ok
        }
        Invocation::TcbBindNotification => {
            let (_, cap) = extra(0)?;
            let Cap::Notification { paddr, rights, .. } = cap else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            if !rights.contains(CapRights::READ) {
                return Err(fail(SyscallError::InvalidCapability, 100));
            }
            let mut n = Notification::from_words(kmem::read_words::<4>(paddr));
            if tcb(target).bound_notification != 0 || n.bound != 0 || !n.queue.is_empty() {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            n.bound = target;
            kmem::write_words(paddr, n.to_words());
            tcb(target).bound_notification = paddr;
            ok
        }
        Invocation::TcbUnbindNotification => {
            let bound = tcb(target).bound_notification;
            if bound == 0 {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let mut n = Notification::from_words(kmem::read_words::<4>(bound));
            n.bound = 0;
            kmem::write_words(bound, n.to_words());
            tcb(target).bound_notification = 0;
            ok
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

fn read_registers(t: ThreadRef) -> [u64; USER_REGISTER_COUNT] {
    let f = TrapFrame::from_words(tcb(t).frame);
    UserRegisters {
        rip: f.rip,
        rsp: f.rsp,
        rflags: f.rflags,
        rax: f.rax,
        rbx: f.rbx,
        rcx: f.rcx,
        rdx: f.rdx,
        rsi: f.rsi,
        rdi: f.rdi,
        rbp: f.rbp,
        r8: f.r8,
        r9: f.r9,
        r10: f.r10,
        r11: f.r11,
        r12: f.r12,
        r13: f.r13,
        r14: f.r14,
        r15: f.r15,
    }
    .to_array()
}

fn write_registers(t: ThreadRef, r: &UserRegisters) {
    let mut f = TrapFrame::new_user(r.rip, r.rsp, r.rdi);
    f.rflags = (r.rflags & USER_RFLAGS) | FORCED_RFLAGS;
    (f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rbp) = (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rbp);
    (f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15) = (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
    tcb(t).frame = f.to_words();
}

/// Resume: an inactive thread with a VSpace and CSpace becomes runnable; a blocked or
/// running thread is left alone.
fn resume_thread(t: ThreadRef) {
    if tcb(t).thread_state() != ThreadState::Inactive {
        return;
    }
    let mem = DirectMemory;
    let configured = matches!(mem.load(tcb_slot(t, SLOT_CSPACE)).cap, Cap::CNode { .. })
        && matches!(mem.load(tcb_slot(t, SLOT_VSPACE)).cap, Cap::VSpace { .. });
    if configured {
        tcb_state::make_runnable(t);
    }
}
