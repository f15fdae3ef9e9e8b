//! User FPU/SSE state: enabled at boot, saved and restored eagerly on every switch
//! between threads. The kernel itself is built without SSE and never touches it.

use core::arch::asm;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

use crate::object::tcb::FpuArea;

/// Clean state for threads that never ran (taken right after FNINIT at boot).
static mut INITIAL: FpuArea = FpuArea([0; 512]);

/// Enables x87/SSE for user mode and records the clean state.
pub fn init() {
    // SAFETY: enabling FXSAVE/SSE support and native x87 errors; the kernel uses no FPU.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
        // User threads keep their thread pointer (libcap: the IPC buffer) in FS, set
        // with wrfsbase; the kernel saves and restores it, and the GS base, on every
        // switch (both are per-thread state once user mode can write them).
        if super::cpu::has_fsgsbase() {
            Cr4::update(|f| f.insert(Cr4Flags::FSGSBASE));
        } else {
            crate::warn!("CPU lacks FSGSBASE: user threads cannot set their thread pointer");
        }
        asm!("fninit", options(nomem, nostack));
        let mxcsr: u32 = 0x1f80;
        asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, readonly));
        asm!("fxsave64 [{}]", in(reg) core::ptr::addr_of_mut!(INITIAL), options(nostack));
    }
}

/// The user thread pointer (FS base).
#[inline]
pub fn read_fs_base() -> u64 {
    let value: u64;
    // SAFETY: CR4.FSGSBASE is set in `init` (user threads rely on it too).
    unsafe { asm!("rdfsbase {}", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Sets the user thread pointer (a value previously read with `read_fs_base`, so canonical).
#[inline]
pub fn write_fs_base(value: u64) {
    // SAFETY: as in `read_fs_base`; values only come from rdfsbase or 0.
    unsafe { asm!("wrfsbase {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// The user GS base. The kernel never uses GS (no swapgs, KERNEL_GS_BASE unused), so
/// the GS base register holds the running thread's value while in the kernel too.
#[inline]
pub fn read_gs_base() -> u64 {
    let value: u64;
    // SAFETY: as in `read_fs_base`.
    unsafe { asm!("rdgsbase {}", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Sets the user GS base (a value previously read with `read_gs_base`, or 0).
#[inline]
pub fn write_gs_base(value: u64) {
    // SAFETY: as in `write_fs_base`.
    unsafe { asm!("wrgsbase {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// Saves the FPU state into `area`.
#[inline]
pub fn save(area: &mut FpuArea) {
    // SAFETY: `area` is 512 bytes, 16-byte aligned (FpuArea's alignment).
    unsafe { asm!("fxsave64 [{}]", in(reg) area as *mut FpuArea, options(nostack)) };
}

/// Loads `area` (every TCB's area holds a valid image: the clean one from
/// [`init_area`] until the thread's state is first saved).
#[inline]
pub fn restore(area: &FpuArea) {
    // SAFETY: 512-byte, 16-byte aligned image produced by fxsave64 (or a copy of the
    // clean one).
    unsafe { asm!("fxrstor64 [{}]", in(reg) area as *const FpuArea, options(nostack, readonly)) };
}

/// Gives a new thread the clean FPU state.
pub fn init_area(area: &mut FpuArea) {
    // SAFETY: INITIAL is written once in `init`, before any TCB exists.
    *area = unsafe { core::ptr::addr_of!(INITIAL).read() };
}
