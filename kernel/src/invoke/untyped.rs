//! Untyped invocations: Retype into new objects in a run of empty CNode slots.

use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::untyped;
use crate::thread::finalise::KernelObjects;
use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::object::ObjectType;

use super::args::{fail, lookup_fail, Extra, Message, Reply};

/// Handles `label` on the Untyped cap in `slot`.
// Inlined into the dispatch, where this code was before the split: out of line,
// Retype costs 22 more guest instructions (`make bench`); with it, 20 fewer.
#[inline(always)]
pub fn invoke(msg: &Message<'_>, mem: &mut DirectMemory, slot: SlotAddr, label: Invocation, extra: Extra<'_>) -> Reply {
    if label != Invocation::UntypedRetype {
        return Err(fail(SyscallError::IllegalOperation, 0));
    }
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
    let dests = || (offset..offset + count).map(|i| paddr + (i << SLOT_BITS));
    // Counting free domain ids is only needed (and only paid for) by IOSpaces.
    let free_domains =
        if object_type == ObjectType::IoSpace { crate::iommu::iospace::free_domains() } else { u64::MAX };
    let plan = untyped::decode_retype(mem, slot, object_type, size_arg, count, dests(), free_domains)
        .map_err(|e| fail(e, if e == SyscallError::DeleteFirst { 4 } else { 0 }))?;
    untyped::invoke_retype(mem, &mut KernelObjects, slot, &plan, dests());
    Ok([0; REGISTER_MRS])
}
