//! Bounded waiting: deadlines on the time-stamp counter.
//!
//! Bounded waiting: deadlines on the time-stamp counter, so no program waits forever
//! for an interrupt or a DMA that never comes.

/// Default bound for one expected interrupt or DMA completion: 6e9 TSC ticks, a few
/// seconds on the machines QEMU runs on (edu completes in 100 ms virtual time), well
/// within a scenario's 60 s timeout.
pub const WAIT_TICKS: u64 = 6_000_000_000;

/// The time-stamp counter (user mode may read it: the kernel leaves CR4.TSD clear).
pub fn now() -> u64 {
    // SAFETY: rdtsc only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// A point in TSC time.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(u64);

impl Deadline {
    /// `ticks` from now.
    pub fn after(ticks: u64) -> Self {
        Deadline(now().saturating_add(ticks))
    }

    /// [`WAIT_TICKS`] from now.
    pub fn default_wait() -> Self {
        Self::after(WAIT_TICKS)
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        now() >= self.0
    }
}

/// Spins (yielding to other threads) until `done()` or the deadline; returns whether
/// `done()` became true.
pub fn spin_until(deadline: Deadline, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if deadline.passed() {
            return done();
        }
        crate::ipc::yield_now();
    }
}
