//! Attack PoC (IO short paths): an IOSpace's root page reused by a new IOSpace.
//!
//! UnmapIO of a 4 KiB frame (`io_batch::unmap_one`) finds the domain to invalidate from
//! the IOSpace root its record names, through a one-entry cache (`iospace::domain_of_root`).
//! An IOSpace retyped twice from the same 4 KiB untyped gets the same root page, but
//! (with a filler IOSpace taking the dead one's id) another domain id. If the cache
//! still answered the dead IOSpace's id, the unmap would invalidate the filler's domain
//! and the device's IOTLB entry for the new IOSpace would survive: the device would
//! keep writing a frame no mapping names any more. A frame record left from the dead
//! IOSpace (same root, same IOVA) is also unmapped through the short path in between.

use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, PciDevice, Untyped};
use libcap::check::Checker;
use libcap::println;

use edu_driver::BUFFER_BASE;

/// Where the frame is mapped in both IOSpaces (a 1 GiB region no other check uses).
pub(crate) const IOVA_REUSE: u64 = 0x6000_0000;

/// Installs the tables down to IOVA_REUSE's leaf table in `space`.
fn tables(slots: &SlotAllocator, objects: &mut ObjectAllocator<'_>, space: IoSpace) -> bool {
    (0..3)
        .filter(|_| {
            let t = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).expect("io table"));
            t.map(space, IOVA_REUSE).is_ok()
        })
        .count()
        >= 2
}

/// Runs the attack with `pci` (assigned to `iospace`, given back to it at the end),
/// `frame` (mapped read-write for the CPU at `vaddr`) and the fault `handler` cap.
/// `next_fault` pops the next fault message.
#[allow(clippy::too_many_arguments)]
pub fn run(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    (iospace, pci, handler): (IoSpace, PciDevice, u64),
    (frame, vaddr): (Frame, u64),
    dma: &dyn Fn(u64, u64, bool) -> bool,
    next_fault: &dyn Fn() -> Option<[u64; 6]>,
    expected_fault: Option<[u64; 6]>,
) {
    let root = CNode(slots::INIT_CNODE);
    let copy = |f: Frame| {
        let x = Frame(slots.alloc().expect("slot"));
        let _ = CNode::copy(root.slot(x.0), root.slot(f.0), CapRights::ALL);
        x
    };
    let ut = Untyped(objects.alloc(slots, ObjectType::Untyped, 12).expect("4 KiB untyped"));
    let (a, b) = (IoSpace(slots.alloc().expect("slot")), IoSpace(slots.alloc().expect("slot")));
    let made_a = ut.retype(ObjectType::IoSpace, 0, root, 0, 0, a.0, 1).is_ok() && tables(slots, objects, a);
    // A frame left mapped in A (its record outlives A), and an UnmapIO in A that puts
    // A's (root, domain) in the kernel's cache.
    let (stale, warm) = (copy(frame), copy(frame));
    let in_a = stale.map_io(a, IOVA_REUSE, CapRights::ALL).is_ok()
        && warm.map_io(a, IOVA_REUSE + 0x1000, CapRights::ALL).is_ok()
        && warm.unmap_io().is_ok();
    c.check("reuse: an IOSpace with a frame mapped, unmapped once", made_a && in_a);
    c.check("reuse: delete that IOSpace", CNode::delete(root.slot(a.0)).is_ok());
    // The filler takes A's domain id; B gets A's root page and another id.
    let filler = objects.alloc(slots, ObjectType::IoSpace, 0).map(IoSpace);
    let made_b = ut.retype(ObjectType::IoSpace, 0, root, 0, 0, b.0, 1).is_ok() && tables(slots, objects, b);
    c.check("reuse: a new IOSpace on the dead one's root page", filler.is_ok() && made_b);
    let moved = iospace.unassign(pci).is_ok() && b.assign(pci).is_ok() && b.set_fault_handler(handler).is_ok();
    c.check("reuse: the device moves to the new IOSpace", moved);
    let live = copy(frame);
    c.check("reuse: map the frame at the stale record's IOVA", live.map_io(b, IOVA_REUSE, CapRights::ALL).is_ok());
    dma(BUFFER_BASE, IOVA_REUSE, true);
    // SAFETY: `frame` is mapped read-write for the CPU at `vaddr` (the caller's contract).
    let reached = unsafe { (vaddr as *const u64).read_volatile() };
    c.check("reuse: the device writes it (its IOTLB entry is warm)", reached == 0x1122_3344_5566_7788);
    // SAFETY: as above.
    unsafe { (vaddr as *mut u64).write_volatile(0) };
    // The record A left names B's root: UnmapIO takes it (the entry names the same
    // frame, so it goes; invalidated in B's domain, found through the cache).
    c.check("reuse: the record the dead IOSpace left unmaps", stale.unmap_io().is_ok());
    // That record names the new IOSpace's root and the frame's entry there: the root
    // page was reused if the device lost its way to the frame with it.
    dma(BUFFER_BASE, IOVA_REUSE, true);
    // SAFETY: as above.
    let through_stale = unsafe { (vaddr as *const u64).read_volatile() };
    let reused = through_stale == 0 && next_fault() == expected_fault;
    println!("dmatest: reuse: the stale record's UnmapIO took the new IOSpace's entry: {reused} (root page reused)");
    // SAFETY: as above.
    unsafe { (vaddr as *mut u64).write_volatile(0) };
    c.check("reuse: UnmapIO of the live mapping", live.unmap_io().is_ok());
    dma(BUFFER_BASE, IOVA_REUSE, true);
    // SAFETY: as above.
    let after = unsafe { (vaddr as *const u64).read_volatile() };
    c.check("attack: after UnmapIO on a reused root the device cannot write the frame", after == 0);
    let fault = next_fault();
    c.check(
        "attack: ... and the fault names the IOVA (the new IOSpace's domain was invalidated)",
        fault == expected_fault,
    );
    if after != 0 || fault != expected_fault {
        println!("dmatest: reuse: frame word {after:#x}, fault {fault:x?}");
    }
    let back = b.unassign(pci).is_ok() && iospace.assign(pci).is_ok();
    c.check("reuse: the device goes back to its IOSpace", back);
    for slot in [live.0, stale.0, warm.0, b.0] {
        let _ = CNode::delete(root.slot(slot));
    }
    if let Ok(f) = filler {
        let _ = CNode::delete(root.slot(f.0));
    }
}
