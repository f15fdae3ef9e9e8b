//! User FPU/SSE state: enabling at boot, eager save and restore.
//!
//! User FPU/SSE state: enabled at boot, saved and restored eagerly on every switch
//! between threads. The kernel itself is built without SSE and never touches it.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

use crate::object::tcb::FpuArea;

/// Whether CR4.FSGSBASE is on (the CPU has RD/WR FS/GS BASE); without it the bases are
/// switched through the IA32_FS_BASE / IA32_GS_BASE MSRs and only the kernel sets them
/// (Configure and the TCB SetTlsBase / SetGsBase invocations).
static FSGSBASE: AtomicBool = AtomicBool::new(false);
/// IA32_FS_BASE.
const MSR_FS_BASE: u32 = 0xc000_0100;
/// IA32_GS_BASE.
const MSR_GS_BASE: u32 = 0xc000_0101;

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
        // User threads keep their thread pointer (libcap: the IPC buffer) in FS; the
        // kernel saves and restores it, and the GS base, on every switch (per-thread
        // state). With FSGSBASE user mode may also set them itself.
        if super::cpu::has_fsgsbase() {
            Cr4::update(|f| f.insert(Cr4Flags::FSGSBASE));
            FSGSBASE.store(true, Ordering::Relaxed);
        }
        asm!("fninit", options(nomem, nostack));
        let mxcsr: u32 = 0x1f80;
        asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, readonly));
        asm!("fxsave64 [{}]", in(reg) core::ptr::addr_of_mut!(INITIAL), options(nostack));
    }
}

/// Whether user mode can change its FS and GS bases itself (CR4.FSGSBASE is on).
#[inline(always)]
pub fn user_sets_bases() -> bool {
    FSGSBASE.load(Ordering::Relaxed)
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the FS/GS base MSRs exist on every x86_64 CPU; reading has no side effect.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    u64::from(hi) << 32 | u64::from(lo)
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: only the FS/GS base MSRs are written, with canonical values (checked where
    // user mode supplies them); the kernel uses neither segment base.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nomem, nostack, preserves_flags));
    }
}

/// The user thread pointer (FS base).
#[inline]
pub fn read_fs_base() -> u64 {
    if !user_sets_bases() {
        return rdmsr(MSR_FS_BASE);
    }
    let value: u64;
    // SAFETY: CR4.FSGSBASE is set in `init` (user_sets_bases).
    unsafe { asm!("rdfsbase {}", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Sets the user thread pointer (a canonical value: read back from the register, or
/// checked by the invocation that set it).
#[inline]
pub fn write_fs_base(value: u64) {
    if !user_sets_bases() {
        return wrmsr(MSR_FS_BASE, value);
    }
    // SAFETY: as in `read_fs_base`; the value is canonical.
    unsafe { asm!("wrfsbase {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// The user GS base. The kernel never uses GS (no swapgs, KERNEL_GS_BASE unused), so
/// the GS base register holds the running thread's value while in the kernel too.
#[inline]
pub fn read_gs_base() -> u64 {
    if !user_sets_bases() {
        return rdmsr(MSR_GS_BASE);
    }
    let value: u64;
    // SAFETY: as in `read_fs_base`.
    unsafe { asm!("rdgsbase {}", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Sets the user GS base (canonical, as for [`write_fs_base`]).
#[inline]
pub fn write_gs_base(value: u64) {
    if !user_sets_bases() {
        return wrmsr(MSR_GS_BASE, value);
    }
    // SAFETY: as in `write_fs_base`.
    unsafe { asm!("wrgsbase {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// The IPC fastpath's base switch: saves the running thread's FS/GS bases into `saved`
/// and loads `next`'s. Only reachable where the CPU has FSGSBASE: elsewhere system
/// calls enter through `syscall_entry_no_fastpath` (see trap::init_syscalls).
#[inline(always)]
pub fn swap_bases_fastpath(saved: (&mut u64, &mut u64), next: (u64, u64)) {
    let (fs, gs): (u64, u64);
    // SAFETY: CR4.FSGSBASE is on wherever the fastpath runs; the values are canonical
    // (see write_fs_base).
    unsafe {
        asm!("rdfsbase {}", out(reg) fs, options(nomem, nostack, preserves_flags));
        asm!("rdgsbase {}", out(reg) gs, options(nomem, nostack, preserves_flags));
        asm!("wrfsbase {}", in(reg) next.0, options(nomem, nostack, preserves_flags));
        asm!("wrgsbase {}", in(reg) next.1, options(nomem, nostack, preserves_flags));
    }
    (*saved.0, *saved.1) = (fs, gs);
}

/// The scheduler's base switch, with one check of the CPU's abilities: saves the
/// running thread's FS/GS bases into `saved` (None: nothing runs yet) and loads `next`'s,
/// writing a register only when its value changes. Without FSGSBASE user mode cannot
/// change the bases, so the saved values are already current and the MSRs are written.
#[inline]
pub fn switch_bases(saved: Option<(&mut u64, &mut u64)>, next: (u64, u64)) {
    if user_sets_bases() {
        let now = match saved {
            Some((fs_slot, gs_slot)) => {
                let (fs, gs): (u64, u64);
                // SAFETY: CR4.FSGSBASE is on (user_sets_bases).
                unsafe {
                    asm!("rdfsbase {}", out(reg) fs, options(nomem, nostack, preserves_flags));
                    asm!("rdgsbase {}", out(reg) gs, options(nomem, nostack, preserves_flags));
                }
                (*fs_slot, *gs_slot) = (fs, gs);
                Some((fs, gs))
            }
            None => None,
        };
        // SAFETY: as above; `next`'s values are canonical (see write_fs_base).
        unsafe {
            if now.is_none_or(|(fs, _)| fs != next.0) {
                asm!("wrfsbase {}", in(reg) next.0, options(nomem, nostack, preserves_flags));
            }
            if now.is_none_or(|(_, gs)| gs != next.1) {
                asm!("wrgsbase {}", in(reg) next.1, options(nomem, nostack, preserves_flags));
            }
        }
    } else {
        let now = saved.map(|(fs, gs)| (*fs, *gs));
        if now.is_none_or(|(fs, _)| fs != next.0) {
            wrmsr(MSR_FS_BASE, next.0);
        }
        if now.is_none_or(|(_, gs)| gs != next.1) {
            wrmsr(MSR_GS_BASE, next.1);
        }
    }
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
