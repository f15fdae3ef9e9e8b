//! Trap frames, syscall set-up, forged-vector and NMI checks, user-mode entry.
//!
//! The entry stubs (entry.S) call `exception_dispatch` and `syscall_dispatch`, which
//! live in `thread::entry`: which handler runs is kernel policy, not hardware access.

use core::sync::atomic::{AtomicU64, Ordering};

use static_assertions::const_assert_eq;
use x86_64::registers::control::Cr2;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::VirtAddr;

use super::gdt;

/// Non-maskable interrupt.
pub const NMI_VECTOR: u64 = 2;
/// Double fault (always fatal: reported as a kernel exception).
pub const DOUBLE_FAULT_VECTOR: u64 = 8;
/// Machine check (always fatal).
pub const MACHINE_CHECK_VECTOR: u64 = 18;
/// Vectors from here up are interrupts; below are CPU exceptions.
pub const FIRST_INTERRUPT_VECTOR: u64 = 32;

/// Marker in [`TrapFrame::vector`] for frames built by the syscall entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// Every user register, as the entry stubs in entry.S save them. The layout is shared
/// with the assembly: do not reorder.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception vector, or [`SYSCALL_VECTOR`].
    pub vector: u64,
    /// CPU error code (0 where the CPU pushes none).
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const_assert_eq!(core::mem::size_of::<TrapFrame>(), 22 * 8);

impl TrapFrame {
    /// Whether the trap came from user mode.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// A frame that starts user code at `rip` with stack `rsp` and `arg` in `rdi`.
    pub fn new_user(rip: u64, rsp: u64, arg: u64) -> Self {
        TrapFrame {
            rip,
            rsp,
            rdi: arg,
            cs: u64::from(gdt::USER_CS),
            ss: u64::from(gdt::USER_DS),
            // IF set, IOPL 0; bit 1 is reserved-one.
            rflags: (RFlags::INTERRUPT_FLAG.bits()) | 0x2,
            ..Default::default()
        }
    }
}

/// Name of an exception vector.
pub fn vector_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved",
    }
}

/// Current CR2 (faulting address of the last page fault).
pub fn fault_address() -> u64 {
    Cr2::read_raw()
}

/// Exception vectors that arrived as interrupts (dropped), for rate-limited logging.
static FORGED_VECTORS: AtomicU64 = AtomicU64::new(0);

/// An exception vector (0..31) the LAPIC delivered as an interrupt (its ISR bit is
/// set; the CPU sets none for an exception): a device wrote it to the MSI window
/// where that write is not remapped. It is acknowledged and dropped, never handled as
/// the exception it names (the entry stub has already evened out the error-code
/// word). Logged the first 8 times, then at every power of two.
pub fn drop_forged_exception(frame: &TrapFrame) -> bool {
    let vector = frame.vector as u8;
    if !super::apic::in_service(vector) {
        return false;
    }
    super::apic::eoi();
    let n = FORGED_VECTORS.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= 8 || n.is_power_of_two() {
        crate::warn!(
            "irq: exception vector {vector} ({}) arrived as an interrupt ({} mode), not raised by the CPU: dropped ({n} so far; a device writing to the MSI window?)",
            vector_name(frame.vector),
            if frame.from_user() { "user" } else { "kernel" }
        );
    }
    true
}

/// NMIs taken so far, and how many of them the log has reported.
static NMIS: AtomicU64 = AtomicU64::new(0);
static NMIS_LOGGED: AtomicU64 = AtomicU64::new(0);
/// Where the last NMI struck: its rip, and 1 if in user mode.
static NMI_RIP: AtomicU64 = AtomicU64::new(0);
static NMI_USER: AtomicU64 = AtomicU64::new(0);

/// An NMI strikes anywhere, also while the kernel holds a lock (the console's, while
/// printing): it only counts itself in atomics and returns. [`log_nmis`] reports it
/// later from a context that may take locks.
pub fn record_nmi(frame: &TrapFrame) {
    NMI_RIP.store(frame.rip, Ordering::Relaxed);
    NMI_USER.store(u64::from(frame.from_user()), Ordering::Relaxed);
    NMIS.fetch_add(1, Ordering::Release);
}

/// Logs NMIs taken since the last call: the first 8, then at every power of two. Runs
/// from the timer tick (the idle loop or user mode: no kernel lock is held), never in
/// NMI context.
pub fn log_nmis() {
    let n = NMIS.load(Ordering::Acquire);
    let logged = NMIS_LOGGED.load(Ordering::Relaxed);
    if n == logged {
        return;
    }
    NMIS_LOGGED.store(n, Ordering::Relaxed);
    if crate::log::worth_logging(logged, n) {
        let mode = if NMI_USER.load(Ordering::Relaxed) != 0 { "user" } else { "kernel" };
        let rip = NMI_RIP.load(Ordering::Relaxed);
        crate::warn!("irq: {n} NMI so far (the last at rip {rip:#x} in {mode} mode); ignored, nothing here sends NMIs");
    }
}

unsafe extern "C" {
    fn syscall_entry();
    fn syscall_entry_no_fastpath();
    fn enter_user() -> !;
    static mut kernel_stack_top: u64;
    static mut current_frame_end: u64;
}

/// RFLAGS bits `syscall` clears on entry (SFMASK): every flag the user may have set,
/// so the kernel runs with interrupts off (IF), no single-step (TF), a forward
/// direction (DF), SMAP enforced (AC) and no nested-task bit: with NT set the kernel's
/// own `iretq` raises #GP in ring 0 (any thread could crash the kernel). The user's
/// RFLAGS are in r11 and come back through the frame.
const SYSCALL_FLAGS_MASK: RFlags = RFlags::CARRY_FLAG
    .union(RFlags::PARITY_FLAG)
    .union(RFlags::AUXILIARY_CARRY_FLAG)
    .union(RFlags::ZERO_FLAG)
    .union(RFlags::SIGN_FLAG)
    .union(RFlags::TRAP_FLAG)
    .union(RFlags::INTERRUPT_FLAG)
    .union(RFlags::DIRECTION_FLAG)
    .union(RFlags::OVERFLOW_FLAG)
    .union(RFlags::IOPL_LOW)
    .union(RFlags::IOPL_HIGH)
    .union(RFlags::NESTED_TASK)
    .union(RFlags::RESUME_FLAG)
    .union(RFlags::ALIGNMENT_CHECK)
    .union(RFlags::ID);

/// Enables `syscall`/`sysret` and points them at the entry stub.
pub fn init_syscalls() {
    // SAFETY: selectors match the GDT built in gdt.rs (kernel 0x08/0x10, user 0x1b/0x23);
    // LSTAR is the entry stub; SFMASK (see `SYSCALL_FLAGS_MASK`) leaves the kernel with
    // clean flags; the kernel stack pointer is the TSS rsp0.
    unsafe {
        kernel_stack_top = gdt::trap_stack_top();
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        Star::write(
            SegmentSelector(gdt::USER_CS),
            SegmentSelector(gdt::USER_DS),
            SegmentSelector(gdt::KERNEL_CS),
            SegmentSelector(gdt::KERNEL_DS),
        )
        .expect("GDT layout matches STAR's requirements");
        // Without FSGSBASE the IPC fastpath (whose base switch uses the instructions)
        // is skipped: see entry.S.
        let entry = if super::cpu::has_fsgsbase() {
            syscall_entry as *const ()
        } else {
            syscall_entry_no_fastpath as *const ()
        };
        LStar::write(VirtAddr::new(entry as u64));
        SFMask::write(SYSCALL_FLAGS_MASK);
    }
}

/// Makes `frame` (inside the current thread's TCB) the one traps from user mode save
/// into and `return_to_user` restores from.
pub fn set_current_frame(frame: *mut TrapFrame) {
    let end = frame as u64 + core::mem::size_of::<TrapFrame>() as u64;
    debug_assert!(end.is_multiple_of(16), "the CPU aligns rsp0 down to 16 bytes");
    // SAFETY: single CPU, interrupts off; the assembly reads this word only on entry
    // from user mode and on return to it.
    unsafe { current_frame_end = end };
    gdt::set_rsp0(end);
}

impl TrapFrame {
    /// The frame as raw words (for storage in a TCB).
    pub fn to_words(&self) -> [u64; 22] {
        // SAFETY: TrapFrame is repr(C) of exactly 22 u64 (asserted above).
        unsafe { core::mem::transmute_copy(self) }
    }
    /// A frame from raw words.
    pub fn from_words(w: [u64; 22]) -> Self {
        // SAFETY: as in `to_words`; every bit pattern is a valid TrapFrame.
        unsafe { core::mem::transmute_copy(&w) }
    }
}

/// Starts the current thread (its frame was set with `set_current_frame`).
pub fn enter_user_mode() -> ! {
    // SAFETY: the current frame is a complete user frame in the running thread's TCB.
    unsafe { enter_user() }
}
