//! The IO short paths answer as the general path: the same calls, both compared.
//!
//! MapIO, UnmapIO, MapBatch and UnmapBatch of 4 KiB frames take short paths when the
//! caller's CSpace is one CNode (`invoke/iospace.rs` `fast_frame_call`,
//! `invoke/io_batch.rs`); any other CSpace takes the general path. This thread runs a
//! sequence of such calls (successes and every refusal the short paths fall back on)
//! from its flat CSpace; a worker runs the same sequence through a two-level CSpace
//! whose second level is this thread's CNode (so every cap address means the same
//! slot), on its own frames and IOVAs. Every step must give the same result, error
//! detail included, and leave the same mapping records.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::invocation::Invocation;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{invoke, CNode, Frame, IoPageTable, IoSpace, Result, SlotRef, Tcb, VSpace};
use libcap::ipc;
use libcap::println;
use libcap::space::spawn_with;

use crate::Checker;

/// Stack and IPC buffer of the two-level worker.
const WORKER_REGION: u64 = 0x0000_3c00_0000_0000;
/// Each side's IOVAs: its own GiB of the IOSpace (apart enough that no step of one
/// side reaches the other's).
const FLAT_BASE: u64 = 0x4000_0000;
const DEEP_BASE: u64 = 0x4_0000_0000;
const PAGE: u64 = 4096;
const MIB2: u64 = 2 << 20;
/// Frames per side: a full batch and eight more.
const FRAMES: usize = 72;
/// Steps of the sequence.
const STEPS: usize = 85;

/// What one side works on (cap addresses mean the same slot on both sides).
#[derive(Clone, Copy)]
struct Side {
    space: IoSpace,
    base: u64,
    frames: [Frame; FRAMES],
    /// A read-only copy of `frames[0]`'s sibling (a frame of its own).
    read_only: Frame,
    /// A 2 MiB frame, an endpoint and an empty slot: caps a batch refuses.
    large: Frame,
    endpoint: u64,
    empty: u64,
}

/// Per step: the call's outcome (0, or code << 32 | detail) and a digest of the
/// frames' recorded IOVAs relative to the side's base.
type Transcript = [(u64, u64); STEPS];

static DEEP_SIDE: [AtomicU64; 6 + FRAMES] = [const { AtomicU64::new(0) }; 6 + FRAMES];
static DEEP_OUT: [[AtomicU64; 2]; STEPS] = [const { [const { AtomicU64::new(0) }; 2] }; STEPS];
static DEEP_DONE: AtomicBool = AtomicBool::new(false);

fn outcome(r: Result<()>) -> u64 {
    r.err().map_or(0, |e| (e.code.raw() << 32) | (e.detail & 0xffff_ffff))
}

/// The frames' recorded IOVAs, relative to `base`, folded into one word.
fn records(side: &Side) -> u64 {
    side.frames.iter().enumerate().fold(0u64, |acc, (i, f)| {
        let at = f.info().map_or(u64::MAX, |info| if info.vaddr == 0 { 0 } else { info.vaddr.wrapping_sub(side.base) });
        acc.wrapping_mul(31).wrapping_add(at ^ (i as u64) << 48)
    })
}

/// The sequence; every step's outcome and the records after it.
fn run_steps(side: &Side) -> Transcript {
    let (s, b, f) = (side.space, side.base, &side.frames);
    let rw = CapRights::READ.union(CapRights::WRITE);
    let mut out = [(0, 0); STEPS];
    let mut step = 0;
    let mut record = |r: Result<()>| {
        out[step] = (outcome(r), records(side));
        step += 1;
    };
    record(s.map_batch(b, rw, &f[..64]));
    record(s.map_batch(b + 64 * PAGE, rw, &f[..1]));
    record(s.unmap_batch(&f[..64]));
    record(s.map_batch(b, rw, &[f[0], f[1], f[0]]));
    record(s.map_batch(b, rw, &[side.read_only]));
    record(s.map_batch(b + 8, rw, &f[..1]));
    record(s.map_batch(b, rw, &f[..65]));
    record(s.map_batch(b + MIB2 - 2 * PAGE, rw, &f[..5]));
    record(s.unmap_batch(&f[..5]));
    record(s.map_batch(b + 2 * MIB2, rw, &f[..1]));
    record(f[1].map_io(s, b + 3 * PAGE, rw));
    record(s.map_batch(b + 3 * PAGE, rw, &f[2..3]));
    record(s.unmap_batch(&f[3..4]));
    record(s.unmap_batch(&[f[1], f[1]]));
    record(s.map_batch(b, rw, &[Frame(side.empty)]));
    record(s.map_batch(b, rw, &[Frame(side.endpoint)]));
    record(s.map_batch(b, rw, &[side.large]));
    record(s.unmap_batch(&f[1..2]));
    record(f[1].unmap_io());
    record(s.map_batch(b, CapRights::READ, &f[64..]));
    record(s.unmap_batch(&f[64..]));
    record(s.map_batch(b, CapRights::NONE, &f[..1]));
    record(f[0].map_io(s, b + 7 * PAGE, CapRights::READ));
    record(f[0].unmap_io());
    // Attack PoC (IO short paths): every shape the short paths must refuse unchanged,
    // answered as the general path answers it.
    let raw = |label: Invocation, mrs: &[u64], extra: &[u64]| invoke(s.0, label, mrs, extra).map(|_| ());
    let (map, unmap) = (Invocation::IoSpaceMapBatch, Invocation::IoSpaceUnmapBatch);
    // The IOSpace cap itself, a guard mismatch and a cptr beyond the CNode as frames.
    record(s.map_batch(b, rw, &[f[0], Frame(s.0)]));
    record(s.map_batch(b, rw, &[f[0], Frame(f[1].0 | 1 << 63)]));
    record(s.map_batch(b, rw, &[f[0], Frame(f[1].0 | 1 << 40)]));
    record(s.unmap_batch(&[Frame(f[1].0 | 1 << 63)]));
    record(s.unmap_batch(&[Frame(s.0)]));
    // A slot named twice in an aligned batch, in one run and across two runs.
    record(s.map_batch(b, rw, &[f[0], f[1], f[2], f[0]]));
    record(s.map_batch(b + MIB2 - PAGE, rw, &[f[0], f[1], f[2], f[3], f[0]]));
    // Counts of 0 and 65 sent raw; a message shorter than its count.
    record(raw(map, &[b, u64::from(rw.raw()), 0], &[]));
    record(raw(unmap, &[0], &[]));
    record(raw(unmap, &[65, f[0].0, f[1].0, f[2].0], &[]));
    record(raw(map, &[b, u64::from(rw.raw()), 3, f[0].0, f[1].0], &[]));
    record(raw(unmap, &[5, f[0].0, f[1].0, f[2].0, f[3].0], &[]));
    // Rights no frame has; the MSI window; beyond the address width (and wrapping).
    record(raw(map, &[b, 1 << 40, 1, f[0].0], &[]));
    record(s.map_batch(0xfee0_0000 - 2 * PAGE, rw, &f[..3]));
    record(s.map_batch((1 << 39) - 2 * PAGE, rw, &f[..3]));
    record(s.map_batch(!0xfff, rw, &f[..1]));
    record(s.map_batch(1 << 48, rw, &f[..1]));
    // A batch starts at any page; 4 pages from 8 KiB below 4 MiB reach the region
    // without a leaf table (nothing mapped).
    record(s.map_batch(b + 2 * MIB2 - 2 * PAGE, rw, &f[..4]));
    // Batches of 5 and 3 crossing a 2 MiB boundary: into the next leaf table (two
    // runs), and into a region without one (nothing mapped).
    record(s.map_batch(b + MIB2 - PAGE, rw, &f[..5]));
    record(s.unmap_batch(&f[..5]));
    record(s.map_batch(b + 2 * MIB2 - 2 * PAGE, rw, &f[..3]));
    // A read-only cap: mapped read-only, refused for writing.
    record(s.map_batch(b, CapRights::WRITE, &[f[5], side.read_only]));
    record(s.map_batch(b + 8 * PAGE, CapRights::READ, &[f[5], side.read_only]));
    record(s.unmap_batch(&[f[5], side.read_only]));
    // An unmap naming an unmapped frame after mapped ones: nothing unmapped.
    record(s.map_batch(b, rw, &f[..2]));
    record(s.unmap_batch(&[f[0], f[1], f[2]]));
    record(f[2].unmap_io());
    // A frame IO-mapped once, mapped again by batch and by MapIO.
    record(s.map_batch(b + 4 * PAGE, rw, &[f[1]]));
    record(f[1].map_io(s, b + 4 * PAGE, rw));
    record(s.unmap_batch(&[f[1], f[0]]));
    // Extra caps on a batch (the short path leaves it to the general one).
    record(raw(map, &[b, u64::from(rw.raw()), 1, f[0].0], &[f[1].0]));
    record(raw(unmap, &[1, f[0].0], &[s.0]));
    // MapIO refusals: misaligned, MSI window, no table, rights, a non-IOSpace or
    // unresolvable IOSpace cap, a 2 MiB frame; then a plain MapIO of a page whose
    // neighbour is mapped, and UnmapIO of an unmapped frame.
    record(f[0].map_io(s, b + 0x800, rw));
    record(f[0].map_io(s, 0xfee0_0000, rw));
    record(f[0].map_io(s, b + 2 * MIB2, rw));
    record(side.read_only.map_io(s, b, CapRights::WRITE));
    record(f[0].map_io(IoSpace(side.endpoint), b, rw));
    record(f[0].map_io(IoSpace(s.0 | 1 << 63), b, rw));
    record(side.large.map_io(s, b, rw));
    record(f[0].map_io(s, b + 8 * PAGE, rw));
    record(f[1].map_io(s, b + 8 * PAGE, rw));
    record(f[1].map_io(s, b + 10 * PAGE, CapRights::READ));
    record(f[0].unmap_io());
    record(f[0].unmap_io());
    record(s.unmap_batch(&[f[1]]));
    // Attack PoC (the frame route, commit 8459678): a Call without caps and with at
    // most four registers on a Frame cap goes from the fastpath's lookup to
    // `syscall_frame_dispatch`; anything but a plain UnmapIO there runs the general
    // path. UnmapIO with four junk registers, mapped and unmapped; with an extra cap
    // (not routed); on an empty slot, the IOSpace cap and an unresolvable
    // cptr; of an IO-mapped 2 MiB frame; CPU Unmap of an IO-mapped frame; GetAddress.
    let frame_raw =
        |f: Frame, label: Invocation, mrs: &[u64], extra: &[u64]| invoke(f.0, label, mrs, extra).map(|_| ());
    let junk = [0xdead_beef, 1 << 63, u64::MAX, 0x1000];
    record(f[0].map_io(s, b + 12 * PAGE, rw));
    record(frame_raw(f[0], Invocation::FrameUnmapIo, &junk, &[]));
    record(frame_raw(f[0], Invocation::FrameUnmapIo, &junk, &[]));
    record(f[0].map_io(s, b + 12 * PAGE, rw));
    record(frame_raw(f[0], Invocation::FrameUnmapIo, &[], &[s.0]));
    // A failed lookup's detail is the cptr (each side's own): the code is compared.
    let code_only = |r: Result<()>| r.map_err(|e| libcap::cap::Error { detail: 0, ..e });
    record(code_only(Frame(side.empty).unmap_io()));
    record(Frame(s.0).unmap_io());
    record(code_only(Frame(f[0].0 | 1 << 63).unmap_io()));
    record(side.large.map_io(s, b + 4 * MIB2, rw));
    record(side.large.unmap_io());
    record(side.large.unmap_io());
    record(f[0].map_io(s, b + 12 * PAGE, rw));
    record(f[0].unmap());
    record(f[0].unmap_io());
    record(frame_raw(f[0], Invocation::FrameGetAddress, &junk, &[]));
    record(frame_raw(side.read_only, Invocation::FrameUnmapIo, &[], &[]));
    out
}

/// The worker: the sequence through its two-level CSpace, then parked.
extern "C" fn deep_worker(_: u64) -> ! {
    let word = |i: usize| DEEP_SIDE[i].load(SeqCst);
    let mut frames = [Frame(0); FRAMES];
    for (i, f) in frames.iter_mut().enumerate() {
        *f = Frame(word(6 + i));
    }
    let side = Side {
        space: IoSpace(word(0)),
        base: word(1),
        frames,
        read_only: Frame(word(2)),
        large: Frame(word(3)),
        endpoint: word(4),
        empty: word(5),
    };
    for (slot, (result, records)) in DEEP_OUT.iter().zip(run_steps(&side)) {
        slot[0].store(result, SeqCst);
        slot[1].store(records, SeqCst);
    }
    DEEP_DONE.store(true, SeqCst);
    loop {
        let _ = ipc::recv(side.endpoint);
    }
}

/// One side's caps and leaf tables (at `base` and 2 MiB above; none at 4 MiB).
fn side(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, space: IoSpace, base: u64) -> Option<Side> {
    let root = CNode(slots::INIT_CNODE);
    for at in [base, base, base + MIB2] {
        let table = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).ok()?);
        table.map(space, at).ok()?;
    }
    let mut frames = [Frame(0); FRAMES];
    for f in frames.iter_mut() {
        *f = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).ok()?);
    }
    let own = objects.alloc(slots, ObjectType::Frame4K, 0).ok()?;
    let read_only = slots.alloc().ok()?;
    CNode::copy(root.slot(read_only), root.slot(own), CapRights::READ).ok()?;
    Some(Side {
        space,
        base,
        frames,
        read_only: Frame(read_only),
        large: Frame(objects.alloc(slots, ObjectType::Frame2M, 0).ok()?),
        endpoint: objects.alloc(slots, ObjectType::Endpoint, 0).ok()?,
        empty: slots.alloc().ok()?,
    })
}

/// Runs the comparison.
pub fn run(c: &mut Checker, bi: &BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let Some(space) = objects.alloc(slots, ObjectType::IoSpace, 0).ok().map(IoSpace) else {
        return c.check("batch paths: an IOSpace", false);
    };
    let (Some(flat), Some(deep)) = (side(objects, slots, space, FLAT_BASE), side(objects, slots, space, DEEP_BASE))
    else {
        return c.check("batch paths: frames and tables for both sides", false);
    };
    // The worker's CSpace: a root of two slots below a guard, slot 0 holding this
    // thread's CNode without its guard, so address a means slot a on both sides.
    let radix = u64::from(bi.init_cnode_radix);
    let (Ok(mirror), Ok(worker_root), Ok(guarded)) =
        (slots.alloc(), objects.alloc(slots, ObjectType::CNode, 1), slots.alloc())
    else {
        return c.check("batch paths: the worker's CNodes", false);
    };
    let built = CNode::mint(root.slot(mirror), root.slot(slots::INIT_CNODE), CapRights::ALL, 0).is_ok()
        && CNode::copy(SlotRef { root: CNode(worker_root), index: 0, depth: 1 }, root.slot(mirror), CapRights::ALL)
            .is_ok()
        && CNode::mint(root.slot(guarded), root.slot(worker_root), CapRights::ALL, 63 - radix).is_ok();
    c.check("batch paths: a two-level CSpace over this thread's CNode", built);
    let words = [deep.space.0, deep.base, deep.read_only.0, deep.large.0, deep.endpoint, deep.empty];
    for (slot, w) in DEEP_SIDE.iter().zip(words.into_iter().chain(deep.frames.iter().map(|f| f.0))) {
        slot.store(w, SeqCst);
    }
    let flat_out = run_steps(&flat);
    // The worker runs above this thread until it parks.
    let me = Tcb(slots::INIT_TCB);
    let _ = me.set_priority(me, 254);
    let worker =
        spawn_with(objects, slots, CNode(guarded), VSpace(slots::INIT_VSPACE), deep_worker, 0, 255, WORKER_REGION, 0);
    let _ = me.set_priority(me, 255);
    if let Err(e) = &worker {
        println!("captest: batch paths: spawning the worker failed: {e:?}");
    }
    c.check("batch paths: the two-level worker ran the sequence", worker.is_ok() && DEEP_DONE.load(SeqCst));
    let mut agree = 0;
    for (i, (flat_step, deep_slot)) in flat_out.iter().zip(&DEEP_OUT).enumerate() {
        let deep_step = (deep_slot[0].load(SeqCst), deep_slot[1].load(SeqCst));
        if *flat_step == deep_step {
            agree += 1;
        } else {
            println!(
                "captest: FAIL batch paths step {i}: short path {:#x} (records {:#x}), general path {:#x} (records {:#x})",
                flat_step.0, flat_step.1, deep_step.0, deep_step.1
            );
        }
    }
    let refused = flat_out.iter().filter(|s| s.0 != 0).count();
    // Which steps succeeded, step i as bit i: the scenario pins the whole pattern.
    let succeeded = flat_out.iter().enumerate().fold(0u128, |m, (i, s)| m | u128::from(s.0 == 0) << i);
    println!("captest: batch paths: steps that succeeded {succeeded:#x}");
    println!("captest: batch paths: {agree} of {STEPS} steps agree ({refused} refusals)");
    c.check("the IO short paths answer every step as the general path", agree == STEPS && refused >= 10);
}
