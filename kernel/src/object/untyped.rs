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
//! are made only once the zeroing is complete, so no cap ever names memory that is not
//! fully zeroed, and then at most [`CREATE_BATCH`] per pass, the count made also kept
//! in the untyped cap.

use abi::error::SyscallError;
use abi::object::ObjectType;
use abi::rights::CapRights;

use super::cap::{Cap, FrameSize};
use super::cte::{SlotAddr, SlotMemory};
use super::mdb;

/// Most objects one Retype creates.
pub const MAX_RETYPE_COUNT: u64 = 256;
/// Most bytes one Retype zeroes: 1 GiB, one frame of the largest size (8,192 passes of
/// [`CLEAR_PASS_BYTES`], each preemptible; larger amounts take several Retypes).
pub const MAX_RETYPE_CLEAR_BYTES: u64 = 1 << 30;
/// Bytes zeroed between two checks for a pending interrupt (2,048 `rep stosq` stores).
pub const CLEAR_CHUNK_BYTES: u64 = 16 << 10;
/// Most bytes one pass zeroes before the call returns to user mode to be restarted:
/// 16,384 stores, about 18,000 guest instructions with the restart (`make bench` part
/// `latency`), the order of a Delete or Revoke batch (`cnode::WORK_BATCH`).
pub const CLEAR_PASS_BYTES: u64 = 128 << 10;
/// Most objects one pass creates: a Retype of more makes them in several passes, from
/// the last to the first (32 TCBs, the costliest kind, are about 10,000 guest
/// instructions).
pub const CREATE_BATCH: u64 = 32;

/// The progress of a preempted Retype, kept in the untyped cap between its passes: a
/// run of the untyped's memory from offset `start`, in one of two phases.
///
/// - Zeroing (`created` 0): `len` bytes from `start` (a multiple of
///   [`CLEAR_CHUNK_BYTES`]) are zero and at or above the watermark.
/// - Creating (`created` > 0): the whole run, `start` to the watermark (moved over it
///   when creation began), was zeroed (unless the objects are untypeds), and its last
///   `created` objects exist, of the type and size recorded with the count; the
///   objects below them do not yet and their memory is still zero. Only a request
///   for that type and size continues it: a cap of another kind at the address of the
///   lowest one made (a frame retyped from a child untyped, say) proves nothing about
///   the memory below it.
///
/// Every pass of a Retype from this cap writes the record (its own progress) or clears
/// it (when it completes), and only those passes create children. So a record
/// describes the newest Retype activity on the cap: no object other than the ones of
/// that Retype was made since, and none overlaps the zero memory it names. A Revoke of
/// the untyped only deletes objects (zero memory stays zero); deleting or moving the
/// cap takes the record along. An untyped cap is never copied, so no other cap can
/// retype the run in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    /// Offset of the run from the untyped's base.
    pub start: u64,
    /// The phase and its count as stored (24 bits: see [`Cleared::raw`]).
    word: u64,
}

/// [`Cleared::raw`]: the creating phase (else zeroing, the count in 4 KiB pages).
const CREATING: u64 = 1 << 23;
/// Creating: the count made, bits 0..9 (at most [`MAX_RETYPE_COUNT`]).
const CREATED_MASK: u64 = 0x1ff;
/// Creating: the object type's raw value, bits 9..13.
const KIND_SHIFT: u32 = 9;
/// Creating: log2 of the objects' size, bits 13..19.
const BITS_SHIFT: u32 = 13;
static_assertions::const_assert!(MAX_RETYPE_COUNT <= CREATED_MASK);
static_assertions::const_assert!(ObjectType::Frame1G.raw() < 1 << (BITS_SHIFT - KIND_SHIFT));
static_assertions::const_assert!(ObjectType::ALL.len() <= 1 << (BITS_SHIFT - KIND_SHIFT));
static_assertions::const_assert!((64u64 << BITS_SHIFT) <= CREATING);
// A zeroing record counts 4 KiB pages below the CREATING bit.
static_assertions::const_assert!(MAX_RETYPE_CLEAR_BYTES >> 12 < CREATING);

impl Cleared {
    /// No record.
    pub const NONE: Cleared = Cleared { start: 0, word: 0 };

    /// Zeroing: `len` bytes (a multiple of 4 KiB, under 32 GiB) zero from `start`.
    pub const fn zeroed(start: u64, len: u64) -> Cleared {
        Cleared { start, word: len >> 12 }
    }

    /// Creating: the last `created` objects (at most [`MAX_RETYPE_COUNT`]) of
    /// `object_type`, each `1 << object_bits` bytes, exist.
    pub const fn creating(start: u64, created: u64, object_type: ObjectType, object_bits: u32) -> Cleared {
        let kind = (object_type.raw() << KIND_SHIFT) | ((object_bits as u64) << BITS_SHIFT);
        Cleared { start, word: CREATING | kind | created }
    }

    /// Creating: whether the objects made are of `object_type`, `1 << object_bits`
    /// bytes each (false if zeroing, or no record).
    pub const fn creates(&self, object_type: ObjectType, object_bits: u32) -> bool {
        let kind = (object_type.raw() << KIND_SHIFT) | ((object_bits as u64) << BITS_SHIFT);
        self.word & CREATING != 0 && self.word & !(CREATING | CREATED_MASK) == kind
    }

    /// Zeroing: bytes zeroed from `start` (0 if creating, or no record).
    pub const fn zeroed_len(&self) -> u64 {
        if self.word & CREATING != 0 {
            0
        } else {
            self.word << 12
        }
    }

    /// Creating: objects made so far (0 if zeroing, or no record).
    pub const fn created(&self) -> u64 {
        if self.word & CREATING != 0 {
            self.word & CREATED_MASK
        } else {
            0
        }
    }

    /// The 24 bits an untyped cap's word 0 keeps (bits 40..64; the start is word 3):
    /// the zeroed length in pages, or [`CREATING`] and the count made. Decoding a cap
    /// only shifts them out (`from_raw`), so the record costs every slot load nothing.
    pub const fn raw(&self) -> u64 {
        self.word
    }

    /// The record from its stored form.
    pub const fn from_raw(start: u64, word: u64) -> Cleared {
        Cleared { start, word }
    }
}

/// Outcome of one pass of a Retype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetypeProgress {
    /// The objects exist.
    Done,
    /// Part of the memory is zeroed or part of the objects made (recorded in the
    /// untyped cap); call again.
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
    /// Objects an earlier pass of this Retype made (the last ones; 0: a fresh Retype).
    pub created: u64,
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
    dest: impl Iterator<Item = SlotAddr> + Clone,
    free_domains: u64,
) -> Result<RetypePlan, SyscallError> {
    let Cap::Untyped { paddr, size_bits, is_device, free_offset, cleared } = mem.load(slot).cap else {
        return Err(SyscallError::InvalidCapability);
    };
    if count == 0 || count > MAX_RETYPE_COUNT {
        return Err(SyscallError::RangeError);
    }
    let object_bits = object_type.size_bits(size_arg).ok_or(SyscallError::RangeError)?;
    if is_device
        && !matches!(object_type, ObjectType::Untyped | ObjectType::Frame4K | ObjectType::Frame2M | ObjectType::Frame1G)
    {
        return Err(SyscallError::InvalidArgument);
    }
    if object_bits > u32::from(size_bits) {
        return Err(SyscallError::NotEnoughMemory);
    }
    if cleared.created() != 0 {
        if let Some(plan) =
            continuation(mem, paddr, is_device, free_offset, cleared, object_type, size_arg, count, dest.clone())
        {
            if object_type == ObjectType::IoSpace && count - plan.created > free_domains {
                return Err(SyscallError::NotEnoughMemory);
            }
            return Ok(plan);
        }
    }
    for d in dest {
        if !mem.is_empty(d) {
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
    Ok(RetypePlan { object_type, size_arg, object_bits, first: paddr + start, count, new_free_offset: end, created: 0 })
}

/// The plan that continues the creation a record describes, if this request is that
/// Retype: its objects fill the run exactly (`start` aligned to their size, `count` of
/// them ending at the watermark), the destinations of the objects not yet made are
/// empty, and the lowest one made is still there: a cap to the object of this size
/// and kind at that address (so the size, hence every address, is the one the
/// objects were made with). Anything else is not a continuation: the request is then
/// decoded as a new Retype.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn continuation(
    mem: &impl SlotMemory,
    paddr: u64,
    is_device: bool,
    free_offset: u64,
    cleared: Cleared,
    object_type: ObjectType,
    size_arg: u32,
    count: u64,
    dest: impl Iterator<Item = SlotAddr>,
) -> Option<RetypePlan> {
    let object_bits = object_type.size_bits(size_arg)?;
    let size = 1u64 << object_bits;
    if !cleared.creates(object_type, object_bits)
        || cleared.created() >= count
        || !cleared.start.is_multiple_of(size)
        || cleared.start.checked_add(count.checked_mul(size)?)? != free_offset
    {
        return None;
    }
    let plan = RetypePlan {
        object_type,
        size_arg,
        object_bits,
        first: paddr + cleared.start,
        count,
        new_free_offset: free_offset,
        created: cleared.created(),
    };
    let lowest = count - cleared.created();
    for (i, d) in dest.take(lowest as usize + 1).enumerate() {
        if (i as u64) < lowest {
            if !mem.is_empty(d) {
                return None;
            }
        } else {
            let cap = mem.load(d).cap;
            let object = plan.first + lowest * size;
            let expected = match object_type {
                ObjectType::IoSpace => Cap::IoSpace { paddr: object, domain: 0, levels: 0 },
                _ => new_cap(&plan, object, is_device),
            };
            return cap.same_object_as(&expected).then_some(plan);
        }
    }
    None
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
        ObjectType::Frame4K | ObjectType::Frame2M | ObjectType::Frame1G => Cap::Frame {
            paddr,
            size: match plan.object_type {
                ObjectType::Frame2M => FrameSize::Large,
                ObjectType::Frame1G => FrameSize::Huge,
                _ => FrameSize::Small,
            },
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

/// Performs a checked retype to completion, however many passes (host tests; the
/// kernel calls [`invoke_retype_bounded`] and restarts the system call).
pub fn invoke_retype(
    mem: &mut impl SlotMemory,
    om: &mut impl ObjectMemory,
    slot: SlotAddr,
    plan: &RetypePlan,
    dest: impl DoubleEndedIterator<Item = SlotAddr> + ExactSizeIterator + Clone,
) {
    let mut plan = *plan;
    while invoke_retype_bounded(mem, om, slot, &plan, dest.clone()) == RetypeProgress::Preempted {
        // As the restarted call's decode would: a creation goes on where it stopped.
        let Cap::Untyped { cleared, .. } = mem.load(slot).cap else { unreachable!("the untyped stays") };
        plan.created = cleared.created();
    }
}

/// Bytes of a `total`-byte run from offset `start` already zero: the recorded run if it
/// starts there (its memory is zero and lies at or above the watermark: see
/// [`Cleared`]), else none.
fn resumed_at(cleared: Cleared, start: u64, total: u64) -> u64 {
    if cleared.zeroed_len() != 0 && cleared.start == start {
        cleared.zeroed_len().min(total)
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
/// `Preempted`. Otherwise moves the watermark over the run and makes the last
/// [`CREATE_BATCH`] objects not made yet, inserting their caps as children of the
/// untyped (all of them end up in `dest` order); `Preempted` with the count made in
/// the record while some are left, else the record cleared and `Done`.
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
    let start = plan.first - paddr;
    if plan.created == 0 && !is_device && plan.object_type != ObjectType::Untyped {
        let total = size * plan.count;
        if total <= CLEAR_CHUNK_BYTES {
            // The common small Retype: one chunk, no record (whatever one says).
            om.zero(plan.first, total);
        } else {
            let done = resumed_at(cleared, start, total);
            let zeroed = match zero_one_pass(om, plan.first, total, done) {
                Some(len) => Some(len),
                // A pass that zeroed more than a chunk leaves making many objects to
                // the next (the record rounds down to a page: the next zeroes the
                // rest, at most a page, and goes on).
                None if plan.count > CREATE_BATCH && total - done > CLEAR_CHUNK_BYTES => Some(total & !0xfff),
                None => None,
            };
            if let Some(len) = zeroed {
                cte.cap =
                    Cap::Untyped { paddr, size_bits, is_device, free_offset, cleared: Cleared::zeroed(start, len) };
                mem.store(slot, cte);
                return RetypeProgress::Preempted;
            }
        }
    }
    // All zero: make the next batch, the last objects not made yet. The watermark
    // covers the whole run from the first batch on.
    let batch = (plan.count - plan.created).min(CREATE_BATCH);
    let made = plan.created + batch;
    let cleared = if made == plan.count {
        Cleared::NONE
    } else {
        Cleared::creating(start, made, plan.object_type, plan.object_bits)
    };
    cte.cap = Cap::Untyped { paddr, size_bits, is_device, free_offset: plan.new_free_offset, cleared };
    // Objects are made last to first (an IOSpace's domain id follows that order), and
    // the caps linked after the untyped in `dest` order, each slot written once (a
    // later batch, lower in `dest`, goes before the ones made earlier). The
    // destinations are walked backwards, not copied into a buffer to reverse: a zeroed
    // 256-entry array cost every Retype 277 guest instructions of memset.
    let objects = dest.take(plan.count as usize).enumerate().rev().skip(plan.created as usize).take(batch as usize);
    let objects = objects.map(|(i, dest_slot)| {
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
    if made < plan.count {
        return RetypeProgress::Preempted;
    }
    RetypeProgress::Done
}
