//! The longest stretch the kernel ran with interrupts off, for `make bench`.
//!
//! The kernel runs with interrupts off from a trap's entry to its return to user mode,
//! so its longest such stretch bounds how late an interrupt (and the higher-priority
//! thread it wakes) can be served. Every slow-path system call and every exception or
//! interrupt is timed from its dispatch to its return (the IPC fastpath, a few dozen
//! instructions, is not); time a guest ran inside a VcpuRun is not counted (host
//! interrupts stop a guest). Under `-icount shift=0` the time-stamp counter counts
//! guest instructions. DebugConsole::KernelStretch reads and resets the longest.
//! Measuring is off unless the command line says `latency=on` (then every slow-path
//! trap pays about a dozen instructions; off, a load and a branch).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `latency=on`.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The longest stretch since the last read, in time-stamp ticks.
static LONGEST: AtomicU64 = AtomicU64::new(0);
/// Ticks a guest ran during the current stretch (not kernel time).
static GUEST: AtomicU64 = AtomicU64::new(0);

/// Boot, `latency=on`: measure from now on.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether stretches are measured.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A trap's dispatch begins: its start time (0: not measuring).
#[inline(always)]
pub fn enter() -> u64 {
    if !enabled() {
        return 0;
    }
    GUEST.store(0, Ordering::Relaxed);
    crate::arch::cpu::timestamp()
}

/// The trap that began at `start` returns to user mode.
#[inline(always)]
pub fn leave(start: u64) {
    if start == 0 {
        return;
    }
    let ran = crate::arch::cpu::timestamp().wrapping_sub(start).saturating_sub(GUEST.load(Ordering::Relaxed));
    // One CPU, interrupts off: a plain compare and store (no atomic read-modify-write).
    if ran > LONGEST.load(Ordering::Relaxed) {
        LONGEST.store(ran, Ordering::Relaxed);
    }
}

/// A guest ran for `ticks` inside the current stretch (with host interrupts on).
pub fn guest_ran(ticks: u64) {
    GUEST.fetch_add(ticks, Ordering::Relaxed);
}

/// The longest stretch since the last call, which starts a new measurement.
pub fn take_longest() -> u64 {
    LONGEST.swap(0, Ordering::Relaxed)
}
