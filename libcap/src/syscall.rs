//! Raw system calls (register convention in `abi::syscall`) and typed wrappers.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::syscall::Syscall;

/// Issues `syscall` with two arguments; returns `rax`.
///
/// # Safety
/// Arguments that are pointers must satisfy what the kernel documents for `number`.
#[inline(always)]
pub unsafe fn raw2(number: Syscall, a0: u64, a1: u64) -> u64 {
    let mut rax = number.raw();
    // SAFETY: the kernel preserves every register but rax (result), rcx and r11 (clobbered
    // by the instruction itself); memory is only read through the pointer arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inout("rax") rax,
            in("rdi") a0,
            in("rsi") a1,
            out("rcx") _,
            out("r11") _,
            options(nostack, preserves_flags)
        );
    }
    rax
}

/// Issues `Call`: `rdi` = cap, `rsi` = message info, MRs 0..3 in `rdx`, `r10`, `r8`,
/// `r9`. Returns (`rax` error, `rdi` detail, result MRs).
pub fn call(cptr: u64, info: u64, mrs: [u64; 4]) -> (u64, u64, [u64; 4]) {
    let (rax, rdi, _, mrs) = crate::ipc::raw(Syscall::Call, cptr, info, mrs);
    (rax, rdi, mrs)
}

fn to_result(rax: u64) -> Result<(), SyscallError> {
    if rax == 0 {
        Ok(())
    } else {
        Err(SyscallError::try_from(rax).unwrap_or(SyscallError::IllegalOperation))
    }
}

/// Prints one byte on the kernel console.
pub fn debug_put_char(byte: u8) {
    // SAFETY: no pointer arguments.
    unsafe { raw2(Syscall::DebugPutChar, u64::from(byte), 0) };
}

/// Prints `bytes` on the kernel console.
pub fn debug_write(bytes: &[u8]) -> Result<(), SyscallError> {
    // SAFETY: the pointer and length describe a live slice.
    to_result(unsafe { raw2(Syscall::DebugWrite, bytes.as_ptr() as u64, bytes.len() as u64) })
}

/// Asks the kernel to print `len` bytes at an arbitrary address: for tests of the
/// kernel's pointer checks, which must reject bad addresses with an error.
pub fn debug_write_raw(addr: u64, len: u64) -> Result<(), SyscallError> {
    // SAFETY: the kernel validates the range; a bad one yields an error, never a fault.
    to_result(unsafe { raw2(Syscall::DebugWrite, addr, len) })
}

/// Ends the whole system with `code` (a debug facility: QEMU exits with it).
pub fn debug_halt(code: ExitCode) -> ! {
    debug_halt_raw(u64::from(code.raw()));
    // The kernel refused (it cannot for a valid ExitCode); spin rather than return.
    loop {
        core::hint::spin_loop();
    }
}

/// Ends the system with a raw code; returns the kernel's error if it refuses the code.
pub fn debug_halt_raw(code: u64) -> SyscallError {
    // SAFETY: no pointer arguments.
    let rax = unsafe { raw2(Syscall::DebugHalt, code, 0) };
    SyscallError::try_from(rax).unwrap_or(SyscallError::IllegalOperation)
}
