//! Untyped memory and Retype.
//!
//! Untyped memory: Retype carves naturally aligned objects from the free part of an
//! untyped region (watermark `free_offset`), never overlapping live objects: the
//! watermark only resets when the untyped has no children left.
//!
//! Zeroing the new objects is the long part of a Retype and the kernel runs with
//! interrupts off, so it is preemptible (as seL4 resets untyped memory in chunks with
//! its progress in the untyped cap): [`invoke_retype_bounded`] zeroes at most
//! [`CLEAR_PASS_BYTES`] per call, in [`CLEAR_CHUNK_BYTES`] chunks, stopping early at a
//! chunk boundary when an interrupt is pending, and records the run zeroed so far in the
//! untyped cap ([`Cleared`]); the restarted system call continues from there. Objects
//! are created, and the watermark moves, only in the call that finishes the zeroing, so
//! no cap ever names memory that is not fully zeroed.

use abi::error::SyscallError;
use abi::object::ObjectType;
use abi::rights::CapRights;

use super::cap::{Cap, FrameSize};
use super::cte::{SlotAddr, SlotMemory};
use super::mdb;

/// Most objects one Retype creates.
pub const MAX_RETYPE_COUNT: u64 = 256;
/// Most bytes one Retype zeroes (16 MiB: 128 passes; larger amounts take several
/// Retypes).
pub const MAX_RETYPE_CLEAR_BYTES: u64 = 16 << 20;
/// Bytes zeroed between two checks for a pending interrupt (2,048 `rep stosq` stores).
pub const CLEAR_CHUNK_BYTES: u64 = 16 << 10;
/// Most bytes one pass zeroes before the call returns to user mode to be restarted:
/// 16,384 stores, about 18,000 guest instructions with the restart (`make bench` part
/// `latency`), the order of a Delete or Revoke batch (`cnode::WORK_BATCH`).
pub const CLEAR_PASS_BYTES: u64 = 128 << 10;

/// A run of an untyped's memory known to be zero, kept in the untyped cap between the
/// passes of a preempted Retype: `len` bytes (a multiple of [`CLEAR_CHUNK_BYTES`]) from
/// offset `start`, at or above the watermark the Retype started from.
///
/// It stays true until a Retype from this cap completes (which clears it: new objects
/// may then lie in the run): only a completed Retype creates children, so no object
/// other than the ones of that Retype can overlap the run while it is recorded. A
/// Revoke of the untyped only deletes children (the run stays zero); deleting or
/// moving the cap takes the record along. An untyped cap is never copied, so no other
/// cap can retype the run in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    /// Offset of the run from the untyped's base.
    pub start: u64,
    /// Bytes zeroed from `start` (0: no record).
    pub len: u64,
}

impl Cleared {
    /// No record.
    pub const NONE: Cleared = Cleared { start: 0, len: 0 };
}

/// Outcome of one pass of a Retype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetypeProgress {
    /// The objects exist.
    Done,
    /// Part of the memory is zeroed (recorded in the untyped cap); call again.
    Preempted,
}

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
    /// An interrupt is waiting to be taken: a long zeroing stops at its next chunk
    /// boundary and returns to user mode (where it is taken) to be restarted.
    fn interrupt_pending(&self) -> bool {
        false
    }
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
    let Cap::Untyped { paddr, size_bits, is_device, free_offset, .. } = mem.load(slot).cap else {
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
        ObjectType::Untyped => {
            Cap::Untyped { paddr, size_bits: plan.object_bits as u8, is_device, free_offset: 0, cleared: Cleared::NONE }
        }
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

/// Performs a checked retype to completion, however long its zeroing (host tests; the
/// kernel calls [`invoke_retype_bounded`] and restarts the system call).
pub fn invoke_retype(
    mem: &mut impl SlotMemory,
    om: &mut impl ObjectMemory,
    slot: SlotAddr,
    plan: &RetypePlan,
    dest: impl DoubleEndedIterator<Item = SlotAddr> + ExactSizeIterator + Clone,
) {
    while invoke_retype_bounded(mem, om, slot, plan, dest.clone()) == RetypeProgress::Preempted {}
}

/// Bytes of a `total`-byte run from offset `start` already zero: the recorded run if it
/// starts there (its memory is zero and lies at or above the watermark: see
/// [`Cleared`]), else none.
fn resumed_at(cleared: Cleared, start: u64, total: u64) -> u64 {
    if cleared.len != 0 && cleared.start == start {
        cleared.len.min(total)
    } else {
        0
    }
}

/// Zeroes `[first + done, first + total)` in chunks, at most [`CLEAR_PASS_BYTES`] and
/// stopping at a chunk boundary if an interrupt is pending (at least one chunk).
/// Returns how much is zero if some is left, `None` if all of it is.
#[inline(never)]
fn zero_one_pass(om: &mut impl ObjectMemory, first: u64, total: u64, mut done: u64) -> Option<u64> {
    let mut pass = 0;
    while done < total {
        let len = CLEAR_CHUNK_BYTES.min(total - done);
        om.zero(first + done, len);
        done += len;
        pass += len;
        if done < total && (pass >= CLEAR_PASS_BYTES || om.interrupt_pending()) {
            return Some(done);
        }
    }
    None
}

/// One pass of a checked retype: zeroes what earlier passes left, at most
/// [`CLEAR_PASS_BYTES`] and stopping at a chunk boundary if an interrupt is pending;
/// if memory is left, records the zeroed run in the untyped cap and returns
/// `Preempted`. Otherwise moves the watermark, clears the record and inserts the new
/// caps as children of the untyped, in `dest` order.
pub fn invoke_retype_bounded(
    mem: &mut impl SlotMemory,
    om: &mut impl ObjectMemory,
    slot: SlotAddr,
    plan: &RetypePlan,
    dest: impl DoubleEndedIterator<Item = SlotAddr> + ExactSizeIterator,
) -> RetypeProgress {
    let mut cte = mem.load(slot);
    let Cap::Untyped { paddr, size_bits, is_device, free_offset, cleared } = cte.cap else {
        unreachable!("decode_retype checked the cap type");
    };
    let size = 1u64 << plan.object_bits;
    if !is_device && plan.object_type != ObjectType::Untyped {
        let total = size * plan.count;
        if total <= CLEAR_CHUNK_BYTES {
            // The common small Retype: one chunk, no record (whatever one says).
            om.zero(plan.first, total);
        } else {
            let start = plan.first - paddr;
            if let Some(len) = zero_one_pass(om, plan.first, total, resumed_at(cleared, start, total)) {
                cte.cap = Cap::Untyped { paddr, size_bits, is_device, free_offset, cleared: Cleared { start, len } };
                mem.store(slot, cte);
                return RetypeProgress::Preempted;
            }
        }
    }
    cte.cap = Cap::Untyped { paddr, size_bits, is_device, free_offset: plan.new_free_offset, cleared: Cleared::NONE };
    // Objects are made last to first (an IOSpace's domain id follows that order), and
    // the caps linked after the untyped in `dest` order, each slot written once. The
    // destinations are walked backwards, not copied into a buffer to reverse: a zeroed
    // 256-entry array cost every Retype 277 guest instructions of memset.
    let objects = dest.take(plan.count as usize).enumerate().rev().map(|(i, dest_slot)| {
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
        (dest_slot, cap)
    });
    mdb::insert_children(mem, slot, cte, objects);
    RetypeProgress::Done
}
