//! Cost as the system grows: IOSpaces, IO mappings per revoke, runnable threads.
//!
//! MapIO+UnmapIO and Assign+Unassign are timed with 1, 64 and 1,000 IOSpaces in
//! existence; Revoke of a frame cap whose 1, 64 or 4,096 copies each hold an IO
//! mapping is timed per mapping; and (in `main`) the IPC rows run again with 256 more
//! runnable threads at a lower priority. Each figure should stay flat; docs/benchmarks.md
//! says why where it does not (UnmapIO finds the domain of an IO mapping's root by a
//! scan of the domains in use).

use alloc::format;

use abi::bootinfo::BootInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, PciDevice, Tcb, Untyped, VSpace};
use libcap::println;

use crate::{report, RUNS};

/// Where the IOSpace rows map their page.
const IOVA: u64 = 0x4000_0000;
/// Where the revoke rows map their copies (8 leaf tables: 16 MiB).
const REVOKE_IOVA: u64 = 0x8000_0000;
/// Revokes timed per mapping count (each destroys what it measures).
const REVOKES: usize = 5;

fn new(objects: &mut ObjectAllocator, slots: &SlotAllocator, t: ObjectType) -> u64 {
    objects.alloc(slots, t, 0).expect("scaling bench objects")
}

/// An IOSpace with the tables for `2 MiB * regions` from `iova`.
pub fn iospace_with_tables(objects: &mut ObjectAllocator, slots: &SlotAllocator, iova: u64, regions: u64) -> IoSpace {
    let space = IoSpace(new(objects, slots, ObjectType::IoSpace));
    for region in 0..regions {
        // The first region needs every level below the root (two or three: the
        // translation depth is the unit's); DeleteFirst says the last one is in.
        let levels = if region == 0 { 3 } else { 1 };
        for _ in 0..levels {
            let table = IoPageTable(new(objects, slots, ObjectType::IoPageTable));
            match table.map(space, iova + region * (2 << 20)) {
                Ok(()) => {}
                Err(e) if e.code == abi::error::SyscallError::DeleteFirst => break,
                Err(e) => panic!("io table: {e:?}"),
            }
        }
    }
    space
}

/// Slots the rows reuse (the root CNode has not enough for 4,096 copies, 1,000
/// IOSpaces and 256 threads at once): the revoke rows leave them empty again.
pub const SCRATCH_SLOTS: u64 = 4096;

/// Retypes `count` objects of `t` into `slots_from..`, one at a time, from one untyped
/// of `2^bits` bytes.
fn retype_into(objects: &mut ObjectAllocator, slots: &SlotAllocator, t: ObjectType, bits: u64, first: u64, count: u64) {
    let untyped = Untyped(objects.alloc(slots, ObjectType::Untyped, bits).expect("scaling bench untyped"));
    let root = CNode(slots::INIT_CNODE);
    for i in 0..count {
        untyped.retype(t, 0, root, 0, 0, first + i, 1).expect("scaling bench retype");
    }
}

/// MapIO+UnmapIO and Assign+Unassign with 1, 64 and 1,000 IOSpaces (the other 999 in
/// `scratch`).
pub fn iospace_rows(bi: &BootInfo, objects: &mut ObjectAllocator, slots: &SlotAllocator, scratch: u64, overhead: u64) {
    let frame = Frame(new(objects, slots, ObjectType::Frame4K));
    let sata = bi.pci_devices().iter().position(|d| d.class == 0x01 && d.subclass == 0x06);
    let device = sata.map(|i| PciDevice(bi.pci_device_caps.start + i as u64));
    let mut existing = 1;
    let mut samples = [0u64; RUNS];
    // A second IOSpace for the domain-cache miss rows (one more than each N says).
    let other = iospace_with_tables(objects, slots, IOVA, 1);
    let other_frame = Frame(new(objects, slots, ObjectType::Frame4K));
    for n in [1, 64, 1000] {
        // 999 IOSpaces of 4 KiB fit a 4 MiB untyped.
        retype_into(objects, slots, ObjectType::IoSpace, 22, scratch + existing - 1, n - existing);
        existing = n;
        // The IOSpace timed is the newest, with the highest domain id: the worst case
        // for finding an IO mapping's domain from its root (a scan, docs/benchmarks.md).
        let target = iospace_with_tables(objects, slots, IOVA, 1);
        for s in samples.iter_mut() {
            let t0 = crate::now();
            let a = frame.map_io(target, IOVA, CapRights::ALL);
            let b = frame.unmap_io();
            *s = crate::now() - t0;
            a.and(b).expect("map_io/unmap_io");
        }
        report(&format!("MapIO+UnmapIO 4 KiB page, {n} IOSpaces"), &mut samples, overhead);
        // The same after an untimed unmap in another IOSpace, which takes the kernel's
        // one-entry cache of the last root's domain: the timed unmap finds its domain
        // through the hash index (docs/fastpath.md).
        for s in samples.iter_mut() {
            other_frame.map_io(other, IOVA, CapRights::ALL).and(other_frame.unmap_io()).expect("the other IOSpace");
            let t0 = crate::now();
            let a = frame.map_io(target, IOVA, CapRights::ALL);
            let b = frame.unmap_io();
            *s = crate::now() - t0;
            a.and(b).expect("map_io/unmap_io");
        }
        report(
            &format!("MapIO+UnmapIO 4 KiB page, {n} IOSpaces, after an unmap in another (domain cache miss)"),
            &mut samples,
            overhead,
        );
        let Some(device) = device else {
            println!("bench: no SATA controller to assign: Assign rows skipped");
            continue;
        };
        for s in samples.iter_mut() {
            let t0 = crate::now();
            let a = target.assign(device);
            let b = target.unassign(device);
            *s = crate::now() - t0;
            a.and(b).expect("assign/unassign");
        }
        report(&format!("Assign+Unassign a device, {n} IOSpaces"), &mut samples, overhead);
    }
}

/// Revoke of a frame whose 1, 64 or 4,096 copies each hold an IO mapping, per mapping.
/// The copies go to `scratch`, which is empty again afterwards.
pub fn revoke_rows(objects: &mut ObjectAllocator, slots: &SlotAllocator, scratch: u64) {
    let root = CNode(slots::INIT_CNODE);
    let space = iospace_with_tables(objects, slots, REVOKE_IOVA, 8);
    let copies = scratch;
    let parent = slots.alloc().expect("slot");
    for k in [1u64, 64, 4096] {
        let mut samples = [0u64; REVOKES];
        for s in samples.iter_mut() {
            let frame = objects.alloc(slots, ObjectType::Frame4K, 0).expect("frame");
            CNode::move_cap(root.slot(parent), root.slot(frame)).expect("move");
            for i in 0..k {
                CNode::copy(root.slot(copies + i), root.slot(parent), CapRights::ALL).expect("copy");
                Frame(copies + i).map_io(space, REVOKE_IOVA + i * 4096, CapRights::ALL).expect("map_io copy");
            }
            let t0 = crate::now();
            CNode::revoke(root.slot(parent)).expect("revoke");
            *s = (crate::now() - t0) / k;
            CNode::delete(root.slot(parent)).expect("delete");
        }
        report(&format!("Revoke of {k} IO mappings, per mapping"), &mut samples, 0);
    }
}

/// Starts 256 threads (in `first..`) at priority 100 that would spin if they ever ran
/// (the bench runs at 255, so they only wait in the run queue); returns them.
pub fn runnable_threads(objects: &mut ObjectAllocator, slots: &SlotAllocator, first: u64) -> [Tcb; 256] {
    static mut STACK: [u64; 64] = [0; 64];
    let me = Tcb(slots::INIT_TCB);
    let mut threads = [Tcb(0); 256];
    // 256 TCBs of 2 KiB: 512 KiB.
    retype_into(objects, slots, ObjectType::Tcb, 19, first, 256);
    for (i, t) in threads.iter_mut().enumerate() {
        *t = Tcb(first + i as u64);
        t.configure_without_buffer(0, CNode(slots::INIT_CNODE), VSpace(slots::INIT_VSPACE)).expect("configure");
        let regs = abi::registers::UserRegisters {
            rip: spin as *const () as u64,
            rsp: core::ptr::addr_of!(STACK) as u64 + 256,
            rflags: 0x202,
            ..Default::default()
        };
        t.write_registers(false, &regs).expect("registers");
        t.set_priority(me, 100).expect("priority");
        t.resume().expect("resume");
    }
    threads
}

extern "C" fn spin() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
