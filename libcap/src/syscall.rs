//! Raw system calls and the debug helpers (print, halt).
//!
//! Raw system calls (register convention in `abi::syscall`) and the debug helpers
//! (print, halt), which invoke the debug-console cap the root task holds at
//! `abi::slots::DEBUG_CONSOLE` and delegates to the threads it wants to print.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::syscall::Syscall;

use crate::console::DebugConsole;

/// Issues `Call`: `rdi` = cap, `rsi` = message info, MRs 0..3 in `rdx`, `r10`, `r8`,
/// `r9`. Returns (`rax` error, `rdi` detail, result MRs).
pub fn call(cptr: u64, info: u64, mrs: [u64; 4]) -> (u64, u64, [u64; 4]) {
    let (rax, rdi, _, mrs) = crate::ipc::raw(Syscall::Call, cptr, info, mrs);
    (rax, rdi, mrs)
}

/// Prints one byte through the debug-console cap at `abi::slots::DEBUG_CONSOLE`.
pub fn debug_put_char(byte: u8) {
    let _ = DebugConsole::default().put_char(byte);
}

/// Prints `bytes` through the debug-console cap at `abi::slots::DEBUG_CONSOLE`.
pub fn debug_write(bytes: &[u8]) -> Result<(), SyscallError> {
    DebugConsole::default().write(bytes).map_err(|e| e.code)
}

/// Asks the kernel to print `len` bytes at an arbitrary address: for tests of the
/// kernel's pointer checks, which must reject bad addresses with an error.
pub fn debug_write_raw(addr: u64, len: u64) -> Result<(), SyscallError> {
    DebugConsole::default().write_raw(addr, len).map_err(|e| e.code)
}

/// Ends the whole system with `code` (a debug facility: QEMU exits with it) through the
/// debug-console cap at `abi::slots::DEBUG_CONSOLE`. Without that cap the system cannot
/// be stopped: the thread stops itself instead with an invalid instruction, a user
/// exception its fault handler receives (with none, the kernel suspends the thread).
pub fn debug_halt(code: ExitCode) -> ! {
    debug_halt_raw(u64::from(code.raw()));
    // SAFETY: `ud2` only raises #UD; the kernel turns it into a fault for this thread.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Ends the system with a raw code; returns the kernel's error if it refuses (a code
/// above `abi::invocation::DEBUG_HALT_MAX`, or no debug-console cap).
pub fn debug_halt_raw(code: u64) -> SyscallError {
    DebugConsole::default().halt(code).code
}
