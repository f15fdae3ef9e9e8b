//! Attacks with the wrong caps on VCPUs and GuestSpaces.
//!
//! Attacks with the wrong caps: a VSpace, Frame or page table where a GuestSpace is
//! expected and the other way round, GuestSpace tables outside its range, VCPU and
//! GuestSpace objects from device memory, and register ranges past the end.

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError;
use libcap::abi::invocation::Invocation;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::vcpu::VcpuReg;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{invoke, CNode, Frame, PageTable, Result, Tcb, Untyped, VSpace};
use libcap::check::Checker;
use libcap::println;
use libcap::vm::{GuestSpace, Resume, Vcpu};

use crate::vm::{rw, Vm};

fn code<T>(r: Result<T>) -> Option<SyscallError> {
    r.err().map(|e| e.code)
}

/// Every cap confusion the VCPU and GuestSpace invocations could fall for.
pub fn confusion(c: &mut Checker, bi: &BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, vm: &Vm) {
    let inval = Some(SyscallError::InvalidCapability);
    let illegal = Some(SyscallError::IllegalOperation);
    let vspace = GuestSpace(slots::INIT_VSPACE);
    c.check("Run in a VSpace is InvalidCapability", code(vm.vcpu.run(vspace, Resume::AsIs)) == inval);
    c.check(
        "Run in a Frame is InvalidCapability",
        code(vm.vcpu.run(GuestSpace(vm.guest_frames[0].0), Resume::AsIs)) == inval,
    );
    c.check(
        "Run in a nested page table is InvalidCapability",
        code(vm.vcpu.run(GuestSpace(vm.tables[0].0), Resume::AsIs)) == inval,
    );
    c.check("Run in a VCPU is InvalidCapability", code(vm.vcpu.run(GuestSpace(vm.vcpu.0), Resume::AsIs)) == inval);
    let empty = slots.alloc().unwrap_or(0);
    c.check("Run in an empty slot fails", code(vm.vcpu.run(GuestSpace(empty), Resume::AsIs)).is_some());
    c.check(
        "Run on a GuestSpace cap (not a VCPU) is IllegalOperation",
        code(Vcpu(vm.space.0).run(vm.space, Resume::AsIs)) == illegal,
    );
    c.check(
        "Run on a Frame cap is IllegalOperation",
        code(Vcpu(vm.guest_frames[0].0).run(vm.space, Resume::AsIs)) == illegal,
    );
    // Map with a VCPU where a space goes, and Frame::Map invoked on a VCPU.
    let spare = objects.alloc(slots, ObjectType::Frame4K, 0).map(Frame);
    if let Ok(f) = spare {
        c.check(
            "Frame::Map into a VCPU is InvalidCapability",
            code(f.map(VSpace(vm.vcpu.0), 0x20_0000, rw(), 0)) == inval,
        );
    }
    c.check(
        "Frame::Map invoked on a VCPU cap is IllegalOperation",
        code(Frame(vm.vcpu.0).map(VSpace(slots::INIT_VSPACE), 0x0000_5200_0000_0000, rw(), 0)) == illegal,
    );
    c.check(
        "Frame::Map invoked on a GuestSpace cap is IllegalOperation",
        code(Frame(vm.space.0).map(VSpace(slots::INIT_VSPACE), 0x0000_5200_0000_0000, rw(), 0)) == illegal,
    );
    // A nested table already in the GuestSpace is not mapped again into the VMM, and
    // table caps are not copied.
    c.check(
        "a GuestSpace's nested table cannot be mapped into the VMM's VSpace too",
        code(vm.tables[2].map(VSpace(slots::INIT_VSPACE), 0x0000_5300_0000_0000)) == illegal,
    );
    let root = CNode(slots::INIT_CNODE);
    if let Ok(s) = slots.alloc() {
        c.check(
            "a nested table cap cannot be copied (one cap per table)",
            code(CNode::copy(root.slot(s), root.slot(vm.tables[2].0), CapRights::ALL)) == illegal,
        );
        c.check(
            "a GuestSpace cap cannot be minted with a badge",
            code(CNode::mint(root.slot(s), root.slot(vm.space.0), CapRights::ALL, 7)) == illegal,
        );
    }
    // A thread cannot run on a GuestSpace (no kernel half: it would fault in the kernel).
    if let Ok(t) = objects.alloc(slots, ObjectType::Tcb, 0) {
        let r = Tcb(t).configure_without_buffer(0, root, VSpace(vm.space.0));
        println!("vmattack:   TCB Configure with a GuestSpace: {:?}", r.err().map(|e| e.code));
        c.check("TCB Configure with a GuestSpace as its VSpace is refused", r.is_err());
    }
    tables_out_of_range(c, objects, slots, vm);
    registers_out_of_range(c, vm);
    device_memory(c, bi, slots);
}

/// Tables and frames outside guest-physical 0..2^47, including addresses whose table
/// span would wrap past 2^64.
fn tables_out_of_range(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, vm: &Vm) {
    let inval = Some(SyscallError::InvalidArgument);
    let space = VSpace(vm.space.0);
    for (ty, vaddr, what) in [
        (ObjectType::Pdpt, u64::MAX, "a PDPT at the top of the address space (span wraps)"),
        (ObjectType::Pdpt, 0xffff_ff80_0000_0000, "a PDPT in the upper half"),
        (ObjectType::PageDirectory, 0xffff_ffff_c000_0000, "a PD whose span ends at 2^64"),
        (ObjectType::PageTable, 0xffff_ffff_ffe0_0000, "a PT whose span ends at 2^64"),
        (ObjectType::Pdpt, 0x0000_8000_0000_0000, "a PDPT at 2^47"),
    ] {
        let Ok(t) = objects.alloc(slots, ty, 0).map(PageTable) else { continue };
        let r = t.map(space, vaddr);
        println!("vmattack:   {what}: {:?}", r.err().map(|e| e.code));
        let mut n = crate::guest::Name::new();
        n.push("GuestSpace refuses ");
        n.push(what);
        c.check(&n, code(r) == inval);
        let _ = t.unmap();
    }
    if let Ok(f) = objects.alloc(slots, ObjectType::Frame4K, 0).map(Frame) {
        c.check("GuestSpace refuses a frame at 2^47", code(f.map(space, 1 << 47, rw(), 0)) == inval);
        c.check("GuestSpace refuses a frame at the top page", code(f.map(space, !0xfff, rw(), 0)) == inval);
    }
}

/// ReadRegs / WriteRegs ranges past the last register, and a WriteRegs that claims more
/// values than it sends.
fn registers_out_of_range(c: &mut Checker, vm: &Vm) {
    let range = Some(SyscallError::RangeError);
    let v = vm.vcpu.0;
    c.check("ReadRegs(54, 1) is RangeError", code(invoke(v, Invocation::VcpuReadRegs, &[54, 1], &[])) == range);
    c.check("ReadRegs(0, 55) is RangeError", code(invoke(v, Invocation::VcpuReadRegs, &[0, 55], &[])) == range);
    c.check(
        "ReadRegs(1, 2^64-1) is RangeError (no wrap)",
        code(invoke(v, Invocation::VcpuReadRegs, &[1, u64::MAX], &[])) == range,
    );
    c.check(
        "WriteRegs(2^64-1, 1) is RangeError",
        code(invoke(v, Invocation::VcpuWriteRegs, &[u64::MAX, 1, 0], &[])) == range,
    );
    let short = invoke(v, Invocation::VcpuWriteRegs, &[VcpuReg::Rbx.raw(), 10, 1, 2], &[]);
    println!("vmattack:   WriteRegs claiming 10 values with 2 sent: {:?}", short.err().map(|e| e.code));
    c.check("WriteRegs claiming more values than sent is refused", short.is_err());
}

/// VCPU and GuestSpace objects never come from device memory (the kernel would write
/// a VMCB or a root table into MMIO).
fn device_memory(c: &mut Checker, bi: &BootInfo, slots: &SlotAllocator) {
    let Some(i) = bi.untyped().iter().position(|u| u.is_device != 0 && u.size_bits >= 13) else {
        println!("vmattack:   no device untyped of 8 KiB or more: skipped");
        return;
    };
    let u = Untyped(bi.untyped_caps.start + i as u64);
    let root = CNode(slots::INIT_CNODE);
    let Ok(s) = slots.alloc() else { return };
    for (ty, what) in [
        (ObjectType::Vcpu, "a VCPU from device untyped is InvalidArgument"),
        (ObjectType::GuestSpace, "a GuestSpace from device untyped is InvalidArgument"),
    ] {
        c.check(what, code(u.retype(ty, 0, root, 0, 0, s, 1)) == Some(SyscallError::InvalidArgument));
    }
}
