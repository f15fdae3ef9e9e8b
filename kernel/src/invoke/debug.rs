//! DebugConsole invocations: print, end the system, or read the IOMMU counters.
//!
//! Prints a byte or a user buffer on the kernel's serial console, or ends the system
//! through QEMU's isa-debug-exit. Only a holder of the debug-console cap can do
//! either (the root task gets it at boot and delegates it by Copy/Mint), so a sandbox
//! without one can neither flood the console nor stop the system. Halt also needs the
//! cap's GRANT right: init hands components a print-only copy (Mint without GRANT), so
//! a component can print but not end the system.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::invocation::{Invocation, DEBUG_HALT_MAX, DEBUG_WRITE_MAX};
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{fail, Failure, Message, Reply};
use crate::arch::serial;
use crate::thread::user_mem::UserSlice;

/// A checked debug-console invocation.
pub enum DebugOp {
    /// PutChar: one byte.
    PutChar(u8),
    /// Write: the bytes of a user buffer.
    Write(UserSlice),
    /// Halt with an exit code.
    Halt(u32),
    /// IommuCounters: read the IOMMU work counters.
    IommuCounters,
    /// KernelStretch: read and reset the longest interrupts-off stretch.
    KernelStretch,
}

/// Decodes `label` on a debug-console cap with `rights`: reads and checks the message,
/// changes nothing. Halt without GRANT fails with `InsufficientRights`.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(msg: &Message<'_>, label: Invocation, rights: CapRights) -> Result<DebugOp, Failure> {
    match label {
        Invocation::DebugPutChar => {
            let byte = u8::try_from(msg.mr(0)?).map_err(|_| fail(SyscallError::RangeError, 0))?;
            Ok(DebugOp::PutChar(byte))
        }
        Invocation::DebugWrite => {
            let (addr, len) = (msg.mr(0)?, msg.mr(1)?);
            let slice = UserSlice::new(addr, len, DEBUG_WRITE_MAX).map_err(|e| {
                let arg = if e == SyscallError::RangeError { 1 } else { 0 };
                fail(e, arg)
            })?;
            Ok(DebugOp::Write(slice))
        }
        Invocation::DebugHalt => {
            if !rights.contains(CapRights::GRANT) {
                return Err(fail(SyscallError::InsufficientRights, 0));
            }
            let code = msg.mr(0)?;
            if code > DEBUG_HALT_MAX {
                return Err(fail(SyscallError::RangeError, 0));
            }
            Ok(DebugOp::Halt(code as u32))
        }
        Invocation::DebugIommuCounters => Ok(DebugOp::IommuCounters),
        // Only measured with `latency=on`: without it there is nothing to read.
        Invocation::DebugKernelStretch if crate::thread::latency::enabled() => Ok(DebugOp::KernelStretch),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded debug-console invocation.
///
/// Write can still fail here with `InvalidUserPointer`, printing nothing: whether
/// every page of the buffer is mapped is checked by `UserSlice::read_chunks` in the
/// same pass that reads it.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(op: DebugOp) -> Reply {
    match op {
        DebugOp::PutChar(byte) => serial::write_sanitized(&[byte]),
        DebugOp::Write(slice) => slice.read_chunks(serial::write_sanitized).map_err(|e| fail(e, 0))?,
        DebugOp::Halt(code) => halt(code),
        DebugOp::IommuCounters => {
            let (leaves, invalidations) = crate::iommu::counters::read();
            let mut reply = [0; REGISTER_MRS];
            reply[0] = leaves;
            reply[1] = invalidations;
            return Ok(reply);
        }
        DebugOp::KernelStretch => {
            let mut reply = [0; REGISTER_MRS];
            reply[0] = crate::thread::latency::take_longest();
            return Ok(reply);
        }
    }
    Ok([0; REGISTER_MRS])
}

/// Ends the system with exit code `code`.
fn halt(code: u32) -> ! {
    let name = ExitCode::try_from(code).map_or("user-defined", |c| match c {
        ExitCode::Success => "success",
        _ => "failure",
    });
    crate::info!("kernel: system halted by user request, exit code {code:#x} ({name})");
    crate::arch::cpu::exit_qemu(code)
}
