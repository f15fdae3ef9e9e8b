//! DMA blocking test program (`init=dmatest`, QEMU `-device edu`).
//!
//! Test program (run as root task with `init=dmatest`, QEMU `-device edu`): a user-level
//! edu driver maps the device's registers from device untyped memory, enables bus
//! mastering through its PciDevice cap, and starts a DMA from a RAM frame. The device is
//! in no IOSpace, so the IOMMU must block the access and the kernel must report it
//! (requester id, reason, address); the harness checks the kernel log.
#![no_std]
#![no_main]

extern crate alloc;

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, PciDevice, ATTR_UNCACHED};
use libcap::check::Checker;
use libcap::deadline::{spin_until, Deadline};
use libcap::device::DeviceMemory;
use libcap::ipc;
use libcap::println;
use libcap::thread::spawn;

use edu_driver::registers::DmaCommand;
use edu_driver::{EduRegisters, BUFFER_BASE};
use tock_registers::interfaces::{Readable, Writeable};

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use libcap::abi::fault::FaultKind;

mod alias;
mod huge;
mod intx;
mod many;
mod msix;
mod reuse;
mod storm;

libcap::entry!(main);

const MMIO_VADDR: u64 = 0x0000_4000_0000_0000;
const RAM_VADDR: u64 = 0x0000_4000_0010_0000;
/// Where the test maps frames in the device's IOSpace.
pub(crate) const IOVA: u64 = 0x1000_0000;
/// The second edu's own frame (the shared frame is at IOVA2 + 0x1000 in its space), and
/// the shared frame's IOVA in the first IOSpace.
const IOVA2: u64 = 0x2000_0000;
const IOVA_SHARED: u64 = 0x1000_5000;
const MMIO_VADDR2: u64 = 0x0000_4000_0001_0000;
/// Physical address of the kernel image (it must never be DMA-reachable).
const KERNEL_PADDR: u64 = 0x20_0000;
/// A 2 MiB-aligned IOVA and the CPU address of the 2 MiB frame mapped there.
const IOVA_LARGE: u64 = 0x4000_0000;
const LARGE_VADDR: u64 = 0x0000_4000_0020_0000;
/// Where a leaf table is installed, then moved 2 MiB up (same 1 GiB as IOVA_LARGE, so
/// the upper levels exist).
const IOVA_MOVE: u64 = 0x5000_0000;

/// The registers of the edu whose BAR page this program mapped at `vaddr` (one of
/// MMIO_VADDR, MMIO_VADDR2, MMIO_VADDR3).
fn edu_at(vaddr: u64) -> &'static EduRegisters {
    // SAFETY: callers pass only the addresses where this program maps an edu BAR page
    // uncached, after mapping it; the program never unmaps them.
    unsafe { EduRegisters::at(vaddr) }
}

/// One edu DMA of 8 bytes on the device whose registers are at `base`, without a
/// completion interrupt; waits (bounded by a deadline) and says whether the device
/// finished it. A blocked transfer finishes too: VT-d drops it, the device does not notice.
fn dma_on(base: u64, from: u64, to: u64, to_ram: bool) -> bool {
    let regs = edu_at(base);
    regs.dma_source.set(from);
    regs.dma_destination.set(to);
    regs.dma_count.set(8);
    let direction = if to_ram { DmaCommand::TO_RAM::SET } else { DmaCommand::TO_RAM::CLEAR };
    regs.dma_command.write(DmaCommand::START::SET + direction);
    // edu finishes a transfer on a 100 ms virtual timer.
    if !spin_until(Deadline::default_wait(), || !regs.dma_command.is_set(DmaCommand::START)) {
        println!("dmatest: FAIL the DMA completion did not arrive (edu still busy)");
    }
    !regs.dma_command.is_set(DmaCommand::START)
}

/// A page of the firmware-reserved 0xf0000..0x100000 the RMRR scenario (kernel
/// `test_rmrr=`) names for edu.
const RMRR_PAGE: u64 = 0xf_f000;

/// edu is bound to the kernel's RMRR identity domain (scenario `test_rmrr`): Assign was
/// refused; a DMA inside the RMRR region is translated (the kernel logs no fault for
/// it, which the scenario checks), everything else stays blocked.
fn rmrr_bound(c: &mut Checker) -> ExitCode {
    println!("dmatest: edu is RMRR-bound: assign refused (illegal operation)");
    let done = dma_on(MMIO_VADDR, RMRR_PAGE, BUFFER_BASE, false);
    c.check("the device completed its DMA from the RMRR region", done);
    println!("dmatest: DMA from the RMRR page {RMRR_PAGE:#x} done");
    println!("dmatest: done");
    c.finish()
}

/// DMA fault messages received so far: (label, badge, requester, reason, iova, write).
static FAULTS: [[AtomicU64; 6]; 32] = [const { [const { AtomicU64::new(0) }; 6] }; 32];
static FAULT_COUNT: AtomicU64 = AtomicU64::new(0);
/// Fault messages already checked by `next_fault`.
static FAULTS_SEEN: AtomicU64 = AtomicU64::new(0);
/// Upper bound on the spins waiting for a fault message (several timer ticks).
const FAULT_WAIT_SPINS: u64 = 400_000_000;

/// Records every DMA fault message the kernel sends to the IOSpace's handler.
extern "C" fn fault_listener(ep: u64) -> ! {
    loop {
        if let Ok(m) = ipc::recv(ep) {
            let i = FAULT_COUNT.load(SeqCst) as usize % FAULTS.len();
            let words = [m.info.label, m.badge, m.mrs[0], m.mrs[1], m.mrs[2], m.mrs[3]];
            for (slot, w) in FAULTS[i].iter().zip(words) {
                slot.store(w, SeqCst);
            }
            FAULT_COUNT.fetch_add(1, SeqCst);
        }
    }
}

/// The next DMA fault message, waiting a bounded time for it with this thread below
/// the listener's priority (None if none came).
fn next_fault() -> Option<[u64; 6]> {
    let me = libcap::cap::Tcb(slots::INIT_TCB);
    let want = FAULTS_SEEN.load(SeqCst) + 1;
    let _ = me.set_priority(me, 1);
    let mut spins = 0u64;
    while FAULT_COUNT.load(SeqCst) < want && spins < FAULT_WAIT_SPINS {
        spins += 1;
        core::hint::spin_loop();
    }
    let _ = me.set_priority(me, 255);
    if FAULT_COUNT.load(SeqCst) < want {
        return None;
    }
    FAULTS_SEEN.store(want, SeqCst);
    let i = (want - 1) as usize % FAULTS.len();
    Some(core::array::from_fn(|w| FAULTS[i][w].load(SeqCst)))
}

/// The DmaFault message the handler (badge 0x44) must get for a blocked access.
fn dma_fault(requester: u64, reason: u64, iova: u64, write: bool) -> Option<[u64; 6]> {
    Some([FaultKind::DmaFault.raw(), 0x44, requester, reason, iova, u64::from(write)])
}

/// QEMU's fault reasons: a write (to a non-present or read-only entry) is 5, a read 6.
pub(crate) const REASON_WRITE: u64 = 5;

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("dmatest");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    if many::present(bi) {
        return many::run(bi, &mut c, &slots, &mut objects);
    }
    if msix::present(bi) {
        return msix::run(bi, &mut c, &slots, &mut objects);
    }
    let Some(index) = bi.pci_devices().iter().position(edu_driver::is_edu) else {
        println!("dmatest: FAIL no edu device (run QEMU with -device edu)");
        return ExitCode::UserFailure;
    };
    if alias::present(bi) {
        return alias::run(bi, &mut c, &slots, &mut objects);
    }
    let dev = bi.pci_devices()[index];
    let pci = PciDevice(bi.pci_device_caps.start + index as u64);
    println!("dmatest: edu at {:02x}:{:02x}.{}", dev.bus, dev.devfn >> 3, dev.devfn & 7);
    let bar = pci.config_read(0x10, 4).unwrap_or(0) & !0xf;
    c.check("read BAR0 through the PciDevice cap", bar != 0);
    c.check(
        "BARs are not writable",
        pci.config_read(0x10, 4).is_ok()
            && libcap::cap::invoke(
                pci.0,
                libcap::abi::invocation::Invocation::PciDeviceConfigWrite,
                &[0x10, 4, 0],
                &[],
            )
            .is_err(),
    );
    let mut device_memory = DeviceMemory::new(bi);
    let regs = device_memory.frame_at(&slots, bar);
    c.check("device frame over the BAR", regs.is_some());
    let regs = regs.unwrap_or(Frame(0));
    c.check(
        "map it uncached",
        map_frame(&mut objects, &slots, regs, MMIO_VADDR, CapRights::ALL, ATTR_UNCACHED).is_ok(),
    );
    let command = pci.config_read(4, 2).unwrap_or(0) as u16;
    c.check("enable memory decoding and bus mastering", pci.write_command(command | 0x6).is_ok());
    c.check("edu answers (ident 0x010000ed)", edu_at(MMIO_VADDR).ident.get() == edu_driver::IDENT);
    intx::check(&mut c, pci, MMIO_VADDR, &slots, &mut objects);
    // A RAM frame the device is not allowed to read: it is in no IOSpace.
    let ram = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    let _ = map_frame(&mut objects, &slots, ram, RAM_VADDR, CapRights::ALL, 0);
    let paddr = ram.address().unwrap_or(0);
    // SAFETY: mapped read-write just above.
    unsafe { (RAM_VADDR as *mut u64).write_volatile(0x1122_3344_5566_7788) };
    println!("dmatest: DMA from RAM {paddr:#x} to the device, which has no IOSpace");
    let done = dma_on(MMIO_VADDR, paddr, BUFFER_BASE, false);
    c.check("the device completed its (blocked) transfer", done);
    // The other direction: the device writes into the frame. Blocked writes vanish.
    let done = dma_on(MMIO_VADDR, BUFFER_BASE, paddr, true);
    c.check("the device completed its (blocked) write", done);
    // SAFETY: still mapped read-write.
    let after = unsafe { (RAM_VADDR as *const u64).read_volatile() };
    c.check("the frame the device tried to write is unchanged", after == 0x1122_3344_5566_7788);
    // Now give the device an IOSpace with two frames in it and DMA for real.
    let iospace = IoSpace(objects.alloc(&slots, ObjectType::IoSpace, 0).expect("iospace"));
    // As many levels as the IOSpace's depth needs (2 below the root for 3-level
    // tables with aw-bits=39, 3 for 4-level ones with aw-bits=48).
    let mut installed = 0;
    for _ in 0..3 {
        let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
        if t.map(iospace, IOVA).is_ok() {
            installed += 1;
        }
    }
    println!("dmatest: {installed} IO page tables installed below the root");
    c.check("install the IO page tables", installed >= 2);
    let assigned = iospace.assign(pci);
    if assigned.as_ref().err().map(|e| e.code) == Some(libcap::abi::error::SyscallError::IllegalOperation) {
        return rmrr_bound(&mut c);
    }
    c.check("assign edu to the IOSpace", assigned.is_ok());
    c.check(
        "assigning it twice is refused",
        iospace.assign(pci).map_err(|e| e.code) == Err(libcap::abi::error::SyscallError::DeleteFirst),
    );
    let dst = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    let ro = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    let _ = map_frame(&mut objects, &slots, dst, RAM_VADDR + 0x1000, CapRights::ALL, 0);
    let _ = map_frame(&mut objects, &slots, ro, RAM_VADDR + 0x2000, CapRights::ALL, 0);
    c.check("map_io of a mapped frame cap is refused", ram.map_io(iospace, IOVA, CapRights::READ).is_err());
    c.check("a device frame cannot be DMA-mapped", regs.map_io(iospace, IOVA, CapRights::READ).is_err());
    // One mapping per cap: the CPU mapping is the original's, the IO mapping a copy's.
    let io_copy = |f: Frame| {
        let copy = Frame(slots.alloc().expect("slot"));
        let _ = CNode::copy(root.slot(copy.0), root.slot(f.0), CapRights::ALL);
        copy
    };
    // The boot image's frames (no untyped covers them) never become DMA-reachable.
    let img = io_copy(Frame(bi.boot_image_frames.start));
    let img_map = img.map_io(iospace, IOVA + 0x7000, CapRights::READ).map_err(|e| e.code);
    let img_batch = iospace.map_batch(IOVA + 0x7000, CapRights::READ, &[img]).map_err(|e| e.code);
    c.check(
        &alloc::format!("boot image frame: MapIO refused ({img_map:?}, MapBatch {img_batch:?})"),
        img_map.is_err() && img_batch.is_err(),
    );
    let _ = CNode::delete(root.slot(img.0));
    let dst_original = dst;
    let (src, dst, ro) = (io_copy(ram), io_copy(dst), io_copy(ro));
    let counters = || libcap::console::DebugConsole::default().iommu_counters().ok();
    let before = counters();
    c.check("map the source frame read-only for the device", src.map_io(iospace, IOVA, CapRights::READ).is_ok());
    c.check("map the destination frame read-write", dst.map_io(iospace, IOVA + 0x1000, CapRights::ALL).is_ok());
    c.check("map a never-read frame read-only", ro.map_io(iospace, IOVA + 0x2000, CapRights::READ).is_ok());
    // The kernel's IOMMU work counters (make bench reads them): three leaves written;
    // a map invalidates only in caching mode (one per map then).
    let after = counters();
    c.check(
        &alloc::format!("the IOMMU counters saw the 3 leaf writes ({before:?} -> {after:?})"),
        matches!((before, after), (Some(b), Some(a)) if a.0 == b.0 + 3 && a.1 - b.1 <= 3),
    );
    c.check("the MSI window is refused", dst.map_io(iospace, 0xfee0_0000, CapRights::READ).is_err());
    let dma = |from: u64, to: u64, to_ram: bool| dma_on(MMIO_VADDR, from, to, to_ram);
    dma(IOVA, BUFFER_BASE, false);
    dma(BUFFER_BASE, IOVA + 0x1000, true);
    // SAFETY: mapped read-write above.
    let copied = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("translated DMA round trip: RAM -> device -> RAM", copied == 0x1122_3344_5566_7788);
    // Faults of this IOSpace go to an endpoint a listener thread waits on.
    let fault_ep = objects.alloc(&slots, ObjectType::Endpoint, 0).expect("endpoint");
    let badged = slots.alloc().expect("slot");
    let _ = CNode::mint(root.slot(badged), root.slot(fault_ep), CapRights::ALL, 0x44);
    c.check("set the IOSpace's fault handler", iospace.set_fault_handler(badged).is_ok());
    let listener = spawn(&mut objects, &slots, fault_listener, fault_ep, 200, 0x0000_4100_0000_0000, 0);
    // Let the listener reach its Recv before the fault happens.
    let me = libcap::cap::Tcb(slots::INIT_TCB);
    let _ = me.set_priority(me, 1);
    let _ = me.set_priority(me, 255);
    dma(BUFFER_BASE, IOVA + 0x2000, true);
    // SAFETY: mapped read-write above.
    let untouched = unsafe { ((RAM_VADDR + 0x2000) as *const u64).read_volatile() };
    c.check("a device write to a read-only IO mapping is blocked", untouched == 0);
    let rid = (u64::from(dev.bus) << 8) | u64::from(dev.devfn);
    c.check(
        "the fault arrives as a DmaFault message (badge, requester, reason 5, iova, write)",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x2000, true),
    );
    println!("dmatest: read-only frame at iova {:#x}", IOVA + 0x2000);
    // SAFETY: mapped read-write above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check("unmap_io", dst.unmap_io().is_ok());
    dma(BUFFER_BASE, IOVA + 0x1000, true);
    // SAFETY: as above.
    let after_unmap = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("after unmap_io the device cannot write the frame", after_unmap == 0);
    c.check(
        "... and its fault message names the unmapped IOVA",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x1000, true),
    );
    println!("dmatest: unmapped frame at iova {:#x}", IOVA + 0x1000);
    // Attack PoC (the frame route, commit 8459678): UnmapIO from a flat CSpace comes
    // from the fastpath's lookup to `fast_frame_call_at`, which takes the domain from
    // the one-entry domain cache on a hit (the UnmapIO above filled it with this
    // IOSpace) and from the index on a miss (another IOSpace's UnmapIO in between), and
    // invalidates the one page inline (`unit::invalidate_page`; register-based under
    // iommu=noqi). Either way the device's warm IOTLB entry must be gone on return.
    let other = objects.alloc(&slots, ObjectType::IoSpace, 0).map(IoSpace).ok();
    let other_ok = other.is_some_and(|o| {
        (0..3)
            .filter(|_| {
                let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
                t.map(o, IOVA).is_ok()
            })
            .count()
            >= 2
    });
    c.check("route: a second IOSpace with tables", other_ok);
    for (i, miss) in [(0u64, false), (1, true), (2, false)] {
        let iova = IOVA + 0x9000 + 0x1000 * i;
        let hot = io_copy(dst);
        c.check("route: map a copy for the device", hot.map_io(iospace, iova, CapRights::ALL).is_ok());
        dma(BUFFER_BASE, iova, true);
        // SAFETY: as above.
        let reached = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
        c.check("route: the device writes it (IOTLB warm)", reached == 0x1122_3344_5566_7788);
        // SAFETY: as above.
        unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
        if let (true, Some(o)) = (miss, other) {
            // The cache now names the other IOSpace.
            let w = io_copy(dst);
            let warmed = w.map_io(o, IOVA, CapRights::ALL).is_ok() && w.unmap_io().is_ok();
            c.check("route: another IOSpace's UnmapIO takes the domain cache", warmed);
            let _ = CNode::delete(root.slot(w.0));
        }
        c.check("route: UnmapIO through the frame route", hot.unmap_io().is_ok());
        dma(BUFFER_BASE, iova, true);
        // SAFETY: as above.
        let after = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
        let how = if miss { "a domain-cache miss" } else { "a domain-cache hit" };
        c.check("attack: after UnmapIO through the route the device cannot write the frame", after == 0);
        if after != 0 {
            // The device kept its translation: no fault to wait for.
            println!("dmatest: route: UnmapIO after {how}: frame word {after:#x}: the device still writes it");
            let _ = CNode::delete(root.slot(hot.0));
            break;
        }
        let fault = next_fault();
        println!("dmatest: route: UnmapIO after {how}: frame word {after:#x}, fault {fault:x?}");
        c.check("attack: ... and the fault names that IOVA", fault == dma_fault(rid, REASON_WRITE, iova, true));
        let _ = CNode::delete(root.slot(hot.0));
    }
    if let Some(o) = other {
        let _ = CNode::delete(root.slot(o.0));
    }
    // FrameUnmap (the CPU-side call) of an IO-mapped cap removes the IO mapping, with a
    // completed invalidation, as seL4's X86PageUnmap does for either mapping kind: it
    // used to drop only the record, leaving the device a frame that could be freed.
    let unmapped_copy = io_copy(dst);
    c.check("map a copy for the device", unmapped_copy.map_io(iospace, IOVA + 0x8000, CapRights::ALL).is_ok());
    dma(BUFFER_BASE, IOVA + 0x8000, true);
    // SAFETY: as above.
    let reached = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("the device reaches the frame through the copy", reached == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check("FrameUnmap of the IO-mapped copy", unmapped_copy.unmap().is_ok());
    dma(BUFFER_BASE, IOVA + 0x8000, true);
    // SAFETY: as above.
    let after_frame_unmap = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("after FrameUnmap the device cannot write the frame", after_frame_unmap == 0);
    c.check(
        "... and its fault message names the IOVA FrameUnmap removed",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x8000, true),
    );
    c.check(
        "the copy maps for the device again (no stale entry left)",
        unmapped_copy.map_io(iospace, IOVA + 0x8000, CapRights::ALL).is_ok() && unmapped_copy.unmap_io().is_ok(),
    );
    // Revocation safety: deleting the cap that made an IO mapping removes it.
    let again = io_copy(dst);
    c.check("map the frame again through a new copy", again.map_io(iospace, IOVA + 0x3000, CapRights::ALL).is_ok());
    dma(BUFFER_BASE, IOVA + 0x3000, true);
    // SAFETY: as above.
    let reached = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("the device reaches it", reached == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check("delete the copy", CNode::delete(root.slot(again.0)).is_ok());
    dma(BUFFER_BASE, IOVA + 0x3000, true);
    // SAFETY: as above.
    let after_delete = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("after the delete the device cannot write the frame", after_delete == 0);
    c.check(
        "... and its fault message names the IOVA",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x3000, true),
    );
    // Revoke: revoking the frame's original cap (from retype; copies of it are its
    // children, as in seL4) removes every IO mapping made through a copy.
    let child = io_copy(dst_original);
    c.check("map the frame through a derived copy", child.map_io(iospace, IOVA + 0x4000, CapRights::ALL).is_ok());
    dma(BUFFER_BASE, IOVA + 0x4000, true);
    // SAFETY: as above.
    let reached = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("the device reaches it", reached == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check("revoke the frame's original cap", CNode::revoke(root.slot(dst_original.0)).is_ok());
    dma(BUFFER_BASE, IOVA + 0x4000, true);
    // SAFETY: as above.
    let after_revoke = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("after the revoke the device cannot write the frame", after_revoke == 0);
    c.check(
        "... and its fault message names the IOVA",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x4000, true),
    );
    // DMA aimed at the kernel's own memory (its image at 2 MiB) is just an unmapped IOVA.
    dma(BUFFER_BASE, KERNEL_PADDR, true);
    c.check(
        "a DMA at the kernel's physical address is blocked and reported",
        next_fault() == dma_fault(rid, REASON_WRITE, KERNEL_PADDR, true),
    );
    // A second edu in a second IOSpace: no reach into the first's frames, only into a
    // frame deliberately mapped into both.
    let second = bi.pci_devices().iter().enumerate().filter(|(_, d)| edu_driver::is_edu(d)).nth(1);
    if let Some((index2, _)) = second {
        let pci2 = PciDevice(bi.pci_device_caps.start + index2 as u64);
        let bar2 = pci2.config_read(0x10, 4).unwrap_or(0) & !0xf;
        let regs2 = device_memory.frame_at(&slots, bar2);
        c.check("second edu's registers", regs2.is_some());
        let _ = map_frame(&mut objects, &slots, regs2.unwrap_or(Frame(0)), MMIO_VADDR2, CapRights::ALL, ATTR_UNCACHED);
        let cmd2 = pci2.config_read(4, 2).unwrap_or(0) as u16;
        let _ = pci2.write_command(cmd2 | 0x6);
        let iospace2 = IoSpace(objects.alloc(&slots, ObjectType::IoSpace, 0).expect("iospace"));
        for _ in 0..3 {
            let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
            let _ = t.map(iospace2, IOVA2);
        }
        c.check("assign the second edu to a second IOSpace", iospace2.assign(pci2).is_ok());
        let private2 = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
        let _ = map_frame(&mut objects, &slots, private2, RAM_VADDR + 0x4000, CapRights::ALL, 0);
        // SAFETY: mapped read-write above.
        unsafe { ((RAM_VADDR + 0x4000) as *mut u64).write_volatile(0x2222) };
        c.check(
            "map a frame into the second IOSpace only",
            io_copy(private2).map_io(iospace2, IOVA2, CapRights::ALL).is_ok(),
        );
        dma(BUFFER_BASE, IOVA2, true);
        // SAFETY: as above.
        let still = unsafe { ((RAM_VADDR + 0x4000) as *const u64).read_volatile() };
        c.check("the first device cannot reach the second IOSpace's frame", still == 0x2222);
        c.check(
            "... and the first IOSpace's handler gets the fault",
            next_fault() == dma_fault(rid, REASON_WRITE, IOVA2, true),
        );
        let shared = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
        let _ = map_frame(&mut objects, &slots, shared, RAM_VADDR + 0x5000, CapRights::ALL, 0);
        let both = io_copy(shared).map_io(iospace, IOVA_SHARED, CapRights::ALL).is_ok()
            && io_copy(shared).map_io(iospace2, IOVA2 + 0x1000, CapRights::ALL).is_ok();
        c.check("map one frame deliberately into both IOSpaces", both);
        dma(BUFFER_BASE, IOVA_SHARED, true);
        // SAFETY: mapped read-write above.
        let from_first = unsafe { ((RAM_VADDR + 0x5000) as *const u64).read_volatile() };
        c.check("the first device writes the shared frame", from_first == 0x1122_3344_5566_7788);
        dma_on(MMIO_VADDR2, IOVA2, BUFFER_BASE, false);
        dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA2 + 0x1000, true);
        // SAFETY: as above.
        let from_second = unsafe { ((RAM_VADDR + 0x5000) as *const u64).read_volatile() };
        c.check("the second device writes the shared frame too", from_second == 0x2222);
    } else {
        println!("dmatest: one edu only: two-device checks skipped");
    }
    // A batch of eight frames mapped and unmapped with one call each.
    let mut eight = [Frame(0); 8];
    for f in eight.iter_mut() {
        *f = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    }
    let last = eight[7];
    let _ = map_frame(&mut objects, &slots, last, RAM_VADDR + 0x6000, CapRights::ALL, 0);
    let mut io8 = eight;
    io8[7] = io_copy(last);
    c.check("map a batch of eight frames", iospace.map_batch(IOVA + 0x10000, CapRights::ALL, &io8).is_ok());
    c.check(
        "a batch naming a frame twice is refused",
        iospace.map_batch(IOVA + 0x20000, CapRights::ALL, &[io8[0], io8[0]]).is_err(),
    );
    dma(BUFFER_BASE, IOVA + 0x10000 + 7 * 0x1000, true);
    // SAFETY: mapped read-write above.
    let batched = unsafe { ((RAM_VADDR + 0x6000) as *const u64).read_volatile() };
    c.check("the device writes the batch's last frame", batched == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x6000) as *mut u64).write_volatile(0) };
    c.check("unmap the batch", iospace.unmap_batch(&io8).is_ok());
    // Attack PoC (IO short paths): a CPU-mapped frame or a device frame in a batch.
    c.check(
        "attack: a batch naming a CPU-mapped frame is refused",
        iospace.map_batch(IOVA + 0x20000, CapRights::ALL, &[eight[0], last]).is_err(),
    );
    c.check(
        "attack: a batch naming a device frame is refused",
        iospace.map_batch(IOVA + 0x20000, CapRights::READ, &[eight[1], regs]).is_err(),
    );
    c.check(
        "attack: ... and left its other frames unmapped",
        iospace.map_batch(IOVA + 0x20000, CapRights::ALL, &eight[..2]).is_ok()
            && iospace.unmap_batch(&eight[..2]).is_ok(),
    );
    dma(BUFFER_BASE, IOVA + 0x10000 + 7 * 0x1000, true);
    // SAFETY: as above.
    let unbatched = unsafe { ((RAM_VADDR + 0x6000) as *const u64).read_volatile() };
    c.check("after the batch unmap the device cannot write it", unbatched == 0);
    c.check(
        "... and its fault message names the IOVA",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA + 0x10000 + 7 * 0x1000, true),
    );
    // A 2 MiB frame becomes one superpage leaf (CAP.SLLPS allows it on QEMU).
    let large = Frame(objects.alloc(&slots, ObjectType::Frame2M, 0).expect("2 MiB frame"));
    let _ = map_frame(&mut objects, &slots, large, LARGE_VADDR, CapRights::ALL, 0);
    let large_io = io_copy(large);
    let mut tables_for_large = 0;
    for _ in 0..2 {
        let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
        if t.map(iospace, IOVA_LARGE).is_ok() {
            tables_for_large += 1;
        }
        if large_io.map_io(iospace, IOVA_LARGE, CapRights::ALL).is_ok() {
            break;
        }
    }
    let _ = tables_for_large;
    c.check(
        "a 2 MiB frame is a superpage leaf in the IOSpace",
        matches!(Frame(large_io.0).unmap_io(), Ok(())) && large_io.map_io(iospace, IOVA_LARGE, CapRights::ALL).is_ok(),
    );
    dma(BUFFER_BASE, IOVA_LARGE + 0x1f_f000, true);
    // SAFETY: the 2 MiB frame is mapped read-write at LARGE_VADDR.
    let tail = unsafe { ((LARGE_VADDR + 0x1f_f000) as *const u64).read_volatile() };
    c.check("the device writes the last page of the 2 MiB frame", tail == 0x1122_3344_5566_7788);
    // Attack PoC (VtdAccess refactor): Delete of a 2 MiB IO mapping right after a DMA
    // warmed the IOTLB must invalidate the whole 2 MiB, so its last page faults.
    // SAFETY: as above.
    unsafe { ((LARGE_VADDR + 0x1f_f000) as *mut u64).write_volatile(0) };
    c.check("attack: delete the 2 MiB frame's IO copy", CNode::delete(root.slot(large_io.0)).is_ok());
    dma(BUFFER_BASE, IOVA_LARGE + 0x1f_f000, true);
    // SAFETY: as above.
    let stale_tail = unsafe { ((LARGE_VADDR + 0x1f_f000) as *const u64).read_volatile() };
    c.check("attack: after Delete of a 2 MiB IO mapping its last page is unreachable", stale_tail == 0);
    c.check(
        "attack: ... and the fault names the 2 MiB frame's last page",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA_LARGE + 0x1f_f000, true),
    );
    let mut fault = || next_fault().map(|f| (f[2], f[3], f[4], f[5] != 0));
    huge::run(&mut c, bi, &slots, &mut objects, iospace, &dma, &mut fault);
    // An unmapped IO page table is emptied: installed again elsewhere it must not bring
    // its old entries (and the frames they name) along.
    let moved = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
    let through_moved = io_copy(dst_original);
    c.check(
        "map a leaf table and a frame in it",
        moved.map(iospace, IOVA_MOVE).is_ok() && through_moved.map_io(iospace, IOVA_MOVE, CapRights::ALL).is_ok(),
    );
    dma(BUFFER_BASE, IOVA_MOVE, true);
    // SAFETY: the destination frame is mapped read-write at RAM_VADDR + 0x1000.
    let reached = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("the device reaches the frame through it", reached == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check(
        "unmap the table and install it 2 MiB further",
        moved.unmap().is_ok() && moved.map(iospace, IOVA_MOVE + 0x20_0000).is_ok(),
    );
    // One cap per IO page table: a copy could install it a second time elsewhere.
    let table_copy = slots.alloc().expect("slot");
    c.check(
        "an IO page table cap cannot be copied",
        CNode::copy(root.slot(table_copy), root.slot(moved.0), CapRights::ALL).map_err(|e| e.code)
            == Err(libcap::abi::error::SyscallError::IllegalOperation),
    );
    dma(BUFFER_BASE, IOVA_MOVE + 0x20_0000, true);
    // SAFETY: as above.
    let moved_reach = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("the moved table brought no mapping along", moved_reach == 0);
    c.check(
        "... and the DMA through it is reported",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA_MOVE + 0x20_0000, true),
    );
    // Attack PoC (VtdAccess refactor): Delete (not Unmap) of a mapped IO page table, a
    // frame below it and its translation warm in the IOTLB: the finaliser's unmap must
    // empty the table and invalidate its span, so the next DMA there faults.
    const IOVA_DOOMED: u64 = IOVA_MOVE + 0x40_0000;
    let doomed = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
    let below = io_copy(dst_original);
    c.check(
        "attack: map a leaf table and a frame in it",
        doomed.map(iospace, IOVA_DOOMED).is_ok() && below.map_io(iospace, IOVA_DOOMED, CapRights::ALL).is_ok(),
    );
    dma(BUFFER_BASE, IOVA_DOOMED, true);
    // SAFETY: the destination frame is mapped read-write at RAM_VADDR + 0x1000.
    let warm = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("attack: the device reaches the frame through the table", warm == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { ((RAM_VADDR + 0x1000) as *mut u64).write_volatile(0) };
    c.check("attack: delete the mapped IO page table", CNode::delete(root.slot(doomed.0)).is_ok());
    dma(BUFFER_BASE, IOVA_DOOMED, true);
    // SAFETY: as above.
    let through_deleted = unsafe { ((RAM_VADDR + 0x1000) as *const u64).read_volatile() };
    c.check("attack: after Delete of its IO page table the frame is unreachable", through_deleted == 0);
    c.check(
        "attack: ... and the fault names the IOVA below the deleted table",
        next_fault() == dma_fault(rid, REASON_WRITE, IOVA_DOOMED, true),
    );
    c.check("attack: the stale frame record unmaps cleanly", below.unmap_io().is_ok());
    let _ = CNode::delete(root.slot(below.0));
    // Attack PoC (IO short paths): UnmapIO on an IOSpace root page reused by a new IOSpace.
    reuse::run(
        &mut c,
        &slots,
        &mut objects,
        (iospace, pci, badged),
        (dst_original, RAM_VADDR + 0x1000),
        &dma,
        &next_fault,
        dma_fault(rid, REASON_WRITE, reuse::IOVA_REUSE, true),
    );
    // No fault is lost while the handler is busy (the kernel's fault queue).
    match listener {
        Ok(listener) => storm::run(&mut c, &slots, &mut objects, iospace, listener, badged, rid, &dma),
        Err(_) => c.check("spawn the fault listener", false),
    }
    c.check("unassign", iospace.unassign(pci).is_ok());
    dma(BUFFER_BASE, IOVA_LARGE, true);
    // SAFETY: as above.
    let head = unsafe { (LARGE_VADDR as *const u64).read_volatile() };
    c.check("after unassign the device reaches nothing", head == 0);
    // Deleting the IOSpace's last cap takes its devices out too.
    c.check("assign again", iospace.assign(pci).is_ok());
    storm::leave_one_queued(&mut c, iospace, rid, &dma);
    c.check("delete the IOSpace", CNode::delete(root.slot(iospace.0)).is_ok());
    storm::dropped_with_the_iospace(&mut c, &slots, &mut objects, pci, rid, &dma);
    dma(BUFFER_BASE, IOVA_LARGE, true);
    // SAFETY: as above.
    let head = unsafe { (LARGE_VADDR as *const u64).read_volatile() };
    c.check("after the IOSpace is gone the device reaches nothing", head == 0);
    storm::fair_share(&mut c, &slots, &mut objects, pci, rid, &dma);
    // Give the kernel a few timer ticks to drain the fault records.
    let drain = Deadline::after(200_000_000);
    while !drain.passed() {
        core::hint::spin_loop();
    }
    println!("dmatest: done");
    c.finish()
}
