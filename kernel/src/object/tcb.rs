//! The thread control block as it lies in its 2 KiB object.
//!
//! The thread control block as it lies in its 2 KiB object: saved registers, FPU area,
//! scheduling and IPC state, and three capability slots (CSpace root, VSpace root, IPC
//! buffer frame) that take part in the derivation tree like any other slot.

use static_assertions::const_assert;

/// Words in a saved register frame (same layout as the trap frame).
pub const FRAME_WORDS: usize = 22;

/// Where a thread stands.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Not runnable (new or suspended).
    Inactive = 0,
    /// Runnable (running or in a ready queue).
    Running = 1,
    /// Waiting in an endpoint's send queue.
    BlockedOnSend = 2,
    /// Waiting in an endpoint's receive queue.
    BlockedOnReceive = 3,
    /// Waiting for a reply after Call (or after a fault).
    BlockedOnReply = 4,
    /// Waiting on a notification.
    BlockedOnNotification = 5,
}

/// Index of the CSpace root slot.
pub const SLOT_CSPACE: usize = 0;
/// Index of the VSpace root slot.
pub const SLOT_VSPACE: usize = 1;
/// Index of the IPC buffer frame slot.
pub const SLOT_IPC_BUFFER: usize = 2;
/// Number of slots in a TCB.
pub const TCB_SLOTS: usize = 3;

/// FXSAVE area.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuArea(pub [u8; 512]);

/// The TCB object.
#[repr(C, align(64))]
pub struct Tcb {
    /// Capability slots (64-byte entries, see `cte`).
    pub slots: [[u64; 8]; TCB_SLOTS],
    /// Saved user registers (valid while the thread is not running).
    pub frame: [u64; FRAME_WORDS],
    /// Saved FPU/SSE state.
    pub fpu: FpuArea,
    /// A [`ThreadState`] value.
    pub state: u64,
    /// Scheduling priority (0..=255).
    pub priority: u64,
    /// Maximum controlled priority: the highest priority this thread may give anyone.
    pub mcp: u64,
    /// Virtual address of the IPC buffer.
    pub ipc_buffer: u64,
    /// Physical address of the IPC buffer page (from the IPC buffer frame cap).
    pub ipc_buffer_paddr: u64,
    /// CPtr of the fault endpoint in the thread's own CSpace (0 = none).
    pub fault_handler: u64,
    /// Ready-queue links.
    pub sched_prev: u64,
    /// Ready-queue links.
    pub sched_next: u64,
    /// Endpoint/notification queue links.
    pub ep_prev: u64,
    /// Endpoint/notification queue links.
    pub ep_next: u64,
    /// Endpoint or notification the thread is blocked on.
    pub blocked_on: u64,
    /// Badge of the cap the blocked sender used.
    pub ipc_badge: u64,
    /// Bit 0: the blocked send is a Call; bit 1: the sender's cap had Grant.
    pub ipc_flags: u64,
    /// Message info of a blocked send.
    pub ipc_info: u64,
    /// Thread waiting for this thread's reply (0 = none).
    pub reply_to: u64,
    /// Bound notification (0 = none).
    pub bound_notification: u64,
    /// 1 for the root task: its unhandled fault ends the system.
    pub is_root: u64,
    /// A pending fault message: label then message registers.
    pub fault: [u64; 6],
    /// 1 while the thread sits in a ready queue.
    pub in_ready_queue: u64,
    /// FS base (user thread pointer; libcap keeps the IPC buffer address there).
    pub fs_base: u64,
    /// GS base (user mode sets it with wrgsbase; the kernel never uses GS).
    pub gs_base: u64,
}

const_assert!(core::mem::size_of::<Tcb>() <= 1 << abi::object::TCB_SIZE_BITS);
// Traps from user mode push the register frame into the TCB: the CPU aligns rsp0 down
// to 16 bytes, so the frame must end on a 16-byte boundary.
const_assert!((core::mem::offset_of!(Tcb, frame) + FRAME_WORDS * 8).is_multiple_of(16));

/// `ipc_flags` bit: the blocked send is a Call.
pub const IPC_IS_CALL: u64 = 1 << 32;
/// `ipc_flags` bit: the sender may grant caps; on a caller blocked on its reply, the
/// Call was made with GRANT, so the reply may carry a cap. It is the GRANT bit's place
/// in a cap's word 0: the IPC fastpath stores the endpoint cap's word 0 as the flags
/// (one store, as storing 0 was), whose other bits (tag, rights below 16) mean nothing
/// here.
pub const IPC_CAN_GRANT: u64 = (abi::rights::CapRights::GRANT.raw() as u64) << crate::object::cap::raw::RIGHTS_SHIFT;
/// `ipc_flags` bit: the blocked message is a fault message built by the kernel.
pub const IPC_IS_FAULT: u64 = 1 << 33;
// The fastpath's word 0 of an endpoint cap (tag and rights, bits 0..16) sets neither
// IPC_IS_CALL nor IPC_IS_FAULT.
const_assert!(IPC_CAN_GRANT < 1 << 16 && (IPC_IS_CALL | IPC_IS_FAULT) >> 16 != 0);
const_assert!((IPC_IS_CALL | IPC_IS_FAULT) & 0xffff == 0);

/// What a thread taken off an endpoint or notification queue without its IPC gets
/// (`thread::ipc::wake_cancelled` applies it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// A fault sender never ran a call that could return an error: as seL4 does, it is
    /// restarted with its registers untouched and faults again; an unknown system call
    /// is faulted on again by re-executing its `syscall` (rip moved back over it).
    Restart {
        /// Move rip back over the `syscall` instruction.
        rewind_syscall: bool,
    },
    /// A thread in a system call returns the error in rax.
    Error,
}

/// What a thread in `state`, with `ipc_flags` and pending fault label `fault`, gets
/// when its send or receive is cancelled (issue 9 hole 12: a fault sender must not get
/// an error written into rax).
pub fn on_cancel(state: ThreadState, ipc_flags: u64, fault: u64) -> Cancelled {
    let fault_send = state == ThreadState::BlockedOnSend && ipc_flags & IPC_IS_FAULT != 0;
    if fault_send && !cfg!(feature = "mutant-hole12") {
        Cancelled::Restart { rewind_syscall: fault == abi::fault::FaultKind::UnknownSyscall.raw() }
    } else {
        Cancelled::Error
    }
}

impl Tcb {
    /// The thread's state.
    pub fn thread_state(&self) -> ThreadState {
        match self.state {
            1 => ThreadState::Running,
            2 => ThreadState::BlockedOnSend,
            3 => ThreadState::BlockedOnReceive,
            4 => ThreadState::BlockedOnReply,
            5 => ThreadState::BlockedOnNotification,
            _ => ThreadState::Inactive,
        }
    }

    /// Sets the thread's state.
    pub fn set_state(&mut self, s: ThreadState) {
        self.state = s as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::fault::FaultKind;

    /// Issue 9 hole 12: a thread blocked sending a fault message whose send is cancelled
    /// (CancelBadgedSends, endpoint deletion) got an error in rax and ran on with it.
    #[test]
    fn hole12_a_cancelled_fault_sender_is_restarted_untouched() {
        let vm = FaultKind::VmFault.raw();
        let unknown = FaultKind::UnknownSyscall.raw();
        let restart = |rewind_syscall| Cancelled::Restart { rewind_syscall };
        assert_eq!(on_cancel(ThreadState::BlockedOnSend, IPC_IS_FAULT, vm), restart(false), "no error in rax");
        assert_eq!(on_cancel(ThreadState::BlockedOnSend, IPC_IS_FAULT, unknown), restart(true));
        // Threads in a system call get the error.
        assert_eq!(on_cancel(ThreadState::BlockedOnSend, 0, vm), Cancelled::Error);
        assert_eq!(on_cancel(ThreadState::BlockedOnSend, IPC_IS_CALL, 0), Cancelled::Error);
        assert_eq!(on_cancel(ThreadState::BlockedOnReceive, 0, 0), Cancelled::Error);
        assert_eq!(on_cancel(ThreadState::BlockedOnNotification, IPC_IS_FAULT, vm), Cancelled::Error);
    }
}
