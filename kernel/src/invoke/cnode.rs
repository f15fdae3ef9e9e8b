//! CNode invocations: Delete, Revoke, Copy, Mint, Move, Mutate, Rotate, Cancel.
//!
//! Cancel is CancelBadgedSends: it cancels the sends of one badge on an endpoint.

use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::{SlotAddr, SlotMemory};
use crate::object::endpoint;
use crate::thread::finalise::KernelObjects;
use crate::thread::ipc;
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{fail, lookup_fail, Extra, Failure, Message, Outcome};

/// A checked CNode invocation.
pub enum CNodeOp {
    /// Delete the cap in `target` (preemptible).
    Delete { target: SlotAddr },
    /// Revoke every cap derived from the one in `target` (preemptible).
    Revoke { target: SlotAddr },
    /// Copy or Mint: `cap`, derived from the one in `src`, goes into the empty `dest`.
    Copy { src: SlotAddr, dest: SlotAddr, cap: Cap },
    /// Move or Mutate: the cap in `src` leaves it and goes, as `cap`, into the empty `dest`.
    Move { src: SlotAddr, dest: SlotAddr, cap: Cap },
    /// Rotate: `pivot` goes to `dest`, `src` to `pivot`.
    Rotate { dest: SlotAddr, pivot: SlotAddr, src: SlotAddr },
    /// CancelBadgedSends of `badge` on the endpoint at `endpoint`.
    CancelBadgedSends { endpoint: u64, badge: u64 },
}

/// Decodes `label` on the CNode cap `cap`: reads and checks everything, changes nothing.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(
    msg: &Message<'_>,
    mem: &DirectMemory,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Result<CNodeOp, Failure> {
    match label {
        Invocation::CNodeDelete | Invocation::CNodeRevoke => {
            let target = slot_arg(mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            Ok(if label == Invocation::CNodeDelete { CNodeOp::Delete { target } } else { CNodeOp::Revoke { target } })
        }
        Invocation::CNodeCopy | Invocation::CNodeMint | Invocation::CNodeMove | Invocation::CNodeMutate => {
            let dest = slot_arg(mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            let (_, src_root) = extra(0)?;
            let src = slot_arg(mem, &src_root, msg.mr(2)?, msg.mr(3)?, 2)?;
            cnode::decode_empty(mem, dest).map_err(|e| fail(e, 0))?;
            if mem.load(src).cap.is_null() {
                return Err(fail(SyscallError::FailedLookup, 2));
            }
            match label {
                Invocation::CNodeCopy | Invocation::CNodeMint => {
                    let rights = CapRights::from_raw(msg.mr(4)?).ok_or(fail(SyscallError::InvalidArgument, 4))?;
                    let badge = if label == Invocation::CNodeMint { Some(msg.mr(5)?) } else { None };
                    let cap = cnode::decode_derive(mem, src, rights, badge).map_err(|e| fail(e, 2))?;
                    Ok(CNodeOp::Copy { src, dest, cap })
                }
                Invocation::CNodeMove => {
                    cnode::decode_movable(mem, src).map_err(|e| fail(e, 2))?;
                    Ok(CNodeOp::Move { src, dest, cap: mem.load(src).cap })
                }
                _ => {
                    let cap = cnode::decode_mutate(mem, src, msg.mr(4)?).map_err(|e| fail(e, 4))?;
                    Ok(CNodeOp::Move { src, dest, cap })
                }
            }
        }
        Invocation::CNodeRotate => {
            let dest = slot_arg(mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            let (_, pivot_root) = extra(0)?;
            let pivot = slot_arg(mem, &pivot_root, msg.mr(2)?, msg.mr(3)?, 2)?;
            let (_, src_root) = extra(1)?;
            let src = slot_arg(mem, &src_root, msg.mr(4)?, msg.mr(5)?, 4)?;
            cnode::decode_rotate(mem, dest, pivot, src).map_err(|e| fail(e, 2))?;
            Ok(CNodeOp::Rotate { dest, pivot, src })
        }
        Invocation::CNodeCancelBadgedSends => {
            let target = slot_arg(mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            match mem.load(target).cap {
                // As seL4 (hasCancelSendRights): only a cap with every right on the
                // endpoint may cancel other senders' messages; a send-only cap may not.
                Cap::Endpoint { rights, .. } if !endpoint::may_cancel_sends(rights) => {
                    Err(fail(SyscallError::IllegalOperation, 0))
                }
                Cap::Endpoint { paddr, badge, .. } if badge != 0 => {
                    Ok(CNodeOp::CancelBadgedSends { endpoint: paddr, badge })
                }
                Cap::Endpoint { .. } => Err(fail(SyscallError::IllegalOperation, 0)),
                _ => Err(fail(SyscallError::InvalidCapability, 0)),
            }
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded CNode invocation. Delete and Revoke stop after a bounded amount
/// of work and come back as `Outcome::Restart` until they are done.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(mem: &mut DirectMemory, op: CNodeOp) -> Outcome {
    let ok = Outcome::Done([0; REGISTER_MRS]);
    match op {
        CNodeOp::Delete { target } => {
            let mut budget = cnode::WORK_BATCH;
            if cnode::delete_bounded(mem, &mut KernelObjects, target, &mut budget) == cnode::Progress::Preempted {
                crate::debug!("delete: preempted after {} units of work; restarting", cnode::WORK_BATCH);
                return Outcome::Restart;
            }
            ok
        }
        CNodeOp::Revoke { target } => {
            if let cnode::RevokeProgress::Preempted { deleted } =
                cnode::revoke_bounded(mem, &mut KernelObjects, target, cnode::WORK_BATCH)
            {
                crate::debug!("revoke: preempted after {deleted} deletions; restarting");
                return Outcome::Restart;
            }
            ok
        }
        CNodeOp::Copy { src, dest, cap } => {
            cnode::invoke_copy(mem, src, dest, cap);
            ok
        }
        CNodeOp::Move { src, dest, cap } => {
            cnode::invoke_move(mem, src, dest, cap);
            ok
        }
        CNodeOp::Rotate { dest, pivot, src } => {
            // The swap case needs a private empty slot: the kernel's own scratch slot.
            cnode::invoke_rotate(mem, dest, pivot, src, scratch_slot());
            ok
        }
        CNodeOp::CancelBadgedSends { endpoint, badge } => {
            Outcome::Done([ipc::cancel_badged_sends(endpoint, badge), 0, 0, 0])
        }
    }
}

/// Resolves a (index, depth) slot argument against `root`.
fn slot_arg(mem: &DirectMemory, root: &Cap, index: u64, depth: u64, arg: u64) -> Result<SlotAddr, Failure> {
    let depth = u32::try_from(depth).map_err(|_| fail(SyscallError::RangeError, arg + 1))?;
    cnode::lookup_slot(mem, root, index, depth).map_err(|e| lookup_fail(e, arg))
}

/// A slot outside every CSpace, used only inside one Rotate.
fn scratch_slot() -> SlotAddr {
    #[repr(C, align(64))]
    struct Scratch([u64; 8]);
    static mut SCRATCH: Scratch = Scratch([0; 8]);
    let virt = core::ptr::addr_of!(SCRATCH) as u64;
    // The kernel image is mapped at KERNEL_VMA + physical address.
    virt - crate::arch::KERNEL_VMA
}
