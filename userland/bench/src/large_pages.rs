//! Mapping 1 GiB as 1 x 1 GiB, 512 x 2 MiB or 262,144 x 4 KiB frames (bench).
//!
//! `make bench` part `large-pages`, for a device (MapIO) and for the CPU (Map).
//!
//! Runs instead of the other rows when the machine has a free, aligned 1 GiB of RAM
//! (the part boots QEMU with 3 GiB). Each row is the guest instructions of mapping the
//! whole GiB with the tables below the leaves already installed. 262,144 frame caps
//! need more slots than one CNode holds (2^16), so the 4 KiB rows run on a thread whose
//! CSpace is two levels: a root of 8 slots (guard 45 bits) over four CNodes of 2^16
//! frame caps and one small CNode with its IOSpace, VSpace and endpoint caps.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, PageTable, SlotRef, Tcb, Untyped, VSpace};
use libcap::ipc;
use libcap::println;
use libcap::space::spawn_with;

const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;
const SMALL_PAGES: u64 = GIB / 4096;
/// IOVAs of the three 1 GiB regions (clear of the MSI window at 0xfee0_0000).
const IOVA_1G: u64 = GIB;
const IOVA_2M: u64 = 2 * GIB;
const IOVA_4K: u64 = 4 * GIB;
/// CPU addresses of the three regions (one PDPT).
const CPU_BASE: u64 = 0x0000_5200_0000_0000;
const CPU_1G: u64 = CPU_BASE + GIB;
const CPU_2M: u64 = CPU_BASE + 2 * GIB;
const CPU_4K: u64 = CPU_BASE + 3 * GIB;
/// The 4 KiB thread's stack and IPC buffer.
const WORKER_REGION: u64 = 0x0000_5300_0000_0000;
/// The worker's CSpace: root radix 3 below a 45-bit guard, CNodes of radix 16.
const ROOT_RADIX: u64 = 3;
const LEAF_RADIX: u64 = 16;
const ROOT_GUARD_BITS: u64 = 64 - ROOT_RADIX - LEAF_RADIX;
/// The small CNode (radix 4, a 12-bit guard) in root slot 4: IOSpace, VSpace, endpoint.
const SMALL_RADIX: u64 = 4;
const SMALL_NODE: u64 = 4;
const SMALL_IOSPACE: u64 = 0;
const SMALL_VSPACE: u64 = 1;
const SMALL_ENDPOINT: u64 = 2;

/// The worker's results: (IO map, CPU map) instructions, then the failures seen.
static IO_4K: AtomicU64 = AtomicU64::new(0);
static CPU_4K_TOOK: AtomicU64 = AtomicU64::new(0);
static WORKER_FAILURES: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether the machine has a 1 GiB RAM untyped (the `large-pages` boot).
pub fn present(bi: &BootInfo) -> bool {
    bi.untyped().iter().any(|u| u.is_device == 0 && u.size_bits >= 30)
}

/// The worker's address of frame `i` (0..262,144): root slot `i >> 16`, then slot
/// `i & 0xffff` of that CNode, which is `i` itself.
const fn small_frame(i: u64) -> u64 {
    i
}

/// The worker's address of slot `i` of the small CNode.
const fn small_slot(i: u64) -> u64 {
    (SMALL_NODE << LEAF_RADIX) | i
}

fn row(name: &str, took: u64) {
    println!("bench: {name} min={took} median={took} runs=1");
}

/// The 4 KiB rows, on the two-level CSpace: 4,096 batches of 64 MapIO, then (after the
/// unmaps, untimed) 262,144 Map.
extern "C" fn worker(_: u64) -> ! {
    let iospace = IoSpace(small_slot(SMALL_IOSPACE));
    let vspace = VSpace(small_slot(SMALL_VSPACE));
    let mut failures = 0;
    let mut frames = [Frame(0); 64];
    let t0 = crate::now();
    for batch in 0..SMALL_PAGES / 64 {
        for (j, f) in frames.iter_mut().enumerate() {
            *f = Frame(small_frame(batch * 64 + j as u64));
        }
        failures += u64::from(iospace.map_batch(IOVA_4K + batch * 64 * 4096, CapRights::ALL, &frames).is_err());
    }
    IO_4K.store(crate::now() - t0, SeqCst);
    for batch in 0..SMALL_PAGES / 64 {
        for (j, f) in frames.iter_mut().enumerate() {
            *f = Frame(small_frame(batch * 64 + j as u64));
        }
        failures += u64::from(iospace.unmap_batch(&frames).is_err());
    }
    let t0 = crate::now();
    for i in 0..SMALL_PAGES {
        failures += u64::from(Frame(small_frame(i)).map(vspace, CPU_4K + i * 4096, CapRights::ALL, 0).is_err());
    }
    CPU_4K_TOOK.store(crate::now() - t0, SeqCst);
    WORKER_FAILURES.store(failures, SeqCst);
    loop {
        let _ = ipc::recv(small_slot(SMALL_ENDPOINT));
    }
}

/// Installs the IO tables a region of `bytes` at `iova` needs for leaves of `leaf`
/// bytes (none for 1 GiB leaves under 3-level tables).
fn io_tables(objects: &mut ObjectAllocator, slots: &SlotAllocator, space: IoSpace, iova: u64, leaf: u64) {
    let mut install = |at: u64| {
        let t = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).expect("io table"));
        // Installs at the first missing level; DeleteFirst where every level exists.
        let _ = t.map(space, at);
    };
    // QEMU's default unit has 3-level tables: 1 GiB leaves sit in the root, 2 MiB
    // leaves in a table below it (with 4 levels a map would fail, and so the run).
    if leaf < GIB {
        install(iova);
    }
    if leaf == 4096 {
        for i in 0..512 {
            install(iova + i * MIB2);
        }
    }
}

/// The CPU tables for a region at `vaddr` with leaves of `leaf` bytes.
fn cpu_tables(objects: &mut ObjectAllocator, slots: &SlotAllocator, vaddr: u64, leaf: u64) {
    let vspace = VSpace(slots::INIT_VSPACE);
    let mut install = |kind: ObjectType, at: u64| {
        let t = PageTable(objects.alloc(slots, kind, 0).expect("page table"));
        let _ = t.map(vspace, at);
    };
    install(ObjectType::Pdpt, vaddr);
    if leaf < GIB {
        install(ObjectType::PageDirectory, vaddr);
    }
    if leaf == 4096 {
        for i in 0..512 {
            install(ObjectType::PageTable, vaddr + i * MIB2);
        }
    }
}

/// The six rows; returns false (having said why) if a step failed.
pub fn rows(objects: &mut ObjectAllocator, slots: &SlotAllocator) -> bool {
    let root = CNode(slots::INIT_CNODE);
    let Ok(ut) = objects.alloc(slots, ObjectType::Untyped, 30).map(Untyped) else {
        println!("bench: FAIL no aligned 1 GiB of RAM for the large-page rows");
        return false;
    };
    let space = IoSpace(objects.alloc(slots, ObjectType::IoSpace, 0).expect("iospace"));
    let vspace = VSpace(slots::INIT_VSPACE);
    for (iova, vaddr, leaf) in [(IOVA_1G, CPU_1G, GIB), (IOVA_2M, CPU_2M, MIB2), (IOVA_4K, CPU_4K, 4096)] {
        io_tables(objects, slots, space, iova, leaf);
        cpu_tables(objects, slots, vaddr, leaf);
    }
    // One 1 GiB frame (and an IO copy: a cap records one mapping).
    let big = slots.alloc_range(2).expect("slots");
    if ut.retype(ObjectType::Frame1G, 0, root, 0, 0, big, 1).is_err()
        || CNode::copy(root.slot(big + 1), root.slot(big), CapRights::ALL).is_err()
    {
        println!("bench: FAIL retype of a 1 GiB frame");
        return false;
    }
    let t0 = crate::now();
    let io = Frame(big + 1).map_io(space, IOVA_1G, CapRights::ALL);
    let io_took = crate::now() - t0;
    let t0 = crate::now();
    let cpu = Frame(big).map(vspace, CPU_1G, CapRights::ALL, 0);
    let cpu_took = crate::now() - t0;
    if io.is_err() || cpu.is_err() {
        println!("bench: FAIL map of the 1 GiB frame: IO {io:?}, CPU {cpu:?}");
        return false;
    }
    row("map 1 GiB for a device (MapIO): one 1 GiB frame", io_took);
    row("map 1 GiB for the CPU (Map): one 1 GiB frame", cpu_took);
    let _ = CNode::revoke(root.slot(ut.0));

    // 512 frames of 2 MiB (each with an IO copy).
    let large = slots.alloc_range(1024).expect("slots");
    let mut made = ut.retype(ObjectType::Frame2M, 0, root, 0, 0, large, 256).is_ok()
        && ut.retype(ObjectType::Frame2M, 0, root, 0, 0, large + 256, 256).is_ok();
    for i in 0..512 {
        made &= CNode::copy(root.slot(large + 512 + i), root.slot(large + i), CapRights::ALL).is_ok();
    }
    if !made {
        println!("bench: FAIL retype of 512 2 MiB frames");
        return false;
    }
    let mut failed = 0;
    let t0 = crate::now();
    for i in 0..512 {
        failed += u32::from(Frame(large + 512 + i).map_io(space, IOVA_2M + i * MIB2, CapRights::ALL).is_err());
    }
    let io_took = crate::now() - t0;
    let t0 = crate::now();
    for i in 0..512 {
        failed += u32::from(Frame(large + i).map(vspace, CPU_2M + i * MIB2, CapRights::ALL, 0).is_err());
    }
    let cpu_took = crate::now() - t0;
    if failed != 0 {
        let first_io = (0..512).find_map(|i| Frame(large + 512 + i).info().ok().filter(|f| f.vaddr == 0).map(|_| i));
        let first_cpu = (0..512).find_map(|i| Frame(large + i).info().ok().filter(|f| f.vaddr == 0).map(|_| i));
        println!("bench: FAIL {failed} of the 2 MiB maps (first unmapped: IO {first_io:?}, CPU {first_cpu:?})");
        return false;
    }
    row("map 1 GiB for a device (MapIO): 512 x 2 MiB frames", io_took);
    row("map 1 GiB for the CPU (Map): 512 x 2 MiB frames", cpu_took);
    let _ = CNode::revoke(root.slot(ut.0));

    // 262,144 frames of 4 KiB in the worker's CSpace.
    let node =
        |objects: &mut ObjectAllocator, radix: u64| objects.alloc(slots, ObjectType::CNode, radix).expect("cnode");
    let worker_root = node(objects, ROOT_RADIX);
    let at = |slot: u64| SlotRef { root: CNode(worker_root), index: slot, depth: ROOT_RADIX };
    for k in 0..4u64 {
        let leaf_node = node(objects, LEAF_RADIX);
        for offset in (0..1u64 << LEAF_RADIX).step_by(256) {
            if ut.retype(ObjectType::Frame4K, 0, root, leaf_node, 64, offset, 256).is_err() {
                println!("bench: FAIL retype of 4 KiB frames into CNode {k} at {offset}");
                return false;
            }
        }
        if CNode::copy(at(k), root.slot(leaf_node), CapRights::ALL).is_err() {
            println!("bench: FAIL installing CNode {k} in the worker's CSpace");
            return false;
        }
    }
    let small = node(objects, SMALL_RADIX);
    let small_at = |slot: u64| SlotRef { root: CNode(small), index: slot, depth: SMALL_RADIX };
    let endpoint = objects.alloc(slots, ObjectType::Endpoint, 0).expect("endpoint");
    let guarded = slots.alloc().expect("slot");
    let ok = CNode::copy(small_at(SMALL_IOSPACE), root.slot(space.0), CapRights::ALL).is_ok()
        && CNode::copy(small_at(SMALL_VSPACE), root.slot(slots::INIT_VSPACE), CapRights::ALL).is_ok()
        && CNode::copy(small_at(SMALL_ENDPOINT), root.slot(endpoint), CapRights::ALL).is_ok()
        && CNode::mint(at(SMALL_NODE), root.slot(small), CapRights::ALL, LEAF_RADIX - SMALL_RADIX).is_ok()
        && CNode::mint(root.slot(guarded), root.slot(worker_root), CapRights::ALL, ROOT_GUARD_BITS).is_ok();
    if !ok {
        println!("bench: FAIL building the worker's CSpace");
        return false;
    }
    // The worker runs above this thread until it blocks on its endpoint.
    let me = Tcb(slots::INIT_TCB);
    let _ = me.set_priority(me, 254);
    let worker = spawn_with(objects, slots, CNode(guarded), vspace, worker, 0, 255, WORKER_REGION, 0);
    let _ = me.set_priority(me, 255);
    let failures = WORKER_FAILURES.load(SeqCst);
    if worker.is_err() || failures != 0 {
        println!("bench: FAIL the 4 KiB worker: spawn {:?}, {failures} failed calls", worker.err());
        return false;
    }
    row("map 1 GiB for a device (MapIO): 262,144 x 4 KiB frames (batches of 64)", IO_4K.load(SeqCst));
    row("map 1 GiB for the CPU (Map): 262,144 x 4 KiB frames", CPU_4K_TOOK.load(SeqCst));
    true
}
