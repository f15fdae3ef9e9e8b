//! DMA alias-group checks: two edus behind a PCIe-to-PCI bridge, one on bus 0.
//!
//! DMA alias groups (scenario: two edus behind a PCIe-to-PCI bridge, A at devfn 0 and
//! B beside it, plus an edu C on bus 0). A conventional PCI function behind such a
//! bridge DMAs (and sends MSIs) with the requester id (secondary bus, 00.0), i.e. A's:
//! A and B are one alias group. The group is the unit of assignment: it cannot be
//! split across IOSpaces or half-assigned, B reaches an IOSpace only when the group was
//! assigned there, B's faults go to the group's handler, and MSIs are checked against
//! the group's requester id (a device of another group cannot raise them).

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError;
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoPageTable, IoSpace, IrqControl, IrqHandler, Notification, PciDevice, ATTR_UNCACHED};
use libcap::check::Checker;
use libcap::device::DeviceMemory;
use libcap::ipc;
use libcap::println;
use libcap::thread::spawn;

use edu_driver::registers::Interrupt;
use edu_driver::BUFFER_BASE;
use tock_registers::interfaces::Writeable;

use crate::{
    dma_fault, dma_on, edu_at, fault_listener, next_fault, IOVA, IOVA2, MMIO_VADDR, MMIO_VADDR2, RAM_VADDR,
    REASON_WRITE,
};

/// Where edu C's registers are mapped.
const MMIO_VADDR3: u64 = 0x0000_4000_0002_0000;
/// What A's "secret" frame holds.
const SECRET: u64 = 0x5ec2_e75e_c2e7_0001;

/// The alias-group scenario's edus: A (devfn 0 of a bus behind a bridge), B (another
/// edu on that bus), C (an edu on bus 0, if any), as bootinfo indices.
fn find(bi: &BootInfo) -> (Option<usize>, Option<usize>, Option<usize>) {
    let devs = bi.pci_devices();
    let edu = |i: usize| edu_driver::is_edu(&devs[i]);
    let a = (0..devs.len()).find(|&i| edu(i) && devs[i].bus != 0 && devs[i].devfn == 0);
    let b = a.and_then(|a| (0..devs.len()).find(|&i| i != a && edu(i) && devs[i].bus == devs[a].bus));
    let c = (0..devs.len()).find(|&i| edu(i) && devs[i].bus == 0);
    (a, b, c)
}

/// Whether the boot found an edu behind a bridge (this scenario).
pub fn present(bi: &BootInfo) -> bool {
    find(bi).0.is_some()
}

fn read64(at: u64) -> u64 {
    // SAFETY: callers pass RAM pages this program mapped read-write.
    unsafe { (at as *const u64).read_volatile() }
}

fn write64(at: u64, value: u64) {
    // SAFETY: as in `read64`.
    unsafe { (at as *mut u64).write_volatile(value) }
}

/// Raises (or, with `ack`, acknowledges) interrupt status bit 0 of the edu mapped at `regs`.
fn raise(regs: u64, ack: bool) {
    let regs = edu_at(regs);
    if ack {
        regs.interrupt_ack.write(Interrupt::FACTORIAL::SET);
    } else {
        regs.interrupt_raise.write(Interrupt::FACTORIAL::SET);
    }
}

/// The notification word after polling a while (0: nothing arrived).
fn poll(ntfn: u64) -> u64 {
    ipc::poll_within(ntfn, 200_000)
}

/// An IOSpace with its IO page tables for `iova` installed.
fn iospace(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, iova: u64) -> IoSpace {
    let space = IoSpace(objects.alloc(slots, ObjectType::IoSpace, 0).expect("iospace"));
    for _ in 0..3 {
        let t = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).expect("io table"));
        let _ = t.map(space, iova);
    }
    space
}

/// Runs the alias-group checks.
pub fn run(
    bi: &'static BootInfo,
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator<'_>,
) -> ExitCode {
    let root = CNode(slots::INIT_CNODE);
    let (Some(a), Some(b), edu_c) = find(bi) else {
        println!("dmatest: FAIL the alias scenario needs two edus behind a bridge");
        return ExitCode::UserFailure;
    };
    let devs = bi.pci_devices();
    let name = |i: usize| (devs[i].bus, devs[i].devfn >> 3, devs[i].devfn & 7);
    println!(
        "dmatest: alias scenario: edu A at {:02x}:{:02x}.{}, edu B at {:02x}:{:02x}.{}",
        name(a).0,
        name(a).1,
        name(a).2,
        name(b).0,
        name(b).1,
        name(b).2
    );
    let group_a = bi.alias_group_of(a);
    c.check(
        "bootinfo puts edu A and edu B (behind the PCIe-to-PCI bridge) in one alias group",
        devs[a].alias_group == devs[b].alias_group && group_a.eq([a.min(b), a.max(b)]),
    );
    if let Some(ci) = edu_c {
        c.check("edu C on bus 0 is a group of its own", bi.alias_group_of(ci).eq([ci]));
    }
    let pci_a = PciDevice(bi.pci_device_caps.start + a as u64);
    let pci_b = PciDevice(bi.pci_device_caps.start + b as u64);
    let pci_c = edu_c.map(|i| PciDevice(bi.pci_device_caps.start + i as u64));
    let mut device_memory = DeviceMemory::new(bi);
    let mut functions = [(pci_a, MMIO_VADDR), (pci_b, MMIO_VADDR2), (pci_a, MMIO_VADDR3)];
    if let Some(pci_c) = pci_c {
        functions[2] = (pci_c, MMIO_VADDR3);
    }
    let count = if pci_c.is_some() { 3 } else { 2 };
    for &(pci, vaddr) in &functions[..count] {
        let bar = pci.config_read(0x10, 4).unwrap_or(0) & !0xf;
        let regs = device_memory.frame_at(slots, bar).unwrap_or(Frame(0));
        c.check("map an edu BAR", map_frame(objects, slots, regs, vaddr, CapRights::ALL, ATTR_UNCACHED).is_ok());
        let cmd = pci.config_read(4, 2).unwrap_or(0) as u16;
        c.check("enable memory decoding and bus mastering", pci.write_command(cmd | 0x6).is_ok());
    }
    let io_copy = |f: Frame| {
        let copy = Frame(slots.alloc().expect("slot"));
        let _ = CNode::copy(root.slot(copy.0), root.slot(f.0), CapRights::ALL);
        copy
    };
    // S_A: a secret frame at IOVA and a buffer at IOVA + 0x1000; faults to badge 0x44.
    let space_a = iospace(objects, slots, IOVA);
    let secret = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).expect("frame"));
    let buffer = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).expect("frame"));
    let _ = map_frame(objects, slots, secret, RAM_VADDR, CapRights::ALL, 0);
    let _ = map_frame(objects, slots, buffer, RAM_VADDR + 0x1000, CapRights::ALL, 0);
    write64(RAM_VADDR, SECRET);
    write64(RAM_VADDR + 0x1000, 0);
    c.check("S_A: map the secret frame", io_copy(secret).map_io(space_a, IOVA, CapRights::ALL).is_ok());
    c.check("S_A: map the buffer frame", io_copy(buffer).map_io(space_a, IOVA + 0x1000, CapRights::ALL).is_ok());
    let fault_ep = objects.alloc(slots, ObjectType::Endpoint, 0).expect("endpoint");
    let badged = |badge: u64| {
        let s = slots.alloc().expect("slot");
        let _ = CNode::mint(root.slot(s), root.slot(fault_ep), CapRights::ALL, badge);
        s
    };
    c.check("S_A: fault handler (badge 0x44)", space_a.set_fault_handler(badged(0x44)).is_ok());
    let _ = spawn(objects, slots, fault_listener, fault_ep, 200, 0x0000_4100_0000_0000, 0);
    // Let the listener reach its Recv before any fault happens.
    let me = libcap::cap::Tcb(slots::INIT_TCB);
    let _ = me.set_priority(me, 1);
    let _ = me.set_priority(me, 255);
    let invalid = Err(SyscallError::InvalidArgument);

    // Half a group cannot be assigned; B then reaches nothing of S_A.
    c.check(
        "assigning edu A without the rest of its alias group is refused (invalid argument)",
        space_a.assign(pci_a).map_err(|e| e.code) == invalid,
    );
    dma_on(MMIO_VADDR2, IOVA, BUFFER_BASE, false);
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA + 0x1000, true);
    c.check("edu B cannot reach S_A's frames while its group is not assigned there", read64(RAM_VADDR + 0x1000) == 0);
    c.check("naming a member twice is refused", space_a.assign_group(pci_a, &[pci_a]).map_err(|e| e.code) == invalid);
    if let Some(pci_c) = pci_c {
        c.check(
            "a device of another group in the set is refused",
            space_a.assign_group(pci_a, &[pci_b, pci_c]).map_err(|e| e.code) == invalid,
        );
    }
    c.check("assign the alias group (A and B) to S_A", space_a.assign_group(pci_a, &[pci_b]).is_ok());
    dma_on(MMIO_VADDR2, IOVA, BUFFER_BASE, false);
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA + 0x1000, true);
    c.check(
        "with its group assigned, edu B translates through S_A (one protection unit)",
        read64(RAM_VADDR + 0x1000) == SECRET,
    );

    // The group cannot be split: B alone goes nowhere, the group not into a second space.
    let space_b = iospace(objects, slots, IOVA2);
    let own = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).expect("frame"));
    let _ = map_frame(objects, slots, own, RAM_VADDR + 0x2000, CapRights::ALL, 0);
    write64(RAM_VADDR + 0x2000, 0);
    c.check("S_B: map B's own frame", io_copy(own).map_io(space_b, IOVA2, CapRights::ALL).is_ok());
    c.check("S_B: fault handler (badge 0x45)", space_b.set_fault_handler(badged(0x45)).is_ok());
    c.check(
        "assigning edu B alone to another IOSpace is refused (the group is not split)",
        space_b.assign(pci_b).map_err(|e| e.code) == invalid,
    );
    c.check(
        "assigning the group to a second IOSpace is refused (delete first)",
        space_b.assign_group(pci_b, &[pci_a]).map_err(|e| e.code) == Err(SyscallError::DeleteFirst),
    );
    // B's blocked write in S_A is reported to S_A's handler, with the group's requester id.
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA2, true);
    let group_id = u64::from(devs[a].requester_id());
    let fault = next_fault();
    println!("dmatest: fault message for edu B's write: {fault:x?}");
    c.check(
        "edu B's fault goes to the group's IOSpace handler (badge 0x44, the group's requester id)",
        fault == dma_fault(group_id, REASON_WRITE, IOVA2, true),
    );
    c.check("B's write did not land in S_B", read64(RAM_VADDR + 0x2000) == 0);

    // Unassign takes the whole group out: every context entry is gone.
    c.check(
        "unassigning edu A alone is refused (invalid argument)",
        space_a.unassign(pci_a).map_err(|e| e.code) == invalid,
    );
    c.check("unassign the group from S_A", space_a.unassign_group(pci_a, &[pci_b]).is_ok());
    write64(RAM_VADDR + 0x1000, 0);
    dma_on(MMIO_VADDR2, IOVA, BUFFER_BASE, false);
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA + 0x1000, true);
    dma_on(MMIO_VADDR, IOVA, BUFFER_BASE, false);
    dma_on(MMIO_VADDR, BUFFER_BASE, IOVA + 0x1000, true);
    c.check("after the group's unassign neither A nor B reaches S_A", read64(RAM_VADDR + 0x1000) == 0);
    c.check("the whole group moves to S_B", space_b.assign_group(pci_b, &[pci_a]).is_ok());
    write64(RAM_VADDR + 0x2000, 0x77);
    dma_on(MMIO_VADDR2, IOVA, BUFFER_BASE, false);
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA2, true);
    c.check("... where edu B writes its own frame (and reads nothing of S_A)", read64(RAM_VADDR + 0x2000) == 0);
    write64(RAM_VADDR + 0x2000, 0x0b0b);
    dma_on(MMIO_VADDR2, IOVA2, BUFFER_BASE, false);
    dma_on(MMIO_VADDR2, BUFFER_BASE, IOVA2 + 8, true);
    c.check("edu B's DMA round trip in S_B", read64(RAM_VADDR + 0x2008) == 0x0b0b);

    // MSIs: checked against the group's requester id.
    let mut notification = |badge: u64| {
        let obj = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
        let s = slots.alloc().expect("slot");
        let _ = CNode::mint(root.slot(s), root.slot(obj), CapRights::ALL, badge);
        s
    };
    let (ntfn_a, ntfn_b) = (notification(0xa), notification(0xb));
    let mut msi = |pci: PciDevice, ntfn: u64| {
        let handler = IrqHandler(slots.alloc().expect("slot"));
        let got = IrqControl(slots::IRQ_CONTROL).get_msi(pci, root.slot(handler.0));
        c.check("GetMsi", got.is_ok() && handler.set_notification(Notification(ntfn)).is_ok());
        got.ok()
    };
    let (Some(msi_a), Some(msi_b)) = (msi(pci_a, ntfn_a), msi(pci_b, ntfn_b)) else {
        return c.finish();
    };
    c.check("program edu B with its own MSI", pci_b.enable_msi(&msi_b) == Ok(true));
    raise(MMIO_VADDR2, false);
    c.check("edu B's own MSI arrives (the IRTE checks the group's requester id)", poll(ntfn_b) == 0xb);
    raise(MMIO_VADDR2, true);
    c.check("program edu A with its own MSI", pci_a.enable_msi(&msi_a) == Ok(true));
    raise(MMIO_VADDR, false);
    c.check("edu A's own MSI arrives", poll(ntfn_a) == 0xa);
    raise(MMIO_VADDR, true);
    if let Some(pci_c) = pci_c {
        c.check("program edu C (another group) with A's MSI", pci_c.enable_msi(&msi_a) == Ok(true));
        raise(MMIO_VADDR3, false);
        c.check("edu C raising A's vector reaches nobody", poll(ntfn_a) == 0);
        raise(MMIO_VADDR3, true);
    }
    println!("dmatest: done");
    c.finish()
}
