//! System call and user-exception entry points.
//!
//! System call and user-exception entry points. Arguments arrive in the trap frame (see
//! `abi::syscall`); results go back in it. IPC system calls go to `ipc`, `Call` on a
//! kernel object to `invoke`; afterwards the scheduler picks who returns to user mode.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::fault::FaultKind;
use abi::msginfo::MessageInfo;
use abi::rights::CapRights;
use abi::syscall::Syscall;

use crate::arch::kmem::{tcb, DirectMemory};
use crate::arch::trap::{self, TrapFrame};
use crate::invoke::args::Outcome;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::thread::ipc;
use crate::thread::tcb_state::{self, current};

/// Length of the `syscall` instruction (0f 05), for restarting a preempted call.
pub(crate) const SYSCALL_INSTRUCTION_LEN: u64 = 2;

/// Handles one system call from the current thread, then schedules. (`Call` and
/// `ReplyRecv` come here after the fastpath in entry.S declined them.)
#[inline(never)]
pub fn handle(frame: &mut TrapFrame) {
    // MapIO / UnmapIO of a small frame wake nobody: the caller runs on.
    if frame.rax == Syscall::Call as u64 && crate::invoke::iospace::fast_frame_call(frame) {
        return;
    }
    dispatch(frame);
    tcb_state::schedule();
}

/// As [`handle`] for a `Call` whose cap the entry's single-level lookup found to be a
/// Frame, in `slot`: MapIO / UnmapIO take their short way from that slot.
pub fn handle_frame_call(frame: &mut TrapFrame, slot: crate::object::cte::SlotAddr) {
    if crate::invoke::iospace::fast_frame_call_at(frame, slot) {
        return;
    }
    dispatch(frame);
    tcb_state::schedule();
}

fn set_result(frame: &mut TrapFrame, result: Result<(), SyscallError>) {
    frame.rax = match result {
        Ok(()) => 0,
        Err(e) => e.raw(),
    };
}

fn dispatch(frame: &mut TrapFrame) {
    let number = frame.rax;
    let Ok(syscall) = Syscall::try_from(number) else {
        let me = current();
        let mrs = [frame.rip, frame.rsp, frame.rflags, number, 0];
        if !ipc::deliver_fault(me, FaultKind::UnknownSyscall, mrs) {
            set_result(frame, Err(SyscallError::UnknownSyscall));
        }
        return;
    };
    match syscall {
        Syscall::Yield => {
            tcb_state::yield_current();
            set_result(frame, Ok(()));
        }
        Syscall::Reply => {
            let info = MessageInfo::from_word(frame.rsi).unwrap_or(MessageInfo::new(0, 0));
            ipc::reply(info);
            set_result(frame, Ok(()));
        }
        Syscall::Send | Syscall::NbSend | Syscall::Call => send_like(frame, syscall),
        Syscall::Recv | Syscall::NbRecv => recv_like(frame, syscall == Syscall::Recv),
        Syscall::ReplyRecv => {
            let info = MessageInfo::from_word(frame.rsi).unwrap_or(MessageInfo::new(0, 0));
            ipc::reply(info);
            recv_like(frame, true);
        }
    }
}

/// Looks up the cap an IPC system call names; a failure becomes a cap fault for a
/// thread with a fault handler, or an error code otherwise.
/// Returns (slot, cap).
fn lookup_ipc_cap(frame: &mut TrapFrame) -> Option<(u64, Cap)> {
    let me = current();
    // A single-level CSpace (the common case) needs no decoded root and no resolve.
    if let Some(found) = crate::thread::fastpath::single_level_cap(me, frame.rdi) {
        return Some(found);
    }
    match cnode::lookup_cap(&DirectMemory, &ipc::cspace_of(me), frame.rdi) {
        Ok(found) => Some(found),
        Err(e) => {
            let mrs = [frame.rip, frame.rdi, SyscallError::from(e).raw(), 0, 0];
            if ipc::deliver_fault(me, FaultKind::CapFault, mrs) {
                // As in seL4, the system call runs again once the handler replies (it
                // may have put a cap in the slot).
                frame.rip -= SYSCALL_INSTRUCTION_LEN;
            } else {
                frame.rax = SyscallError::FailedLookup.raw();
            }
            None
        }
    }
}

fn send_like(frame: &mut TrapFrame, syscall: Syscall) {
    let Some((slot, cap)) = lookup_ipc_cap(frame) else { return };
    let Some(info) = MessageInfo::from_word(frame.rsi) else {
        frame.rax = SyscallError::InvalidArgument.raw();
        frame.rdi = 1;
        return;
    };
    match cap {
        Cap::Endpoint { paddr, badge, rights } => {
            if !rights.contains(CapRights::WRITE) {
                frame.rax = SyscallError::InvalidCapability.raw();
                frame.rdi = 0;
                return;
            }
            let blocking = syscall != Syscall::NbSend;
            ipc::send(paddr, badge, rights, info, blocking, syscall == Syscall::Call);
        }
        Cap::Notification { paddr, badge, rights } => {
            if !rights.contains(CapRights::WRITE) {
                frame.rax = SyscallError::InvalidCapability.raw();
                frame.rdi = 0;
                return;
            }
            ipc::signal(paddr, badge);
            frame.rax = 0;
        }
        _ if syscall == Syscall::Call => invoke_object(frame, slot, cap),
        _ => {
            frame.rax = SyscallError::InvalidCapability.raw();
            frame.rdi = 0;
        }
    }
}

fn invoke_object(frame: &mut TrapFrame, slot: u64, cap: Cap) {
    match crate::invoke::call(frame, slot, cap) {
        Ok(Outcome::Done(results)) => {
            frame.rax = 0;
            frame.rdi = 0;
            [frame.rdx, frame.r10, frame.r8, frame.r9] = results;
        }
        Ok(Outcome::Restart) => {
            // Leave every register as the user set it and re-execute `syscall`
            // (2 bytes): the kernel returns to user mode between batches.
            frame.rip -= SYSCALL_INSTRUCTION_LEN;
        }
        Err(failure) => {
            frame.rax = failure.error.raw();
            frame.rdi = failure.detail;
        }
    }
}

fn recv_like(frame: &mut TrapFrame, blocking: bool) {
    let Some((_, cap)) = lookup_ipc_cap(frame) else { return };
    match cap {
        Cap::Endpoint { paddr, rights, .. } if rights.contains(CapRights::READ) => ipc::recv(paddr, blocking),
        Cap::Notification { paddr, rights, .. } if rights.contains(CapRights::READ) => ipc::wait(paddr, blocking),
        _ => {
            frame.rax = SyscallError::InvalidCapability.raw();
            frame.rdi = 0;
        }
    }
}

/// A CPU exception in user mode: a page fault becomes a VM fault message, anything
/// else a user-exception message, to the thread's fault handler. Without one, the
/// thread is suspended and the fault logged; the root task's unhandled fault ends the
/// system (it is the system).
pub fn user_exception(frame: &mut TrapFrame) {
    let me = current();
    let cr2 = trap::fault_address();
    let (kind, mrs) = if frame.vector == 14 {
        (FaultKind::VmFault, [frame.rip, cr2, (frame.error_code >> 4) & 1, frame.error_code, 0])
    } else {
        (FaultKind::UserException, [frame.rip, frame.rsp, frame.rflags, frame.vector, frame.error_code])
    };
    if !ipc::deliver_fault(me, kind, mrs) {
        let root = tcb(me).is_root != 0;
        let (vector, error, rip, rsp) = (frame.vector, frame.error_code, frame.rip, frame.rsp);
        let what = trap::vector_name(vector);
        if root {
            crate::error!(
                "USER FAULT in '{}': {what} (vector {vector}) error={error:#x} rip={rip:#x} rsp={rsp:#x} cr2={cr2:#x}",
                crate::boot::init::root_name()
            );
        } else {
            crate::error!(
                "USER FAULT in thread {me:#x}: {what} (vector {vector}) error={error:#x} rip={rip:#x} rsp={rsp:#x} cr2={cr2:#x}"
            );
        }
        if tcb(me).is_root != 0 {
            crate::error!("kernel: the root task has no fault handler; stopping");
            crate::arch::cpu::exit_qemu(ExitCode::RootTaskFault.raw());
        }
        crate::error!("kernel: thread {me:#x} has no fault handler; suspended it");
        tcb_state::suspend(me);
    }
    tcb_state::schedule();
}
