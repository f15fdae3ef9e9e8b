//! Attacks on guest translations: unmaps, other spaces, reused roots.
//!
//! Attacks on guest translations: a guest must lose a page the instant the VMM unmaps
//! it, keep no translation of another GuestSpace, and reach nothing through a
//! GuestSpace root page that was deleted and made again.
//!
//! QEMU's TCG drops its translation cache on every world switch, so a stale guest TLB
//! entry cannot show here; these sequences are the ones that would show it on hardware
//! (see the kernel's `GuestTlb` tests for the decisions themselves).

use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::vcpu::{VcpuReg, VmExitKind, NPF_PRESENT, NPF_WRITE};
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, PageTable, Untyped, VSpace, ATTR_EXECUTABLE};
use libcap::check::Checker;
use libcap::println;
use libcap::vm::GuestSpace;

use crate::snippets::Snippet;
use crate::vm::{rw, Vm, DATA, DATA2, MID_PORT, PAGES};

fn page(gpa: u64) -> usize {
    (gpa / 4096) as usize
}

/// Puts every RAM frame of `vm` back into its GuestSpace after an attack removed some.
fn remap_all(vm: &Vm) -> bool {
    let mut ok = true;
    for (i, f) in vm.guest_frames.iter().enumerate() {
        let _ = f.unmap();
        ok &= f.map(VSpace(vm.space.0), i as u64 * 4096, rw(), ATTR_EXECUTABLE).is_ok();
    }
    ok
}

/// A frame unmapped (or made read-only, or its nested table unmapped) between two
/// guest accesses is gone for the second.
pub fn unmap(c: &mut Checker, vm: &Vm) {
    vm.put(DATA, 0x1111);
    let regs = [(VcpuReg::Rbx, DATA), (VcpuReg::Rdx, u64::from(MID_PORT))];
    let first = vm.attempt(Snippet::LoadTwice, &regs);
    let first_ok = first.as_ref().is_ok_and(|e| e.kind == Some(VmExitKind::Io) && e.gprs[0] as u32 == 0x1111);
    let unmapped = vm.guest_frames[page(DATA)].unmap().is_ok();
    let second = first.ok().map(|e| vm.run_at(e.next_rip));
    let faulted = matches!(&second, Some(Ok(e)) if e.kind == Some(VmExitKind::NestedPageFault) && e.a == DATA);
    c.check("a guest load after Frame::Unmap of its page is a nested page fault", first_ok && unmapped && faulted);
    c.check("the frame maps again", remap_all(vm));

    // Read-only by Remap between two stores.
    let regs = [(VcpuReg::Rbx, DATA), (VcpuReg::Rdx, u64::from(MID_PORT)), (VcpuReg::Rax, 0x2222)];
    let first = vm.attempt(Snippet::StoreTwice, &regs);
    let first_ok = first.as_ref().is_ok_and(|e| e.kind == Some(VmExitKind::Io)) && vm.get(DATA) == 0x2222;
    let ro = vm.guest_frames[page(DATA)].map(VSpace(vm.space.0), DATA, CapRights::READ, 0).is_ok();
    let second = first.ok().map(|e| vm.run_at(e.next_rip));
    let faulted = matches!(&second, Some(Ok(e)) if e.kind == Some(VmExitKind::NestedPageFault)
        && e.a == DATA && e.b & (NPF_WRITE | NPF_PRESENT) == NPF_WRITE | NPF_PRESENT);
    c.check("a guest store after a read-only Remap is a nested page fault (present, write)", first_ok && ro && faulted);
    c.check("the frame maps read-write again", remap_all(vm));

    // The nested page table under guest RAM unmapped between two loads.
    let regs = [(VcpuReg::Rbx, DATA), (VcpuReg::Rdx, u64::from(MID_PORT))];
    let first = vm.attempt(Snippet::LoadTwice, &regs);
    let table_unmapped = vm.tables[2].unmap().is_ok();
    let second = first.ok().map(|e| vm.run_at(e.next_rip));
    let faulted = matches!(&second, Some(Ok(e)) if e.kind == Some(VmExitKind::NestedPageFault));
    if let Some(Ok(e)) = &second {
        println!("vmattack:   after PageTable::Unmap: {:?} at {:#x}", e.kind, e.a);
    }
    c.check("after PageTable::Unmap of the nested table the guest faults", table_unmapped && faulted);
    let back = vm.tables[2].map(VSpace(vm.space.0), 0).is_ok();
    c.check("the nested table (emptied) maps again and so do the frames", back && remap_all(vm));
    let e = vm.attempt(Snippet::Load, &[(VcpuReg::Rbx, DATA)]);
    c.check("the guest reads its page again", e.is_ok_and(|e| e.kind == Some(VmExitKind::Hlt) && e.gprs[0] == 0x2222));
}

/// Two guests, the same guest-physical and guest-virtual page, different frames: after
/// the sequence that made the kernel skip the flush (run A; any unmap; run B; run A),
/// A must read its own page, not B's.
pub fn cross_space(c: &mut Checker, a: &Vm, b: &Vm) {
    a.put(DATA, 0xaaaa);
    b.put(DATA, 0xbbbb);
    let halt = |vm: &Vm| vm.attempt(Snippet::Halt, &[]).is_ok_and(|e| e.kind == Some(VmExitKind::Hlt));
    let warm = halt(a) && halt(a) && halt(a);
    // Any unmap outside the running VSpace marks the guest TLB stale.
    let f = b.guest_frames[page(DATA2)];
    let stale = f.unmap().is_ok() && f.map(VSpace(b.space.0), DATA2, rw(), ATTR_EXECUTABLE).is_ok();
    let eb = b.attempt(Snippet::Load, &[(VcpuReg::Rbx, DATA)]);
    let b_ok = eb.is_ok_and(|e| e.kind == Some(VmExitKind::Hlt) && e.gprs[0] == 0xbbbb);
    let ea = a.attempt(Snippet::Load, &[(VcpuReg::Rbx, DATA)]);
    let seen = ea.map(|e| e.gprs[0]).unwrap_or(0);
    println!("vmattack:   guest A reads {seen:#x} at the page guest B just read");
    c.check(
        "after run A, an unmap, run B: guest A reads its own page, never guest B's",
        warm && stale && b_ok && seen == 0xaaaa,
    );
}

/// A GuestSpace deleted while its tables and frames are still mapped, its root page
/// made into a new GuestSpace and then into a Frame: nothing of the old space is
/// reachable, and the old caps unmap without touching the new objects.
pub fn root_reuse(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, vm: &Vm) {
    let root = CNode(slots::INIT_CNODE);
    let Ok(u) = objects.alloc(slots, ObjectType::Untyped, 12) else {
        c.check("an untyped for the GuestSpace root", false);
        return;
    };
    let Ok(gs_slot) = slots.alloc() else { return };
    let untyped = Untyped(u);
    let made = untyped.retype(ObjectType::GuestSpace, 0, root, 0, 0, gs_slot, 1).is_ok();
    let gs = GuestSpace(gs_slot);
    // Tables and copies of the VM's RAM frames in the new space.
    let mut tables_ok = true;
    let mut tables = [PageTable(0); 3];
    for (t, ty) in tables.iter_mut().zip([ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable]) {
        match objects.alloc(slots, ty, 0) {
            Ok(p) => {
                *t = PageTable(p);
                tables_ok &= t.map(VSpace(gs.0), 0).is_ok();
            }
            Err(_) => tables_ok = false,
        }
    }
    let mut copies = [Frame(0); PAGES];
    for (i, f) in copies.iter_mut().enumerate() {
        let Ok(s) = slots.alloc() else { return };
        tables_ok &= CNode::copy(root.slot(s), root.slot(vm.guest_frames[i].0), CapRights::ALL).is_ok();
        *f = Frame(s);
        tables_ok &= f.map(VSpace(gs.0), i as u64 * 4096, rw(), ATTR_EXECUTABLE).is_ok();
    }
    vm.put(DATA, 0x3333);
    let e = vm.load(Snippet::Load, &[(VcpuReg::Rbx, DATA)]).and_then(|_| Vm::run_in(vm.vcpu, gs));
    c.check(
        "a VCPU runs in a second GuestSpace over the same frames",
        made && tables_ok && e.is_ok_and(|e| e.kind == Some(VmExitKind::Hlt) && e.gprs[0] == 0x3333),
    );
    // Delete the space with everything still mapped in it, and make it again.
    let deleted = CNode::delete(root.slot(gs_slot)).is_ok();
    let again = untyped.retype(ObjectType::GuestSpace, 0, root, 0, 0, gs_slot, 1).is_ok();
    let e = vm.load(Snippet::Load, &[(VcpuReg::Rbx, DATA)]).and_then(|_| Vm::run_in(vm.vcpu, gs));
    if let Ok(e) = &e {
        println!("vmattack:   in the remade GuestSpace: {:?} at {:#x}", e.kind, e.a);
    }
    c.check(
        "a GuestSpace remade on a deleted one's root page maps nothing of the old one",
        deleted && again && e.is_ok_and(|e| e.kind == Some(VmExitKind::NestedPageFault)),
    );
    // The old caps still record the old space: unmapping them must leave the new one
    // alone (its root is live at the same address) and succeed.
    let mut unmapped = copies.iter().all(|f| f.unmap().is_ok());
    unmapped &= tables.iter().rev().all(|t| t.unmap().is_ok());
    c.check("the old space's frames and tables unmap cleanly", unmapped);
    // The old tables map into the new space empty.
    let remap = tables.iter().all(|t| t.map(VSpace(gs.0), 0).is_ok());
    let e = vm.load(Snippet::Load, &[(VcpuReg::Rbx, DATA)]).and_then(|_| Vm::run_in(vm.vcpu, gs));
    c.check(
        "old tables mapped into the new space bring no old frame along",
        remap && e.is_ok_and(|e| e.kind == Some(VmExitKind::NestedPageFault)),
    );
    // Finally the root page becomes a frame the VMM reads: zeroed, nothing left.
    let gone = tables.iter().rev().all(|t| t.unmap().is_ok()) && CNode::delete(root.slot(gs_slot)).is_ok();
    let Ok(fs) = slots.alloc() else { return };
    let frame_made = untyped.retype(ObjectType::Frame4K, 0, root, 0, 0, fs, 1).is_ok();
    let window = 0x0000_5000_0000_0000;
    let mapped = map_frame(objects, slots, Frame(fs), window, rw(), 0).is_ok();
    let zero = mapped
        && (0..512).all(|i| {
            // SAFETY: the frame was just mapped read-write at `window`.
            unsafe { core::ptr::read_volatile((window + 8 * i) as *const u64) == 0 }
        });
    c.check("the old root page, made a frame, is all zeroes", gone && frame_made && zero);
}

/// A VCPU deleted after running: its memory, made frames, holds nothing of the VMCB.
pub fn vcpu_reuse(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, vm: &Vm) {
    let root = CNode(slots::INIT_CNODE);
    let (Ok(u), Ok(v)) = (objects.alloc(slots, ObjectType::Untyped, 13), slots.alloc()) else {
        c.check("an untyped for the VCPU", false);
        return;
    };
    let untyped = Untyped(u);
    let made = untyped.retype(ObjectType::Vcpu, 0, root, 0, 0, v, 1).is_ok();
    let vcpu = libcap::vm::Vcpu(v);
    let loaded = vm.load(Snippet::Halt, &[]).is_ok();
    let regs = vm.initial_registers();
    let ran = vcpu.write_regs(VcpuReg::Rax, &regs).is_ok()
        && vcpu.write(VcpuReg::R15, 0x005e_c2e7).is_ok()
        && Vm::run_in(vcpu, vm.space).is_ok_and(|e| e.kind == Some(VmExitKind::Hlt));
    let deleted = CNode::delete(root.slot(v)).is_ok();
    let (Ok(f0), Ok(_f1)) = (slots.alloc(), slots.alloc()) else { return };
    let frames = untyped.retype(ObjectType::Frame4K, 0, root, 0, 0, f0, 2).is_ok();
    let window = 0x0000_5100_0000_0000;
    let mapped = (0..2).all(|i| map_frame(objects, slots, Frame(f0 + i), window + i * 4096, rw(), 0).is_ok());
    let zero = mapped
        && (0..1024).all(|i| {
            // SAFETY: both frames were just mapped read-write at `window`.
            unsafe { core::ptr::read_volatile((window + 8 * i) as *const u64) == 0 }
        });
    c.check(
        "a deleted VCPU's memory, made frames, holds nothing of its VMCB or registers",
        made && loaded && ran && deleted && frames && zero,
    );
}
