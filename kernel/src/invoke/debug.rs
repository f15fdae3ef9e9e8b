//! DebugConsole invocations: print on the serial console, or end the system.
//!
//! Prints a byte or a user buffer on the kernel's serial console, or ends the system
//! through QEMU's isa-debug-exit. Only a holder of the debug-console cap can do
//! either (the root task gets it at boot and delegates it by Copy/Mint), so a sandbox without one can neither flood the console nor stop the system.

use abi::error::SyscallError;
use abi::exit::ExitCode;
use abi::invocation::{Invocation, DEBUG_HALT_MAX, DEBUG_WRITE_MAX};
use abi::ipc_buffer::REGISTER_MRS;

use super::args::{fail, Message, Reply};
use crate::arch::serial;
use crate::thread::user_mem::UserSlice;

/// Handles `label` on the debug-console cap.
pub fn invoke(msg: &Message<'_>, label: Invocation) -> Reply {
    match label {
        Invocation::DebugPutChar => {
            let byte = u8::try_from(msg.mr(0)?).map_err(|_| fail(SyscallError::RangeError, 0))?;
            serial::write_sanitized(&[byte]);
        }
        Invocation::DebugWrite => {
            let (addr, len) = (msg.mr(0)?, msg.mr(1)?);
            let slice = UserSlice::new(addr, len, DEBUG_WRITE_MAX).map_err(|e| {
                let arg = if e == SyscallError::RangeError { 1 } else { 0 };
                fail(e, arg)
            })?;
            slice.read_chunks(serial::write_sanitized).map_err(|e| fail(e, 0))?;
        }
        Invocation::DebugHalt => {
            let code = msg.mr(0)?;
            if code > DEBUG_HALT_MAX {
                return Err(fail(SyscallError::RangeError, 0));
            }
            halt(code as u32);
        }
        _ => return Err(fail(SyscallError::IllegalOperation, 0)),
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
