//! Attacks on the guest's task register without writing a bad TR word.
//!
//! QEMU's TCG stops the whole emulator when a guest takes an interrupt that reads its
//! TSS and the cached TR is not usable: "invalid tss" (not present, in any mode) and
//! "invalid tss type" (legacy protected mode, where QEMU takes only the TSS types its
//! own LTR leaves in the cache, 1 and 9, available). VcpuWriteRegs refuses a TR that
//! is not present, but that is not the only way a TR reaches the VMCB:
//!
//! - a new VCPU whose VMM never writes TR (the VMCB starts zeroed);
//! - a TR the kernel accepts (a present busy TSS, `vcpu::ATTR_TSS64`) under a guest in
//!   32-bit protected mode that takes an interrupt from CPL 3; the guest gets there by
//!   itself from the long-mode state every VMM here starts it in (clearing CR0.PG from
//!   compatibility mode exits to nobody), so any guest could stop the platform.
//!
//! Either would abort QEMU here (the log would end with `qemu: fatal:`); the kernel
//! must leave every VCPU a TR QEMU takes, and each guest here runs to its HLT.

use libcap::abi::object::ObjectType;
use libcap::abi::vcpu::{self, VcpuReg, VmExit, VmExitKind, VCPU_REG_COUNT};
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::check::Checker;
use libcap::println;
use libcap::vm::Vcpu;

use crate::vm::{Vm, CODE, GDT, PML4, STACK_TOP};

/// The guest's IDT (guest-physical, in RAM).
const IDT: u64 = 0x7000;
/// A 32-bit TSS for the protected-mode guest.
const TSS32: u64 = 0x7800;
/// The protected-mode guest's GDT.
const GDT32: u64 = 0x6000;
/// The vector the guests raise with INT.
const VECTOR: u64 = 0x20;
/// Where the handler (a HLT) sits: CODE + this.
const HANDLER: u64 = 0x18;

fn put_code(vm: &Vm, code: &[u8]) {
    let dest = (vm.window + CODE) as *mut u8;
    // SAFETY: the code page is mapped read-write in the window; the code is < 128 bytes.
    unsafe {
        core::ptr::write_bytes(dest, 0xf4, 128);
        core::ptr::copy_nonoverlapping(code.as_ptr(), dest, code.len());
    }
}

fn halted(e: &libcap::cap::Result<VmExit>) -> bool {
    e.as_ref().is_ok_and(|e| e.kind == Some(VmExitKind::Hlt))
}

fn show(what: &str, e: &libcap::cap::Result<VmExit>) {
    match e {
        Ok(e) => println!("vmattack:   {what}: {:?} rip {:#x} hw {:#x}", e.kind, e.rip, e.hw_code),
        Err(e) => println!("vmattack:   {what}: error {}", e.code.name()),
    }
}

/// A new VCPU whose VMM writes every register but TR, in long mode, takes INT 0x20
/// through an IST gate (which reads RSP from the TSS).
pub fn fresh_vcpu(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, vm: &Vm) {
    let Ok(cptr) = objects.alloc(slots, ObjectType::Vcpu, 0) else {
        c.check("a new VCPU for the TR attacks", false);
        return;
    };
    let fresh = Vcpu(cptr);
    let tr = fresh.read(VcpuReg::Tr);
    println!("vmattack:   a new VCPU's TR word: {tr:#x?}");
    // int 0x20; hlt ... handler: hlt.
    put_code(vm, &[0xcd, VECTOR as u8, 0xf4]);
    let handler = CODE + HANDLER;
    // 64-bit interrupt gate, IST 1, DPL 0, selector 0x08.
    vm.put(
        IDT + 16 * VECTOR,
        (handler & 0xffff) | 0x08 << 16 | 1 << 32 | 0x8e << 40 | ((handler >> 16) & 0xffff) << 48,
    );
    vm.put(IDT + 16 * VECTOR + 8, handler >> 32);
    // IST1 at TSS offset 0x24 (a TR that works with base 0 reads it there).
    vm.put(0x20, (STACK_TOP - 0x100) << 32);
    vm.put(0x28, 0);
    let mut regs = libcap::vm::long_mode_registers(PML4, GDT, CODE, STACK_TOP);
    regs[VcpuReg::IdtrBase.raw() as usize] = IDT;
    regs[VcpuReg::IdtrLimit.raw() as usize] = 16 * VECTOR + 15;
    let tr = VcpuReg::Tr.raw() as usize;
    let written =
        fresh.write_regs(VcpuReg::Rax, &regs[..tr]).and_then(|_| fresh.write_regs(VcpuReg::TrBase, &regs[tr + 1..]));
    let e = written.and_then(|_| Vm::run_in(fresh, vm.space));
    show("a new VCPU, TR never written, INT through an IST gate", &e);
    c.check("a new VCPU whose VMM never writes TR takes an IST interrupt (QEMU survives)", halted(&e));
    fresh_protected(c, fresh, vm);
}

/// The same VCPU in 32-bit protected mode with TR a present busy 32-bit TSS (what
/// WriteRegs accepts): an IRET to CPL 3, then INT 0x20 through a DPL 3 gate, which
/// reads SS0:ESP0 from the TSS.
fn fresh_protected(c: &mut Checker, v: Vcpu, vm: &Vm) {
    // GDT: 0x08 code32 DPL0, 0x10 data32 DPL0, 0x18 code32 DPL3, 0x20 data32 DPL3,
    // 0x28 busy 32-bit TSS at TSS32.
    let entries = [
        0,
        0x00cf_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00cf_fb00_0000_ffff,
        0x00cf_f300_0000_ffff,
        0x67 | (TSS32 & 0xffff) << 16 | ((TSS32 >> 16) & 0xff) << 32 | 0x8b << 40,
    ];
    for (i, e) in entries.iter().enumerate() {
        vm.put(GDT32 + 8 * i as u64, *e);
    }
    // ESP0 at +4, SS0 at +8.
    vm.put(TSS32, 0xe000 << 32);
    vm.put(TSS32 + 8, 0x10);
    let handler = CODE + HANDLER;
    // 32-bit interrupt gate, DPL 3, selector 0x08.
    vm.put(IDT + 8 * VECTOR, (handler & 0xffff) | 0x08 << 16 | 0xee00 << 32 | ((handler >> 16) & 0xffff) << 48);
    let user = (CODE + 0x10) as u32;
    let mut code = [0xf4u8; 0x19];
    code[..16].copy_from_slice(&[
        0x6a, 0x23, // push 0x23 (SS)
        0x68, 0x00, 0xf0, 0x00, 0x00, // push 0xf000 (ESP)
        0x9c, // pushfd
        0x6a, 0x1b, // push 0x1b (CS)
        0x68, 0, 0, 0, 0,    // push user
        0xcf, // iretd
    ]);
    code[11..15].copy_from_slice(&user.to_le_bytes());
    code[0x10..0x12].copy_from_slice(&[0xcd, VECTOR as u8]);
    put_code(vm, &code);
    let code32 = vcpu::segment(0x08, 0xc9b, 0xffff_ffff);
    let data32 = vcpu::segment(0x10, 0xc93, 0xffff_ffff);
    let mut regs = [0u64; VCPU_REG_COUNT];
    let mut set = |r: VcpuReg, v: u64| regs[r.raw() as usize] = v;
    set(VcpuReg::Rip, CODE);
    set(VcpuReg::Rsp, 0xe000);
    set(VcpuReg::Rflags, 2);
    set(VcpuReg::Cr0, 0x11);
    set(VcpuReg::Dr6, 0xffff_0ff0);
    set(VcpuReg::Dr7, 0x400);
    set(VcpuReg::Pat, 0x0007_0406_0007_0406);
    set(VcpuReg::Cs, code32);
    for s in [VcpuReg::Ss, VcpuReg::Ds, VcpuReg::Es, VcpuReg::Fs, VcpuReg::Gs] {
        set(s, data32);
    }
    set(VcpuReg::Tr, vcpu::segment(0x28, 0x08b, 0x67));
    set(VcpuReg::TrBase, TSS32);
    set(VcpuReg::GdtrBase, GDT32);
    set(VcpuReg::GdtrLimit, 0x2f);
    set(VcpuReg::IdtrBase, IDT);
    set(VcpuReg::IdtrLimit, 8 * VECTOR + 7);
    let e = v.write_regs(VcpuReg::Rax, &regs).and_then(|_| Vm::run_in(v, vm.space));
    show("32-bit protected mode, busy TSS in TR, INT from CPL 3", &e);
    c.check("a 32-bit guest with a busy TSS in TR takes an interrupt from CPL 3 (QEMU survives)", halted(&e));
    // The VMM reads back what the guest left and writes it again.
    let tr = v.read(VcpuReg::Tr);
    println!("vmattack:   TR after the run: {tr:#x?}");
    let again = tr.and_then(|tr| v.write(VcpuReg::Tr, tr));
    c.check("the TR a guest run leaves is accepted by WriteRegs", again.is_ok());
}

/// The guest alone: from the standard long-mode registers (TR `vcpu::ATTR_TSS64` at
/// base 0, as `libcap::vm::long_mode_registers` sets it), it loads its own GDT, drops
/// to compatibility mode, clears CR0.PG (legacy protected mode), IRETs to CPL 3 and
/// raises INT 0x20 through a DPL 3 gate. Its data (GDT, IDT, the TSS's SS0:ESP0 at
/// guest-physical 4) is guest memory the guest could as well have written itself.
pub fn guest_leaves_long_mode(c: &mut Checker, vm: &Vm) {
    // GDT32 (as in `fresh_protected`) and the pseudo-descriptors: 64-bit LGDT at 0x6100,
    // 32-bit LIDT at 0x6110.
    let entries = [0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00cf_fb00_0000_ffff, 0x00cf_f300_0000_ffff];
    for (i, e) in entries.iter().enumerate() {
        vm.put(GDT32 + 8 * i as u64, *e);
    }
    vm.put(GDT32 + 0x100, 0x27 | GDT32 << 16);
    vm.put(GDT32 + 0x108, 0);
    vm.put(GDT32 + 0x110, (8 * VECTOR + 7) | IDT << 16);
    let handler = CODE + 0x50;
    vm.put(IDT + 8 * VECTOR, (handler & 0xffff) | 0x08 << 16 | 0xee00 << 32 | ((handler >> 16) & 0xffff) << 48);
    // The TSS at TR's base 0: ESP0 at +4, SS0 at +8.
    vm.put(0, 0xe000 << 32);
    vm.put(8, 0x10);
    let mut code = [0xf4u8; 0x51];
    let parts: [(usize, &[u8]); 4] = [
        // 64-bit: lgdt [0x6100]; push 0x08; push 0x8020; retfq.
        (0x00, &[0x0f, 0x01, 0x14, 0x25, 0x00, 0x61, 0x00, 0x00, 0x6a, 0x08, 0x68, 0x20, 0x80, 0x00, 0x00, 0x48, 0xcb]),
        // 32-bit: mov eax, cr0; and eax, 0x7fffffff; mov cr0, eax; lidt [0x6110];
        // push 0x23; push 0xf000; pushfd; push 0x1b; push 0x8048; iretd.
        (
            0x20,
            &[
                0x0f, 0x20, 0xc0, 0x25, 0xff, 0xff, 0xff, 0x7f, 0x0f, 0x22, 0xc0, 0x0f, 0x01, 0x1d, 0x10, 0x61, 0x00,
                0x00, 0x6a, 0x23, 0x68, 0x00, 0xf0, 0x00, 0x00, 0x9c, 0x6a, 0x1b, 0x68, 0x48, 0x80, 0x00, 0x00, 0xcf,
            ],
        ),
        // CPL 3: int 0x20.
        (0x48, &[0xcd, VECTOR as u8]),
        // The handler (CPL 0): hlt.
        (0x50, &[0xf4]),
    ];
    for (at, bytes) in parts {
        code[at..at + bytes.len()].copy_from_slice(bytes);
    }
    put_code(vm, &code);
    let e = vm.vcpu.write_regs(VcpuReg::Rax, &vm.initial_registers()).and_then(|_| Vm::run_in(vm.vcpu, vm.space));
    show("a guest that leaves long mode by itself, INT from CPL 3", &e);
    c.check(
        "a guest that leaves long mode by itself takes an interrupt from CPL 3 (QEMU survives)",
        e.as_ref().is_ok_and(|e| e.kind == Some(VmExitKind::Hlt) && e.rip == handler),
    );
}
