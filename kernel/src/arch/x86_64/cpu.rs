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
