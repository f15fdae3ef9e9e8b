//! Frame and page-table invocations: Map, Unmap, GetAddress.
//!
//! MapIO / UnmapIO of a frame (and Unmap of an IO-mapped one) go to `iospace`.

use crate::arch::kmem::{self, DirectMemory};
use crate::object::cap::Cap;
use crate::object::cte::{SlotAddr, SlotMemory};
use crate::object::vspace;
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{fail, Extra, Message, Reply};
use super::iospace;

/// Handles `label` on the Frame or PageTable cap `cap` in `slot`.
pub fn invoke(
    msg: &Message<'_>,
    mem: &mut DirectMemory,
    slot: SlotAddr,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Reply {
    let ok = Ok([0; REGISTER_MRS]);
    match (cap, label) {
        (Cap::Frame { .. }, Invocation::FrameMap) => {
            let (_, vs) = extra(0)?;
            let rights = CapRights::from_raw(msg.mr(1)?).ok_or(fail(SyscallError::InvalidArgument, 1))?;
            let plan = vspace::decode_frame_map(mem, &cap, &vs, msg.mr(0)?, rights, msg.mr(2)?).map_err(|e| {
                let arg = match e {
                    SyscallError::InvalidCapability => 100,
                    SyscallError::AlignmentError | SyscallError::DeleteFirst | SyscallError::FailedLookup => 0,
                    SyscallError::InsufficientRights => 1,
                    _ => 1,
                };
                fail(e, arg)
            })?;
            vspace::invoke_map(mem, &plan);
            if plan.remap {
                kmem::flush_page(&plan.cap, msg.mr(0)?);
            }
            mem.store_cap(slot, plan.cap);
            ok
        }
        (Cap::PageTable { .. }, Invocation::PageTableMap) => {
            let (_, vs) = extra(0)?;
            let plan = vspace::decode_table_map(mem, &cap, &vs, msg.mr(0)?).map_err(|e| fail(e, 0))?;
            vspace::invoke_map(mem, &plan);
            mem.store_cap(slot, plan.cap);
            ok
        }
        // As seL4's X86PageUnmap: unmapping a frame cap removes its mapping of either
        // kind. An IO mapping goes the FrameUnmapIo way (entry cleared, IOTLB
        // invalidation completed before return); `vspace::unmap` never touches it.
        (Cap::Frame { mapping: Some(m), .. }, Invocation::FrameUnmap) if m.is_io() => {
            iospace::frame_io(msg, mem, slot, cap, Invocation::FrameUnmapIo, extra)
        }
        (Cap::Frame { .. }, Invocation::FrameUnmap) | (Cap::PageTable { .. }, Invocation::PageTableUnmap) => {
            if let Some((unmapped, vaddr)) = vspace::unmap(mem, &cap) {
                if matches!(cap, Cap::Frame { .. }) {
                    kmem::flush_page(&cap, vaddr);
                } else {
                    kmem::flush_all(&cap);
                }
                mem.store_cap(slot, unmapped);
            }
            ok
        }
        (Cap::Frame { paddr, mapping, .. }, Invocation::FrameGetAddress) => {
            Ok([paddr, mapping.map_or(0, |m| m.vaddr), 0, 0])
        }
        (Cap::Frame { .. }, Invocation::FrameMapIo | Invocation::FrameUnmapIo) => {
            iospace::frame_io(msg, mem, slot, cap, label, extra)
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}
