//! System call decoding. Arguments arrive in the trap frame (see `abi::syscall`); the
//! result code goes back in `rax`. `Call` on a kernel object is an invocation (see
//! `invoke`); the other IPC numbers are reserved in the ABI and answered with
//! `UnknownSyscall` until IPC lands.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::syscall::{Syscall, DEBUG_WRITE_MAX};

use crate::arch::serial;
use crate::arch::trap::TrapFrame;
use crate::user_mem::UserSlice;

/// Length of the `syscall` instruction (0f 05), for restarting a preempted call.
const SYSCALL_INSTRUCTION_LEN: u64 = 2;

/// Largest exit code QEMU's debug-exit device can report (status is one byte).
const MAX_EXIT_CODE: u64 = 0x7f;

/// Handles one system call from the current thread.
pub fn handle(frame: &mut TrapFrame) {
    let result = match Syscall::try_from(frame.rax) {
        Ok(Syscall::DebugPutChar) => {
            serial::write_sanitized(&[frame.rdi as u8]);
            Ok(())
        }
        Ok(Syscall::DebugWrite) => debug_write(frame.rdi, frame.rsi),
        Ok(Syscall::DebugHalt) => debug_halt(frame.rdi),
        Ok(Syscall::Call) => {
            match crate::invoke::call(frame) {
                Ok(results) => {
                    frame.rax = 0;
                    frame.rdi = 0;
                    [frame.rdx, frame.r10, frame.r8, frame.r9] = results;
                }
                Err(failure) if failure == crate::invoke::RESTART => {
                    // Leave every register as the user set it and re-execute `syscall`
                    // (2 bytes): the kernel returns to user mode between batches.
                    frame.rip -= SYSCALL_INSTRUCTION_LEN;
                }
                Err(failure) => {
                    frame.rax = failure.error.raw();
                    frame.rdi = failure.detail;
                }
            }
            return;
        }
        Ok(_) | Err(_) => Err(SyscallError::UnknownSyscall),
    };
    frame.rax = match result {
        Ok(()) => 0,
        Err(e) => e.raw(),
    };
}

fn debug_write(addr: u64, len: u64) -> Result<(), SyscallError> {
    let slice = UserSlice::new(addr, len, DEBUG_WRITE_MAX)?;
    slice.read_chunks(serial::write_sanitized)
}

fn debug_halt(code: u64) -> Result<(), SyscallError> {
    if code > MAX_EXIT_CODE {
        return Err(SyscallError::RangeError);
    }
    let name = ExitCode::try_from(code as u32).map_or("user-defined", |c| match c {
        ExitCode::Success => "success",
        _ => "failure",
    });
    crate::info!("kernel: system halted by user request, exit code {code:#x} ({name})");
    crate::arch::cpu::exit_qemu(code as u32)
}
