//! Capability invocation (`Call` on a kernel object): one arm per cap type.
//!
//! A cap type's file has a `decode` that looks up the extra caps, reads the message and
//! checks everything, changing nothing, and returns a typed request (`CNodeOp`,
//! `TcbOp`, ...); its `invoke` performs that request. Large checked plans (Retype, Map,
//! IO batches) go into a buffer the caller owns and the request refers to them there.
//! Frame MapIO / UnmapIO keep one handler that checks, then acts, shared with the
//! short path. Errors come back as one code plus a detail word (`args::Failure`); a
//! preempted operation (Delete, Revoke, a Retype's zeroing) comes back as
//! `Outcome::Restart`.

pub mod args;
mod cnode;
mod debug;
mod frame;
mod io_batch;
mod ioport;
pub mod iospace;
mod irq;
pub mod pci;
mod tcb;
mod untyped;
mod vcpu;

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
    let info = MessageInfo::from_word(frame.rsi).ok_or(fail(SyscallError::InvalidArgument, 1))?;
    let mut mem = DirectMemory;
    let msg = Message { info, frame, ipc_buffer: tcb_state::ipc_buffer(me) };
    let extra = |k: usize| -> Result<(SlotAddr, Cap), Failure> {
        let cptr = msg.extra_cptr(k)?;
        // As for the invoked cap: a single-level CSpace needs no resolve.
        if let Some(found) = crate::thread::fastpath::single_level_cap(me, cptr) {
            return Ok(found);
        }
        // The CSpace root is read only here and in the IOSpace arm: decoding it up front
        // cost every invocation about 50 guest instructions (`make bench`).
        let cspace = ipc::cspace_of(me);
        crate::object::cnode::lookup_cap(&DirectMemory, &cspace, cptr).map_err(|e| lookup_fail(e, 100 + k as u64))
    };
    let label = Invocation::try_from(info.label).map_err(|_| fail(SyscallError::IllegalOperation, 0))?;
    let done = Outcome::Done;
    // Every arm decodes (reads and checks, changes nothing; a Failure leaves every
    // object as it was), then invokes the checked request.
    match cap {
        Cap::Untyped { .. } => {
            let mut plan = core::mem::MaybeUninit::uninit();
            let op = untyped::decode(&msg, &mem, slot, label, &extra, &mut plan)?;
            Ok(untyped::invoke(&mut mem, slot, op))
        }
        Cap::CNode { .. } => {
            let op = cnode::decode(&msg, &mem, cap, label, &extra)?;
            Ok(cnode::invoke(&mut mem, op))
        }
        Cap::Frame { .. } | Cap::PageTable { .. } => {
            frame::decode_and_invoke(&msg, &mut mem, slot, cap, label, &extra).map(done)
        }
        Cap::IrqControl | Cap::IrqHandler { .. } | Cap::MsiHandler { .. } => {
            let op = irq::decode(&msg, &mem, cap, label, &extra)?;
            irq::invoke(&mut mem, op).map(done)
        }
        Cap::IoPortControl | Cap::IoPort { .. } => {
            let op = ioport::decode(&msg, &mem, cap, label, &extra)?;
            Ok(done(ioport::invoke(&mut mem, op)))
        }
        Cap::IoSpace { .. } | Cap::IoPageTable { .. } => {
            let cspace = ipc::cspace_of(me);
            iospace::decode_and_invoke(&msg, &mut mem, slot, cap, label, &cspace, &extra).map(done)
        }
        Cap::PciDevice { segment, requester_id } => {
            let op = pci::decode(&msg, segment, requester_id, label)?;
            Ok(done(pci::invoke(op)))
        }
        Cap::Tcb { paddr: target } => {
            let op = tcb::decode(&msg, me, target, label, &extra)?;
            Ok(done(tcb::invoke(target, &op)))
        }
        Cap::Vcpu { paddr } => {
            let op = vcpu::decode(&msg, label, &extra)?;
            Ok(done(vcpu::invoke(&msg, paddr, op)))
        }
        Cap::DebugConsole { rights } => {
            let op = debug::decode(&msg, label, rights)?;
            debug::invoke(op).map(done)
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}
