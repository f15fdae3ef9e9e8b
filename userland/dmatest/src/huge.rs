//! 1 GiB frames: one PDPT leaf for the CPU, one level-3 leaf for the device.
//!
//! Runs when the machine has 1 GiB of free RAM in one aligned block (the scenario gives
//! QEMU 3 GiB); otherwise it says so and the 1 GiB checks are absent from the log, which
//! the scenarios that expect them would notice.

use libcap::abi::error::SyscallError;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace};
use libcap::check::Checker;
use libcap::println;

use edu_driver::BUFFER_BASE;

/// A 1 GiB-aligned IOVA clear of the other mappings (0..2 GiB) and of the MSI window.
const IOVA_HUGE: u64 = 0x8000_0000;
/// Where the CPU maps the 1 GiB frame (its own PML4 entry).
const HUGE_VADDR: u64 = 0x0000_4080_0000_0000;
const GIB: u64 = 1 << 30;
/// The frame's last page (fault records name pages).
const LAST: u64 = GIB - 0x1000;
/// What edu's buffer holds after dmatest's first round trip.
const PATTERN: u64 = 0x1122_3344_5566_7788;

fn read(offset: u64) -> u64 {
    // SAFETY: `run` maps the 1 GiB frame read-write at HUGE_VADDR before any call, and
    // callers pass offsets below 1 GiB.
    unsafe { ((HUGE_VADDR + offset) as *const u64).read_volatile() }
}

fn write(offset: u64, value: u64) {
    // SAFETY: as in `read`.
    unsafe { ((HUGE_VADDR + offset) as *mut u64).write_volatile(value) }
}

/// The 1 GiB checks against the IOSpace edu (requester `rid`) is assigned to; `dma`
/// starts an 8-byte edu transfer (from, to, to RAM) and `fault` returns the next DMA
/// fault message as (requester, reason, iova, write).
pub fn run(
    c: &mut Checker,
    bi: &libcap::abi::bootinfo::BootInfo,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    iospace: IoSpace,
    dma: &dyn Fn(u64, u64, bool) -> bool,
    fault: &mut dyn FnMut() -> Option<(u64, u64, u64, bool)>,
) {
    let huge = match objects.alloc(slots, ObjectType::Frame1G, 0) {
        Ok(cap) => Frame(cap),
        Err(e) => {
            println!("dmatest: no 1 GiB frame ({:?}): run with 3 GiB of RAM for the 1 GiB checks", e.code);
            return;
        }
    };
    let root = CNode(slots::INIT_CNODE);
    let info = huge.info();
    c.check("retype a 1 GiB frame", info.is_ok_and(|i| i.bytes == GIB && i.paddr % GIB == 0));
    if let Ok(i) = info {
        println!("dmatest: 1 GiB frame at {:#x}", i.paddr);
    }
    c.check(
        "a 1 GiB frame maps for the CPU at a 1 GiB boundary only",
        huge.map(libcap::cap::VSpace(slots::INIT_VSPACE), HUGE_VADDR + 0x20_0000, CapRights::ALL, 0)
            .map_err(|e| e.code)
            == Err(SyscallError::AlignmentError),
    );
    c.check(
        "a 1 GiB frame maps for the CPU as one PDPT leaf",
        map_frame(objects, slots, huge, HUGE_VADDR, CapRights::ALL, 0).is_ok(),
    );
    write(0, 0);
    write(LAST, 0);
    write(GIB / 2, 0xfeed_f00d_dead_beef);
    c.check("the CPU reads back through the 1 GiB page", read(GIB / 2) == 0xfeed_f00d_dead_beef);
    let io = Frame(slots.alloc().expect("slot"));
    let copied = CNode::copy(root.slot(io.0), root.slot(huge.0), CapRights::ALL).is_ok();
    c.check(
        "a 1 GiB frame maps for a device at a 1 GiB boundary only",
        copied
            && io.map_io(iospace, IOVA_HUGE + 0x20_0000, CapRights::ALL).map_err(|e| e.code)
                == Err(SyscallError::AlignmentError),
    );
    c.check(
        "a batch takes 4 KiB frames only",
        iospace.map_batch(IOVA_HUGE, CapRights::ALL, &[io]).map_err(|e| e.code) == Err(SyscallError::InvalidCapability),
    );
    // With 4-level tables the level-3 table may be missing: install it, as for 2 MiB.
    let mut mapped = io.map_io(iospace, IOVA_HUGE, CapRights::ALL).map_err(|e| e.code);
    if mapped == Err(SyscallError::FailedLookup) {
        let table = objects.alloc(slots, ObjectType::IoPageTable, 0).map(IoPageTable);
        let installed = table.is_ok_and(|t| t.map(iospace, IOVA_HUGE).is_ok());
        c.check("install the table that holds 1 GiB leaves", installed);
        mapped = io.map_io(iospace, IOVA_HUGE, CapRights::ALL).map_err(|e| e.code);
    }
    c.check("a 1 GiB frame is one superpage leaf in the IOSpace", mapped.is_ok());
    dma(BUFFER_BASE, IOVA_HUGE, true);
    dma(BUFFER_BASE, IOVA_HUGE + LAST, true);
    c.check(
        "the device writes the first and the last page of the 1 GiB frame",
        read(0) == PATTERN && read(LAST) == PATTERN,
    );
    // A device read: the word the CPU wrote in the middle, through edu's buffer, back
    // to the frame's second word.
    dma(IOVA_HUGE + GIB / 2, BUFFER_BASE + 8, false);
    dma(BUFFER_BASE + 8, IOVA_HUGE + 8, true);
    c.check("the device reads the middle of the 1 GiB frame", read(8) == 0xfeed_f00d_dead_beef);
    under_the_leaf(c, slots, objects, iospace, huge);
    device_frame(c, bi, slots, iospace);
    // UnmapIO invalidates the whole 1 GiB (a page-selective request with address mask
    // 18, or the domain): the last page, warm in the IOTLB, must fault.
    write(LAST, 0);
    c.check("unmap the 1 GiB frame from the IOSpace", io.unmap_io().is_ok());
    dma(BUFFER_BASE, IOVA_HUGE + LAST, true);
    c.check("after UnmapIO the device cannot reach the 1 GiB frame", read(LAST) == 0);
    let f = fault();
    c.check(
        "... and the fault names the frame's last page",
        f.is_some_and(|(_, reason, iova, write)| iova == IOVA_HUGE + LAST && write && reason == crate::REASON_WRITE),
    );
    stale_after_removal(c, slots, iospace, huge, io, dma, fault);
    c.check("unmap the 1 GiB frame from the CPU", huge.unmap().is_ok());
    let _ = CNode::delete(root.slot(io.0));
    c.check("delete the 1 GiB frame", CNode::delete(root.slot(huge.0)).is_ok());
}

/// Attack PoC (1 GiB frames): nothing maps under a 1 GiB leaf, for the CPU or a device
/// (a walk that took the leaf for a table would read the frame's user-written words as
/// entries), and no second 1 GiB leaf covers the MSI window.
fn under_the_leaf(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    iospace: IoSpace,
    huge: Frame,
) {
    let code = |r: libcap::cap::Result<()>| r.map_err(|e| e.code);
    // Words in the frame that would pass for table entries naming the frame itself.
    write(0, 0x3 | (0x1000));
    write(8, 0x3 | (0x1000));
    let small = objects.alloc(slots, ObjectType::Frame4K, 0).map(Frame);
    let Ok(small) = small else {
        c.check("attack: a 4 KiB frame for the 1 GiB leaf checks", false);
        return;
    };
    let io = code(small.map_io(iospace, IOVA_HUGE + 0x1000, CapRights::ALL));
    c.check(
        "attack: MapIO of a 4 KiB frame under a 1 GiB IO leaf is FailedLookup",
        io == Err(SyscallError::FailedLookup),
    );
    let batch = code(iospace.map_batch(IOVA_HUGE + 0x2000, CapRights::ALL, &[small]));
    c.check("attack: MapBatch under a 1 GiB IO leaf is FailedLookup", batch == Err(SyscallError::FailedLookup));
    let table = objects.alloc(slots, ObjectType::IoPageTable, 0).map(IoPageTable);
    let installed = table.map(|t| code(t.map(iospace, IOVA_HUGE + 0x20_0000)));
    c.check("attack: an IO page table under a 1 GiB IO leaf is refused", installed.is_ok_and(|r| r.is_err()));
    let root = CNode(slots::INIT_CNODE);
    let second = Frame(slots.alloc().expect("slot"));
    let copied = CNode::copy(root.slot(second.0), root.slot(huge.0), CapRights::ALL).is_ok();
    c.check(
        "attack: a second 1 GiB IO leaf over the MSI window is InvalidArgument",
        copied && code(second.map_io(iospace, 0xc000_0000, CapRights::ALL)) == Err(SyscallError::InvalidArgument),
    );
    c.check(
        "attack: a second 1 GiB IO leaf where one is mapped is DeleteFirst",
        code(second.map_io(iospace, IOVA_HUGE, CapRights::ALL)) == Err(SyscallError::DeleteFirst),
    );
    let _ = CNode::delete(root.slot(second.0));
    let vspace = libcap::cap::VSpace(slots::INIT_VSPACE);
    c.check(
        "attack: Map of a 4 KiB frame under a 1 GiB CPU leaf is FailedLookup",
        code(small.map(vspace, HUGE_VADDR + 0x1000, CapRights::ALL, 0)) == Err(SyscallError::FailedLookup),
    );
    let pd = objects.alloc(slots, ObjectType::PageDirectory, 0).map(libcap::cap::PageTable);
    c.check(
        "attack: a page directory where the 1 GiB CPU leaf is mapped is DeleteFirst",
        pd.is_ok_and(|pd| code(pd.map(vspace, HUGE_VADDR)) == Err(SyscallError::DeleteFirst)),
    );
    write(0, 0);
    write(8, 0xfeed_f00d_dead_beef);
}

/// Attack PoC (1 GiB frames): after UnmapBatch, Delete or Revoke of a 1 GiB IO
/// mapping whose last page a DMA just warmed in the IOTLB, the device cannot reach it.
fn stale_after_removal(
    c: &mut Checker,
    slots: &SlotAllocator,
    iospace: IoSpace,
    huge: Frame,
    io: Frame,
    dma: &dyn Fn(u64, u64, bool) -> bool,
    fault: &mut dyn FnMut() -> Option<(u64, u64, u64, bool)>,
) {
    let root = CNode(slots::INIT_CNODE);
    let names_last = |fault: &mut dyn FnMut() -> Option<(u64, u64, u64, bool)>| {
        fault()
            .is_some_and(|(_, reason, iova, write)| iova == IOVA_HUGE + LAST && write && reason == crate::REASON_WRITE)
    };
    // Map `frame` again, warm the last page, clear it; `remove` must leave it unreachable.
    let mut round = |c: &mut Checker, frame: Frame, name: &str, remove: &dyn Fn() -> bool| {
        write(LAST, 0);
        let mapped = frame.map_io(iospace, IOVA_HUGE, CapRights::ALL).is_ok();
        dma(BUFFER_BASE, IOVA_HUGE + LAST, true);
        let warm = mapped && read(LAST) == PATTERN;
        write(LAST, 0);
        let removed = remove();
        dma(BUFFER_BASE, IOVA_HUGE + LAST, true);
        c.check(name, warm && removed && read(LAST) == 0 && names_last(fault));
    };
    round(c, io, "attack: after UnmapBatch of a warm 1 GiB IO mapping its last page is unreachable", &|| {
        iospace.unmap_batch(&[io]).is_ok()
    });
    let copy = Frame(slots.alloc().expect("slot"));
    let _ = CNode::copy(root.slot(copy.0), root.slot(huge.0), CapRights::ALL);
    round(c, copy, "attack: after Delete of a warm 1 GiB IO mapping its last page is unreachable", &|| {
        CNode::delete(root.slot(copy.0)).is_ok()
    });
    let _ = CNode::copy(root.slot(copy.0), root.slot(huge.0), CapRights::ALL);
    round(c, copy, "attack: after Revoke of a warm 1 GiB IO mapping its last page is unreachable", &|| {
        CNode::revoke(root.slot(huge.0)).is_ok()
    });
}

/// Attack PoC (1 GiB frames): a 1 GiB frame retyped from device untyped (MMIO, never
/// DMA-reachable: invariant 4) is refused by MapIO like the smaller ones.
fn device_frame(c: &mut Checker, bi: &libcap::abi::bootinfo::BootInfo, slots: &SlotAllocator, iospace: IoSpace) {
    let found = bi.untyped().iter().enumerate().rfind(|(_, u)| u.is_device == 1 && u.size_bits >= 30);
    let Some((i, u)) = found else {
        println!("dmatest: no device untyped of 1 GiB: device 1 GiB frame check skipped");
        return;
    };
    println!("dmatest: device untyped {:#x} (2^{}) for a 1 GiB device frame", u.paddr, u.size_bits);
    let root = CNode(slots::INIT_CNODE);
    let slot = slots.alloc().expect("slot");
    let ut = libcap::cap::Untyped(bi.untyped_caps.start + i as u64);
    let made = ut.retype(ObjectType::Frame1G, 0, root, 0, 0, slot, 1).is_ok();
    let frame = Frame(slot);
    c.check(
        "attack: MapIO of a 1 GiB frame from device untyped is InvalidCapability",
        made && frame.map_io(iospace, IOVA_HUGE + GIB, CapRights::ALL).map_err(|e| e.code)
            == Err(SyscallError::InvalidCapability),
    );
    let _ = CNode::delete(root.slot(slot));
}
