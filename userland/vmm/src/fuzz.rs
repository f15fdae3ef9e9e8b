//! Random guests (`init=vmm-fuzz`): random code, I/O and register state.
//!
//! Per seed the VMM starts up to [`LIVES`] guests, each at a random offset of
//! [`CODE_BYTES`] random bytes with random general-purpose registers, and in a quarter
//! of them three registers of any kind (CR0, CR4, EFER, segment attributes, DR7...)
//! set to random values. It emulates what it can resume (IN returns all ones, OUT is
//! dropped, RDMSR/WRMSR/CPUID skipped, HLT resumed, host interrupts continued) and
//! starts the next guest on anything else (shutdown, refused state, nested page fault,
//! a denied instruction). Each guest has an IDT whose handlers skip a byte and return,
//! so exceptions do not end it at once. Whatever the guest does, the kernel and the VMM must keep
//! working: the scenario then runs the ordinary guest to its end.

use libcap::abi::vcpu::{self, IoExit, VcpuReg, VmExitKind};
use libcap::println;
use libcap::vm::{Resume, Vcpu};

use crate::layout::{IDT, RAM_BYTES, VMM_WINDOW};

/// Where the random code goes (guest-physical, inside RAM, below the stack).
const CODE: u64 = 0x14000;
/// Bytes of random code per guest.
const CODE_BYTES: u64 = 0x4000;
/// Guests per seed.
const LIVES: u32 = 64;
/// Exits one guest may take before the next starts (a tight loop only ever exits
/// for host interrupts).
const EXITS_PER_LIFE: u32 = 40;

/// The seeds every run tries (a boot-time one is added and printed).
pub const SEEDS: [u64; 4] = [1, 0x9e37_79b9_7f4a_7c15, 0x0123_4567_89ab_cdef, 0xdead_beef];

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Exits of one seed by kind (index: `VmExitKind` value; 0: a kind the ABI lacks).
#[derive(Default)]
pub struct Tally {
    by_kind: [u32; 11],
    exits: u32,
    lives: u32,
    /// The hardware code of the last exit of a kind the ABI lacks.
    last_other: u64,
    /// Random TR words the kernel refused (not a present TSS).
    refused_tr: u32,
}

/// Runs one seed; `Err` if a VCPU invocation itself failed (a kernel or VMM bug).
pub fn run_seed(vcpu: Vcpu, space: libcap::vm::GuestSpace, seed: u64, reset: &dyn Fn()) -> Result<Tally, &'static str> {
    let mut rng = Rng(seed | 1);
    let mut t = Tally::default();
    while t.lives < LIVES {
        t.lives += 1;
        reset();
        fill_code(&mut rng);
        install_idt();
        let mut regs = crate::initial_registers(crate::Machine::Plain);
        for r in regs.iter_mut().take(15) {
            *r = rng.next();
        }
        regs[VcpuReg::Rip.raw() as usize] = CODE + rng.next() % CODE_BYTES;
        regs[VcpuReg::Rsp.raw() as usize] = 0x1000 + rng.next() % (RAM_BYTES - 0x1000);
        regs[VcpuReg::IdtrBase.raw() as usize] = IDT;
        regs[VcpuReg::IdtrLimit.raw() as usize] = 256 * 16 - 1;
        if rng.next().is_multiple_of(4) {
            for _ in 0..3 {
                let r = (rng.next() % vcpu::VCPU_REG_COUNT as u64) as usize;
                regs[r] = rng.next();
            }
        }
        // A TR that is not a present TSS must be refused (abi::vcpu::tr_word_valid);
        // the guest then runs with the ordinary one.
        let tr = VcpuReg::Tr.raw() as usize;
        if !vcpu::tr_word_valid(regs[tr]) {
            match vcpu.write_regs(VcpuReg::Rax, &regs) {
                Err(e) if e.code == libcap::abi::error::SyscallError::InvalidArgument => t.refused_tr += 1,
                _ => return Err("WriteRegs took a TR that is not a present TSS"),
            }
            regs[tr] = crate::initial_registers(crate::Machine::Plain)[tr];
        }
        vcpu.write_regs(VcpuReg::Rax, &regs).map_err(|_| "WriteRegs refused a full register set")?;
        let mut resume = Resume::AsIs;
        for _ in 0..EXITS_PER_LIFE {
            let exit = vcpu.run(space, resume).map_err(|_| "Run failed")?;
            t.exits += 1;
            t.by_kind[exit.kind.map_or(0, |k| k.raw() as usize)] += 1;
            if exit.kind.is_none() {
                t.last_other = exit.hw_code;
            }
            let rax = exit.gpr(VcpuReg::Rax).unwrap_or(0);
            resume = match exit.kind {
                Some(VmExitKind::Io) if exit.next_rip != 0 => {
                    if IoExit::decode(exit.a).is_in {
                        Resume::AtWithRax(exit.next_rip, rax | 0xffff_ffff)
                    } else {
                        Resume::At(exit.next_rip)
                    }
                }
                // RDMSR, WRMSR and CPUID are two bytes.
                Some(VmExitKind::Msr) => Resume::AtWithRax(exit.rip.wrapping_add(2), 0),
                Some(VmExitKind::Cpuid) => Resume::AtWithRax(exit.rip.wrapping_add(2), 0),
                Some(VmExitKind::Hlt) => Resume::At(exit.rip.wrapping_add(1)),
                Some(VmExitKind::Interrupt) => Resume::AsIs,
                _ => break,
            };
        }
    }
    Ok(t)
}

/// Instructions that reach the VMM or the hardware's checks, mixed into the random
/// bytes: I/O in every form, MSRs, CPUID, HLT, STI/CLI, the virtualization and cache
/// instructions the kernel denies, control- and debug-register writes, software
/// interrupts, loads and stores through random registers, descriptor-table loads.
const SNIPPETS: [&[u8]; 40] = [
    &[0xe6, 0x80],
    &[0xe4, 0x71],
    &[0xee],
    &[0xec],
    &[0xef],
    &[0xed],
    &[0x66, 0xef],
    &[0xf3, 0x6e],
    &[0xf3, 0x6c],
    &[0x0f, 0xa2],
    &[0x0f, 0x32],
    &[0x0f, 0x30],
    &[0xf4],
    &[0xfb],
    &[0xfa],
    &[0x0f, 0x01, 0xd9],
    &[0x0f, 0x01, 0xd8],
    &[0x0f, 0x01, 0xda],
    &[0x0f, 0x01, 0xdb],
    &[0x0f, 0x01, 0xdc],
    &[0x0f, 0x01, 0xdd],
    &[0x0f, 0x01, 0xdf],
    &[0x0f, 0x08],
    &[0x0f, 0x09],
    &[0x0f, 0x01, 0xd1],
    &[0x0f, 0x23, 0xc0],
    &[0x0f, 0x21, 0xc0],
    &[0x0f, 0x01, 0xc8],
    &[0x0f, 0x01, 0xc9],
    &[0x0f, 0x22, 0xc0],
    &[0x0f, 0x22, 0xd8],
    &[0x0f, 0x22, 0xe0],
    &[0x44, 0x0f, 0x22, 0xc0],
    &[0xcc],
    &[0xcd, 0x30],
    &[0x0f, 0x05],
    &[0x48, 0x8b, 0x03],
    &[0x48, 0x89, 0x03],
    &[0x0f, 0x01, 0x10],
    &[0x0f, 0x01, 0x18],
];

/// Where the exception handlers go (guest RAM, below the random code).
const HANDLERS: u64 = 0x13000;
/// Vectors whose exceptions push an error code.
const WITH_ERROR_CODE: [u64; 9] = [8, 10, 11, 12, 13, 14, 17, 21, 30];

/// An IDT whose every gate skips one byte past where the guest was (`add qword
/// [rsp], 1; iretq`, popping an error code first where there is one), so a random
/// guest goes on through its code after an exception instead of shutting down.
fn install_idt() {
    const SKIP: [u8; 7] = [0x48, 0x83, 0x04, 0x24, 0x01, 0x48, 0xcf];
    const POP_SKIP: [u8; 11] = [0x48, 0x83, 0xc4, 0x08, 0x48, 0x83, 0x04, 0x24, 0x01, 0x48, 0xcf];
    // SAFETY: the handler page and the IDT page are guest RAM mapped read-write in the
    // VMM window; no guest runs while they are written.
    unsafe {
        let h = (VMM_WINDOW + HANDLERS) as *mut u8;
        core::ptr::copy_nonoverlapping(SKIP.as_ptr(), h, SKIP.len());
        core::ptr::copy_nonoverlapping(POP_SKIP.as_ptr(), h.add(16), POP_SKIP.len());
        for vector in 0..256u64 {
            let handler = HANDLERS + if WITH_ERROR_CODE.contains(&vector) { 16 } else { 0 };
            // A 64-bit interrupt gate: offset, selector 0x08, present, DPL 3 (so INT n
            // from any level reaches it), type 0xe.
            let low = (handler & 0xffff) | 0x08 << 16 | 0xee00 << 32 | (handler >> 16 & 0xffff) << 48;
            let gate = (VMM_WINDOW + IDT + vector * 16) as *mut u64;
            gate.write_volatile(low);
            gate.add(1).write_volatile(handler >> 32);
        }
    }
}

/// Fills the code area: half snippets (each after a `mov` of a random value into RAX,
/// RCX or RDX, their usual operands), half random bytes.
fn fill_code(rng: &mut Rng) {
    // SAFETY: the code area lies in guest RAM, mapped read-write in the VMM window,
    // and nothing else uses it while no guest runs.
    let code = unsafe { core::slice::from_raw_parts_mut((VMM_WINDOW + CODE) as *mut u8, CODE_BYTES as usize) };
    let mut at = 0;
    while at + 16 <= code.len() {
        let pick = rng.next();
        if pick.is_multiple_of(2) {
            let snippet = SNIPPETS[(pick >> 8) as usize % SNIPPETS.len()];
            // mov rax/rcx/rdx, imm64
            code[at] = 0x48;
            code[at + 1] = [0xb8, 0xb9, 0xba][(pick >> 16) as usize % 3];
            code[at + 2..at + 10].copy_from_slice(&rng.next().to_le_bytes());
            code[at + 10..at + 10 + snippet.len()].copy_from_slice(snippet);
            at += 10 + snippet.len();
        } else {
            let bytes = rng.next().to_le_bytes();
            let n = 1 + (pick >> 8) as usize % 8;
            code[at..at + n].copy_from_slice(&bytes[..n]);
            at += n;
        }
    }
}

impl Tally {
    /// One line for the log.
    pub fn print(&self, seed: u64) {
        let k = |kind: VmExitKind| self.by_kind[kind.raw() as usize];
        println!(
            "vmm: fuzz seed {seed:#x}: {} exits in {} guests: io {} msr {} cpuid {} hlt {} npf {} interrupt {} shutdown {} invalid {} vmcall {} denied {} other {} (last {:#x}); TR words refused {}",
            self.exits,
            self.lives,
            k(VmExitKind::Io),
            k(VmExitKind::Msr),
            k(VmExitKind::Cpuid),
            k(VmExitKind::Hlt),
            k(VmExitKind::NestedPageFault),
            k(VmExitKind::Interrupt),
            k(VmExitKind::Shutdown),
            k(VmExitKind::Invalid),
            k(VmExitKind::Vmcall),
            k(VmExitKind::Denied),
            self.by_kind[0],
            self.last_other,
            self.refused_tr,
        );
    }
}
