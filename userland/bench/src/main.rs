//! Benchmark program (`init=bench`).
//!
//! Benchmarks (run as root task with `init=bench`, by `make bench` under
//! `-icount shift=0,sleep=off`, where the TSC counts guest instructions). Each line
//! `bench: <name> min=<n> median=<n> runs=<n>` is one result; the host runner turns
//! them into a table and bench/results.json.
//!
//! IPC is measured as sel4bench does: a timestamp in the sender before the system call
//! and one in the receiver after it returns, minus the minimum of the same loop with the
//! system call replaced by an instruction that returns at once (`ipc::call_nop`).
//! Client and server are in different address spaces. Other rows subtract the cost of
//! two back-to-back timestamps.
#![no_std]
#![no_main]

extern crate alloc;

mod iommu;
mod large_pages;
mod latency;
mod scaling;
mod wakeup;

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, Tcb, Untyped, VSpace};
use libcap::ipc;
use libcap::println;
use libcap::space::{clone_image_space, spawn_in};

libcap::entry!(main);

const RUNS: usize = 65;
const REGION: u64 = 0x0000_5000_0000_0000;
const MAP_VADDR: u64 = 0x0000_5100_0000_0000;
const IOVA: u64 = 0x4000_0000;

static EP: AtomicU64 = AtomicU64::new(0);
static NTFN: AtomicU64 = AtomicU64::new(0);
static WOKEN_AT: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
fn now() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads the time-stamp counter; lfence orders it after earlier work.
    unsafe { core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Sorts `samples` and prints min and median.
fn report(name: &str, samples: &mut [u64], overhead: u64) {
    for s in samples.iter_mut() {
        *s = s.saturating_sub(overhead);
    }
    samples.sort_unstable();
    println!("bench: {name} min={} median={} runs={}", samples[0], samples[samples.len() / 2], samples.len());
}

/// The one-way IPC rows: Call to the server in another address space, and its
/// ReplyRecv back (row names end with `suffix`).
fn ipc_rows(ep: u64, ipc_overhead: u64, suffix: &str) {
    use alloc::format;
    let mut samples = [0u64; RUNS];
    let mut replies = [0u64; RUNS];
    for i in 0..RUNS {
        let t0 = now();
        let r = ipc::call(ep, MessageInfo::new(0, 1), [0; 4]);
        let t3 = now();
        let m = r.expect("call");
        samples[i] = m.mrs[0] - t0;
        replies[i] = t3 - m.mrs[1];
    }
    report(&format!("IPC Call one-way, inter-AS{suffix}"), &mut samples, ipc_overhead);
    report(&format!("IPC ReplyRecv one-way, inter-AS{suffix}"), &mut replies, ipc_overhead);
}

extern "C" fn server(_: u64) -> ! {
    let ep = EP.load(SeqCst);
    let first = ipc::recv(ep);
    let mut received = now();
    let mut length = first.map_or(1, |m| m.info.length);
    loop {
        // Answer with as many registers as were sent: more than four forces the slowpath.
        let reply = MessageInfo::new(0, length.max(2));
        let replying = now();
        let next = ipc::reply_recv(ep, reply, [received, replying, 0, 0]);
        received = now();
        length = next.map_or(1, |m| m.info.length);
    }
}

extern "C" fn waiter(_: u64) -> ! {
    let ntfn = NTFN.load(SeqCst);
    loop {
        let _ = ipc::wait(ntfn);
        WOKEN_AT.store(now(), SeqCst);
    }
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    let me = Tcb(slots::INIT_TCB);
    let mut samples = [0u64; RUNS];
    if large_pages::present(bi) {
        // The `large-pages` boot (3 GiB of RAM): those rows alone.
        if !large_pages::rows(&mut objects, &slots) {
            return ExitCode::UserFailure;
        }
        println!("bench: done");
        return ExitCode::Success;
    }

    // Cost of the timestamps themselves.
    let mut overhead = u64::MAX;
    for _ in 0..RUNS {
        let t0 = now();
        let t1 = now();
        overhead = overhead.min(t1 - t0);
    }
    println!("bench: timestamp overhead {overhead} (subtracted from the non-IPC rows)");
    // As sel4bench: the IPC loops minus the same loop with the system call replaced by
    // an instruction that returns at once.
    let mut ipc_overhead = u64::MAX;
    for _ in 0..RUNS {
        let t0 = now();
        let r = ipc::call_nop(0, MessageInfo::new(0, 1), [0; 4]);
        let t1 = now();
        core::hint::black_box(r).expect("nop call");
        ipc_overhead = ipc_overhead.min(t1 - t0);
    }
    println!("bench: IPC overhead loop {ipc_overhead} (subtracted from the IPC rows)");

    for s in samples.iter_mut() {
        let t0 = now();
        ipc::yield_now();
        *s = now() - t0;
    }
    report("null syscall (Yield)", &mut samples, overhead);

    // A server in another address space, same priority as us.
    let ep = objects.alloc(&slots, ObjectType::Endpoint, 0).expect("endpoint");
    let ntfn = objects.alloc(&slots, ObjectType::Notification, 0).expect("notification");
    EP.store(ep, SeqCst);
    NTFN.store(ntfn, SeqCst);
    let space: VSpace = clone_image_space(&mut objects, &slots, bi).expect("second address space");
    spawn_in(&mut objects, &slots, space, server, 0, 255, REGION, 0).expect("server");
    let _ = ipc::call(ep, MessageInfo::new(0, 1), [0; 4]); // warm up; server now waits
    ipc_rows(ep, ipc_overhead, "");
    // The same with five message registers: the fastpath only takes four, so this is
    // the slowpath for both directions.
    ipc::set_mr(4, 0);
    let mut replies = [0u64; RUNS];
    let _ = ipc::call(ep, MessageInfo::new(0, 5), [0; 4]);
    for i in 0..RUNS {
        let t0 = now();
        let r = ipc::call(ep, MessageInfo::new(0, 5), [0; 4]);
        let t3 = now();
        let m = r.expect("call");
        samples[i] = m.mrs[0] - t0;
        replies[i] = t3 - m.mrs[1];
    }
    report("IPC Call one-way, inter-AS, slowpath (5 MRs)", &mut samples, ipc_overhead);
    report("IPC ReplyRecv one-way, inter-AS, slowpath (5 MRs)", &mut replies, ipc_overhead);

    // Signal to a higher-priority waiter in another address space.
    spawn_in(&mut objects, &slots, space, waiter, 0, 255, REGION + 0x10_0000, 0).expect("waiter");
    let _ = me.set_priority(me, 200);
    for s in samples.iter_mut() {
        let t0 = now();
        let _ = ipc::signal(ntfn);
        *s = WOKEN_AT.load(SeqCst) - t0;
    }
    report("Signal to higher-prio waiter, inter-AS", &mut samples, overhead);
    let _ = me.set_priority(me, 255);

    // Retype one 4 KiB frame (and delete it, untimed, so the untyped resets).
    let untyped = Untyped(objects.alloc(&slots, ObjectType::Untyped, 16).expect("64 KiB untyped"));
    let slot = slots.alloc().expect("slot");
    for s in samples.iter_mut() {
        let t0 = now();
        let r = untyped.retype(ObjectType::Frame4K, 0, root, 0, 0, slot, 1);
        *s = now() - t0;
        r.expect("retype");
        CNode::delete(root.slot(slot)).expect("delete");
    }
    report("Retype 4 KiB frame", &mut samples, overhead);

    // Map + Unmap one 4 KiB frame (page tables already present).
    let frame = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    map_frame(&mut objects, &slots, frame, MAP_VADDR, CapRights::ALL, 0).expect("first map");
    frame.unmap().expect("unmap");
    let vs = VSpace(slots::INIT_VSPACE);
    for s in samples.iter_mut() {
        let t0 = now();
        let a = frame.map(vs, MAP_VADDR, CapRights::ALL, 0);
        let b = frame.unmap();
        *s = now() - t0;
        a.and(b).expect("map/unmap");
    }
    report("Map+Unmap 4 KiB frame", &mut samples, overhead);

    // IOMMU: MapIO + UnmapIO (the unmap returns after the IOTLB invalidation completed).
    let iospace = IoSpace(objects.alloc(&slots, ObjectType::IoSpace, 0).expect("iospace"));
    for _ in 0..3 {
        let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
        let _ = t.map(iospace, IOVA);
    }
    let io_frame = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    for s in samples.iter_mut() {
        let t0 = now();
        let a = io_frame.map_io(iospace, IOVA, CapRights::ALL);
        let b = io_frame.unmap_io();
        *s = now() - t0;
        a.and(b).expect("map_io/unmap_io");
    }
    report("MapIO+UnmapIO 4 KiB page", &mut samples, overhead);
    let mut frames = [Frame(0); 64];
    for f in frames.iter_mut() {
        *f = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    }
    let mut batch = [0u64; 9];
    for s in batch.iter_mut() {
        let t0 = now();
        iospace.map_batch(IOVA, CapRights::ALL, &frames).expect("map batch");
        iospace.unmap_batch(&frames).expect("unmap batch");
        *s = (now() - t0) / 64;
    }
    report("MapIO+UnmapIO 64 pages, per page", &mut batch, 0);
    // Cost as the system grows (before the iommu-server rows take the SATA controller).
    let scratch = slots.alloc_range(scaling::SCRATCH_SLOTS).expect("scratch slots");
    latency::rows(&mut objects, &slots, scratch);
    scaling::revoke_rows(&mut objects, &slots, scratch);
    scaling::iospace_rows(bi, &mut objects, &slots, scratch, overhead);
    let threads = scaling::runnable_threads(&mut objects, &slots, scratch + 1000);
    ipc_rows(ep, ipc_overhead, ", 256 runnable threads");
    for t in threads {
        let _ = t.suspend();
    }
    iommu::rows(bi, &mut objects, &slots, overhead);
    println!("bench: done");
    ExitCode::Success
}
