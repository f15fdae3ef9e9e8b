//! No DMA fault is lost while the handler is busy: the fault queue.
//!
//! The listener thread (the IOSpace's endpoint handler) is suspended, so nobody
//! receives when edu's blocked writes fault: every fault must wait in the kernel's queue
//! and come back, in order, from `IoSpaceNextFault`, with nothing lost. Then the handler
//! is a notification: each fault signals it (with its badge) and the records are popped
//! the same way. Finally the records of a destroyed IOSpace are dropped with it: the
//! next IOSpace (which gets the freed domain id) sees none of them.

use alloc::format;

use libcap::abi::fault::{DmaFaultRecord, NextFault, NEXT_FAULT_EMPTY};
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, IoSpace, PciDevice, Tcb};
use libcap::check::Checker;
use libcap::ipc;
use libcap::println;

use edu_driver::BUFFER_BASE;

/// Never-mapped IOVAs inside the IOSpace's installed tables (the write faults there).
const STORM_IOVA: u64 = super::IOVA + 0x4_0000;
/// Blocked DMAs while nobody receives.
const STORM: u64 = 6;
/// Blocked DMAs with a notification handler.
const SIGNALLED: u64 = 2;
/// Badge of the notification handler.
const NTFN_BADGE: u64 = 0x55;

/// Pops everything queued for `iospace` (left from earlier steps); returns how many.
fn drain(iospace: IoSpace) -> u32 {
    let mut n = 0;
    while iospace.next_fault().is_ok() && n < 1000 {
        n += 1;
    }
    n
}

/// The record a blocked edu write to `iova` leaves.
fn write_fault(rid: u64, iova: u64) -> Option<DmaFaultRecord> {
    Some(DmaFaultRecord { requester: rid as u16, reason: super::REASON_WRITE as u8, is_write: true, iova })
}

/// Pops `n` records and checks each against a write to `iova(i)` (oldest first,
/// has_more on all but the last, nothing lost), then that the queue is empty.
fn pop_all(c: &mut Checker, what: &str, iospace: IoSpace, rid: u64, n: u64, iova: impl Fn(u64) -> u64) {
    let mut right = 0;
    for i in 0..n {
        match iospace.next_fault() {
            Ok(f) if f == NextFault { record: write_fault(rid, iova(i)), has_more: i + 1 < n, lost: 0 } => right += 1,
            other => println!("dmatest: {what}: record {i}: unexpected {other:?}"),
        }
    }
    println!("dmatest: {what}: {right} of {n} records popped in order");
    c.check(&format!("{what}: every fault queued, popped oldest first, none lost"), right == n);
    let empty = iospace.next_fault().map_err(|e| e.code);
    c.check(&format!("{what}: then NextFault says empty (FailedLookup)"), empty == Err(NEXT_FAULT_EMPTY));
}

/// The fault storm with the handler busy, then with a notification handler. Leaves the
/// listener suspended and the endpoint `fault_handler` installed again.
#[allow(clippy::too_many_arguments)]
pub fn run(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    iospace: IoSpace,
    listener: Tcb,
    fault_handler: u64,
    rid: u64,
    dma: &dyn Fn(u64, u64, bool) -> bool,
) {
    c.check("storm: the handler thread is busy (suspended)", listener.suspend().is_ok());
    println!("dmatest: storm: {} records left from earlier steps popped", drain(iospace));
    for i in 0..STORM {
        dma(BUFFER_BASE, STORM_IOVA + i * 0x1000, true);
    }
    pop_all(c, "storm", iospace, rid, STORM, |i| STORM_IOVA + i * 0x1000);
    // A notification handler: signalled with its badge, the records queued.
    let root = CNode(slots::INIT_CNODE);
    let (Ok(ntfn), Ok(badged)) = (objects.alloc(slots, ObjectType::Notification, 0), slots.alloc()) else {
        c.check("storm: a notification", false);
        return;
    };
    let _ = CNode::mint(root.slot(badged), root.slot(ntfn), CapRights::ALL, NTFN_BADGE);
    c.check("storm: a notification becomes the fault handler", iospace.set_fault_handler(badged).is_ok());
    let base = STORM_IOVA + STORM * 0x1000;
    for i in 0..SIGNALLED {
        dma(BUFFER_BASE, base + i * 0x1000, true);
    }
    c.check("storm: the notification was signalled with its badge", ipc::poll(badged) == Ok(NTFN_BADGE));
    pop_all(c, "notified", iospace, rid, SIGNALLED, |i| base + i * 0x1000);
    c.check("storm: the endpoint handler again", iospace.set_fault_handler(fault_handler).is_ok());
}

/// Leaves one record queued in `iospace` (two faults, one popped), for
/// [`dropped_with_the_iospace`] after the IOSpace is deleted.
pub fn leave_one_queued(c: &mut Checker, iospace: IoSpace, rid: u64, dma: &dyn Fn(u64, u64, bool) -> bool) {
    let iova = STORM_IOVA + 0x10_0000;
    dma(BUFFER_BASE, iova, true);
    dma(BUFFER_BASE, iova + 0x1000, true);
    let first = iospace.next_fault();
    c.check(
        "destroy: two faults queued before the IOSpace is deleted",
        first.is_ok_and(|f| f.record == write_fault(rid, iova) && f.has_more),
    );
}

/// A new IOSpace (given the lowest free domain id: the deleted one's) sees none of
/// the deleted IOSpace's queued records: nothing at first, and after a fault of its own
/// exactly that one.
pub fn dropped_with_the_iospace(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    pci: PciDevice,
    rid: u64,
    dma: &dyn Fn(u64, u64, bool) -> bool,
) {
    let Ok(fresh) = objects.alloc(slots, ObjectType::IoSpace, 0) else {
        c.check("destroy: a new IOSpace", false);
        return;
    };
    let fresh = IoSpace(fresh);
    // Only an IOSpace with a fault handler gets records queued.
    let handler = objects.alloc(slots, ObjectType::Notification, 0).unwrap_or(0);
    c.check("destroy: a notification handler for the new IOSpace", fresh.set_fault_handler(handler).is_ok());
    let next = fresh.next_fault().map_err(|e| e.code);
    c.check("destroy: the next IOSpace sees none of the deleted one's faults", next == Err(NEXT_FAULT_EMPTY));
    // Its own fault (no tables: every access faults) is the only record it gets.
    let iova = STORM_IOVA + 0x20_0000;
    c.check("destroy: assign edu to the new IOSpace", fresh.assign(pci).is_ok());
    dma(BUFFER_BASE, iova, true);
    let own = fresh.next_fault();
    println!("dmatest: destroy: the new IOSpace's first record: {own:?}");
    c.check(
        "destroy: ... and after a fault of its own, exactly that one",
        own.is_ok_and(|f| {
            f.record.is_some_and(|r| r.iova == iova && u64::from(r.requester) == rid) && !f.has_more && f.lost == 0
        }),
    );
    let _ = fresh.unassign(pci);
    let _ = CNode::delete(CNode(slots::INIT_CNODE).slot(fresh.0));
    let _ = CNode::delete(CNode(slots::INIT_CNODE).slot(handler));
}

/// IOSpaces with a fault handler.
fn handled_iospace(slots: &SlotAllocator, objects: &mut ObjectAllocator<'_>, handler: u64) -> Option<IoSpace> {
    let s = IoSpace(objects.alloc(slots, ObjectType::IoSpace, 0).ok()?);
    s.set_fault_handler(handler).ok().map(|_| s)
}

/// Hog IOSpaces whose handler never pops fill the whole fault queue (4 x
/// `DMA_FAULTS_PER_DOMAIN`); another IOSpace's fault is still queued for it (it evicts
/// a hog's oldest record). Attack 8's PoC.
pub fn fair_share(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
    pci: PciDevice,
    rid: u64,
    dma: &dyn Fn(u64, u64, bool) -> bool,
) {
    use libcap::abi::fault::{DMA_FAULTS_PER_DOMAIN, DMA_FAULT_QUEUE};
    let root = CNode(slots::INIT_CNODE);
    let Ok(ntfn) = objects.alloc(slots, ObjectType::Notification, 0) else {
        c.check("fair share: a notification", false);
        return;
    };
    let mut made = alloc::vec::Vec::new();
    for _ in 0..DMA_FAULT_QUEUE / DMA_FAULTS_PER_DOMAIN {
        let Some(hog) = handled_iospace(slots, objects, ntfn) else { break };
        made.push(hog);
        if hog.assign(pci).is_err() {
            break;
        }
        // One more than its share: the queue is full even if the first one is lost.
        for i in 0..=DMA_FAULTS_PER_DOMAIN as u64 {
            dma(BUFFER_BASE, STORM_IOVA + 0x30_0000 + i * 0x1000, true);
        }
        // Let the kernel drain the last record while the device is still in the hog.
        let settle = libcap::deadline::Deadline::after(10_000_000);
        while !settle.passed() {
            core::hint::spin_loop();
        }
        let _ = hog.unassign(pci);
    }
    println!("dmatest: fair share: {} hog IOSpaces fill the fault queue, nobody pops", made.len());
    let victim = handled_iospace(slots, objects, ntfn);
    let iova = STORM_IOVA + 0x40_0000;
    let got = victim.map(|v| {
        let _ = v.assign(pci);
        dma(BUFFER_BASE, iova, true);
        let _ = v.unassign(pci);
        v.next_fault()
    });
    println!("dmatest: fair share: the other IOSpace's NextFault: {got:?}");
    c.check(
        "fair share: another IOSpace's fault is queued for it though the hogs fill the queue",
        matches!(got, Some(Ok(f)) if f.record.is_some_and(|r| r.iova == iova && u64::from(r.requester) == rid)),
    );
    for s in made.iter().chain(victim.iter()) {
        let _ = CNode::delete(root.slot(s.0));
    }
    let _ = CNode::delete(root.slot(ntfn));
}
