//! Capability invocation (`Call` on a kernel object): look up the invoked cap and its
//! extra caps, read the message, decode (checks only), then invoke (cannot fail).
//! Errors leave every object unchanged and come back as one code plus a detail word.

pub mod debug;
pub mod iospace;
pub mod irq;
pub mod pci;
pub mod tcb;

use crate::arch::kmem::{self, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::object::cap::Cap;
use crate::object::cnode::{self, LookupError};
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::{untyped, vspace};
use crate::{ipc, thread};
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::{CAPS_OFFSET, MSG_OFFSET, REGISTER_MRS};
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;

/// What an invocation needs of the calling thread.
#[derive(Clone, Copy, Debug)]
struct Current {
    /// Its TCB.
    tcb: u64,
    /// CSpace root.
    cspace: Cap,
    /// Physical address of its IPC buffer (0 if it has none).
    ipc_buffer_paddr: u64,
}

/// A failed invocation: the error and a detail word (argument index or lookup bits left).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error.
    pub error: SyscallError,
    /// Which argument, or how many address bits were left.
    pub detail: u64,
}

/// Looks up extra cap `k` of the invocation being decoded.
pub type Extra<'a> = &'a dyn Fn(usize) -> Result<(SlotAddr, Cap), Failure>;

/// Most frames one MapBatch/UnmapBatch names.
pub const MAX_BATCH: usize = 64;

/// Not an error: the operation made progress and must be re-executed (a preemption
/// point). The syscall layer rewinds the user's RIP so the same call runs again.
pub const RESTART: Failure = Failure { error: SyscallError::IllegalOperation, detail: u64::MAX };

pub fn fail(error: SyscallError, detail: u64) -> Failure {
    Failure { error, detail }
}

fn lookup_fail(e: LookupError, arg: u64) -> Failure {
    fail(e.into(), arg)
}

/// The message of one invocation.
#[allow(missing_docs)]
pub struct Message<'a> {
    pub info: MessageInfo,
    pub frame: &'a TrapFrame,
    pub ipc_buffer: u64,
}

impl Message<'_> {
    /// Message register `i`, or TruncatedMessage naming it if the sender sent fewer.
    pub fn mr(&self, i: usize) -> Result<u64, Failure> {
        if i >= usize::from(self.info.length) {
            return Err(fail(SyscallError::TruncatedMessage, i as u64));
        }
        Ok(match i {
            0 => self.frame.rdx,
            1 => self.frame.r10,
            2 => self.frame.r8,
            3 => self.frame.r9,
            _ if self.ipc_buffer == 0 => return Err(fail(SyscallError::TruncatedMessage, i as u64)),
            _ => kmem::ipc_word(self.ipc_buffer, MSG_OFFSET / 8 + i),
        })
    }

    /// Capability address of extra cap `k`.
    fn extra_cptr(&self, k: usize) -> Result<u64, Failure> {
        if k >= usize::from(self.info.extra_caps) || self.ipc_buffer == 0 {
            return Err(fail(SyscallError::InvalidCapability, 100 + k as u64));
        }
        Ok(kmem::ipc_word(self.ipc_buffer, CAPS_OFFSET / 8 + k))
    }
}

/// Handles `Call` on the kernel object `cap` (found in `slot` by the syscall layer):
/// returns result registers (rdx, r10, r8, r9) or a failure.
pub fn call(frame: &TrapFrame, slot: SlotAddr, cap: Cap) -> Result<[u64; REGISTER_MRS], Failure> {
    let me = thread::current();
    let current = Current { tcb: me, cspace: ipc::cspace_of(me), ipc_buffer_paddr: thread::ipc_buffer(me) };
    let info = MessageInfo::from_word(frame.rsi).ok_or(fail(SyscallError::InvalidArgument, 1))?;
    let mut mem = DirectMemory;
    let msg = Message { info, frame, ipc_buffer: current.ipc_buffer_paddr };
    let extra = |k: usize| -> Result<(SlotAddr, Cap), Failure> {
        let cptr = msg.extra_cptr(k)?;
        // As for the invoked cap: a single-level CSpace needs no resolve.
        if let Some(found) = crate::fastpath::single_level_cap(me, cptr) {
            return Ok(found);
        }
        cnode::lookup_cap(&DirectMemory, &current.cspace, cptr).map_err(|e| lookup_fail(e, 100 + k as u64))
    };
    let label = Invocation::try_from(info.label).map_err(|_| fail(SyscallError::IllegalOperation, 0))?;
    let ok = Ok([0; REGISTER_MRS]);
    match (cap, label) {
        (Cap::Untyped { .. }, Invocation::UntypedRetype) => {
            let object_type = ObjectType::try_from(msg.mr(0)?).map_err(|_| fail(SyscallError::InvalidArgument, 0))?;
            if !untyped::is_supported(object_type) {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            let size_arg = u32::try_from(msg.mr(1)?).map_err(|_| fail(SyscallError::RangeError, 1))?;
            let (node_index, node_depth, offset, count) = (msg.mr(2)?, msg.mr(3)?, msg.mr(4)?, msg.mr(5)?);
            let (_, root) = extra(0)?;
            let node = if node_depth == 0 {
                root
            } else {
                let depth = u32::try_from(node_depth).map_err(|_| fail(SyscallError::RangeError, 3))?;
                let s = cnode::lookup_slot(&mem, &root, node_index, depth).map_err(|e| lookup_fail(e, 2))?;
                mem.load(s).cap
            };
            let Cap::CNode { paddr, radix, .. } = node else {
                return Err(fail(SyscallError::InvalidCapability, 100));
            };
            let slots = 1u64 << radix;
            if offset >= slots || count > slots - offset {
                return Err(fail(SyscallError::RangeError, 4));
            }
            let dests = || (offset..offset + count).map(|i| paddr + (i << SLOT_BITS));
            // Counting free domain ids is only needed (and only paid for) by IOSpaces.
            let free_domains =
                if object_type == ObjectType::IoSpace { crate::iospace::free_domains() } else { u64::MAX };
            let plan = untyped::decode_retype(&mem, slot, object_type, size_arg, count, dests(), free_domains)
                .map_err(|e| fail(e, if e == SyscallError::DeleteFirst { 4 } else { 0 }))?;
            untyped::invoke_retype(&mut mem, &mut DirectMemory, slot, &plan, dests());
            ok
        }
        (Cap::CNode { .. }, Invocation::CNodeDelete | Invocation::CNodeRevoke) => {
            let target = slot_arg(&mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            if label == Invocation::CNodeDelete {
                let mut budget = cnode::WORK_BATCH;
                if cnode::delete_bounded(&mut mem, &mut DirectMemory, target, &mut budget) == cnode::Progress::Preempted
                {
                    crate::debug!("delete: preempted after {} units of work; restarting", cnode::WORK_BATCH);
                    return Err(RESTART);
                }
            } else if let cnode::RevokeProgress::Preempted { deleted } =
                cnode::revoke_bounded(&mut mem, &mut DirectMemory, target, cnode::WORK_BATCH)
            {
                crate::debug!("revoke: preempted after {deleted} deletions; restarting");
                return Err(RESTART);
            }
            ok
        }
        (
            Cap::CNode { .. },
            Invocation::CNodeCopy | Invocation::CNodeMint | Invocation::CNodeMove | Invocation::CNodeMutate,
        ) => {
            let dest = slot_arg(&mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            let (_, src_root) = extra(0)?;
            let src = slot_arg(&mem, &src_root, msg.mr(2)?, msg.mr(3)?, 2)?;
            cnode::decode_empty(&mem, dest).map_err(|e| fail(e, 0))?;
            if mem.load(src).cap.is_null() {
                return Err(fail(SyscallError::FailedLookup, 2));
            }
            match label {
                Invocation::CNodeCopy | Invocation::CNodeMint => {
                    let rights = CapRights::from_raw(msg.mr(4)?).ok_or(fail(SyscallError::InvalidArgument, 4))?;
                    let badge = if label == Invocation::CNodeMint { Some(msg.mr(5)?) } else { None };
                    let derived = cnode::decode_derive(&mem, src, rights, badge).map_err(|e| fail(e, 2))?;
                    cnode::invoke_copy(&mut mem, src, dest, derived);
                }
                Invocation::CNodeMove => {
                    cnode::decode_movable(&mem, src).map_err(|e| fail(e, 2))?;
                    let moved = mem.load(src).cap;
                    cnode::invoke_move(&mut mem, src, dest, moved);
                }
                _ => {
                    let mutated = cnode::decode_mutate(&mem, src, msg.mr(4)?).map_err(|e| fail(e, 4))?;
                    cnode::invoke_move(&mut mem, src, dest, mutated);
                }
            }
            ok
        }
        (Cap::CNode { .. }, Invocation::CNodeRotate) => {
            let dest = slot_arg(&mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            let (_, pivot_root) = extra(0)?;
            let pivot = slot_arg(&mem, &pivot_root, msg.mr(2)?, msg.mr(3)?, 2)?;
            let (_, src_root) = extra(1)?;
            let src = slot_arg(&mem, &src_root, msg.mr(4)?, msg.mr(5)?, 4)?;
            cnode::decode_rotate(&mem, dest, pivot, src).map_err(|e| fail(e, 2))?;
            // The swap case needs a private empty slot: the kernel's own scratch slot.
            cnode::invoke_rotate(&mut mem, dest, pivot, src, scratch_slot());
            ok
        }
        (Cap::Frame { .. }, Invocation::FrameMap) => {
            let (_, vs) = extra(0)?;
            let rights = CapRights::from_raw(msg.mr(1)?).ok_or(fail(SyscallError::InvalidArgument, 1))?;
            let plan = vspace::decode_frame_map(&mem, &cap, &vs, msg.mr(0)?, rights, msg.mr(2)?).map_err(|e| {
                let arg = match e {
                    SyscallError::InvalidCapability => 100,
                    SyscallError::AlignmentError | SyscallError::DeleteFirst | SyscallError::FailedLookup => 0,
                    SyscallError::InsufficientRights => 1,
                    _ => 1,
                };
                fail(e, arg)
            })?;
            vspace::invoke_map(&mut mem, &plan);
            if plan.remap {
                kmem::flush_page(&plan.cap, msg.mr(0)?);
            }
            set_cap(&mut mem, slot, plan.cap);
            ok
        }
        (Cap::PageTable { .. }, Invocation::PageTableMap) => {
            let (_, vs) = extra(0)?;
            let plan = vspace::decode_table_map(&mem, &cap, &vs, msg.mr(0)?).map_err(|e| fail(e, 0))?;
            vspace::invoke_map(&mut mem, &plan);
            set_cap(&mut mem, slot, plan.cap);
            ok
        }
        // As seL4's X86PageUnmap: unmapping a frame cap removes its mapping of either
        // kind. An IO mapping goes the FrameUnmapIo way (entry cleared, IOTLB
        // invalidation completed before return); `vspace::unmap` never touches it.
        (Cap::Frame { mapping: Some(m), .. }, Invocation::FrameUnmap) if m.is_io() => {
            iospace::invoke(&msg, &mut mem, slot, cap, Invocation::FrameUnmapIo, &current.cspace, &extra)
        }
        (Cap::Frame { .. }, Invocation::FrameUnmap) | (Cap::PageTable { .. }, Invocation::PageTableUnmap) => {
            if let Some((unmapped, vaddr)) = vspace::unmap(&mut mem, &cap) {
                if matches!(cap, Cap::Frame { .. }) {
                    kmem::flush_page(&cap, vaddr);
                } else {
                    kmem::flush_all(&cap);
                }
                set_cap(&mut mem, slot, unmapped);
            }
            ok
        }
        (Cap::Frame { paddr, mapping, .. }, Invocation::FrameGetAddress) => {
            Ok([paddr, mapping.map_or(0, |m| m.vaddr), 0, 0])
        }
        (Cap::CNode { .. }, Invocation::CNodeCancelBadgedSends) => {
            let target = slot_arg(&mem, &cap, msg.mr(0)?, msg.mr(1)?, 0)?;
            match mem.load(target).cap {
                // As seL4 (hasCancelSendRights): only a cap with every right on the
                // endpoint may cancel other senders' messages; a send-only cap may not.
                Cap::Endpoint { rights, .. } if !rights.contains(CapRights::ALL) => {
                    Err(fail(SyscallError::IllegalOperation, 0))
                }
                Cap::Endpoint { paddr, badge, .. } if badge != 0 => {
                    Ok([ipc::cancel_badged_sends(paddr, badge), 0, 0, 0])
                }
                Cap::Endpoint { .. } => Err(fail(SyscallError::IllegalOperation, 0)),
                _ => Err(fail(SyscallError::InvalidCapability, 0)),
            }
        }
        (
            Cap::IrqControl | Cap::IrqHandler { .. } | Cap::MsiHandler { .. } | Cap::IoPortControl | Cap::IoPort { .. },
            _,
        ) => irq::invoke(&msg, &mut mem, slot, cap, label, &extra),
        (Cap::IoSpace { .. } | Cap::IoPageTable { .. }, _)
        | (Cap::Frame { .. }, Invocation::FrameMapIo | Invocation::FrameUnmapIo) => {
            iospace::invoke(&msg, &mut mem, slot, cap, label, &current.cspace, &extra)
        }
        (Cap::PciDevice { segment, requester_id }, _) => pci::invoke(&msg, segment, requester_id, label),
        (Cap::Tcb { paddr: target }, _) => tcb::invoke(&msg, current.tcb, target, label, &extra),
        (Cap::DebugConsole, _) => debug::invoke(&msg, label),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Resolves a (index, depth) slot argument against `root`.
fn slot_arg(mem: &DirectMemory, root: &Cap, index: u64, depth: u64, arg: u64) -> Result<SlotAddr, Failure> {
    let depth = u32::try_from(depth).map_err(|_| fail(SyscallError::RangeError, arg + 1))?;
    cnode::lookup_slot(mem, root, index, depth).map_err(|e| lookup_fail(e, arg))
}

fn set_cap(mem: &mut DirectMemory, slot: SlotAddr, cap: Cap) {
    mem.store_cap(slot, cap);
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
