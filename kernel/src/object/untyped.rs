//! Untyped memory and Retype.
//!
//! Untyped memory: Retype carves naturally aligned objects from the free part of an
//! untyped region (watermark `free_offset`), never overlapping live objects: the
//! watermark only resets when the untyped has no children left.

use abi::error::SyscallError;
use abi::object::ObjectType;
use abi::rights::CapRights;

use super::cap::{Cap, FrameSize};
use super::cte::{SlotAddr, SlotMemory};
use super::mdb;

/// Most objects one Retype creates.
pub const MAX_RETYPE_COUNT: u64 = 256;
/// Most bytes one Retype zeroes. Zeroing is the long part of a retype and the kernel
/// runs with interrupts off, so each call is bounded instead of preempted: 16 MiB is
/// about 4 M stores. Larger amounts take several calls.
pub const MAX_RETYPE_CLEAR_BYTES: u64 = 16 << 20;

/// A checked retype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetypePlan {
    /// Type of the new objects.
    pub object_type: ObjectType,
    /// Untyped size or CNode radix argument.
    pub size_arg: u32,
    /// log2 of each object's size.
    pub object_bits: u32,
    /// Physical address of the first object.
    pub first: u64,
    /// Number of objects.
    pub count: u64,
    /// Watermark after the retype.
    pub new_free_offset: u64,
}

/// Memory side effects of creating objects.
pub trait ObjectMemory {
    /// Zeroes `[paddr, paddr + len)`.
    fn zero(&mut self, paddr: u64, len: u64);
    /// Prepares a new VSpace root (copies the kernel's half).
    fn init_vspace(&mut self, pml4: u64);
    /// Prepares a new TCB: a user-mode register frame (starting at address 0 until
    /// WriteRegisters says otherwise) and the clean FPU state.
    fn init_tcb(&mut self, tcb: u64);
    /// Domain ids still free for new IOSpaces.
    fn free_domains(&self) -> u64;
    /// Allocates a domain id and tells the translation depth for a new IOSpace whose
    /// root table is at `root`.
    fn new_iospace(&mut self, root: u64) -> (u16, u8);
    /// Prepares a new VCPU (its VMCB's fixed controls). Only kernels with
    /// virtualization create VCPUs (see `invoke::untyped`).
    fn init_vcpu(&mut self, _vcpu: u64) {}
    /// Prepares a new GuestSpace root (a live translation root; no kernel half).
    fn init_guest_space(&mut self, _root: u64) {}
}

/// Checks a retype of `count` objects of `object_type` from the untyped in `slot` into
/// the given destination slots (all must be empty).
pub fn decode_retype(
    mem: &impl SlotMemory,
    slot: SlotAddr,
    object_type: ObjectType,
    size_arg: u32,
    count: u64,
    dest: impl Iterator<Item = SlotAddr>,
    free_domains: u64,
) -> Result<RetypePlan, SyscallError> {
    let Cap::Untyped { paddr, size_bits, is_device, free_offset } = mem.load(slot).cap else {
        return Err(SyscallError::InvalidCapability);
    };
    if count == 0 || count > MAX_RETYPE_COUNT {
        return Err(SyscallError::RangeError);
    }
    let object_bits = object_type.size_bits(size_arg).ok_or(SyscallError::RangeError)?;
    if is_device && !matches!(object_type, ObjectType::Untyped | ObjectType::Frame4K | ObjectType::Frame2M) {
        return Err(SyscallError::InvalidArgument);
    }
    if object_bits > u32::from(size_bits) {
        return Err(SyscallError::NotEnoughMemory);
    }
    for d in dest {
        if !mem.load(d).cap.is_null() {
            return Err(SyscallError::DeleteFirst);
        }
    }
    let watermark = if mdb::has_children(mem, slot) { free_offset } else { 0 };
    let align = 1u64 << object_bits;
    let start = watermark.checked_add(align - 1).ok_or(SyscallError::NotEnoughMemory)? & !(align - 1);
    let total = count.checked_mul(align).ok_or(SyscallError::NotEnoughMemory)?;
    let end = start.checked_add(total).ok_or(SyscallError::NotEnoughMemory)?;
    if end > 1u64 << size_bits {
        return Err(SyscallError::NotEnoughMemory);
    }
    if !is_device && object_type != ObjectType::Untyped && total > MAX_RETYPE_CLEAR_BYTES {
        return Err(SyscallError::RangeError);
    }
    // IOMMU objects only from RAM: device memory is never part of DMA translation.
    if is_device && matches!(object_type, ObjectType::IoSpace | ObjectType::IoPageTable) {
        return Err(SyscallError::InvalidArgument);
    }
    if object_type == ObjectType::IoSpace && count > free_domains {
        return Err(SyscallError::NotEnoughMemory);
    }
    Ok(RetypePlan { object_type, size_arg, object_bits, first: paddr + start, count, new_free_offset: end })
}

/// The cap for object `paddr` of a checked plan.
fn new_cap(plan: &RetypePlan, paddr: u64, is_device: bool) -> Cap {
    match plan.object_type {
        ObjectType::Untyped => Cap::Untyped { paddr, size_bits: plan.object_bits as u8, is_device, free_offset: 0 },
        ObjectType::Tcb => Cap::Tcb { paddr },
        ObjectType::Endpoint => Cap::Endpoint { paddr, badge: 0, rights: CapRights::ALL },
        ObjectType::Notification => Cap::Notification { paddr, badge: 0, rights: CapRights::ALL },
        ObjectType::CNode => Cap::CNode { paddr, radix: plan.size_arg as u8, guard_bits: 0, guard: 0 },
        ObjectType::Frame4K | ObjectType::Frame2M => Cap::Frame {
            paddr,
            size: if plan.object_type == ObjectType::Frame2M { FrameSize::Large } else { FrameSize::Small },
            rights: CapRights::READ.union(CapRights::WRITE),
            is_device,
            mapping: None,
        },
        ObjectType::PageTable => Cap::PageTable { paddr, level: 1, mapping: None },
        ObjectType::PageDirectory => Cap::PageTable { paddr, level: 2, mapping: None },
        ObjectType::Pdpt => Cap::PageTable { paddr, level: 3, mapping: None },
        ObjectType::Pml4 => Cap::VSpace { paddr },
        ObjectType::IoSpace => Cap::Null, // filled in by invoke_retype (needs a domain id)
        // The level is fixed when the table is installed into an IOSpace.
        ObjectType::IoPageTable => Cap::IoPageTable { paddr, level: 0, mapping: None },
        ObjectType::Vcpu => Cap::Vcpu { paddr },
        ObjectType::GuestSpace => Cap::GuestSpace { paddr },
    }
}

/// Whether the kernel can create `object_type` yet.
pub fn is_supported(_object_type: ObjectType) -> bool {
    true
}

/// Performs a checked retype: zeroes the memory, moves the watermark and inserts the
/// new caps as children of the untyped, in `dest` order.
pub fn invoke_retype(
    mem: &mut impl SlotMemory,
    om: &mut impl ObjectMemory,
    slot: SlotAddr,
    plan: &RetypePlan,
    dest: impl DoubleEndedIterator<Item = SlotAddr> + ExactSizeIterator,
) {
    let mut cte = mem.load(slot);
    let Cap::Untyped { paddr, size_bits, is_device, .. } = cte.cap else {
        unreachable!("decode_retype checked the cap type");
    };
    let size = 1u64 << plan.object_bits;
    if !is_device && plan.object_type != ObjectType::Untyped {
        om.zero(plan.first, size * plan.count);
    }
    cte.cap = Cap::Untyped { paddr, size_bits, is_device, free_offset: plan.new_free_offset };
    mem.store(slot, cte);
    // Insert in reverse so the children end up in `dest` order right after the untyped.
    // The destinations are walked backwards, not copied into a buffer to reverse: a
    // zeroed 256-entry array cost every Retype 277 guest instructions of memset.
    for (i, dest_slot) in dest.take(plan.count as usize).enumerate().rev() {
        let object = plan.first + i as u64 * size;
        if plan.object_type == ObjectType::Pml4 {
            om.init_vspace(object);
        } else if plan.object_type == ObjectType::Tcb {
            om.init_tcb(object);
        } else if plan.object_type == ObjectType::Vcpu {
            om.init_vcpu(object);
        } else if plan.object_type == ObjectType::GuestSpace {
            om.init_guest_space(object);
        }
        let cap = if plan.object_type == ObjectType::IoSpace {
            let (domain, levels) = om.new_iospace(object);
            Cap::IoSpace { paddr: object, domain, levels }
        } else {
            new_cap(plan, object, is_device)
        };
        mdb::insert_child(mem, slot, dest_slot, cap, true, true);
    }
}
