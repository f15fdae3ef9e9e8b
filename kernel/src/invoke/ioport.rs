//! I/O-port cap invocations: IOPortControl Issue, IOPort In/Out (8/16/32 bits).

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use x86_64::instructions::port::Port;

use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::cte::SlotAddr;
use crate::object::mdb;

use super::args::{dest_slot, fail, Extra, Failure, Message};

/// A checked I/O-port cap invocation.
pub enum IoPortOp {
    /// IOPortControl::Issue: an IOPort cap for `first..=last` into the empty `dest`.
    Issue { first: u16, last: u16, dest: SlotAddr },
    /// IOPort In: read `width` bytes from `port`.
    In { port: u16, width: u64 },
    /// IOPort Out: write `width` bytes of `value` to `port`.
    Out { port: u16, width: u64, value: u64 },
}

/// Decodes `label` on an IOPortControl or IOPort cap: reads and checks everything,
/// changes nothing.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(
    msg: &Message<'_>,
    mem: &DirectMemory,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Result<IoPortOp, Failure> {
    match (cap, label) {
        (Cap::IoPortControl, Invocation::IoPortControlIssue) => {
            let (first, last) = crate::platform::reserved::issue_port_range(msg.mr(0)?, msg.mr(1)?)
                .map_err(|arg| fail(SyscallError::RangeError, arg))?;
            // Never the PICs, PCI configuration, nor anything that reaches memory or raises
            // interrupts outside the IOMMU (ISA DMA, fw_cfg, A20, SMI): abi::reserved and
            // the FADT's SMI command port.
            if crate::platform::reserved::reserved_port_reason(first, last).is_some() {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            let dest = dest_slot(msg, mem, extra, 2)?;
            Ok(IoPortOp::Issue { first, last, dest })
        }
        (Cap::IoPort { first, last }, _) => {
            let port = msg.mr(0)?;
            let width = match label {
                Invocation::IoPortIn8 | Invocation::IoPortOut8 => 1,
                Invocation::IoPortIn16 | Invocation::IoPortOut16 => 2,
                Invocation::IoPortIn32 | Invocation::IoPortOut32 => 4,
                _ => return Err(fail(SyscallError::IllegalOperation, 0)),
            };
            // Checked: `port + width - 1` near 2^64 would wrap into the cap's range.
            let port = crate::platform::reserved::port_access(first, last, port, width)
                .ok_or(fail(SyscallError::RangeError, 0))?;
            match label {
                Invocation::IoPortIn8 | Invocation::IoPortIn16 | Invocation::IoPortIn32 => {
                    Ok(IoPortOp::In { port, width })
                }
                _ => Ok(IoPortOp::Out { port, width, value: msg.mr(1)? }),
            }
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded I/O-port cap invocation.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(mem: &mut DirectMemory, op: IoPortOp) -> [u64; REGISTER_MRS] {
    match op {
        IoPortOp::Issue { first, last, dest } => {
            mdb::insert_root(mem, dest, Cap::IoPort { first, last }, false);
            [0; REGISTER_MRS]
        }
        IoPortOp::In { port, width } => [port_in(port, width), 0, 0, 0],
        IoPortOp::Out { port, width, value } => {
            port_out(port, width, value);
            [0; REGISTER_MRS]
        }
    }
}

/// Reads `width` bytes from `port`, which an IOPort cap granted.
fn port_in(port: u16, width: u64) -> u64 {
    // SAFETY: the invoking cap grants this port; IOPortControl never issues the ports
    // the kernel relies on or that reach memory (abi::reserved::RESERVED_IO_PORTS).
    unsafe {
        match width {
            1 => u64::from(Port::<u8>::new(port).read()),
            2 => u64::from(Port::<u16>::new(port).read()),
            _ => u64::from(Port::<u32>::new(port).read()),
        }
    }
}

/// Writes `width` bytes of `value` to `port`, which an IOPort cap granted.
fn port_out(port: u16, width: u64, value: u64) {
    // SAFETY: as in `port_in`.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value as u32),
        }
    }
}
