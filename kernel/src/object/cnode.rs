//! CNodes: capability address resolution (guard + radix, level by level) and the CNode
//! operations Copy, Mint, Move, Mutate, Delete, Revoke and Rotate with seL4's meaning.
//! Functions named `decode_*` check and change nothing; the others cannot fail.

use abi::error::SyscallError;
use abi::rights::CapRights;

use super::cap::Cap;
use super::cte::{Cte, SlotAddr, SlotMemory, SLOT_BITS};
use super::mdb;

/// Why a capability address did not resolve (seL4's lookup faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The root is not a CNode.
    InvalidRoot,
    /// The depth is outside 1..=64.
    BadDepth,
    /// A guard did not match.
    GuardMismatch {
        /// Bits still unresolved.
        bits_left: u32,
        /// Guard bits found in the address.
        guard_found: u64,
        /// Size of the guard.
        guard_bits: u32,
    },
    /// The address ran out of bits inside a level, or stopped above a CNode.
    DepthMismatch {
        /// Bits still unresolved.
        bits_left: u32,
        /// Bits the level needs (or bits left over at a non-CNode).
        bits_found: u32,
    },
    /// The slot is empty.
    MissingCapability {
        /// Bits still unresolved.
        bits_left: u32,
    },
}

impl From<LookupError> for SyscallError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::BadDepth => SyscallError::RangeError,
            _ => SyscallError::FailedLookup,
        }
    }
}

fn bits(value: u64, shift: u32, width: u32) -> u64 {
    if width == 0 {
        return 0;
    }
    let shifted = if shift >= 64 { 0 } else { value >> shift };
    if width >= 64 {
        shifted
    } else {
        shifted & ((1u64 << width) - 1)
    }
}

/// Resolves `cptr`'s top `depth` bits from `root`. Returns the slot reached and the
/// bits left unresolved (non-zero only when resolution stopped at a non-CNode cap).
pub fn resolve(mem: &impl SlotMemory, root: &Cap, cptr: u64, depth: u32) -> Result<(SlotAddr, u32), LookupError> {
    if depth == 0 || depth > 64 {
        return Err(LookupError::BadDepth);
    }
    // Common case first: one CNode whose guard and radix cover the whole address.
    if let Cap::CNode { paddr, radix, guard_bits, guard } = *root {
        let (radix, guard_bits) = (u32::from(radix), u32::from(guard_bits));
        if depth == 64 && radix + guard_bits == 64 && radix > 0 {
            if cptr >> radix == guard {
                return Ok((paddr + ((cptr & ((1u64 << radix) - 1)) << SLOT_BITS), 0));
            }
            return Err(LookupError::GuardMismatch { bits_left: 64, guard_found: cptr >> radix, guard_bits });
        }
    }
    let mut node = *root;
    let mut left = depth;
    loop {
        let Cap::CNode { paddr, radix, guard_bits, guard } = node else {
            return Err(LookupError::InvalidRoot);
        };
        let (radix, guard_bits) = (u32::from(radix), u32::from(guard_bits));
        let level = radix + guard_bits;
        let found = if guard_bits > left { bits(cptr, 0, left) } else { bits(cptr, left - guard_bits, guard_bits) };
        if guard_bits > left || found != guard {
            return Err(LookupError::GuardMismatch { bits_left: left, guard_found: found, guard_bits });
        }
        if level > left || level == 0 {
            return Err(LookupError::DepthMismatch { bits_left: left, bits_found: level });
        }
        let index = bits(cptr, left - level, radix);
        let slot = paddr + (index << SLOT_BITS);
        left -= level;
        if left == 0 {
            return Ok((slot, 0));
        }
        node = mem.load(slot).cap;
        if !matches!(node, Cap::CNode { .. }) {
            return Ok((slot, left));
        }
    }
}

/// Looks up a slot named by (root, index, depth) for a CNode operation: the depth must
/// be used up exactly.
pub fn lookup_slot(mem: &impl SlotMemory, root: &Cap, index: u64, depth: u32) -> Result<SlotAddr, LookupError> {
    match resolve(mem, root, index, depth)? {
        (slot, 0) => Ok(slot),
        (_, left) => Err(LookupError::DepthMismatch { bits_left: left, bits_found: 0 }),
    }
}

/// Looks up the cap to invoke: `cptr` resolved with all 64 bits; resolution may stop
/// early at a non-CNode cap. An empty slot is a lookup failure.
pub fn lookup_cap(mem: &impl SlotMemory, root: &Cap, cptr: u64) -> Result<(SlotAddr, Cap), LookupError> {
    let (slot, left) = resolve(mem, root, cptr, 64)?;
    let cap = mem.load(slot).cap;
    if cap.is_null() {
        return Err(LookupError::MissingCapability { bits_left: left });
    }
    Ok((slot, cap))
}

/// The cap a Copy/Mint would put in the destination (seL4's deriveCap + updateCapData):
/// rights can only shrink, a badge can be set only on an unbadged endpoint or
/// notification, a mapped frame's copy is unmapped, an untyped is never copied, nor a
/// page table or an IO page table.
pub fn decode_derive(
    mem: &impl SlotMemory,
    src: SlotAddr,
    rights: CapRights,
    badge: Option<u64>,
) -> Result<Cap, SyscallError> {
    let cap = mem.load(src).cap;
    let derived = match cap {
        Cap::Null => return Err(SyscallError::FailedLookup),
        // Two caps able to retype the same memory could create overlapping objects, so
        // an untyped is never copied: delegate it by Move, or split it by retyping
        // child untypeds.
        Cap::Untyped { .. } => return Err(SyscallError::IllegalOperation),
        Cap::Endpoint { paddr, badge: old, rights: r } | Cap::Notification { paddr, badge: old, rights: r } => {
            let badge = match badge {
                Some(_) if old != 0 => return Err(SyscallError::IllegalOperation),
                Some(b) => b,
                None => old,
            };
            let rights = r.intersect(rights);
            if matches!(cap, Cap::Endpoint { .. }) {
                Cap::Endpoint { paddr, badge, rights }
            } else {
                Cap::Notification { paddr, badge, rights }
            }
        }
        Cap::CNode { paddr, radix, .. } => match badge {
            // Mint data for a CNode is its new guard: bits 0..8 size, 8.. value.
            Some(data) => {
                let guard_bits = (data & 0xff) as u32;
                let guard = data >> 8;
                if guard_bits + u32::from(radix) > 64 || (guard_bits < 64 && guard >> guard_bits != 0) {
                    return Err(SyscallError::InvalidArgument);
                }
                Cap::CNode { paddr, radix, guard_bits: guard_bits as u8, guard }
            }
            None => cap,
        },
        Cap::Frame { paddr, size, rights: r, is_device, .. } => {
            Cap::Frame { paddr, size, rights: r.intersect(rights), is_device, mapping: None }
        }
        Cap::PageTable { .. } => return Err(SyscallError::IllegalOperation),
        // One cap per IO page table, like CPU page tables: with two, unmapping through
        // one leaves the other free to install the same table a second time, at another
        // place or level, where a leaf entry would be walked as a table pointer.
        Cap::IoPageTable { .. } => return Err(SyscallError::IllegalOperation),
        Cap::IrqControl => return Err(SyscallError::IllegalOperation),
        _ => cap,
    };
    // The debug console carries no badge: minting it with badge 0 is a plain copy, so it
    // is delegable by Mint like any cap.
    let plain_mint = matches!(cap, Cap::DebugConsole) && badge == Some(0);
    if badge.is_some()
        && !plain_mint
        && !matches!(cap, Cap::Endpoint { .. } | Cap::Notification { .. } | Cap::CNode { .. })
    {
        return Err(SyscallError::IllegalOperation);
    }
    Ok(derived)
}

/// Checks that `dest` is empty.
pub fn decode_empty(mem: &impl SlotMemory, dest: SlotAddr) -> Result<(), SyscallError> {
    if mem.load(dest).cap.is_null() {
        Ok(())
    } else {
        Err(SyscallError::DeleteFirst)
    }
}

/// Whether deleting the cap in `slot` would delete further caps (seL4's
/// `slotCapLongRunningDelete`): it is the last cap to a CNode or TCB, whose slots go
/// with it. An invocation that deletes and then copies (TCB Configure) refuses such a
/// slot: the deletion could empty the very slots it copies from.
pub fn long_running_delete(mem: &impl SlotMemory, slot: SlotAddr) -> bool {
    matches!(mem.load(slot).cap, Cap::CNode { .. } | Cap::Tcb { .. }) && mdb::is_final(mem, slot)
}

/// Copy/Mint: puts `derived` (from [`decode_derive`]) in `dest` as a child of `src`.
/// `src` must still hold the cap `derived` was made from; if it does not (a deletion
/// between decode and invoke emptied it), nothing is linked: a cap whose parent slot
/// is empty or reused would name an object the derivation tree no longer accounts for.
pub fn invoke_copy(mem: &mut impl SlotMemory, src: SlotAddr, dest: SlotAddr, derived: Cap) {
    let src_cap = mem.load(src).cap;
    debug_assert!(src_cap.same_object_as(&derived), "copy from a slot that changed since decode");
    if !src_cap.same_object_as(&derived) || !mem.load(dest).cap.is_null() {
        return;
    }
    let revocable = mdb::is_revocable(&derived, &src_cap);
    mdb::insert_child(mem, src, dest, derived, revocable, revocable);
}

/// Move/Mutate: moves the entry to `dest`, with `cap` replacing it (Move: unchanged).
pub fn invoke_move(mem: &mut impl SlotMemory, src: SlotAddr, dest: SlotAddr, cap: Cap) {
    mdb::move_entry(mem, src, dest, cap);
}

/// The cap a Mutate would leave: a CNode with a new guard, or an unbadged endpoint or
/// notification with a badge.
pub fn decode_mutate(mem: &impl SlotMemory, src: SlotAddr, data: u64) -> Result<Cap, SyscallError> {
    let cap = mem.load(src).cap;
    match cap {
        Cap::CNode { .. } | Cap::Endpoint { .. } | Cap::Notification { .. } => {
            decode_derive(mem, src, CapRights::ALL, Some(data))
        }
        Cap::Null => Err(SyscallError::FailedLookup),
        _ => Err(SyscallError::IllegalOperation),
    }
}

/// Rotate: `pivot` moves to `dest` and `src` moves to `pivot` (with `dest == src` this
/// swaps the two). Requires pivot distinct from both, and `dest` empty unless it is `src`.
pub fn decode_rotate(
    mem: &impl SlotMemory,
    dest: SlotAddr,
    pivot: SlotAddr,
    src: SlotAddr,
) -> Result<(), SyscallError> {
    if pivot == src || pivot == dest {
        return Err(SyscallError::IllegalOperation);
    }
    if mem.load(src).cap.is_null() || mem.load(pivot).cap.is_null() {
        return Err(SyscallError::FailedLookup);
    }
    if dest != src {
        decode_empty(mem, dest)?;
    }
    Ok(())
}

/// Performs a checked rotate.
pub fn invoke_rotate(mem: &mut impl SlotMemory, dest: SlotAddr, pivot: SlotAddr, src: SlotAddr, scratch: SlotAddr) {
    let pivot_cap = mem.load(pivot).cap;
    let src_cap = mem.load(src).cap;
    if dest == src {
        // Swap through a scratch slot the caller guarantees empty and private.
        mdb::move_entry(mem, src, scratch, src_cap);
        mdb::move_entry(mem, pivot, src, pivot_cap);
        mdb::move_entry(mem, scratch, pivot, src_cap);
    } else {
        mdb::move_entry(mem, pivot, dest, pivot_cap);
        mdb::move_entry(mem, src, pivot, src_cap);
    }
}

/// Hardware and object side effects of deleting a final cap.
pub trait Finaliser {
    /// Removes a frame mapping and flushes it from the TLB.
    fn unmap_frame(&mut self, cap: &Cap);
    /// Uninstalls a page table and flushes the TLB.
    fn unmap_table(&mut self, cap: &Cap);
    /// The last cap to a TCB, endpoint, notification, IRQ handler, IOSpace or VSpace is
    /// gone: stop the thread, wake everything queued on the object, release the line,
    /// or retire the translation root.
    fn finalise_object(&mut self, cap: &Cap);
}

/// Deletes the cap in `slot`: unlinks it, and if it was the last cap to its object,
/// finalises the object (a CNode's or TCB's slots are deleted too; mappings are
/// removed). Mapped frame and table caps are always unmapped, final or not: a mapping
/// belongs to the cap that made it.
///
/// Nested CNodes are deleted without recursion: an object whose last cap is gone but
/// whose slots still hold caps (an orphan) is recorded in the slot its cap was just
/// removed from (a slot of another orphan, unreachable from user level), forming a list
/// the loop works through. However deep the nesting, the kernel stack use is constant;
/// every record is cleared before this returns.
pub fn delete(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) {
    let mut orphan = delete_one(mem, fx, slot);
    let mut pending: SlotAddr = 0;
    loop {
        if let Some(object) = orphan {
            let (base, count) = orphan_slots(&object);
            for i in 0..count {
                let child_slot = base + (i << SLOT_BITS);
                if let Some(child) = delete_one(mem, fx, child_slot) {
                    // `child_slot` was just emptied and belongs to an orphan: it holds
                    // the record until the child's slots are dealt with.
                    mem.store(
                        child_slot,
                        Cte { cap: child, prev: 0, next: pending, revocable: false, first_badged: false },
                    );
                    pending = child_slot;
                }
            }
        }
        if pending == 0 {
            return;
        }
        let record = mem.load(pending);
        mem.store(pending, Cte::NULL);
        orphan = Some(record.cap);
        pending = record.next;
    }
}

/// The slots of an orphaned CNode or TCB: (first slot, count).
fn orphan_slots(object: &Cap) -> (SlotAddr, u64) {
    match *object {
        Cap::CNode { paddr, radix, .. } => (paddr, 1u64 << radix),
        Cap::Tcb { paddr } => (paddr, super::tcb::TCB_SLOTS as u64),
        _ => (0, 0),
    }
}

/// Deletes the cap in `slot` alone. Returns the object if its slots still need deleting
/// (the last cap to a CNode or TCB: the caller deletes them, see [`delete`]).
fn delete_one(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) -> Option<Cap> {
    if mem.load(slot).cap.is_null() {
        return None;
    }
    let is_final = mdb::is_final(mem, slot);
    let cte: Cte = mdb::remove(mem, slot);
    match cte.cap {
        Cap::Frame { mapping: Some(_), .. } => fx.unmap_frame(&cte.cap),
        Cap::PageTable { mapping: Some(_), .. } => fx.unmap_table(&cte.cap),
        Cap::CNode { paddr, radix, .. } if is_final => {
            return Some(Cap::CNode { paddr, radix, guard_bits: 0, guard: 0 });
        }
        Cap::Tcb { .. } if is_final => {
            fx.finalise_object(&cte.cap);
            return Some(cte.cap);
        }
        Cap::Endpoint { .. }
        | Cap::Notification { .. }
        | Cap::IrqHandler { .. }
        | Cap::MsiHandler { .. }
        | Cap::IoSpace { .. }
        | Cap::VSpace { .. }
            if is_final =>
        {
            fx.finalise_object(&cte.cap)
        }
        // An IO page table's installation belongs to its cap, like a CPU mapping.
        Cap::IoPageTable { mapping: Some(_), .. } => fx.finalise_object(&cte.cap),
        _ => {}
    }
    None
}

/// Most descendants one Revoke call deletes before it returns to user mode to be
/// restarted (the kernel's preemption point: the tree is consistent between batches).
pub const REVOKE_BATCH: u64 = 256;

/// Outcome of one bounded revoke step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeProgress {
    /// No descendant is left.
    Done {
        /// Caps deleted in this step.
        deleted: u64,
    },
    /// `limit` caps were deleted and descendants remain: call again.
    Preempted,
}

/// Revoke: deletes descendants of the cap in `slot` (the cap itself stays), at most
/// `limit` of them per call.
pub fn revoke_bounded(
    mem: &mut impl SlotMemory,
    fx: &mut impl Finaliser,
    slot: SlotAddr,
    limit: u64,
) -> RevokeProgress {
    let mut deleted = 0;
    while mdb::has_children(mem, slot) {
        if deleted == limit {
            return RevokeProgress::Preempted;
        }
        let child = mem.load(slot).next;
        delete(mem, fx, child);
        deleted += 1;
    }
    RevokeProgress::Done { deleted }
}

/// Revoke to completion (host tests and boot-time use). Returns how many caps were deleted.
pub fn revoke(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) -> u64 {
    let mut total = 0;
    loop {
        match revoke_bounded(mem, fx, slot, REVOKE_BATCH) {
            RevokeProgress::Done { deleted } => return total + deleted,
            RevokeProgress::Preempted => total += REVOKE_BATCH,
        }
    }
}
