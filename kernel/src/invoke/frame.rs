//! Frame and page-table invocations: Map, Unmap, GetAddress.
//!
//! MapIO / UnmapIO of a frame (and Unmap of an IO-mapped one) go to `iospace`.
//!
//! A checked map is a `vspace::MapPlan` of about 80 bytes: `decode` writes it into a
//! slot the caller owns and `FrameOp::Map` refers to it there, so it is not copied
//! through `Result<FrameOp, Failure>`.

use core::mem::MaybeUninit;

use crate::arch::kmem::{self, DirectMemory};
use crate::object::cap::{Cap, FrameSize};
use crate::object::cte::{SlotAddr, SlotMemory};
use crate::object::vspace;
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{fail, Extra, Failure, Message, Reply};
use super::iospace;

/// Handles `label` on the Frame or PageTable cap `cap` in `slot`: MapIO / UnmapIO go
/// to `iospace`, the rest is decoded, then invoked.
// Inlined into the dispatch, where this code was before the split: out of line,
// Map+Unmap costs 46 more guest instructions (`make bench`); inlined, 9 fewer.
#[inline(always)]
pub fn decode_and_invoke(
    msg: &Message<'_>,
    mem: &mut DirectMemory,
    slot: SlotAddr,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Reply {
    match (cap, label) {
        // As seL4's X86PageUnmap: unmapping a frame cap removes its mapping of either
        // kind. An IO mapping goes the FrameUnmapIo way (entry cleared, IOTLB
        // invalidation completed before return); `vspace::unmap` never touches it.
        (Cap::Frame { mapping: Some(m), .. }, Invocation::FrameUnmap) if m.is_io() => {
            iospace::frame_io(msg, mem, slot, cap, Invocation::FrameUnmapIo, extra)
        }
        (Cap::Frame { .. }, Invocation::FrameMapIo | Invocation::FrameUnmapIo) => {
            iospace::frame_io(msg, mem, slot, cap, label, extra)
        }
        _ => {
            let mut plan = MaybeUninit::uninit();
            let op = decode(msg, mem, cap, label, extra, &mut plan)?;
            Ok(invoke(mem, slot, cap, op))
        }
    }
}

/// A checked Frame or PageTable invocation (VSpace side).
enum FrameOp<'p> {
    /// Frame::Map at `vaddr`, or PageTable::Map (`vaddr` unused).
    Map { plan: &'p vspace::MapPlan, vaddr: u64 },
    /// Frame::Unmap or PageTable::Unmap of a VSpace mapping (or of none).
    Unmap,
    /// Frame::GetAddress: the physical address, the mapped address (0: none), the
    /// size in bytes and whether it is device memory.
    GetAddress { paddr: u64, vaddr: u64, bytes: u64, device: bool },
}

/// Decodes `label` on the Frame or PageTable cap `cap`: reads and checks everything,
/// changes nothing but `plan`, where a Map's plan goes.
#[inline(always)]
fn decode<'p>(
    msg: &Message<'_>,
    mem: &DirectMemory,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
    plan: &'p mut MaybeUninit<vspace::MapPlan>,
) -> Result<FrameOp<'p>, Failure> {
    match (cap, label) {
        (Cap::Frame { size, .. }, Invocation::FrameMap) => {
            let (_, vs) = extra(0)?;
            if size == FrameSize::Huge && !crate::arch::cpu::has_1g_pages() {
                // No 1 GiB pages on this CPU (CPUID PDPE1GB): the frame can still be
                // mapped for devices (MapIO), never split here.
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let rights = CapRights::from_raw(msg.mr(1)?).ok_or(fail(SyscallError::InvalidArgument, 1))?;
            let vaddr = msg.mr(0)?;
            let checked = vspace::decode_frame_map(mem, &cap, &vs, vaddr, rights, msg.mr(2)?).map_err(|e| {
                let arg = match e {
                    SyscallError::InvalidCapability => 100,
                    SyscallError::AlignmentError | SyscallError::DeleteFirst | SyscallError::FailedLookup => 0,
                    SyscallError::InsufficientRights => 1,
                    _ => 1,
                };
                fail(e, arg)
            })?;
            Ok(FrameOp::Map { plan: plan.write(checked), vaddr })
        }
        (Cap::PageTable { .. }, Invocation::PageTableMap) => {
            let (_, vs) = extra(0)?;
            let checked = vspace::decode_table_map(mem, &cap, &vs, msg.mr(0)?).map_err(|e| fail(e, 0))?;
            Ok(FrameOp::Map { plan: plan.write(checked), vaddr: 0 })
        }
        (Cap::Frame { .. }, Invocation::FrameUnmap) | (Cap::PageTable { .. }, Invocation::PageTableUnmap) => {
            Ok(FrameOp::Unmap)
        }
        (Cap::Frame { paddr, mapping, size, is_device, .. }, Invocation::FrameGetAddress) => {
            let vaddr = mapping.map_or(0, |m| m.vaddr);
            Ok(FrameOp::GetAddress { paddr, vaddr, bytes: 1 << size.bits(), device: is_device })
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded invocation of the Frame or PageTable cap `cap` in `slot`.
#[inline(always)]
fn invoke(mem: &mut DirectMemory, slot: SlotAddr, cap: Cap, op: FrameOp<'_>) -> [u64; REGISTER_MRS] {
    match op {
        FrameOp::Map { plan, vaddr } => {
            vspace::invoke_map(mem, plan);
            if plan.remap {
                kmem::flush_page(&plan.cap, vaddr);
            }
            mem.store_cap(slot, plan.cap);
        }
        FrameOp::Unmap => {
            if let Some((unmapped, vaddr)) = vspace::unmap(mem, &cap) {
                if matches!(cap, Cap::Frame { .. }) {
                    kmem::flush_page(&cap, vaddr);
                } else {
                    kmem::flush_all(&cap);
                }
                mem.store_cap(slot, unmapped);
            }
        }
        FrameOp::GetAddress { paddr, vaddr, bytes, device } => return [paddr, vaddr, bytes, u64::from(device)],
    }
    [0; REGISTER_MRS]
}
