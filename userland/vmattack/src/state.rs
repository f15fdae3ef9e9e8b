//! Attacks through CPU state: odd guest registers, shared SSE and PKRU.
//!
//! Attacks through CPU state: register values the hardware might not survive, and
//! state shared between the VMM, its guests and other guests (FPU/SSE, PKRU).

use core::arch::asm;

use libcap::abi::error::SyscallError;
use libcap::abi::vcpu::{self, VcpuReg, VmExit, VmExitKind, VCPU_REG_COUNT};
use libcap::check::Checker;
use libcap::println;

use crate::guest::Name;
use crate::snippets::Snippet;
use crate::vm::Vm;

/// CR4.PKE.
const CR4_PKE: u64 = 1 << 22;

/// XMM0 = XMM1 = `v` in the VMM (the VMM's code never uses SSE: soft-float target).
fn set_xmm(v: u64) {
    // SAFETY: movq xmm0, rax; movq xmm1, rax: only SSE registers change, which this
    // program's compiled code never uses.
    unsafe {
        asm!(".byte 0x66, 0x48, 0x0f, 0x6e, 0xc0", ".byte 0x66, 0x48, 0x0f, 0x6e, 0xc8", in("rax") v, options(nomem, nostack))
    };
}

/// XMM0 and XMM1 of the VMM.
fn xmm() -> (u64, u64) {
    let (a, b): (u64, u64);
    // SAFETY: movq rax, xmm0; movq rcx, xmm1: reads only.
    unsafe {
        asm!(".byte 0x66, 0x48, 0x0f, 0x7e, 0xc0", ".byte 0x66, 0x48, 0x0f, 0x7e, 0xc9", out("rax") a, out("rcx") b, options(nomem, nostack))
    };
    (a, b)
}

/// The VMM's SSE registers never reach its guest, a guest's never reach the VMM or
/// another guest.
pub fn fpu(c: &mut Checker, a: &Vm, b: &Vm) {
    let secret = 0x5ec2_e7f0_0d15_ea5e;
    set_xmm(secret);
    let halted = |e: &libcap::cap::Result<vcpu::VmExit>| e.as_ref().is_ok_and(|e| e.kind == Some(VmExitKind::Hlt));
    let e = a.attempt(Snippet::XmmRead, &[]);
    let (g0, g1) = e.as_ref().map(|e| (e.gprs[0], e.gprs[1])).unwrap_or((1, 1));
    println!("vmattack:   guest A sees XMM0 {g0:#x} XMM1 {g1:#x} while the VMM's hold {secret:#x}");
    c.check("a guest never sees the VMM's SSE registers", halted(&e) && g0 == 0 && g1 == 0);
    let e = a.attempt(Snippet::XmmWrite, &[(VcpuReg::Rbx, 0xa11a_a11a)]);
    c.check("the VMM's SSE registers survive a guest that changes its own", halted(&e) && xmm() == (secret, secret));
    let e = b.attempt(Snippet::XmmRead, &[]);
    let (g0, g1) = e.as_ref().map(|e| (e.gprs[0], e.gprs[1])).unwrap_or((1, 1));
    c.check("guest B never sees guest A's SSE registers", halted(&e) && g0 == 0 && g1 == 0);
    let e = a.attempt(Snippet::XmmRead, &[]);
    c.check(
        "guest A keeps its own SSE registers across runs",
        e.is_ok_and(|e| e.gprs[0] == 0xa11a_a11a && e.gprs[1] == 0xa11a_a11a),
    );
    set_xmm(0);
}

/// PKRU is no VMCB field: a guest that turns on protection keys must neither pass its
/// PKRU to another guest nor lose it to one.
pub fn pkru(c: &mut Checker, a: &mut Vm, b: &mut Vm) {
    a.cr4_extra = CR4_PKE;
    b.cr4_extra = CR4_PKE;
    let value = 0x5555_5554;
    let e = a.attempt(Snippet::Wrpkru, &[(VcpuReg::Rbx, value)]);
    match &e {
        Ok(e) if e.kind == Some(VmExitKind::Hlt) => {
            let seen_b = b.attempt(Snippet::Rdpkru, &[]).map(|e| e.gprs[0]);
            let seen_a = a.attempt(Snippet::Rdpkru, &[]).map(|e| e.gprs[0]);
            println!("vmattack:   guest A wrote PKRU {value:#x}; guest B reads {seen_b:?}, guest A {seen_a:?}");
            c.check("guest B never sees guest A's PKRU", seen_b == Ok(0));
            c.check("guest A keeps its own PKRU across guest B's run", seen_a == Ok(value));
            // The VMM's own thread cannot read PKRU (the host never enables keys), and
            // guest A's keys end with its run.
            let fresh = b.attempt(Snippet::Rdpkru, &[]).map(|e| e.gprs[0]);
            c.check("guest B's PKRU is still its own after guest A's second run", fresh == Ok(0));
        }
        other => {
            println!("vmattack:   no protection keys on this CPU ({other:?}): PKRU attack skipped");
            c.check("a guest's CR4.PKE without PKU is refused, not run", other.is_ok());
        }
    }
    a.cr4_extra = 0;
    b.cr4_extra = 0;
}

/// One odd register value: (register, value, what it breaks).
type Odd = (VcpuReg, u64, &'static str);

const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;

const ODD: [Odd; 41] = [
    (VcpuReg::Efer, u64::MAX, "EFER all ones"),
    (VcpuReg::Efer, 0, "EFER zero (LMA off in long mode)"),
    (VcpuReg::Efer, 1 << 8, "EFER.LME without LMA"),
    (VcpuReg::Efer, 0x500 | 1 << 13 | 1 << 15, "EFER LMSLE and TCE"),
    (VcpuReg::Cr0, u64::MAX, "CR0 all ones"),
    (VcpuReg::Cr0, 0, "CR0 zero in long mode"),
    (VcpuReg::Cr0, 1 << 31, "CR0.PG without PE"),
    (VcpuReg::Cr0, 0x8000_0031 | 1 << 29, "CR0.NW without CD"),
    (VcpuReg::Cr0, 0x8000_0031 | 1 << 40, "CR0 reserved high bit"),
    (VcpuReg::Cr4, u64::MAX, "CR4 all ones"),
    (VcpuReg::Cr4, 0, "CR4.PAE off in long mode"),
    (VcpuReg::Cr4, 0x20 | 1 << 12, "CR4.LA57 switched in long mode"),
    (VcpuReg::Cr3, u64::MAX, "CR3 all ones"),
    (VcpuReg::Dr6, u64::MAX, "DR6 all ones"),
    (VcpuReg::Dr7, u64::MAX, "DR7 all ones"),
    (VcpuReg::Dr7, 0x400 | 0xff, "DR7 every breakpoint on (host DR0-3)"),
    (VcpuReg::Pat, u64::MAX, "PAT all ones"),
    (VcpuReg::Pat, 0x0202_0202_0202_0202, "PAT reserved type 2"),
    (VcpuReg::Rip, NON_CANONICAL, "RIP non-canonical"),
    (VcpuReg::Rip, u64::MAX, "RIP all ones"),
    (VcpuReg::Rsp, NON_CANONICAL, "RSP non-canonical"),
    (VcpuReg::Rflags, u64::MAX, "RFLAGS all ones"),
    (VcpuReg::Rflags, 1 << 17 | 2, "RFLAGS.VM in long mode"),
    (VcpuReg::Rflags, 0, "RFLAGS reserved bit 1 clear"),
    (VcpuReg::Rflags, 0x102, "RFLAGS.TF (guest single step)"),
    (VcpuReg::Cs, vcpu::segment(0x08, 0xfff, 0xffff_ffff), "CS with L and D both set"),
    (VcpuReg::Cs, vcpu::segment(0x08, 0, 0), "CS not present"),
    (VcpuReg::Ss, vcpu::segment(0x13, 0xcf3, 0xffff_ffff), "SS at DPL 3"),
    (VcpuReg::CsBase, NON_CANONICAL, "CS base non-canonical"),
    (VcpuReg::Tr, 0, "TR null (refused)"),
    (VcpuReg::Tr, vcpu::segment(0x18, vcpu::ATTR_TSS64 & !0x80, 0x67), "TR not present (refused)"),
    (VcpuReg::Tr, vcpu::segment(0x18, 0x089, 0x67), "TR an available TSS (what QEMU's LTR leaves)"),
    (VcpuReg::Tr, vcpu::segment(0x18, 0x082, 0x67), "TR an LDT (refused)"),
    (VcpuReg::TrBase, NON_CANONICAL, "TR base non-canonical (VMLOAD)"),
    (VcpuReg::LdtrBase, NON_CANONICAL, "LDTR base non-canonical (VMLOAD)"),
    (VcpuReg::FsBase, NON_CANONICAL, "FS base non-canonical (VMLOAD)"),
    (VcpuReg::GsBase, NON_CANONICAL, "GS base non-canonical (VMLOAD)"),
    (VcpuReg::KernelGsBase, NON_CANONICAL, "KernelGSbase non-canonical (VMLOAD)"),
    (VcpuReg::Lstar, NON_CANONICAL, "LSTAR non-canonical (VMLOAD)"),
    (VcpuReg::GdtrBase, NON_CANONICAL, "GDTR base non-canonical"),
    (VcpuReg::IdtrLimit, u64::MAX, "IDTR limit all ones"),
];

/// Whether the kernel must refuse this register set: a TR word that is not a present
/// TSS (abi::vcpu::tr_word_valid; QEMU's TCG aborts on such a guest).
fn refused(regs: &[(VcpuReg, u64)]) -> bool {
    regs.iter().any(|&(r, v)| r == VcpuReg::Tr && !vcpu::tr_word_valid(v))
}

/// Whether an attempt ended as it must: refused with InvalidArgument when
/// [`refused`], else an exit.
fn ended_well(regs: &[(VcpuReg, u64)], r: &libcap::cap::Result<VmExit>) -> bool {
    match r {
        Err(e) => refused(regs) && e.code == SyscallError::InvalidArgument,
        Ok(_) => !refused(regs),
    }
}

/// Runs the VCPU until a Hlt from a fresh state (an odd state may leave an event to
/// deliver first): whether it recovered.
fn recovers(vm: &Vm) -> bool {
    for _ in 0..4 {
        match vm.attempt(Snippet::Halt, &[]) {
            Ok(e) if e.kind == Some(VmExitKind::Hlt) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// xorshift64.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Odd guest states, one by one and then at random: each run returns an exit (the
/// hardware refuses or the guest faults), the kernel survives, and the VCPU recovers
/// from a good state.
pub fn registers(c: &mut Checker, vm: &Vm) {
    let mut kinds = [0u32; 12];
    let mut all = true;
    for (reg, value, what) in ODD {
        let r = vm.attempt(Snippet::Halt, &[(reg, value)]);
        let kind = r.as_ref().ok().and_then(|e| e.kind).map_or(0, |k| k.raw() as usize);
        kinds[kind.min(11)] += 1;
        if let Ok(e) = &r {
            println!("vmattack:   {what}: {:?} (hw {:#x})", e.kind, e.hw_code);
        }
        let ok = ended_well(&[(reg, value)], &r) && recovers(vm);
        if !ok {
            let mut n = Name::new();
            n.push("odd state: ");
            n.push(what);
            c.check(&n, false);
        }
        all &= ok;
    }
    c.check("every odd register value runs to an exit (or a bad TR is refused) and the VCPU recovers", all);
    // Random states: 1..4 registers set to random words or single flipped bits.
    let good = vm.initial_registers();
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let mut runs = 0;
    let mut ok = true;
    for _ in 0..200 {
        let mut regs = [(VcpuReg::Rax, 0u64); 4];
        let n = (next(&mut seed) % 4 + 1) as usize;
        for slot in regs.iter_mut().take(n) {
            let i = (next(&mut seed) % VCPU_REG_COUNT as u64) as usize;
            let r = VcpuReg::ALL[i];
            let v = if next(&mut seed) & 1 == 0 { next(&mut seed) } else { good[i] ^ 1 << (next(&mut seed) % 64) };
            *slot = (r, v);
        }
        let r = vm.attempt(Snippet::Halt, &regs[..n]);
        runs += 1;
        if let Ok(e) = &r {
            kinds[e.kind.map_or(0, |k| k.raw() as usize).min(11)] += 1;
        }
        if !ended_well(&regs[..n], &r) || !recovers(vm) {
            println!("vmattack:   random state {:x?} did not recover", &regs[..n]);
            ok = false;
        }
    }
    println!("vmattack:   {runs} random states; exits by kind {kinds:?}");
    c.check("200 random guest states run to an exit and the VCPU recovers each time", ok);
}
