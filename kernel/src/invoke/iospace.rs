//! IOMMU cap invocations: IOSpace, IOPageTable, Frame MapIO / UnmapIO.
//!
//! IOSpace Assign / Unassign (of a whole DMA alias group: caps to all its functions) /
//! SetFaultHandler / NextFault / MapBatch / UnmapBatch, IOPageTable Map / Unmap, Frame MapIO /
//! UnmapIO.
//!
//! Mapping and unmapping 4 KiB frames is the hot path (a driver maps every DMA buffer),
//! so it works on raw slot words (`cap::raw_frame`) instead of decoding whole caps, and
//! checks the IOVA range of a batch once. It still decodes everything before it changes
//! anything: a rejected call leaves every table and cap as it was. IOSpace and
//! IOPageTable calls are a `decode` / `invoke` pair; Frame MapIO / UnmapIO are one
//! handler (`frame_io`) over the planners the short path shares.

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::{CAPS_OFFSET, REGISTER_MRS};
use abi::layout::PAGE_SIZE as PAGE;
use abi::rights::CapRights;

use super::args::{fail, Extra, Failure, Message, Reply, MAX_BATCH};
use crate::arch::kmem::{self, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::iommu::access::Vtd;
use crate::iommu::entries::{check_iova_pages, sl, sl_entry, sl_index, sl_leaf_table, sl_walk};
use crate::iommu::iospace;
use crate::iommu::unit;
use crate::object::cap::{raw, raw_frame, Cap, FrameSize};
use crate::object::cnode::{self, LookupError};
use crate::object::cte::{SlotAddr, SlotMemory, SLOT_BITS};
use crate::object::paging::TableMemory;
use crate::object::roots::RootKind;

/// One page of a checked map or unmap.
#[derive(Clone, Copy, Debug, Default)]
struct PagePlan {
    /// The frame cap's slot and its word 0.
    slot: SlotAddr,
    w0: u64,
    /// Map: where the entry goes and what it is. Unmap: the mapped IOVA and frame.
    table: u64,
    index: usize,
    entry: u64,
}

/// The IOSpace being changed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Space {
    /// Its root table.
    pub(super) root: u64,
    /// Its table depth (3 or 4).
    pub(super) levels: u8,
    /// Its domain id.
    pub(super) domain: u16,
}

/// Word `i` of the cap in `slot`.
fn cap_word(slot: SlotAddr, i: usize) -> u64 {
    kmem::read_word(raw::word_addr(slot, i))
}

/// Resolves `cptr` in `cspace` to a slot (all 64 bits; resolution may stop at a
/// non-CNode cap, as for any invoked cap). Single-level CSpaces take a short cut.
fn slot_of(cspace: &Cap, cptr: u64) -> Result<SlotAddr, LookupError> {
    if let Some(slot) = cnode::FlatCSpace::of(cspace).and_then(|flat| flat.slot(cptr)) {
        return Ok(slot);
    }
    cnode::resolve(&DirectMemory, cspace, cptr, 64).map(|(slot, _)| slot)
}

/// Refuses a slot named twice in one batch (a 1024-bit filter of slot addresses first;
/// only a hit pays for the exact scan).
fn check_unique(plans: &[PagePlan], seen: &mut [u64; 16], slot: SlotAddr, arg: u64) -> Result<(), Failure> {
    let bit = ((slot >> SLOT_BITS) & 1023) as usize;
    if seen[bit / 64] & (1 << (bit % 64)) != 0 && plans.iter().any(|p| p.slot == slot) {
        return Err(fail(SyscallError::InvalidArgument, arg));
    }
    seen[bit / 64] |= 1 << (bit % 64);
    Ok(())
}

/// The leaf table for `iova`, reusing the last walk within the same 2 MiB region.
/// `cache` holds (2 MiB region, its leaf table if any); start it at (u64::MAX, None).
/// Only valid inside one invocation (nothing can change the tables meanwhile).
#[inline(always)]
pub(super) fn leaf_table(space: Space, cache: &mut (u64, Option<u64>), iova: u64) -> Option<u64> {
    if cache.0 != iova >> 21 {
        *cache = (iova >> 21, sl_leaf_table(&DirectMemory, space.root, space.levels, iova));
    }
    cache.1
}

/// Records in the frame cap in `slot` (word 0 `w0`) its IO mapping at `iova` in the
/// IOSpace rooted at `root`.
#[inline(always)]
pub(super) fn set_io_record(slot: SlotAddr, w0: u64, root: u64, iova: u64) {
    kmem::write_words(slot, [raw_frame::with_io_mapping(w0)]);
    kmem::write_words(raw::word_addr(slot, raw_frame::WORD_SPACE), [root, iova]);
}

/// Clears the mapping record of the frame cap in `slot` (word 0 `w0`).
#[inline(always)]
pub(super) fn clear_io_record(slot: SlotAddr, w0: u64) {
    kmem::write_words(slot, [raw_frame::without_mapping(w0)]);
    kmem::write_words(raw::word_addr(slot, raw_frame::WORD_SPACE), [0, 0]);
}

/// Checks mapping the small RAM frames in `slots` at consecutive IOVAs from `iova` with
/// `rights`; `arg(i)` names page i in errors. Changes nothing.
fn plan_map(
    space: Space,
    iova: u64,
    rights: CapRights,
    slots: &[SlotAddr],
    arg: impl Fn(usize) -> u64,
    plans: &mut [PagePlan],
) -> Result<(), Failure> {
    match check_iova_pages(iova, slots.len() as u64, space.levels) {
        Ok(()) => {}
        Err("misaligned") => return Err(fail(SyscallError::AlignmentError, 0)),
        Err(_) => return Err(fail(SyscallError::InvalidArgument, 0)),
    }
    let (read, write) = (rights.contains(CapRights::READ), rights.contains(CapRights::WRITE));
    let wanted = u64::from(rights.raw());
    let mut seen = [0u64; 16];
    let mut cache = (u64::MAX, None);
    for (i, &slot) in slots.iter().enumerate() {
        let a = arg(i);
        let w0 = cap_word(slot, 0);
        if raw_frame::is_null(w0) {
            return Err(fail(SyscallError::FailedLookup, a));
        }
        // Invariant 4: only RAM frames retyped from untyped ever become DMA-reachable.
        if !raw_frame::is_frame(w0) || raw_frame::size(w0) != FrameSize::Small || raw_frame::is_device(w0) {
            return Err(fail(SyscallError::InvalidCapability, a));
        }
        if raw_frame::is_mapped(w0) {
            return Err(fail(SyscallError::IllegalOperation, a));
        }
        if raw_frame::rights(w0) & wanted != wanted {
            return Err(fail(SyscallError::InsufficientRights, a));
        }
        check_unique(&plans[..i], &mut seen, slot, a)?;
        let at = iova + PAGE * i as u64;
        let table = leaf_table(space, &mut cache, at).ok_or(fail(SyscallError::FailedLookup, a))?;
        let index = sl_index(at, 1);
        if DirectMemory.read(table, index) & (sl::READ | sl::WRITE) != 0 {
            return Err(fail(SyscallError::DeleteFirst, a));
        }
        let entry = sl_entry(cap_word(slot, raw_frame::WORD_ADDR), read, write, false);
        plans[i] = PagePlan { slot, w0, table, index, entry };
    }
    Ok(())
}

/// Writes back the cache line of the entry at `entry` for non-snooping remapping
/// hardware, unless it is `last` (the line written back before); returns its line.
#[inline(always)]
pub(super) fn write_back(last: u64, entry: u64) -> u64 {
    let line = entry & !63;
    if line != last {
        unit::write_back_line(line);
    }
    line
}

/// Writes checked mappings and records them in the caps (the caller invalidates).
// Inlined into `map_page` (the MapIO short path), out of line for batches
// (`invoke_map_batch`): the placement the one handler had, which `make bench` measures.
#[inline(always)]
fn invoke_map(space: Space, iova: u64, plans: &[PagePlan]) {
    let mut written_back = u64::MAX;
    for (i, p) in plans.iter().enumerate() {
        DirectMemory.write(p.table, p.index, p.entry);
        written_back = write_back(written_back, p.table + 8 * p.index as u64);
        set_io_record(p.slot, p.w0, space.root, iova + PAGE * i as u64);
    }
    crate::iommu::counters::leaves_written(plans.len() as u64);
    unit::sync_fence();
}

/// [`invoke_map`] for a batch, out of line.
#[inline(never)]
fn invoke_map_batch(space: Space, iova: u64, plans: &[PagePlan]) {
    invoke_map(space, iova, plans);
}

/// Checks removing the IO mappings the frame caps in `slots` made in `space`.
fn plan_unmap(
    space: Space,
    slots: &[SlotAddr],
    arg: impl Fn(usize) -> u64,
    plans: &mut [PagePlan],
) -> Result<(), Failure> {
    let mut seen = [0u64; 16];
    for (i, &slot) in slots.iter().enumerate() {
        let a = arg(i);
        let w0 = cap_word(slot, 0);
        if !raw_frame::is_io_mapped_frame(w0) || cap_word(slot, raw_frame::WORD_SPACE) != space.root {
            return Err(fail(SyscallError::IllegalOperation, a));
        }
        check_unique(&plans[..i], &mut seen, slot, a)?;
        let iova = cap_word(slot, raw_frame::WORD_VADDR);
        plans[i] = PagePlan { slot, w0, table: iova, index: 0, entry: cap_word(slot, raw_frame::WORD_ADDR) };
    }
    Ok(())
}

/// Clears checked mappings (if their entries still name the frames) and the records
/// in the caps (the caller invalidates).
fn invoke_unmap(space: Space, plans: &[PagePlan]) {
    let mut cache = (u64::MAX, None);
    let mut written_back = u64::MAX;
    for p in plans {
        let (iova, paddr) = (p.table, p.entry);
        let size = raw_frame::size(p.w0);
        let found = if size != FrameSize::Small {
            sl_walk(&DirectMemory, space.root, space.levels, iova, size.io_level()).ok()
        } else {
            leaf_table(space, &mut cache, iova).map(|table| (table, sl_index(iova, 1)))
        };
        if let Some((table, index)) = found {
            let entry = DirectMemory.read(table, index);
            if entry & (sl::READ | sl::WRITE) != 0 && entry & sl::ADDR == paddr {
                DirectMemory.write(table, index, 0);
                written_back = write_back(written_back, table + 8 * index as u64);
                crate::iommu::counters::leaves_written(1);
            }
        }
        clear_io_record(p.slot, p.w0);
    }
    unit::sync_fence();
}

/// The IOVA span a checked batch unmap covered: (lowest start, highest end).
///
/// A batch gets ONE IOTLB request, not one per page: the smallest aligned block of
/// 2^AM pages holding the span, page-selective if AM fits CAP.MAMV, else
/// domain-selective (`unit::invalidate_iotlb`). Per-page requests would cost a queue
/// slot and a hardware IOTLB scan each (QEMU walks its whole IOTLB per request); a batch
/// is usually one contiguous range (that is how MapBatch made it), for which the block
/// is exact or at most twice the span, and over-invalidating a few neighbouring pages
/// of the same domain only costs refills.
fn unmapped_span(plans: &[PagePlan]) -> (u64, u64) {
    plans.iter().fold((u64::MAX, 0), |(lo, hi), p| {
        let bytes = raw_frame::bytes(p.w0);
        (lo.min(p.table), hi.max(p.table + bytes))
    })
}

/// The IOSpace an extra cap names.
fn space_of(cap: &Cap, arg: u64) -> Result<Space, Failure> {
    match *cap {
        Cap::IoSpace { paddr, levels, domain } => Ok(Space { root: paddr, levels, domain }),
        _ => Err(fail(SyscallError::InvalidCapability, arg)),
    }
}

/// Requested IO mapping rights: READ and/or WRITE, not none.
fn io_rights(raw: u64) -> Result<CapRights, Failure> {
    let rights = CapRights::from_raw(raw).ok_or(fail(SyscallError::InvalidArgument, 1))?;
    let rights = rights.intersect(CapRights::READ.union(CapRights::WRITE));
    if rights == CapRights::NONE {
        return Err(fail(SyscallError::InvalidArgument, 1));
    }
    Ok(rights)
}

/// MapIO of the small frame in `slot` at `iova`: checks, writes the entry and cap,
/// invalidates (the general and the short path both end here).
// Out of line, like `unmap_frame`: inlined into `frame_io` it changes how the page
// planners are inlined into the short path (`make bench`).
#[inline(never)]
fn map_page(space: Space, iova: u64, rights: CapRights, slot: SlotAddr) -> Result<(), Failure> {
    let mut plan = [PagePlan::default()];
    plan_map(space, iova, rights, &[slot], |_| 0, &mut plan)?;
    invoke_map(space, iova, &plan);
    iospace::flush_after_map(&mut Vtd, space.domain, iova, iova + PAGE);
    Ok(())
}

/// UnmapIO of the frame in `slot`, IO-mapped in the live IOSpace `space`: checks,
/// clears the entry and the cap's record, invalidates what the frame covered.
#[inline(never)]
fn unmap_frame(space: Space, slot: SlotAddr) -> Result<(), Failure> {
    let mut plan = [PagePlan::default()];
    plan_unmap(space, &[slot], |_| 0, &mut plan)?;
    invoke_unmap(space, &plan);
    let (iova, bytes) = (plan[0].table, raw_frame::bytes(plan[0].w0));
    iospace::flush_root_range(&mut Vtd, space.root, iova, iova + bytes);
    Ok(())
}

/// The short way for MapIO and UnmapIO of a 4 KiB frame, the call every DMA buffer
/// costs: raw-word lookups of the frame and IOSpace caps in a single-level CSpace, then
/// the same checks and effects as [`invoke`]. Returns false, having changed nothing,
/// whenever the request is not of that plain shape (another CSpace layout, a large or
/// unmapped frame, a bad cap or rights argument); the general path then handles it
/// and gives the same answer. Otherwise the result (success or the plan's failure) is
/// already in `frame`.
///
/// UnmapIO without caps and with at most four message registers (every well-formed
/// one) comes through [`fast_frame_call_at`] instead: the syscall entry found its cap.
pub fn fast_frame_call(frame: &mut TrapFrame) -> bool {
    let label = frame.rsi >> abi::msginfo::LABEL_SHIFT;
    if label != Invocation::FrameMapIo as u64 {
        // The batches have their own short way (io_batch.rs); the rest goes the general way.
        let batch = label == Invocation::IoSpaceMapBatch as u64 || label == Invocation::IoSpaceUnmapBatch as u64;
        return batch && super::io_batch::fast_batch_call(frame, label == Invocation::IoSpaceMapBatch as u64);
    }
    // A malformed message info is the general path's to refuse.
    if abi::msginfo::MessageInfo::from_word(frame.rsi).is_none() {
        return false;
    }
    let me = crate::thread::tcb_state::current();
    let Some(cspace) = crate::thread::fastpath::flat_cspace(me) else { return false };
    let Some(slot) = cspace.slot(frame.rdi) else { return false };
    frame_call(frame, slot, true)
}

/// UnmapIO's short way for the Frame cap in `slot`, which the syscall entry's
/// single-level lookup of `frame.rdi` found (`cnode::single_level_slot`, as
/// `FlatCSpace::slot` computes it); false, with nothing changed, as for
/// [`fast_frame_call`]. (MapIO carries a cap, so the entry never sends it here.)
pub fn fast_frame_call_at(frame: &mut TrapFrame, slot: SlotAddr) -> bool {
    let label = frame.rsi >> abi::msginfo::LABEL_SHIFT;
    if label != Invocation::FrameUnmapIo as u64 || abi::msginfo::MessageInfo::from_word(frame.rsi).is_none() {
        return false;
    }
    frame_call(frame, slot, false)
}

/// MapIO (`map`) or UnmapIO of the cap in `slot` of the caller's single-level CSpace.
#[inline(always)]
fn frame_call(frame: &mut TrapFrame, slot: SlotAddr, map: bool) -> bool {
    let w0 = cap_word(slot, 0);
    if !raw_frame::is_frame(w0) || raw_frame::size(w0) != FrameSize::Small {
        return false;
    }
    let result = if map {
        // Two message registers, one extra cap, nothing unwrapped.
        if frame.rsi & 0xfff != 2 | (1 << 7) {
            return false;
        }
        let me = crate::thread::tcb_state::current();
        let ipc_buffer = crate::thread::tcb_state::ipc_buffer(me);
        if ipc_buffer == 0 {
            return false;
        }
        let cptr = kmem::ipc_word(ipc_buffer, CAPS_OFFSET / 8);
        let Some(cspace) = crate::thread::fastpath::flat_cspace(me) else { return false };
        let Some(space_slot) = cspace.slot(cptr) else { return false };
        let Some((root, levels, domain)) = raw::io_space(kmem::read_words::<3>(space_slot)) else { return false };
        let Ok(rights) = io_rights(frame.r10) else { return false };
        let space = Space { root, levels, domain };
        // The usual call in one pass; the planners decide anything else (and its error).
        match super::io_batch::map_one(space, frame.rdx, rights, slot) {
            Some(()) => Ok(()),
            None => map_page(space, frame.rdx, rights, slot),
        }
    } else {
        let root = cap_word(slot, raw_frame::WORD_SPACE);
        if !raw_frame::is_io_mapped_frame(w0) {
            return false;
        }
        // A driver unmaps in one IOSpace many times in a row: the domain cache's root is
        // live; any other is checked, then looked up in the index.
        let domain = match iospace::cached_domain(root) {
            Some(domain) => Some(domain),
            None if crate::object::roots::is_live(RootKind::IoSpace, root) => iospace::domain_of_root(root),
            None => return false,
        };
        match super::io_batch::unmap_one(root, domain, slot) {
            Some(()) => Ok(()),
            None => unmap_frame(Space { root, levels: iospace::levels(), domain: 0 }, slot),
        }
    };
    match result {
        Ok(()) => {
            frame.rax = 0;
            frame.rdi = 0;
            [frame.rdx, frame.r10, frame.r8, frame.r9] = [0; REGISTER_MRS];
        }
        Err(failure) => {
            frame.rax = failure.error.raw();
            frame.rdi = failure.detail;
        }
    }
    true
}

/// Most PciDevice caps one Assign / Unassign names (an alias group's functions).
const MAX_GROUP: usize = 64;

/// The requester ids of the PciDevice caps an Assign / Unassign names: extra cap 0, then
/// MR0 (absent: 0) more whose cptrs are MR1..=MR0, all on one segment. Returns how many.
fn group_members(
    msg: &Message<'_>,
    cspace: &Cap,
    extra: Extra<'_>,
    out: &mut [u16; MAX_GROUP],
) -> Result<usize, Failure> {
    let (_, device) = extra(0)?;
    let Cap::PciDevice { segment, requester_id } = device else {
        return Err(fail(SyscallError::InvalidCapability, 100));
    };
    out[0] = requester_id;
    let more = if msg.info.length == 0 { 0 } else { msg.mr(0)? };
    if more >= MAX_GROUP as u64 {
        return Err(fail(SyscallError::RangeError, 0));
    }
    for (i, member) in out.iter_mut().enumerate().take(1 + more as usize).skip(1) {
        let slot = slot_of(cspace, msg.mr(i)?).map_err(|e| fail(e.into(), i as u64))?;
        match DirectMemory.load(slot).cap {
            Cap::PciDevice { segment: s, requester_id } if s == segment => *member = requester_id,
            _ => return Err(fail(SyscallError::InvalidCapability, i as u64)),
        }
    }
    Ok(1 + more as usize)
}

/// Handles MapIO / UnmapIO (`label`) of the Frame cap `cap` in `slot`.
///
/// Checks, then acts, in one handler: small frames go through `map_page` and
/// `unmap_frame`, which the MapIO short path shares; a decode / invoke pair here adds
/// callers to the page planners and changes how they are inlined into the short path
/// (MapIO+UnmapIO +2 guest instructions, `make bench`).
pub fn frame_io(
    msg: &Message<'_>,
    mem: &mut DirectMemory,
    slot: SlotAddr,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Reply {
    let ok = Ok([0; REGISTER_MRS]);
    match (cap, label) {
        (Cap::Frame { size, .. }, Invocation::FrameMapIo) => {
            let (_, iospace) = extra(0)?;
            let space = space_of(&iospace, 100)?;
            let (iova, rights) = (msg.mr(0)?, io_rights(msg.mr(1)?)?);
            if size != FrameSize::Small {
                let mapped = iospace::map_frame(&mut Vtd, &cap, &iospace, iova, rights).map_err(|e| fail(e, 0))?;
                mem.store_cap(slot, mapped);
                return ok;
            }
            map_page(space, iova, rights, slot)?;
            ok
        }
        (Cap::Frame { mapping, .. }, Invocation::FrameUnmapIo) => {
            let Some(m) = mapping.filter(|m| m.is_io()) else { return ok };
            let levels = iospace::levels();
            // The domain is found from the root when the invalidation is issued.
            let space = Space { root: m.vspace, levels, domain: 0 };
            if !crate::object::roots::is_live(crate::object::roots::RootKind::IoSpace, m.vspace) {
                // The IOSpace is gone (and its devices with it): only the record remains.
                if let Some(unmapped) = iospace::clear(&mut Vtd, &cap) {
                    mem.store_cap(slot, unmapped);
                }
                return ok;
            }
            unmap_frame(space, slot)?;
            ok
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Decodes `label` on the IOSpace or IOPageTable cap `cap` in `slot`, then invokes it.
// Out of line, as the one handler was before the split: inlined into the dispatch,
// the batch plans grow its stack frame from 0x198 to 0x2228 bytes and every other
// invocation pays for it. The plans live in this frame, filled by `decode` and read
// in place by `invoke` (not copied through the op).
#[inline(never)]
pub fn decode_and_invoke(
    msg: &Message<'_>,
    mem: &mut DirectMemory,
    slot: SlotAddr,
    cap: Cap,
    label: Invocation,
    cspace: &Cap,
    extra: Extra<'_>,
) -> Reply {
    let mut plans = [PagePlan::default(); MAX_BATCH];
    let mut members = [0u16; MAX_GROUP];
    let op = decode(msg, cap, label, cspace, extra, &mut plans, &mut members)?;
    invoke(mem, slot, cap, op)
}

/// A checked IOSpace or IOPageTable invocation; batch plans and group members are
/// in the caller's buffers.
enum IoSpaceOp<'p> {
    /// MapBatch: small frames at consecutive IOVAs from `iova`.
    MapBatch { space: Space, iova: u64, plans: &'p [PagePlan] },
    /// UnmapBatch: the IO mappings of frames in `space`.
    UnmapBatch { space: Space, plans: &'p [PagePlan] },
    /// Assign (or Unassign) the alias group whose requester ids are `members`.
    Assign { unassign: bool, members: &'p [u16] },
    /// SetFaultHandler to the cap `handler`.
    SetFaultHandler { handler: Cap },
    /// NextFault: pop the oldest queued fault record of `domain` (one is there).
    NextFault { domain: u16 },
    /// IOPageTable::Map at `iova` in `iospace`.
    MapTable { iospace: Cap, iova: u64 },
    /// IOPageTable::Unmap.
    UnmapTable,
}

/// Decodes `label` on the IOSpace or IOPageTable cap `cap`: reads and checks the
/// message and the caps it names, changes nothing but `plans` and `members`.
#[inline(always)]
fn decode<'p>(
    msg: &Message<'_>,
    cap: Cap,
    label: Invocation,
    cspace: &Cap,
    extra: Extra<'_>,
    plans: &'p mut [PagePlan; MAX_BATCH],
    members: &'p mut [u16; MAX_GROUP],
) -> Result<IoSpaceOp<'p>, Failure> {
    match (cap, label) {
        (Cap::IoSpace { paddr: root, levels, domain }, Invocation::IoSpaceMapBatch | Invocation::IoSpaceUnmapBatch) => {
            let space = Space { root, levels, domain };
            let map = label == Invocation::IoSpaceMapBatch;
            let first = if map { 3 } else { 1 };
            let count = msg.mr(first - 1)? as usize;
            if count == 0 || count > MAX_BATCH {
                return Err(fail(SyscallError::RangeError, first as u64 - 1));
            }
            let mut slots = [0u64; MAX_BATCH];
            for (i, s) in slots[..count].iter_mut().enumerate() {
                let arg = (first + i) as u64;
                *s = slot_of(cspace, msg.mr(first + i)?).map_err(|e| fail(e.into(), arg))?;
            }
            let arg = |i: usize| (first + i) as u64;
            if map {
                let (iova, rights) = (msg.mr(0)?, io_rights(msg.mr(1)?)?);
                plan_map(space, iova, rights, &slots[..count], arg, plans)?;
                Ok(IoSpaceOp::MapBatch { space, iova, plans: &plans[..count] })
            } else {
                plan_unmap(space, &slots[..count], arg, plans)?;
                Ok(IoSpaceOp::UnmapBatch { space, plans: &plans[..count] })
            }
        }
        (Cap::IoSpace { .. }, Invocation::IoSpaceAssign | Invocation::IoSpaceUnassign) => {
            let count = group_members(msg, cspace, extra, members)?;
            Ok(IoSpaceOp::Assign { unassign: label == Invocation::IoSpaceUnassign, members: &members[..count] })
        }
        (Cap::IoSpace { .. }, Invocation::IoSpaceNextFault) => {
            Ok(IoSpaceOp::NextFault { domain: iospace::decode_next_fault(&cap).map_err(|e| fail(e, 0))? })
        }
        (Cap::IoSpace { .. }, Invocation::IoSpaceSetFaultHandler) => {
            let (_, handler) = extra(0)?;
            Ok(IoSpaceOp::SetFaultHandler { handler })
        }
        (Cap::IoPageTable { .. }, Invocation::IoPageTableMap) => {
            let (_, iospace) = extra(0)?;
            Ok(IoSpaceOp::MapTable { iospace, iova: msg.mr(0)? })
        }
        (Cap::IoPageTable { .. }, Invocation::IoPageTableUnmap) => Ok(IoSpaceOp::UnmapTable),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Performs a decoded invocation of the IOSpace or IOPageTable cap `cap` in `slot`.
///
/// Assign / Unassign, SetFaultHandler and IOPageTable::Map can still fail here: the
/// IOMMU layer (`iommu::iospace`) checks the group, the handler cap and the table
/// walk in the same call that changes them, and changes nothing when it refuses.
#[inline(always)]
fn invoke(mem: &mut DirectMemory, slot: SlotAddr, cap: Cap, op: IoSpaceOp<'_>) -> Reply {
    match op {
        IoSpaceOp::MapBatch { space, iova, plans } => {
            invoke_map_batch(space, iova, plans);
            iospace::flush_after_map(&mut Vtd, space.domain, iova, iova + PAGE * plans.len() as u64);
        }
        // Never empty (`decode` refuses a count of 0). Saying so here lets the compiler
        // drop the empty check in `invoke_unmap`, which UnmapIO of one page also runs.
        IoSpaceOp::UnmapBatch { space, plans } if !plans.is_empty() => {
            invoke_unmap(space, plans);
            let (start, end) = unmapped_span(plans);
            iospace::flush_range(&mut Vtd, space.domain, start, end);
        }
        IoSpaceOp::Assign { unassign, members } => {
            let r = if unassign {
                iospace::unassign(&mut Vtd, &cap, members)
            } else {
                iospace::assign(&mut Vtd, &cap, members)
            };
            r.map_err(|e| fail(e, 100))?;
        }
        IoSpaceOp::SetFaultHandler { handler } => {
            iospace::set_fault_handler(&cap, &handler).map_err(|e| fail(e, 100))?;
        }
        IoSpaceOp::NextFault { domain } => return Ok(iospace::next_fault(domain).encode()),
        IoSpaceOp::MapTable { iospace, iova } => {
            let mapped = iospace::map_table(&mut Vtd, &cap, &iospace, iova).map_err(|e| fail(e, 0))?;
            mem.store_cap(slot, mapped);
        }
        IoSpaceOp::UnmapBatch { .. } => {}
        IoSpaceOp::UnmapTable => {
            if let Some(unmapped) = iospace::unmap(&mut Vtd, &cap) {
                mem.store_cap(slot, unmapped);
            }
        }
    }
    Ok([0; REGISTER_MRS])
}
