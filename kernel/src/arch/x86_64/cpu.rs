//! CPU primitives: port I/O, halting, leaving QEMU, feature probing.

use x86_64::instructions::port::Port;

/// Stops the machine: writes `code` to QEMU's isa-debug-exit port, then halts forever
/// (on hardware without that device, the CPU simply stays halted).
pub fn exit_qemu(code: u32) -> ! {
    let mut port: Port<u32> = Port::new(abi::exit::DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit; on other machines it is unassigned and
    // the write is ignored. Nothing in the kernel depends on its state.
    unsafe { port.write(code) };
    halt_forever()
}

/// Disables interrupts and halts forever.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Masks both legacy 8259 PICs after moving their vectors to 0x20..0x2f, so a stray
/// legacy IRQ can never arrive on an exception vector.
pub fn mask_legacy_pic() {
    const PIC1_CMD: u16 = 0x20;
    const PIC1_DATA: u16 = 0x21;
    const PIC2_CMD: u16 = 0xa0;
    const PIC2_DATA: u16 = 0xa1;
    let writes: [(u16, u8); 10] = [
        (PIC1_CMD, 0x11),
        (PIC2_CMD, 0x11),
        (PIC1_DATA, 0x20),
        (PIC2_DATA, 0x28),
        (PIC1_DATA, 0x04),
        (PIC2_DATA, 0x02),
        (PIC1_DATA, 0x01),
        (PIC2_DATA, 0x01),
        (PIC1_DATA, 0xff),
        (PIC2_DATA, 0xff),
    ];
    for (port, value) in writes {
        let mut p: Port<u8> = Port::new(port);
        // SAFETY: standard 8259 initialisation sequence on the fixed PC ports; it only
        // changes where legacy IRQs would be delivered and masks all of them.
        unsafe { p.write(value) };
    }
}

/// Physical address width in bits from CPUID 0x8000_0008 (36 if not reported).
pub fn physical_address_bits() -> u32 {
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    if max_ext >= 0x8000_0008 {
        (core::arch::x86_64::__cpuid(0x8000_0008).eax & 0xff).max(32)
    } else {
        36
    }
}

/// Whether the CPU supports the RD/WR FS/GS BASE instructions.
pub fn has_fsgsbase() -> bool {
    let max = core::arch::x86_64::__cpuid(0).eax;
    max >= 7 && core::arch::x86_64::__cpuid_count(7, 0).ebx & 1 != 0
}

/// Whether the CPU takes 1 GiB pages (a PDPT entry with PS; the same for nested
/// page tables): else no 1 GiB frame can be mapped for the CPU.
pub fn has_1g_pages() -> bool {
    has(&OPTIONAL[1])
}

/// A CPUID feature flag: (name, what needs it, leaf, register index 0..4 = eax..edx, bit).
type Feature = (&'static str, &'static str, u32, usize, u32);

/// Features the kernel and user programs cannot run without: boot stops with a
/// `BOOT ERROR` naming the first one missing. (Long mode itself is checked by the
/// loader; NX is enabled in boot.S before any Rust runs, so a CPU without it never
/// gets this far.)
const REQUIRED: [Feature; 8] = [
    ("TSC", "rdtsc (time stamps, interrupt-remapping probe)", 1, 3, 4),
    ("APIC", "the local APIC timer and interrupt delivery", 1, 3, 9),
    ("PGE", "global kernel mappings", 1, 3, 13),
    ("FXSR", "fxsave/fxrstor of user FPU state", 1, 3, 24),
    ("SSE", "user SSE state (ldmxcsr)", 1, 3, 25),
    ("SSE2", "user SSE state", 1, 3, 26),
    ("SYSCALL", "the syscall/sysret system call entry", 0x8000_0001, 3, 11),
    ("NX", "non-executable mappings", 0x8000_0001, 3, 20),
];

/// Features used when present (see docs/boot.md).
const OPTIONAL: [Feature; 5] = [
    ("FSGSBASE", "else the kernel sets FS/GS bases (TCB SetTlsBase/SetGsBase)", 7, 1, 0),
    ("PDPE1GB", "else Frame::Map of a 1 GiB frame is IllegalOperation", 0x8000_0001, 3, 26),
    ("SMEP", "hardening", 7, 1, 7),
    ("SMAP", "hardening", 7, 1, 20),
    ("UMIP", "hardening", 7, 2, 2),
];

fn has(f: &Feature) -> bool {
    let (_, _, leaf, reg, bit) = *f;
    let max = core::arch::x86_64::__cpuid(leaf & 0x8000_0000).eax;
    if leaf > max {
        return false;
    }
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    [r.eax, r.ebx, r.ecx, r.edx][reg] & (1 << bit) != 0
}

/// Displays the required features' names.
struct Names;

impl core::fmt::Display for Names {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, f) in REQUIRED.iter().enumerate() {
            write!(out, "{}{}", if i > 0 { " " } else { "" }, f.0)?;
        }
        Ok(())
    }
}

/// Displays each optional feature with yes / no.
struct Optional;

impl core::fmt::Display for Optional {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for f in &OPTIONAL {
            write!(out, " {} {}", f.0, if has(f) { "yes" } else { "no" })?;
        }
        Ok(())
    }
}

/// Checks the features the kernel relies on and logs what the CPU offers, once at
/// boot. Returns the first required feature missing as (name, what needs it).
pub fn check_features() -> Result<(), (&'static str, &'static str)> {
    if let Some(&(name, why, ..)) = REQUIRED.iter().find(|f| !has(f)) {
        return Err((name, why));
    }
    crate::info!("cpu: required features present ({}); optional:{}", Names, Optional);
    if !has_fsgsbase() {
        crate::info!("cpu: FSGSBASE absent: the kernel sets FS/GS bases (MSRs, TCB SetTlsBase/SetGsBase)");
    }
    Ok(())
}

/// CPUID leaf 7 subleaf 0 (ebx, ecx), zero if the leaf does not exist.
fn leaf7() -> (u32, u32) {
    // Leaf 0's eax says whether leaf 7 exists.
    if core::arch::x86_64::__cpuid(0).eax < 7 {
        return (0, 0);
    }
    let r = core::arch::x86_64::__cpuid_count(7, 0);
    (r.ebx, r.ecx)
}

/// The CPU protections [`enable_protections`] turned on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protections {
    /// Supervisor-mode execution prevention: the kernel never runs user pages.
    pub smep: bool,
    /// Supervisor-mode access prevention: a kernel access to a user page faults.
    pub smap: bool,
    /// User-mode instruction prevention: sgdt/sidt/sldt/smsw/str fault in user mode
    /// (they would tell user mode where the kernel's GDT and IDT are).
    pub umip: bool,
}

/// Turns on SMEP, SMAP and UMIP where CPUID offers them. SMAP needs no stac/clac
/// anywhere: the kernel never dereferences a user virtual address (user memory is
/// read through the direct map after a page-table walk, see `user_mem`, and IPC
/// buffers by physical address), and every entry from user mode clears RFLAGS.AC
/// (SFMASK for `syscall`, the exception stubs for traps).
pub fn enable_protections() -> Protections {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let (ebx, ecx) = leaf7();
    let p = Protections { smep: ebx & (1 << 7) != 0, smap: ebx & (1 << 20) != 0, umip: ecx & (1 << 2) != 0 };
    let mut flags = Cr4Flags::empty();
    flags.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, p.smep);
    flags.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, p.smap);
    flags.set(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION, p.umip);
    // SAFETY: only features CPUID reports are enabled; the kernel executes no user
    // page, accesses none (see above) and uses none of the UMIP instructions.
    unsafe { Cr4::update(|f| f.insert(flags)) };
    p
}

/// The time-stamp counter (guest instructions under QEMU's `-icount shift=0`).
#[inline(always)]
pub fn timestamp() -> u64 {
    // SAFETY: RDTSC only reads the counter; every CPU the kernel boots on has it
    // (a required feature, `check_features`).
    unsafe { core::arch::x86_64::_rdtsc() }
}
