//! IPC system calls and notification Signal / Wait / Poll.
//!
//! IPC system calls: Send, NBSend, Call, Recv, NBRecv, Reply, ReplyRecv, Yield, and
//! notification Signal / Wait / Poll. The first four message registers travel in CPU
//! registers, the rest in the IPC buffer (`set_mr` / `mr`).

use abi::error::SyscallError;
use abi::msginfo::MessageInfo;
use abi::syscall::Syscall;

use crate::cap::{ipc_buffer, CPtr};

/// A received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Label, length and caps.
    pub info: MessageInfo,
    /// Badge of the sender's cap (or notification bits).
    pub badge: u64,
    /// Message registers 0..3.
    pub mrs: [u64; 4],
}

/// Raw IPC system call: returns (rax, rdi, rsi, [rdx, r10, r8, r9]).
pub(crate) fn raw(number: Syscall, cptr: u64, info: u64, mrs: [u64; 4]) -> (u64, u64, u64, [u64; 4]) {
    raw_or_nop::<false>(number, cptr, info, mrs)
}

/// [`raw`], or with `NOP` the same code with one `xor eax, eax` where the `syscall` is
/// (a "call" that succeeds at once; the other registers come back as they went in).
#[inline(always)]
fn raw_or_nop<const NOP: bool>(number: Syscall, cptr: u64, info: u64, mrs: [u64; 4]) -> (u64, u64, u64, [u64; 4]) {
    let (mut rax, mut rdi, mut rsi) = (number.raw(), cptr, info);
    let [mut m0, mut m1, mut m2, mut m3] = mrs;
    macro_rules! ipc_asm {
        ($instruction:literal) => {
            // SAFETY: the kernel only writes the registers listed here (and rcx/r11); it
            // reads memory only through the IPC buffer, which belongs to this thread.
            unsafe {
                core::arch::asm!(
                    $instruction,
                    inout("rax") rax,
                    inout("rdi") rdi,
                    inout("rsi") rsi,
                    inout("rdx") m0,
                    inout("r10") m1,
                    inout("r8") m2,
                    inout("r9") m3,
                    out("rcx") _,
                    out("r11") _,
                    options(nostack, preserves_flags)
                )
            }
        };
    }
    if NOP {
        ipc_asm!("xor eax, eax");
    } else {
        ipc_asm!("syscall");
    }
    (rax, rdi, rsi, [m0, m1, m2, m3])
}

fn check(rax: u64) -> Result<(), SyscallError> {
    if rax == 0 {
        Ok(())
    } else {
        Err(SyscallError::try_from(rax).unwrap_or(SyscallError::IllegalOperation))
    }
}

fn message(rdi: u64, rsi: u64, mrs: [u64; 4]) -> Message {
    // The kernel only delivers well-formed message info words.
    Message { info: MessageInfo::from_word_masked(rsi), badge: rdi, mrs }
}

/// Sets message register `i` (>= 4) in the IPC buffer.
pub fn set_mr(i: usize, value: u64) {
    // SAFETY: the IPC buffer is this thread's mapped page; i < 120 is checked by indexing.
    unsafe { (*ipc_buffer()).msg[i] = value };
}

/// Reads message register `i` (>= 4) from the IPC buffer.
pub fn mr(i: usize) -> u64 {
    // SAFETY: as in `set_mr`.
    unsafe { (*ipc_buffer()).msg[i] }
}

/// Sets the cap address of extra cap 0 to send (needs Grant on the endpoint cap).
pub fn set_extra_cap(cptr: CPtr) {
    // SAFETY: as in `set_mr`.
    unsafe { (*ipc_buffer()).caps_or_badges[0] = cptr };
}

/// Where a received cap goes: CNode cptr, index and depth.
pub fn set_receive_slot(cnode: CPtr, index: u64, depth: u64) {
    // SAFETY: as in `set_mr`.
    unsafe {
        let b = &mut *ipc_buffer();
        b.receive_cnode = cnode;
        b.receive_index = index;
        b.receive_depth = depth;
    }
}

/// Blocking send.
pub fn send(ep: CPtr, info: MessageInfo, mrs: [u64; 4]) -> Result<(), SyscallError> {
    check(raw(Syscall::Send, ep, info.to_word(), mrs).0)
}

/// Non-blocking send: dropped if nobody waits.
pub fn nb_send(ep: CPtr, info: MessageInfo, mrs: [u64; 4]) -> Result<(), SyscallError> {
    check(raw(Syscall::NbSend, ep, info.to_word(), mrs).0)
}

/// Send and wait for the reply.
pub fn call(ep: CPtr, info: MessageInfo, mrs: [u64; 4]) -> Result<Message, SyscallError> {
    let (rax, rdi, rsi, mrs) = raw(Syscall::Call, ep, info.to_word(), mrs);
    check(rax).map(|_| message(rdi, rsi, mrs))
}

/// Benchmark overhead loop: exactly the code of [`call`] with the `syscall` replaced by
/// one instruction that makes it succeed at once (sel4bench subtracts the minimum of
/// such a loop from IPC timings). The "reply" is the request itself.
pub fn call_nop(ep: CPtr, info: MessageInfo, mrs: [u64; 4]) -> Result<Message, SyscallError> {
    let (rax, rdi, rsi, mrs) = raw_or_nop::<true>(Syscall::Call, ep, info.to_word(), mrs);
    check(rax).map(|_| message(rdi, rsi, mrs))
}

/// Blocking receive (endpoint) or wait (notification).
pub fn recv(ep: CPtr) -> Result<Message, SyscallError> {
    let (rax, rdi, rsi, mrs) = raw(Syscall::Recv, ep, 0, [0; 4]);
    check(rax).map(|_| message(rdi, rsi, mrs))
}

/// Non-blocking receive / poll.
pub fn nb_recv(ep: CPtr) -> Result<Message, SyscallError> {
    let (rax, rdi, rsi, mrs) = raw(Syscall::NbRecv, ep, 0, [0; 4]);
    check(rax).map(|_| message(rdi, rsi, mrs))
}

/// Reply to the last caller.
pub fn reply(info: MessageInfo, mrs: [u64; 4]) {
    raw(Syscall::Reply, 0, info.to_word(), mrs);
}

/// Reply to the last caller, then receive on `ep`.
pub fn reply_recv(ep: CPtr, info: MessageInfo, mrs: [u64; 4]) -> Result<Message, SyscallError> {
    let (rax, rdi, rsi, mrs) = raw(Syscall::ReplyRecv, ep, info.to_word(), mrs);
    check(rax).map(|_| message(rdi, rsi, mrs))
}

/// Give the CPU to the next thread of the same priority.
pub fn yield_now() {
    raw(Syscall::Yield, 0, 0, [0; 4]);
}

/// Signal a notification.
pub fn signal(ntfn: CPtr) -> Result<(), SyscallError> {
    check(raw(Syscall::Send, ntfn, 0, [0; 4]).0)
}

/// Wait on a notification; returns the collected badge bits.
pub fn wait(ntfn: CPtr) -> Result<u64, SyscallError> {
    recv(ntfn).map(|m| m.badge)
}

/// Waits on a notification until it is signalled or `deadline` passes (polling, with
/// Yield between polls); `Ok(None)`: nothing arrived in time. Badge bits must be
/// non-zero for a signal to be seen (as for [`poll`]).
pub fn wait_until(ntfn: CPtr, deadline: crate::deadline::Deadline) -> Result<Option<u64>, SyscallError> {
    let mut word = 0;
    let mut error = None;
    crate::deadline::spin_until(deadline, || match poll(ntfn) {
        Ok(w) => {
            word = w;
            w != 0
        }
        Err(e) => {
            error = Some(e);
            true
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok((word != 0).then_some(word)),
    }
}

/// Poll a notification; returns the collected badge bits (0 if none).
pub fn poll(ntfn: CPtr) -> Result<u64, SyscallError> {
    nb_recv(ntfn).map(|m| m.badge)
}

/// Polls a notification up to `polls` times (spinning in between); returns the badge
/// bits of the first signal seen, or 0 if none arrived (or the cap is no notification).
/// Test programs and drivers use it so a wait for an interrupt that never comes ends.
pub fn poll_within(ntfn: CPtr, polls: u32) -> u64 {
    for _ in 0..polls {
        match poll(ntfn) {
            Ok(0) => core::hint::spin_loop(),
            Ok(word) => return word,
            Err(_) => return 0,
        }
    }
    0
}

/// Issues a system call with an arbitrary number (to test the kernel's unknown-syscall path).
pub fn raw_syscall(number: u64) -> u64 {
    let mut rax = number;
    // SAFETY: an unknown number changes nothing but rax (and rcx/r11).
    unsafe {
        core::arch::asm!("syscall", inout("rax") rax, out("rcx") _, out("r11") _, options(nostack, preserves_flags));
    }
    rax
}
