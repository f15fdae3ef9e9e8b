//! CNodes: capability address resolution and the CNode operations.
//!
//! CNodes: capability address resolution (guard + radix, level by level) and the CNode
//! operations Copy, Mint, Move, Mutate, Delete, Revoke and Rotate with seL4's meaning.
//! Functions named `decode_*` check and change nothing; the others cannot fail.

use abi::error::SyscallError;
use abi::rights::CapRights;

use super::cap::Cap;
use super::cte::{nth_slot, Cte, SlotAddr, SlotMemory, SLOT_BITS};
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

/// The slot `cptr` names in the CNode at `slots` of `1 << radix` slots when that one
/// level resolves all 64 bits (`radix + guard_bits == 64`) and the guard matches;
/// `None` otherwise. The one single-level lookup: [`resolve`]'s common case, and the
/// short cut the IPC fastpath, the MapIO short path and the slowpath take (from raw
/// slot words, see `cap::raw`) before resolving in general.
#[inline(always)]
pub fn single_level_slot(slots: SlotAddr, radix: u32, guard_bits: u32, guard: u64, cptr: u64) -> Option<SlotAddr> {
    // Retype creates no CNode with a radix outside 1..=CNODE_MAX_RADIX, so the shifts
    // stay in range.
    debug_assert!(radix <= abi::object::CNODE_MAX_RADIX);
    if radix + guard_bits != 64 || cptr >> radix != guard {
        return None;
    }
    Some(nth_slot(slots, cptr & ((1u64 << radix) - 1)))
}

/// A CSpace root that is one CNode resolving all 64 bits, prepared for many lookups:
/// [`single_level_slot`] with its shifts done once (`cptr >> radix == guard` is
/// `cptr ^ guard << radix < 2^radix`). The IO batch paths look up 64 caps with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatCSpace {
    slots: SlotAddr,
    /// The guard in place above the index bits.
    guard_above: u64,
    /// The slot count, 2^radix.
    count: u64,
}

impl FlatCSpace {
    /// The CNode at `slots` with these fields, if one level resolves all 64 bits.
    ///
    /// The kernel never stores a CNode cap with a radix outside 1..=CNODE_MAX_RADIX
    /// (Retype refuses it) or a guard wider than its guard bits (Mint refuses it): on
    /// those the XOR test would be wrong, so they are asserted, not tested, here (this
    /// runs on every slow-path lookup).
    #[inline(always)]
    pub fn new(slots: SlotAddr, radix: u32, guard_bits: u32, guard: u64) -> Option<FlatCSpace> {
        debug_assert!((1..=abi::object::CNODE_MAX_RADIX).contains(&radix));
        if radix + guard_bits != 64 {
            return None;
        }
        debug_assert!(guard >> guard_bits == 0, "Mint refuses a guard wider than its bits");
        Some(FlatCSpace { slots, guard_above: guard << radix, count: 1 << radix })
    }

    /// The CSpace root `cap`, if it is such a CNode.
    pub fn of(cap: &Cap) -> Option<FlatCSpace> {
        match *cap {
            Cap::CNode { paddr, radix, guard_bits, guard } => {
                FlatCSpace::new(paddr, radix.into(), guard_bits.into(), guard)
            }
            _ => None,
        }
    }

    /// The slot `cptr` names, as [`single_level_slot`] finds it.
    #[inline(always)]
    pub fn slot(self, cptr: u64) -> Option<SlotAddr> {
        let index = cptr ^ self.guard_above;
        (index < self.count).then_some(nth_slot(self.slots, index))
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
            if let Some(slot) = single_level_slot(paddr, radix, guard_bits, guard, cptr) {
                return Ok((slot, 0));
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
        let slot = nth_slot(paddr, index);
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
        // Copy/Mint with fewer rights makes a print-only console (no GRANT: no Halt).
        Cap::DebugConsole { rights: r } => Cap::DebugConsole { rights: r.intersect(rights) },
        // An object being destroyed gets no new caps.
        Cap::Zombie { .. } => return Err(SyscallError::IllegalOperation),
        _ => cap,
    };
    // The debug console carries no badge: minting it with badge 0 is a plain copy, so it
    // is delegable by Mint like any cap.
    let plain_mint = matches!(cap, Cap::DebugConsole { .. }) && badge == Some(0);
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
/// with it, or a Zombie (such a deletion under way). An invocation that deletes and then
/// copies (TCB Configure) refuses such a slot: the deletion could empty the very slots
/// it copies from, and could not finish within one call.
pub fn long_running_delete(mem: &impl SlotMemory, slot: SlotAddr) -> bool {
    match mem.load(slot).cap {
        Cap::Zombie { .. } => true,
        Cap::CNode { .. } | Cap::Tcb { .. } => mdb::is_final(mem, slot),
        _ => false,
    }
}

/// TCB Configure's check, as seL4's: no slot it replaces may hold a cap whose deletion
/// deletes further caps ([`long_running_delete`]); those could be the very caps it
/// copies from, or the caller's own (issue 9 hole 2).
pub fn decode_replace(mem: &impl SlotMemory, targets: &[SlotAddr]) -> Result<(), SyscallError> {
    if !cfg!(feature = "mutant-hole2") && targets.iter().any(|&t| long_running_delete(mem, t)) {
        return Err(SyscallError::IllegalOperation);
    }
    Ok(())
}

/// TCB Configure's slot update (after [`decode_replace`]): deletes the caps in
/// `targets`, then makes each copy `(src, dest, derived)` with [`invoke_copy`].
pub fn invoke_replace(
    mem: &mut impl SlotMemory,
    fx: &mut impl Finaliser,
    targets: &[SlotAddr],
    copies: &[(SlotAddr, SlotAddr, Cap)],
) {
    for &slot in targets {
        delete(mem, fx, slot);
    }
    for &(src, dest, derived) in copies {
        invoke_copy(mem, src, dest, derived);
    }
}

/// Copy/Mint: puts `derived` (from [`decode_derive`]) in `dest` as a child of `src`.
/// `src` must still hold the cap `derived` was made from; if it does not (a deletion
/// between decode and invoke emptied it), nothing is linked: a cap whose parent slot
/// is empty or reused would name an object the derivation tree no longer accounts for.
pub fn invoke_copy(mem: &mut impl SlotMemory, src: SlotAddr, dest: SlotAddr, derived: Cap) {
    let src_cap = mem.load(src).cap;
    // The mutant (issue 9 hole 2) copies whatever the source slot holds now.
    let changed = !src_cap.same_object_as(&derived) && !cfg!(feature = "mutant-hole2");
    debug_assert!(!changed, "copy from a slot that changed since decode");
    if changed || !mem.load(dest).cap.is_null() {
        return;
    }
    let revocable = mdb::is_revocable(&derived, &src_cap);
    mdb::insert_child(mem, src, dest, derived, revocable, revocable);
}

/// Checks that the cap in `src` may move: a Zombie stays where the deletion that made
/// it will look for it (the slot it guards is not usable for anything else).
pub fn decode_movable(mem: &impl SlotMemory, src: SlotAddr) -> Result<(), SyscallError> {
    if matches!(mem.load(src).cap, Cap::Zombie { .. }) {
        return Err(SyscallError::IllegalOperation);
    }
    Ok(())
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
    decode_movable(mem, src)?;
    decode_movable(mem, pivot)?;
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

/// Work units one Delete or Revoke call does before it returns to user mode to be
/// restarted (the kernel's preemption point: interrupts are taken in between, and the
/// tree and every Zombie are consistent between batches). 64 units are 16 deletions:
/// about 24,000 guest instructions where each finalises a notification or an IO
/// mapping (1,024 units made a 377,000-instruction stretch with interrupts off,
/// `make bench` part `latency`); each restart costs one more system call.
pub const WORK_BATCH: u64 = 64;
/// Units for looking at one empty slot of an object being destroyed.
pub const VISIT_COST: u64 = 1;
/// Units for deleting one cap: unlinking it and, if it was the last, finalising its
/// object (for an endpoint or notification a scan of the IRQ lines, MSI vectors and
/// IOSpace fault handlers that may name it).
pub const DELETE_COST: u64 = 4;

/// Outcome of one bounded delete step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The slot is empty.
    Done,
    /// The budget ran out: the slot holds a Zombie; call again to continue.
    Preempted,
}

/// Takes `cost` units from `budget`; false (and nothing taken) if it has fewer.
fn charge(budget: &mut u64, cost: u64) -> bool {
    if *budget < cost {
        return false;
    }
    *budget -= cost;
    true
}

/// Deletes the cap in `slot` to completion (host tests, and callers that refuse
/// long-running deletions: see [`long_running_delete`]).
pub fn delete(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) {
    loop {
        let mut budget = WORK_BATCH;
        if delete_bounded(mem, fx, slot, &mut budget) == Progress::Done {
            return;
        }
    }
}

/// Deletes the cap in `slot`, doing at most `budget` work units: unlinks it, and if it
/// was the last cap to its object, finalises the object. Mapped frame and table caps
/// are always unmapped, final or not: a mapping belongs to the cap that made it.
///
/// The last cap to a CNode or TCB becomes a Zombie in place (seL4's cteDelete): the
/// slot stays occupied, in the cap's place in the derivation tree, until every slot of
/// the object (and of the objects whose last caps it held) is empty. Calling again on
/// the Zombie resumes where the last call stopped. Nested objects are destroyed without
/// recursion: the last cap to a nested CNode or TCB becomes a record (a Zombie, also
/// kept in the tree) pushed on a stack headed by the user's Zombie, so the kernel
/// stack use is constant however deep the nesting. Every object being destroyed is
/// thus a child of its untyped until its Zombie leaves the tree, which happens only
/// once all its slots are empty: its memory cannot be retyped under the deletion.
/// A slot below a Zombie's `index` is never looked at again, so records are never
/// reached by the deletion itself; a top Zombie met in a slot (another deletion's,
/// preempted) is taken over with its stack; a record reached through the tree (a
/// Revoke of its untyped) continues its whole stack from the top. No slot of an object
/// being destroyed is reachable: lookups stop at the Zombie, which is not a CNode.
///
/// Returns `Done` when the deletion this slot belongs to is complete. If the user's
/// Zombie sat in a slot of a nested object of its own deletion (a cycle of last caps,
/// e.g. a thread deleting its own TCB held in its own CSpace), it moves out before that
/// object goes (see [`reduce_zombie`]): the slot is then empty although the rest of
/// the cycle, unreachable from any CSpace, is still being destroyed; a Revoke of an
/// untyped it came from finishes it.
pub fn delete_bounded(
    mem: &mut impl SlotMemory,
    fx: &mut impl Finaliser,
    slot: SlotAddr,
    budget: &mut u64,
) -> Progress {
    let cte = mem.load(slot);
    let top = match cte.cap {
        Cap::Null => return Progress::Done,
        Cap::Zombie { record: true, .. } => match stack_top(mem, slot, budget) {
            Some(top) => top,
            None => return Progress::Preempted,
        },
        Cap::Zombie { .. } => slot,
        Cap::CNode { .. } | Cap::Tcb { .. } if mdb::is_final(mem, slot) => {
            if !charge(budget, DELETE_COST) {
                return Progress::Preempted;
            }
            if matches!(cte.cap, Cap::Tcb { .. }) {
                fx.finalise_object(&cte.cap);
            }
            let zombie = zombie_of(&cte.cap, 0, 0, false);
            mem.store(slot, Cte { cap: zombie, revocable: false, first_badged: false, ..cte });
            slot
        }
        _ => {
            if !charge(budget, DELETE_COST) {
                return Progress::Preempted;
            }
            delete_one(mem, fx, slot);
            return Progress::Done;
        }
    };
    reduce_zombie(mem, fx, top, budget)
}

/// A Zombie for the CNode or TCB `object`, with `next` and `last` as its stack links.
fn zombie_of(object: &Cap, next: SlotAddr, last: SlotAddr, record: bool) -> Cap {
    match *object {
        Cap::CNode { paddr, radix, .. } => Cap::Zombie { paddr, radix, tcb: false, index: 0, next, last, record },
        Cap::Tcb { paddr } => Cap::Zombie { paddr, radix: 0, tcb: true, index: 0, next, last, record },
        _ => unreachable!("only CNodes and TCBs have slots"),
    }
}

/// The Zombie in `slot` (`None` if it holds something else): its slot range
/// `(base, count)`, `index`, `next` and `last`.
fn zombie_at(mem: &impl SlotMemory, slot: SlotAddr) -> Option<(u64, u64, u32, u64, u64)> {
    match mem.load(slot).cap {
        Cap::Zombie { paddr, radix, tcb, index, next, last, .. } => {
            let count = if tcb { super::tcb::TCB_SLOTS as u64 } else { 1u64 << radix };
            Some((paddr, count, index, next, last))
        }
        _ => None,
    }
}

/// Changes the `index`, `next` and `last` of the Zombie in `slot` (its tree links stay).
fn set_zombie(mem: &mut impl SlotMemory, slot: SlotAddr, index: Option<u32>, next: Option<u64>, last: Option<u64>) {
    if let Cap::Zombie { paddr, radix, tcb, index: i, next: n, last: l, record } = mem.load(slot).cap {
        let cap = Cap::Zombie {
            paddr,
            radix,
            tcb,
            index: index.unwrap_or(i),
            next: next.unwrap_or(n),
            last: last.unwrap_or(l),
            record,
        };
        mem.store_cap(slot, cap);
    }
}

/// The top of the stack the record in `record` is on, found within `budget`: down the
/// records to the oldest, which names the top. In a record other than the oldest,
/// `last` is a shortcut (0 = none) to an older record of the same stack, which outlives
/// it (records go newest first): the walk takes it, and leaves one to the point it
/// reached, so a stack of any depth costs a bounded walk per call (a step a unit) and
/// the next call goes on from there. `None` if the budget ran out first.
fn stack_top(mem: &mut impl SlotMemory, record: SlotAddr, budget: &mut u64) -> Option<SlotAddr> {
    let mut at = record;
    let top = loop {
        let Cap::Zombie { record: true, next, last, .. } = mem.load(at).cap else { break at };
        if next == 0 {
            break last;
        }
        // The first step is free: after a whole walk the shortcut leads straight to
        // the oldest record, and the deletion gets the rest of the budget.
        if at != record && !charge(budget, VISIT_COST) {
            set_zombie(mem, record, None, None, Some(at));
            return None;
        }
        at = if last != 0 { last } else { next };
    };
    if at != record && at != top {
        set_zombie(mem, record, None, None, Some(at));
    }
    Some(top)
}

/// Empties the object on top of `top`'s stack slot by slot within `budget`, popping
/// finished records, until the stack is empty and `top` itself is done: then `top`
/// leaves the tree and the slot is empty. Every pop and the final removal unlink the
/// Zombie from the tree only once its object's slots are all empty, and never while
/// the object still contains the top: a finished record whose object holds the top
/// gives its slot to the top (the top moves there, the record goes), so the top is
/// always inside live, covered memory.
fn reduce_zombie(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, top: SlotAddr, budget: &mut u64) -> Progress {
    let mut top = top;
    loop {
        let Some((_, _, _, newest, oldest)) = zombie_at(mem, top) else { return Progress::Done };
        let current = if newest != 0 { newest } else { top };
        let Some((base, count, mut index, older, _)) = zombie_at(mem, current) else { return Progress::Done };
        let mut pushed = false;
        while u64::from(index) < count {
            let child = nth_slot(base, u64::from(index));
            let cap = mem.load(child).cap;
            // The user's Zombie may sit in a slot of its own object: it goes last.
            let empty = cap.is_null() || child == top;
            if !charge(budget, if empty { VISIT_COST } else { DELETE_COST }) {
                set_zombie(mem, current, Some(index), None, None);
                return Progress::Preempted;
            }
            index += 1;
            if empty {
                continue;
            }
            set_zombie(mem, current, Some(index), None, None);
            match cap {
                Cap::Zombie { record: false, .. } => {
                    adopt(mem, top, child);
                    pushed = true;
                }
                // Records sit below their object's index, in objects of their own
                // stack: a scan never meets one.
                Cap::Zombie { record: true, .. } => debug_assert!(false, "a scan met a record at {child:#x}"),
                Cap::CNode { .. } | Cap::Tcb { .. } if mdb::is_final(mem, child) => {
                    if matches!(cap, Cap::Tcb { .. }) {
                        fx.finalise_object(&cap);
                    }
                    push(mem, top, child, &cap);
                    pushed = true;
                }
                _ => delete_one(mem, fx, child),
            }
            if pushed {
                break;
            }
        }
        if pushed {
            continue;
        }
        if current == top {
            mdb::remove(mem, top);
            return Progress::Done;
        }
        // A record is done: pop it. The next older one (or the top) is on top now.
        if !charge(budget, DELETE_COST) {
            set_zombie(mem, current, Some(index), None, None);
            return Progress::Preempted;
        }
        let holds_top = top >= base && top < base + (count << SLOT_BITS);
        let older_last = if older == 0 { 0 } else { oldest };
        mdb::remove(mem, current);
        if holds_top {
            // Its object holds the top: the top takes the record's slot (inside the
            // next object down, or the top's own), keeping its place in the tree.
            let cap = mem.load(top).cap;
            mdb::move_entry(mem, top, current, cap);
            top = current;
            if older != 0 {
                set_zombie(mem, oldest, None, None, Some(top));
            }
        }
        set_zombie(mem, top, None, Some(older), Some(older_last));
    }
}

/// Turns the last cap to `object` in `slot` into a record on top of `top`'s stack,
/// in place: it keeps the object's memory in the derivation tree.
fn push(mem: &mut impl SlotMemory, top: SlotAddr, slot: SlotAddr, object: &Cap) {
    let Some((_, _, _, newest, oldest)) = zombie_at(mem, top) else { return };
    let cte = mem.load(slot);
    let record = zombie_of(object, newest, if newest == 0 { top } else { 0 }, true);
    mem.store(slot, Cte { cap: record, revocable: false, first_badged: false, ..cte });
    set_zombie(mem, top, None, Some(slot), Some(if oldest == 0 { slot } else { oldest }));
}

/// Takes over the Zombie in `slot` (another deletion's top, preempted, whose slot is
/// in an object `top` destroys): it becomes a record, in place in the tree, with its
/// own records above it, on top of `top`'s stack.
fn adopt(mem: &mut impl SlotMemory, top: SlotAddr, slot: SlotAddr) {
    let Some((_, _, _, newest, oldest)) = zombie_at(mem, top) else { return };
    let Cap::Zombie { paddr, radix, tcb, index, next: its_newest, last: its_oldest, .. } = mem.load(slot).cap else {
        return;
    };
    let last = if newest == 0 { top } else { 0 };
    mem.store_cap(slot, Cap::Zombie { paddr, radix, tcb, index, next: newest, last, record: true });
    if its_newest != 0 {
        set_zombie(mem, its_oldest, None, Some(slot), Some(0));
    }
    let new_top = if its_newest != 0 { its_newest } else { slot };
    set_zombie(mem, top, None, Some(new_top), Some(if oldest == 0 { slot } else { oldest }));
}

/// Deletes the cap in `slot` alone: anything but the last cap to a CNode or TCB
/// (those become Zombies first, see [`delete_bounded`]).
fn delete_one(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) {
    if mem.load(slot).cap.is_null() {
        return;
    }
    let is_final = mdb::is_final(mem, slot);
    let cte: Cte = mdb::remove(mem, slot);
    match cte.cap {
        Cap::Frame { mapping: Some(_), .. } => fx.unmap_frame(&cte.cap),
        Cap::PageTable { mapping: Some(_), .. } => fx.unmap_table(&cte.cap),
        Cap::CNode { .. } | Cap::Tcb { .. } => debug_assert!(!is_final, "a final CNode or TCB becomes a Zombie first"),
        Cap::Endpoint { .. }
        | Cap::Notification { .. }
        | Cap::IrqHandler { .. }
        | Cap::MsiHandler { .. }
        | Cap::IoSpace { .. }
        | Cap::VSpace { .. }
        | Cap::GuestSpace { .. }
            if is_final =>
        {
            fx.finalise_object(&cte.cap)
        }
        // An IO page table's installation belongs to its cap, like a CPU mapping.
        Cap::IoPageTable { mapping: Some(_), .. } => fx.finalise_object(&cte.cap),
        _ => {}
    }
}

/// Outcome of one bounded revoke step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeProgress {
    /// No descendant is left.
    Done {
        /// Caps deleted in this step.
        deleted: u64,
    },
    /// The budget ran out and descendants remain: call again.
    Preempted {
        /// Caps deleted in this step.
        deleted: u64,
    },
}

/// Revoke: deletes descendants of the cap in `slot` (the cap itself stays), doing at
/// most `budget` work units per call (a descendant that is the last cap to a large
/// CNode may take several calls: it is a Zombie in between).
pub fn revoke_bounded(
    mem: &mut impl SlotMemory,
    fx: &mut impl Finaliser,
    slot: SlotAddr,
    budget: u64,
) -> RevokeProgress {
    let mut left = budget;
    let mut deleted = 0;
    while mdb::has_children(mem, slot) {
        let child = mem.load(slot).next;
        if delete_bounded(mem, fx, child, &mut left) == Progress::Preempted {
            return RevokeProgress::Preempted { deleted };
        }
        deleted += 1;
    }
    RevokeProgress::Done { deleted }
}

/// Revoke to completion (host tests and boot-time use). Returns how many caps were deleted.
pub fn revoke(mem: &mut impl SlotMemory, fx: &mut impl Finaliser, slot: SlotAddr) -> u64 {
    let mut total = 0;
    loop {
        match revoke_bounded(mem, fx, slot, WORK_BATCH) {
            RevokeProgress::Done { deleted } => return total + deleted,
            RevokeProgress::Preempted { deleted } => total += deleted,
        }
    }
}
