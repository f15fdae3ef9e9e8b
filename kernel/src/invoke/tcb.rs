//! TCB invocations: Configure, registers, Resume/Suspend, priority, binding.
//!
//! Configure, Read/WriteRegisters, Resume, Suspend, SetPriority, SetMCPriority,
//! Bind/UnbindNotification, Set/GetTlsBase, SetGsBase. Decode checks everything first.

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::{MSG_OFFSET, REGISTER_MRS};
use abi::registers::{UserRegisters, USER_REGISTER_COUNT};
use abi::rights::CapRights;

use super::args::{fail, Extra, Failure, Message};
use crate::arch::fpu;
use crate::arch::kmem::{self, tcb, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::{nth_slot, SlotAddr, SlotMemory};
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
const IPC_BUFFER_ALIGN: u64 = abi::ipc_buffer::IPC_BUFFER_BYTES as u64;

fn tcb_slot(t: ThreadRef, i: usize) -> SlotAddr {
    nth_slot(t, i as u64)
}

/// The TCB's slots (CSpace, VSpace, IPC buffer), which Configure replaces.
fn tcb_slots(t: ThreadRef) -> [SlotAddr; TCB_SLOTS] {
    core::array::from_fn(|i| tcb_slot(t, i))
}

/// A checked TCB invocation.
pub enum TcbOp {
    /// Configure: the caps (derived from the ones in their slots) replace the TCB's,
    /// then the fault endpoint and IPC buffer addresses are set.
    Configure {
        cspace: (SlotAddr, Cap),
        vspace: (SlotAddr, Cap),
        buffer: Option<(SlotAddr, Cap)>,
        fault_ep: u64,
        ipc_vaddr: u64,
        buffer_paddr: u64,
    },
    /// WriteRegisters: the whole register set, then Resume if `resume`.
    WriteRegisters { registers: UserRegisters, resume: bool },
    /// ReadRegisters: Suspend first if `suspend`, then `count` registers into the
    /// caller's IPC buffer at `ipc_buffer`.
    ReadRegisters { suspend: bool, count: u64, ipc_buffer: u64 },
    /// Resume.
    Resume,
    /// Suspend.
    Suspend,
    /// SetPriority to `value` (at most the authority's MCP).
    SetPriority { value: u8 },
    /// SetMCPriority to `value` (at most the authority's MCP).
    SetMcp { value: u64 },
    /// BindNotification to the unbound notification at `notification`.
    BindNotification { notification: u64 },
    /// UnbindNotification from the notification at `notification`.
    UnbindNotification { notification: u64 },
    /// SetTlsBase (`gs` false) or SetGsBase (`gs` true) to the canonical `value`; `live`
    /// when the target is the caller, whose register changes at once too.
    SetBase { gs: bool, value: u64, live: bool },
    /// GetTlsBase: the FS and GS bases, from the registers when `live` (the caller).
    GetBases { live: bool },
}

/// Decodes `label` on the TCB `target`, invoked by thread `me`: reads and checks
/// everything, changes nothing.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(
    msg: &Message<'_>,
    me: ThreadRef,
    target: ThreadRef,
    label: Invocation,
    extra: Extra<'_>,
) -> Result<TcbOp, Failure> {
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
                // The buffer's address becomes the thread pointer (FS base), which the
                // CPU takes only canonical (#GP in the kernel otherwise), and is only
                // meaningful in the user half.
                if !is_canonical(ipc_vaddr) || ipc_vaddr >= abi::layout::USER_END {
                    return Err(fail(SyscallError::InvalidArgument, 1));
                }
                let size_mask = (1u64 << size.bits()) - 1;
                // The buffer must lie inside the frame: with the alignment above, the
                // last aligned slot of any frame size still does (the last KiB of a 2 MiB
                // frame was refused by an off-by-one; the attack round noticed).
                if ipc_vaddr & size_mask > size_mask + 1 - IPC_BUFFER_ALIGN {
                    return Err(fail(SyscallError::InvalidArgument, 1));
                }
                buffer_paddr = frame + (ipc_vaddr & size_mask);
            }
            if target == me {
                // Replacing one's own CSpace mid-invocation is allowed in seL4 but
                // pointless here; refuse so the caller's lookups stay well defined.
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let mem = DirectMemory;
            // As seL4 does: the old caps are deleted before the new ones are copied, so
            // a deletion that would cascade (the last cap to a CNode or TCB, whose slots
            // could hold the very caps copied from, or the caller's own) is refused.
            cnode::decode_replace(&mem, &tcb_slots(target)).map_err(|e| fail(e, 0))?;
            let cs = cnode::decode_derive(&mem, cs_slot, CapRights::ALL, None).map_err(|e| fail(e, 100))?;
            let vs = cnode::decode_derive(&mem, vs_slot, CapRights::ALL, None).map_err(|e| fail(e, 101))?;
            let buffer = match buffer {
                Some((slot, _)) => {
                    Some((slot, cnode::decode_derive(&mem, slot, CapRights::ALL, None).map_err(|e| fail(e, 102))?))
                }
                None => None,
            };
            Ok(TcbOp::Configure {
                cspace: (cs_slot, cs),
                vspace: (vs_slot, vs),
                buffer,
                fault_ep,
                ipc_vaddr,
                buffer_paddr,
            })
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
            let registers = UserRegisters::from_array(regs);
            if !is_canonical(registers.rip) || registers.rip >= abi::layout::USER_END {
                return Err(fail(SyscallError::InvalidArgument, 2));
            }
            if !is_canonical(registers.rsp) {
                return Err(fail(SyscallError::InvalidArgument, 3));
            }
            Ok(TcbOp::WriteRegisters { registers, resume: resume != 0 })
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
            Ok(TcbOp::ReadRegisters { suspend: suspend != 0, count, ipc_buffer: msg.ipc_buffer })
        }
        Invocation::TcbResume => Ok(TcbOp::Resume),
        Invocation::TcbSuspend => Ok(TcbOp::Suspend),
        Invocation::TcbSetPriority | Invocation::TcbSetMcp => {
            let value = msg.mr(0)?;
            let (_, authority) = extra(0)?;
            let Cap::Tcb { paddr: auth } = authority else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            if value > tcb(auth).mcp {
                return Err(fail(SyscallError::RangeError, 0));
            }
            Ok(if label == Invocation::TcbSetPriority {
                TcbOp::SetPriority { value: value as u8 }
            } else {
                TcbOp::SetMcp { value }
            })
        }
        Invocation::TcbBindNotification => {
            let (_, cap) = extra(0)?;
            let Cap::Notification { paddr, rights, .. } = cap else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            if !rights.contains(CapRights::READ) {
                return Err(fail(SyscallError::InvalidCapability, 100));
            }
            let n = Notification::from_words(kmem::read_words::<4>(paddr));
            if tcb(target).bound_notification != 0 || n.bound != 0 || !n.queue.is_empty() {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            Ok(TcbOp::BindNotification { notification: paddr })
        }
        Invocation::TcbUnbindNotification => {
            let bound = tcb(target).bound_notification;
            if bound == 0 {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            Ok(TcbOp::UnbindNotification { notification: bound })
        }
        Invocation::TcbSetTlsBase | Invocation::TcbSetGsBase => {
            let value = msg.mr(0)?;
            if !is_canonical(value) {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            Ok(TcbOp::SetBase { gs: label == Invocation::TcbSetGsBase, value, live: target == me })
        }
        Invocation::TcbGetTlsBase => Ok(TcbOp::GetBases { live: target == me }),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded invocation of the TCB `target`.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(target: ThreadRef, op: &TcbOp) -> [u64; REGISTER_MRS] {
    match *op {
        TcbOp::Configure { cspace, vspace, buffer, fault_ep, ipc_vaddr, buffer_paddr } => {
            // The deletions finalise nothing with slots (decode_replace), so the sources
            // are as decoded; invoke_copy still links nothing from a slot that changed.
            let mut copies = [
                (cspace.0, tcb_slot(target, SLOT_CSPACE), cspace.1),
                (vspace.0, tcb_slot(target, SLOT_VSPACE), vspace.1),
                (0, 0, Cap::Null),
            ];
            let count = match buffer {
                Some((slot, cap)) => {
                    copies[2] = (slot, tcb_slot(target, SLOT_IPC_BUFFER), cap);
                    3
                }
                None => 2,
            };
            cnode::invoke_replace(&mut DirectMemory, &mut KernelObjects, &tcb_slots(target), &copies[..count]);
            let t = tcb(target);
            t.fault_handler = fault_ep;
            t.ipc_buffer = if buffer_paddr != 0 { ipc_vaddr } else { 0 };
            t.ipc_buffer_paddr = buffer_paddr;
            // The thread pointer starts at the IPC buffer (libcap's convention), so
            // user mode need not write it (it cannot without FSGSBASE).
            t.fs_base = t.ipc_buffer;
        }
        TcbOp::WriteRegisters { ref registers, resume } => {
            write_registers(target, registers);
            if resume {
                resume_thread(target);
            }
        }
        TcbOp::ReadRegisters { suspend, count, ipc_buffer } => {
            if suspend {
                tcb_state::suspend(target);
            }
            for (i, value) in read_registers(target).iter().enumerate().take(count as usize) {
                kmem::set_ipc_word(ipc_buffer, MSG_OFFSET / 8 + i, *value);
            }
            return [count, 0, 0, 0];
        }
        TcbOp::Resume => resume_thread(target),
        TcbOp::Suspend => tcb_state::suspend(target),
        TcbOp::SetPriority { value } => tcb_state::set_priority(target, value),
        TcbOp::SetMcp { value } => tcb(target).mcp = value,
        TcbOp::BindNotification { notification } => {
            let mut n = Notification::from_words(kmem::read_words::<4>(notification));
            n.bound = target;
            kmem::write_words(notification, n.to_words());
            tcb(target).bound_notification = notification;
        }
        TcbOp::UnbindNotification { notification } => {
            let mut n = Notification::from_words(kmem::read_words::<4>(notification));
            n.bound = 0;
            kmem::write_words(notification, n.to_words());
            tcb(target).bound_notification = 0;
        }
        // The field is what the next switch compares against (without FSGSBASE it is
        // not read back); for the caller the live register changes too.
        TcbOp::SetBase { gs: false, value, live } => {
            tcb(target).fs_base = value;
            if live {
                fpu::write_fs_base(value);
            }
        }
        TcbOp::SetBase { gs: true, value, live } => {
            tcb(target).gs_base = value;
            if live {
                fpu::write_gs_base(value);
            }
        }
        TcbOp::GetBases { live: true } => return [fpu::read_fs_base(), fpu::read_gs_base(), 0, 0],
        TcbOp::GetBases { live: false } => return [tcb(target).fs_base, tcb(target).gs_base, 0, 0],
    }
    [0; REGISTER_MRS]
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
