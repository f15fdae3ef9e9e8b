//! Guest code: one short snippet per attack, each in a 64-byte slot.
//!
//! The VMM copies one snippet to the guest's code page and starts the guest there with
//! the registers the attack needs (RBX: an address or value, RCX: an MSR, RDX: a port).
//! Every snippet ends in HLT, so an instruction the kernel lets through ends in a `Hlt`
//! exit and one it stops ends in the exit the attack expects.

use core::arch::global_asm;

extern "C" {
    static vmattack_snippets: u8;
    static vmattack_snippets_end: u8;
}

/// Bytes per snippet slot.
pub const SLOT: usize = 64;

/// The snippets, by slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Snippet {
    /// `mov rax, [rbx]; hlt`.
    Load = 0,
    /// `mov [rbx], rax; hlt`.
    Store,
    Vmrun,
    Vmload,
    Vmsave,
    Stgi,
    Clgi,
    Skinit,
    Invlpga,
    Invd,
    Wbinvd,
    /// XSETBV(XCR0 = x87 | SSE | AVX).
    Xsetbv,
    Monitor,
    Mwait,
    /// `mov dr0, rax`.
    MovToDr0,
    /// `mov rax, dr7`.
    MovFromDr7,
    /// RDMSR of MSR RCX.
    Rdmsr,
    /// WRMSR of MSR RCX with EDX:EAX.
    Wrmsr,
    /// `in eax, dx`.
    In,
    /// `out dx, eax`.
    Out,
    Vmmcall,
    /// `ud2` with no IDT: a triple fault.
    TripleFault,
    /// WRPKRU(EBX).
    Wrpkru,
    /// RDPKRU into RAX.
    Rdpkru,
    /// RAX = XMM0, RBX = XMM1 (low quadwords).
    XmmRead,
    /// XMM0 = XMM1 = RBX.
    XmmWrite,
    /// `mov rax, [rbx]; out dx, eax; mov rax, [rbx]; hlt`: a load before and after the
    /// VMM changes the GuestSpace at the OUT.
    LoadTwice,
    /// `mov [rbx], rax; out dx, eax; mov [rbx], rax; hlt`.
    StoreTwice,
    /// `cli` and spin forever.
    CliSpin,
    /// `sti` and spin forever (takes an injected interrupt, with no IDT).
    StiSpin,
    /// `hlt`.
    Halt,
    /// TPR (CR8) at 15, then spin: only a host TPR would block the host's timer.
    Cr8Spin,
}

/// Number of snippets.
const COUNT: usize = Snippet::Cr8Spin as usize + 1;

impl Snippet {
    /// The snippet's bytes (its whole slot; the code ends at its HLT).
    pub fn code(self) -> &'static [u8] {
        // SAFETY: the blob below holds COUNT slots of SLOT bytes in read-only data.
        unsafe {
            let start = core::ptr::addr_of!(vmattack_snippets).add(self as usize * SLOT);
            core::slice::from_raw_parts(start, SLOT)
        }
    }
}

const _: () = assert!(COUNT == 32);

/// Whether every snippet fit its slot (the blob is exactly COUNT slots long).
pub fn intact() -> bool {
    let len = core::ptr::addr_of!(vmattack_snippets_end) as usize - core::ptr::addr_of!(vmattack_snippets) as usize;
    len == COUNT * SLOT
}

global_asm!(
    ".pushsection .rodata.vmattack_snippets, \"a\"",
    ".balign 64",
    ".global vmattack_snippets",
    "vmattack_snippets:",
    // 0 Load
    "mov rax, [rbx]",
    "hlt",
    ".balign 64, 0xcc",
    // 1 Store
    "mov [rbx], rax",
    "hlt",
    ".balign 64, 0xcc",
    // 2 VMRUN (RAX: a guest-physical "VMCB")
    "vmrun rax",
    "hlt",
    ".balign 64, 0xcc",
    // 3 VMLOAD
    "vmload rax",
    "hlt",
    ".balign 64, 0xcc",
    // 4 VMSAVE
    "vmsave rax",
    "hlt",
    ".balign 64, 0xcc",
    // 5 STGI
    "stgi",
    "hlt",
    ".balign 64, 0xcc",
    // 6 CLGI
    "clgi",
    "hlt",
    ".balign 64, 0xcc",
    // 7 SKINIT
    "skinit eax",
    "hlt",
    ".balign 64, 0xcc",
    // 8 INVLPGA
    "xor ecx, ecx",
    "invlpga rax, ecx",
    "hlt",
    ".balign 64, 0xcc",
    // 9 INVD
    "invd",
    "hlt",
    ".balign 64, 0xcc",
    // 10 WBINVD
    "wbinvd",
    "hlt",
    ".balign 64, 0xcc",
    // 11 XSETBV
    "xor ecx, ecx",
    "xor edx, edx",
    "mov eax, 7",
    "xsetbv",
    "hlt",
    ".balign 64, 0xcc",
    // 12 MONITOR
    "mov rax, rbx",
    "xor ecx, ecx",
    "xor edx, edx",
    ".byte 0x0f, 0x01, 0xc8", // monitor
    "hlt",
    ".balign 64, 0xcc",
    // 13 MWAIT
    "xor eax, eax",
    "xor ecx, ecx",
    ".byte 0x0f, 0x01, 0xc9", // mwait
    "hlt",
    ".balign 64, 0xcc",
    // 14 MOV DR0
    "mov dr0, rax",
    "hlt",
    ".balign 64, 0xcc",
    // 15 MOV from DR7
    "mov rax, dr7",
    "hlt",
    ".balign 64, 0xcc",
    // 16 RDMSR
    "rdmsr",
    "hlt",
    ".balign 64, 0xcc",
    // 17 WRMSR
    "wrmsr",
    "hlt",
    ".balign 64, 0xcc",
    // 18 IN
    "in eax, dx",
    "hlt",
    ".balign 64, 0xcc",
    // 19 OUT
    "out dx, eax",
    "hlt",
    ".balign 64, 0xcc",
    // 20 VMMCALL
    "vmmcall",
    "hlt",
    ".balign 64, 0xcc",
    // 21 Triple fault (the VMM leaves IDTR empty)
    "ud2",
    "hlt",
    ".balign 64, 0xcc",
    // 22 WRPKRU
    "xor ecx, ecx",
    "xor edx, edx",
    "mov eax, ebx",
    "wrpkru",
    "hlt",
    ".balign 64, 0xcc",
    // 23 RDPKRU
    "xor ecx, ecx",
    "rdpkru",
    "hlt",
    ".balign 64, 0xcc",
    // 24 XmmRead: movq rax, xmm0; movq rbx, xmm1
    ".byte 0x66, 0x48, 0x0f, 0x7e, 0xc0",
    ".byte 0x66, 0x48, 0x0f, 0x7e, 0xcb",
    "hlt",
    ".balign 64, 0xcc",
    // 25 XmmWrite: movq xmm0, rbx; movq xmm1, rbx
    ".byte 0x66, 0x48, 0x0f, 0x6e, 0xc3",
    ".byte 0x66, 0x48, 0x0f, 0x6e, 0xcb",
    "hlt",
    ".balign 64, 0xcc",
    // 26 LoadTwice
    "mov rax, [rbx]",
    "out dx, eax",
    "mov rax, [rbx]",
    "hlt",
    ".balign 64, 0xcc",
    // 27 StoreTwice
    "mov [rbx], rax",
    "out dx, eax",
    "mov [rbx], rax",
    "hlt",
    ".balign 64, 0xcc",
    // 28 CliSpin
    "cli",
    "2:",
    "jmp 2b",
    ".balign 64, 0xcc",
    // 29 StiSpin
    "sti",
    "2:",
    "jmp 2b",
    ".balign 64, 0xcc",
    // 30 Halt
    "hlt",
    ".balign 64, 0xcc",
    // 31 Cr8Spin
    "mov eax, 15",
    "mov cr8, rax",
    "sti",
    "2:",
    "jmp 2b",
    ".balign 64, 0xcc",
    "vmattack_snippets_end:",
    ".global vmattack_snippets_end",
    ".popsection",
);
