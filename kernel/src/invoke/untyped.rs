//! Untyped invocations: Retype into new objects in a run of empty CNode slots.

use core::mem::MaybeUninit;

use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::untyped::{self, RetypePlan, RetypeProgress};
use crate::thread::finalise::KernelObjects;
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::object::ObjectType;

use super::args::{fail, lookup_fail, Extra, Failure, Message, Outcome};

/// A checked Retype: the plan (in the caller's slot, not copied through the `Result`)
/// and its destinations, `plan.count` consecutive empty slots of one CNode.
pub struct Retype<'p> {
    plan: &'p RetypePlan,
    dests: Dests,
}

/// Consecutive CNode slots: the destinations of a Retype.
// Two words, built once and handed to both `decode_retype` and `invoke_retype`; a
// `Range::map` closure rebuilt for each costs Retype 9 guest instructions (`make bench`).
#[derive(Clone, Copy)]
struct Dests {
    next: SlotAddr,
    left: u64,
}

impl Iterator for Dests {
    type Item = SlotAddr;

    #[inline(always)]
    fn next(&mut self) -> Option<SlotAddr> {
        if self.left == 0 {
            return None;
        }
        let slot = self.next;
        self.next += 1 << SLOT_BITS;
        self.left -= 1;
        Some(slot)
    }

    #[inline(always)]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl DoubleEndedIterator for Dests {
    #[inline(always)]
    fn next_back(&mut self) -> Option<SlotAddr> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.next + (self.left << SLOT_BITS))
    }
}

impl ExactSizeIterator for Dests {}

/// Decodes `label` on the Untyped cap in `slot`: reads and checks everything, changes
/// nothing but `plan`, where the checked plan goes.
// Inlined into the dispatch, where this code was before the split: out of line,
// Retype costs 22 more guest instructions (`make bench`); with it, 20 fewer.
#[inline(always)]
pub fn decode<'p>(
    msg: &Message<'_>,
    mem: &DirectMemory,
    slot: SlotAddr,
    label: Invocation,
    extra: Extra<'_>,
    plan: &'p mut MaybeUninit<RetypePlan>,
) -> Result<Retype<'p>, Failure> {
    if label != Invocation::UntypedRetype {
        return Err(fail(SyscallError::IllegalOperation, 0));
    }
    let object_type = ObjectType::try_from(msg.mr(0)?).map_err(|_| fail(SyscallError::InvalidArgument, 0))?;
    if !untyped::is_supported(object_type) {
        return Err(fail(SyscallError::InvalidArgument, 0));
    }
    if matches!(object_type, ObjectType::Vcpu | ObjectType::GuestSpace) && !crate::arch::svm::available() {
        crate::warn!("retype: {object_type:?} needs a CPU with SVM and nested paging; this one has none");
        return Err(fail(SyscallError::IllegalOperation, 0));
    }
    let size_arg = u32::try_from(msg.mr(1)?).map_err(|_| fail(SyscallError::RangeError, 1))?;
    let (node_index, node_depth, offset, count) = (msg.mr(2)?, msg.mr(3)?, msg.mr(4)?, msg.mr(5)?);
    let (_, root) = extra(0)?;
    let node = if node_depth == 0 {
        root
    } else {
        let depth = u32::try_from(node_depth).map_err(|_| fail(SyscallError::RangeError, 3))?;
        let s = cnode::lookup_slot(mem, &root, node_index, depth).map_err(|e| lookup_fail(e, 2))?;
        mem.load(s).cap
    };
    let Cap::CNode { paddr, radix, .. } = node else {
        return Err(fail(SyscallError::InvalidCapability, 100));
    };
    let slots = 1u64 << radix;
    if offset >= slots || count > slots - offset {
        return Err(fail(SyscallError::RangeError, 4));
    }
    // Counting free domain ids is only needed (and only paid for) by IOSpaces.
    let dests = Dests { next: paddr + (offset << SLOT_BITS), left: count };
    let free_domains =
        if object_type == ObjectType::IoSpace { crate::iommu::iospace::free_domains() } else { u64::MAX };
    let checked = untyped::decode_retype(mem, slot, object_type, size_arg, count, dests, free_domains)
        .map_err(|e| fail(e, if e == SyscallError::DeleteFirst { 4 } else { 0 }))?;
    Ok(Retype { plan: plan.write(checked), dests })
}

/// Performs a decoded Retype of the Untyped cap in `slot`: one pass of its zeroing,
/// `Outcome::Restart` (progress kept in the untyped cap) until the last.
#[inline(always)]
pub fn invoke(mem: &mut DirectMemory, slot: SlotAddr, op: Retype<'_>) -> Outcome {
    match untyped::invoke_retype_bounded(mem, &mut KernelObjects, slot, op.plan, op.dests) {
        RetypeProgress::Done => Outcome::Done([0; REGISTER_MRS]),
        RetypeProgress::Preempted => Outcome::Restart,
    }
}
