//! Capability invocation (`Call` on a kernel object): one arm per cap type.
//!
//! Each handler looks up its extra caps, reads the message, decodes (checks only),
//! then invokes (cannot fail). Errors leave every object unchanged and come back as
//! one code plus a detail word (`args::Failure`); a preempted operation comes back as
//! `Outcome::Restart`.

pub mod args;
mod cnode;
mod debug;
mod frame;
mod ioport;
pub mod iospace;
mod irq;
pub mod pci;
mod tcb;
mod untyped;

use crate::arch::kmem::DirectMemory;
use crate::arch::trap::TrapFrame;
use crate::object::cap::Cap;
use crate::object::cte::SlotAddr;
use crate::thread::{ipc, tcb_state};
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::msginfo::MessageInfo;
use args::{fail, lookup_fail, Failure, Message, Outcome};

/// Handles `Call` on the kernel object `cap` (found in `slot` by the syscall layer).
pub fn call(frame: &TrapFrame, slot: SlotAddr, cap: Cap) -> Result<Outcome, Failure> {
    let me = tcb_state::current();
    let cspace = ipc::cspace_of(me);
    let info = MessageInfo::from_word(frame.rsi).ok_or(fail(SyscallError::InvalidArgument, 1))?;
    let mut mem = DirectMemory;
    let msg = Message { info, frame, ipc_buffer: tcb_state::ipc_buffer(me) };
    let extra = |k: usize| -> Result<(SlotAddr, Cap), Failure> {
        let cptr = msg.extra_cptr(k)?;
        // As for the invoked cap: a single-level CSpace needs no resolve.
        if let Some(found) = crate::thread::fastpath::single_level_cap(me, cptr) {
            return Ok(found);
        }
        crate::object::cnode::lookup_cap(&DirectMemory, &cspace, cptr).map_err(|e| lookup_fail(e, 100 + k as u64))
    };
    let label = Invocation::try_from(info.label).map_err(|_| fail(SyscallError::IllegalOperation, 0))?;
    let done = Outcome::Done;
    match cap {
        Cap::Untyped { .. } => untyped::invoke(&msg, &mut mem, slot, label, &extra).map(done),
        Cap::CNode { .. } => cnode::invoke(&msg, &mut mem, cap, label, &extra),
        Cap::Frame { .. } | Cap::PageTable { .. } => {
            frame::invoke(&msg, &mut mem, slot, cap, label, &cspace, &extra).map(done)
        }
        Cap::IrqControl | Cap::IrqHandler { .. } | Cap::MsiHandler { .. } => {
            irq::invoke(&msg, &mut mem, cap, label, &extra).map(done)
        }
        Cap::IoPortControl | Cap::IoPort { .. } => ioport::invoke(&msg, &mut mem, cap, label, &extra).map(done),
        Cap::IoSpace { .. } | Cap::IoPageTable { .. } => {
            iospace::invoke(&msg, &mut mem, slot, cap, label, &cspace, &extra).map(done)
        }
        Cap::PciDevice { segment, requester_id } => pci::invoke(&msg, segment, requester_id, label).map(done),
        Cap::Tcb { paddr: target } => tcb::invoke(&msg, me, target, label, &extra).map(done),
        Cap::DebugConsole => debug::invoke(&msg, label).map(done),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}
