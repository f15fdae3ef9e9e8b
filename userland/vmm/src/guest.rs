//! The guest: a small x86_64 kernel the VMM copies into guest memory and starts in long mode.
//!
//! Position-independent (it is copied to [`crate::layout::CODE`]), it runs at CPL 0
//! with the 2 MiB identity mapping the VMM's page tables give it, plus 2 MiB at 1 GiB.
//! It prints through a 16550's transmit register (polling the line status), asks
//! CPUID, touches a guest-physical page the VMM has not mapped yet (the VMM maps it on
//! the nested page fault) and reports what it wrote there, then reads from 1 GiB,
//! which is outside its memory (the VMM skips the load and the guest sees RAX
//! unchanged). It then spins until the VMM stops it (only host interrupts give the
//! VMM the chance), installs an interrupt gate and halts until the VMM injects its
//! vector, and ends by writing its exit code to the VMM's exit port.

use core::arch::global_asm;

extern "C" {
    static vmm_guest_image_start: u8;
    static vmm_guest_image_end: u8;
}

/// The guest kernel's bytes.
pub fn image() -> &'static [u8] {
    // SAFETY: both symbols delimit the guest image in this program's read-only data.
    unsafe {
        let start = core::ptr::addr_of!(vmm_guest_image_start);
        let len = core::ptr::addr_of!(vmm_guest_image_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    }
}

/// The instruction the guest uses to read outside its memory: `mov rax, [rbx]`.
pub const OUTSIDE_LOAD: [u8; 3] = [0x48, 0x8b, 0x03];

global_asm!(
    ".pushsection .rodata.vmm_guest, \"a\"",
    ".global vmm_guest_image_start",
    ".global vmm_guest_image_end",
    "vmm_guest_image_start:",
    "lea rsi, [rip + 20f]",
    "call 50f",
    // CPUID leaf 0: the VMM answers with its own vendor string.
    "xor eax, eax",
    "xor ecx, ecx",
    "cpuid",
    "mov [rip + 30f], ebx",
    "mov [rip + 30f + 4], edx",
    "mov [rip + 30f + 8], ecx",
    "lea rsi, [rip + 21f]",
    "call 50f",
    // A page the VMM maps only when the guest first touches it.
    "mov rbx, {demand}",
    "mov rax, [rbx]",
    "mov rax, {pattern}",
    "mov [rbx], rax",
    "mov dx, {check_port}",
    "out dx, eax",
    // Outside guest memory: the VMM skips the load; RAX keeps the marker.
    "mov rbx, {outside}",
    "mov rax, {marker}",
    "mov rax, [rbx]",
    "mov dx, {outside_port}",
    "out dx, eax",
    // Spin until the VMM, having seen host interrupts stop the guest, sets RCX to 1.
    "mov dx, {spin_port}",
    "out dx, al",
    "mov rcx, -1",
    "60:",
    "dec rcx",
    "jnz 60b",
    "mov dx, {spin_port}",
    "out dx, al",
    // An interrupt gate for the VMM's vector, then wait for it with HLT.
    "lea rax, [rip + 70f]",
    "mov rdi, {idt} + 16 * {vector}",
    "mov [rdi], ax",
    "mov word ptr [rdi + 2], 0x08",
    "mov word ptr [rdi + 4], 0x8e00",
    "shr rax, 16",
    "mov [rdi + 6], ax",
    "shr rax, 16",
    "mov [rdi + 8], eax",
    "mov dword ptr [rdi + 12], 0",
    "lidt [rip + 80f]",
    "sti",
    "hlt",
    "cli",
    "lea rsi, [rip + 22f]",
    "call 50f",
    "mov dx, {exit_port}",
    "xor eax, eax",
    "out dx, al",
    "40:",
    "hlt",
    "jmp 40b",
    // puts(rsi): polls LSR.THRE (bit 5) before each byte.
    "50:",
    "mov bl, [rsi]",
    "test bl, bl",
    "jz 52f",
    "51:",
    "mov dx, {lsr}",
    "in al, dx",
    "test al, 0x20",
    "jz 51b",
    "mov dx, {thr}",
    "mov al, bl",
    "out dx, al",
    "inc rsi",
    "jmp 50b",
    "52:",
    "ret",
    // The handler of the injected vector: reports it and returns.
    "70:",
    "push rax",
    "push rdx",
    "mov dx, {irq_port}",
    "mov eax, {vector}",
    "out dx, al",
    "pop rdx",
    "pop rax",
    "iretq",
    "80:",
    ".word 0xfff",
    ".quad {idt}",
    "20:",
    ".asciz \"guest: hello from a guest kernel in long mode\\n\"",
    "21:",
    ".ascii \"guest: CPUID vendor \"",
    "30:",
    ".ascii \"????????????\"",
    ".asciz \"\\n\"",
    "22:",
    ".asciz \"guest: done\\n\"",
    "vmm_guest_image_end:",
    ".popsection",
    demand = const crate::layout::DEMAND_PAGE,
    pattern = const crate::layout::PATTERN,
    check_port = const crate::layout::CHECK_PORT,
    outside = const crate::layout::OUTSIDE,
    marker = const crate::layout::MARKER,
    outside_port = const crate::layout::OUTSIDE_PORT,
    exit_port = const crate::layout::EXIT_PORT,
    lsr = const crate::layout::COM1 + 5,
    spin_port = const crate::layout::SPIN_PORT,
    irq_port = const crate::layout::IRQ_PORT,
    idt = const crate::layout::IDT,
    vector = const crate::layout::VECTOR,
    thr = const crate::layout::COM1,
);
