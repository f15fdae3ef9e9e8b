//! MapIO, UnmapIO, MapBatch and UnmapBatch of 4 KiB frames: the common case, tight.
//!
//! A driver maps and unmaps its DMA buffers one page at a time or in batches of up to
//! 64. The checked planners in `iospace.rs` decide every case; this module takes the
//! usual one (a single-level CSpace, every cap passing every check, the tables present)
//! over raw slot words, one loop per phase for a batch, and answers `None`, having
//! changed nothing, the moment
//! anything is unusual: a lookup that is not single-level, a cap that fails a check, a
//! missing table, a slot named twice, a short message. The checked path then decodes
//! the same call from scratch and gives the exact answer, so the two are observably the
//! same (captest `batchpaths` runs the same calls through both and compares). Like the
//! checked path it decides everything before it changes anything.

use abi::ipc_buffer::{MSG_OFFSET, REGISTER_MRS};
use abi::layout::PAGE_SIZE as PAGE;
use abi::rights::CapRights;

use super::args::{Message, MAX_BATCH};
use super::iospace::{clear_io_record, leaf_table, set_io_record, write_back, Space};
use crate::arch::kmem::{self, DirectMemory};
use crate::arch::trap::TrapFrame;
use crate::iommu::access::Vtd;
use crate::iommu::entries::{check_iova_pages, page_iova_ok, sl, sl_entry, sl_leaf_table};
use crate::iommu::{counters, iospace, unit};
use crate::object::cap::{raw_frame, Cap};
use crate::object::cnode::FlatCSpace;
use crate::object::cte::SlotMemory;
use crate::object::cte::{SlotAddr, SLOT_BITS};
use crate::thread::{fastpath, tcb_state};

// The loops read a frame cap's words as [word 0, address, space, IOVA].
static_assertions::const_assert!(raw_frame::WORD_ADDR == 1 && raw_frame::WORD_SPACE == 2 && raw_frame::WORD_VADDR == 3);

/// Reads the `count` cap addresses of a batch, message registers `first..`, into
/// `out`; `None` if the message is shorter.
fn cptrs(msg: &Message<'_>, first: usize, count: usize, out: &mut [u64; MAX_BATCH]) -> Option<()> {
    debug_assert!(first <= REGISTER_MRS);
    if usize::from(msg.info.length) < first + count {
        return None;
    }
    let regs = [msg.frame.rdx, msg.frame.r10, msg.frame.r8, msg.frame.r9];
    let in_regs = (REGISTER_MRS - first).min(count);
    out[..in_regs].copy_from_slice(&regs[first..first + in_regs]);
    if count > in_regs {
        if msg.ipc_buffer == 0 {
            return None;
        }
        kmem::ipc_words(msg.ipc_buffer, MSG_OFFSET / 8 + REGISTER_MRS, &mut out[in_regs..count]);
    }
    Some(())
}

/// Whether `slot` is among `earlier`: a 64-bit filter of slot addresses first (a batch
/// of consecutive slots never hits it; only a hit pays for the exact scan). Records
/// `slot` in the filter.
#[inline(always)]
fn repeated(filter: &mut u64, earlier: &[SlotAddr], slot: SlotAddr) -> bool {
    let bit = 1u64 << ((slot >> SLOT_BITS) & 63);
    let hit = *filter & bit != 0 && earlier.contains(&slot);
    *filter |= bit;
    hit
}

/// Most 2 MiB regions (so leaf tables) one batch's IOVAs cross.
const MAX_RUNS: usize = MAX_BATCH / 512 + 2;

/// MapBatch (MR0 IOVA, MR1 rights, MR2 count, then the frame caps) of unmapped 4 KiB
/// RAM frames at consecutive IOVAs, or `None` with nothing changed.
#[inline(never)]
fn try_map(msg: &Message<'_>, space: Space, cs: FlatCSpace) -> Option<()> {
    let count = usize::try_from(msg.mr(2).ok()?).ok().filter(|&c| c > 0 && c <= MAX_BATCH)?;
    let iova = msg.mr(0).ok()?;
    let rights = CapRights::from_raw(msg.mr(1).ok()?)?.intersect(CapRights::READ.union(CapRights::WRITE));
    if rights == CapRights::NONE || check_iova_pages(iova, count as u64, space.levels).is_err() {
        return None;
    }
    // The cap addresses, each replaced by its slot once looked up.
    let mut all = [0u64; MAX_BATCH];
    cptrs(msg, 3, count, &mut all)?;
    let slots = &mut all[..count];
    let wanted = u64::from(rights.raw());
    let perm = sl_entry(0, rights.contains(CapRights::READ), rights.contains(CapRights::WRITE), false);
    // The leaf tables, one per 2 MiB region the IOVAs cross (64 pages cross at most 2):
    // the first page of each run and the address of its entry.
    let mut runs = [(0usize, 0u64); MAX_RUNS];
    let mut filter = 0;
    let (mut first, mut run) = (0, 0);
    while first < count {
        let at = iova + PAGE * first as u64;
        let table = sl_leaf_table(&DirectMemory, space.root, space.levels, at)?;
        let entries = table + 8 * ((at >> 12) & 511);
        let end = count.min(first + 512 - ((at >> 12) & 511) as usize);
        for (i, entry) in (first..end).zip((entries..).step_by(8)) {
            let slot = cs.slot(slots[i])?;
            let w0 = kmem::read_word(slot);
            if !raw_frame::is_mappable_small(w0, wanted)
                || repeated(&mut filter, &slots[..i], slot)
                || kmem::read_word(entry) & (sl::READ | sl::WRITE) != 0
            {
                return None;
            }
            slots[i] = slot;
        }
        runs[run] = (first, entries);
        (first, run) = (end, run + 1);
    }
    // Every page passed: write the entries and the caps' records.
    let mut written_back = u64::MAX;
    for (r, &(start, entries)) in runs[..run].iter().enumerate() {
        let end = if r + 1 < run { runs[r + 1].0 } else { count };
        for (i, entry) in (start..end).zip((entries..).step_by(8)) {
            let slot = slots[i];
            let [w0, paddr] = kmem::read_words::<2>(slot);
            kmem::write_words(entry, [paddr & sl::ADDR | perm]);
            written_back = write_back(written_back, entry);
            set_io_record(slot, w0, space.root, iova + PAGE * i as u64);
        }
    }
    counters::leaves_written(count as u64);
    unit::sync_fence();
    iospace::flush_after_map(&mut Vtd, space.domain, iova, iova + PAGE * count as u64);
    Some(())
}

/// UnmapBatch (MR0 count, then the frame caps) of 4 KiB frames IO-mapped in `space`,
/// or `None` with nothing changed.
#[inline(never)]
fn try_unmap(msg: &Message<'_>, space: Space, cs: FlatCSpace) -> Option<()> {
    let count = usize::try_from(msg.mr(0).ok()?).ok().filter(|&c| c > 0 && c <= MAX_BATCH)?;
    // The cap addresses, each replaced by its slot once looked up.
    let mut all = [0u64; MAX_BATCH];
    cptrs(msg, 1, count, &mut all)?;
    let slots = &mut all[..count];
    let mut filter = 0;
    let (mut low, mut high) = (u64::MAX, 0);
    for i in 0..count {
        let slot = cs.slot(slots[i])?;
        let [w0, _, root, iova] = kmem::read_words::<4>(slot);
        if !raw_frame::is_io_mapped_small(w0) || root != space.root || repeated(&mut filter, &slots[..i], slot) {
            return None;
        }
        slots[i] = slot;
        (low, high) = (low.min(iova), high.max(iova));
    }
    // Every cap passed: clear the entries that still name the frames, and the records.
    let mut cache = (u64::MAX, None);
    let (mut cleared, mut written_back) = (0, u64::MAX);
    for &slot in slots.iter() {
        let [w0, paddr, _, iova] = kmem::read_words::<4>(slot);
        if let Some(table) = leaf_table(space, &mut cache, iova) {
            let entry = table + 8 * ((iova >> 12) & 511);
            let value = kmem::read_word(entry);
            if value & (sl::READ | sl::WRITE) != 0 && value & sl::ADDR == paddr {
                kmem::write_words(entry, [0]);
                written_back = write_back(written_back, entry);
                cleared += 1;
            }
        }
        clear_io_record(slot, w0);
    }
    counters::leaves_written(cleared);
    unit::sync_fence();
    iospace::flush_range(&mut Vtd, space.domain, low, high + PAGE);
    Some(())
}

/// The short way for MapBatch (`map`) and UnmapBatch, as `iospace::fast_frame_call` is
/// for one page: raw lookups of the IOSpace cap and of the caller's single-level CSpace,
/// then [`try_map`] / [`try_unmap`], with the result in `frame`. `false`, having
/// changed nothing, whenever the general path must decide.
pub fn fast_batch_call(frame: &mut TrapFrame, map: bool) -> bool {
    let Some(info) = abi::msginfo::MessageInfo::from_word(frame.rsi) else { return false };
    if info.extra_caps != 0 || info.caps_unwrapped != 0 {
        return false;
    }
    let me = tcb_state::current();
    let Some(cs) = fastpath::flat_cspace(me) else { return false };
    let Some(slot) = cs.slot(frame.rdi) else { return false };
    let Cap::IoSpace { paddr: root, levels, domain } = DirectMemory.load(slot).cap else { return false };
    let msg = Message { info, frame, ipc_buffer: tcb_state::ipc_buffer(me) };
    let space = Space { root, levels, domain };
    let done = if map { try_map(&msg, space, cs) } else { try_unmap(&msg, space, cs) };
    if done.is_none() {
        return false;
    }
    frame.rax = 0;
    frame.rdi = 0;
    [frame.rdx, frame.r10, frame.r8, frame.r9] = [0; REGISTER_MRS];
    true
}

/// MapIO of the frame in `slot` at `iova` in `space` (a 4 KiB RAM frame, unmapped, with
/// `rights`), or `None` with nothing changed.
#[inline(always)]
pub(super) fn map_one(space: Space, iova: u64, rights: CapRights, slot: SlotAddr) -> Option<()> {
    let [w0, paddr] = kmem::read_words::<2>(slot);
    if !raw_frame::is_mappable_small(w0, u64::from(rights.raw())) || !page_iova_ok(iova, space.levels) {
        return None;
    }
    let table = sl_leaf_table(&DirectMemory, space.root, space.levels, iova)?;
    let entry = table + 8 * ((iova >> 12) & 511);
    if kmem::read_word(entry) & (sl::READ | sl::WRITE) != 0 {
        return None;
    }
    let perm = sl_entry(0, rights.contains(CapRights::READ), rights.contains(CapRights::WRITE), false);
    kmem::write_words(entry, [paddr & sl::ADDR | perm]);
    unit::write_back_line(entry & !63);
    set_io_record(slot, w0, space.root, iova);
    counters::leaves_written(1);
    unit::sync_fence();
    iospace::flush_after_map(&mut Vtd, space.domain, iova, iova + PAGE);
    Some(())
}

/// UnmapIO of the 4 KiB frame in `slot`, whose record names the live IOSpace rooted at
/// `root` with `domain` (`iospace::domain_of_root`), or `None` with nothing changed.
#[inline(always)]
pub(super) fn unmap_one(root: u64, domain: Option<u16>, slot: SlotAddr) -> Option<()> {
    let [w0, paddr, recorded, iova] = kmem::read_words::<4>(slot);
    if !raw_frame::is_io_mapped_small(w0) || recorded != root {
        return None;
    }
    let mut cleared = 0;
    if let Some(table) = sl_leaf_table(&DirectMemory, root, iospace::levels(), iova) {
        let entry = table + 8 * ((iova >> 12) & 511);
        let value = kmem::read_word(entry);
        if value & (sl::READ | sl::WRITE) != 0 && value & sl::ADDR == paddr {
            kmem::write_words(entry, [0]);
            unit::write_back_line(entry & !63);
            cleared = 1;
        }
    }
    clear_io_record(slot, w0);
    counters::leaves_written(cleared);
    unit::sync_fence();
    // What `flush_root_range` does for this page, without its range arithmetic.
    if let Some(domain) = domain {
        unit::invalidate_page(domain, iova);
    }
    Some(())
}
