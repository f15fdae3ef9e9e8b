//! When a VMRUN must flush the guest TLB (all guests share one ASID).
//!
//! Guest translations are tagged with the ASID only, so a guest can hit entries another
//! GuestSpace's guest left, or entries of a page unmapped since. The next VMRUN flushes
//! (TLB_CONTROL) whenever either may exist: something was unmapped from a GuestSpace or
//! a GuestSpace was deleted since the last flush ("stale"), or the GuestSpace differs
//! from the one the previous guest ran in. Both facts are recorded on every run (a
//! flush decided for one reason must not skip recording the other), and a VMRUN the
//! hardware refused (VMEXIT_INVALID) may not have flushed, so the debt is kept.

/// The guest TLB's bookkeeping (one CPU: one instance, in `arch::svm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestTlb {
    /// A guest translation may name memory no longer mapped there.
    stale: bool,
    /// The nested root of the last guest that ran (0: none, or unknown).
    last_root: u64,
}

impl GuestTlb {
    /// At boot: nothing is known about the TLB, so the first run flushes.
    pub const fn new() -> Self {
        GuestTlb { stale: true, last_root: 0 }
    }

    /// A guest translation may be stale (an unmap in a GuestSpace, a GuestSpace deleted).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Before a VMRUN in the GuestSpace rooted at `root`: whether it must flush. The
    /// flush debt is paid and `root` recorded whatever the reason.
    #[must_use]
    pub fn before_run(&mut self, root: u64) -> bool {
        let flush = self.stale || self.last_root != root;
        self.stale = false;
        self.last_root = root;
        flush
    }

    /// After the VMRUN: `entered` is false when the hardware refused the guest state
    /// before entering it, in which case the flush it was asked for may not have
    /// happened and the next run must flush again.
    pub fn after_run(&mut self, entered: bool) {
        if !entered {
            self.stale = true;
            self.last_root = 0;
        }
    }
}

impl Default for GuestTlb {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 0x10_0000;
    const B: u64 = 0x20_0000;

    #[test]
    fn the_first_run_and_every_change_of_space_flush() {
        let mut t = GuestTlb::new();
        assert!(t.before_run(A), "boot: unknown TLB contents");
        assert!(!t.before_run(A));
        assert!(t.before_run(B));
        assert!(t.before_run(A));
        assert!(!t.before_run(A));
    }

    #[test]
    fn a_stale_flush_still_records_the_space() {
        // Run A; an unmap somewhere; run B (flushes for the unmap); run A again: B's
        // guest filled the shared ASID's entries, so A's run must flush too.
        let mut t = GuestTlb::new();
        let _ = t.before_run(A);
        assert!(!t.before_run(A));
        t.mark_stale();
        assert!(t.before_run(B));
        assert!(t.before_run(A), "A must never hit B's translations");
    }

    #[test]
    fn a_refused_vmrun_keeps_the_flush_owed() {
        let mut t = GuestTlb::new();
        let _ = t.before_run(A);
        t.after_run(true);
        t.mark_stale(); // A frame unmapped from A, then freed.
        assert!(t.before_run(A));
        t.after_run(false); // VMEXIT_INVALID: the flush may not have happened.
        assert!(t.before_run(A), "the freed frame's translation may still be cached");
        t.after_run(true);
        assert!(!t.before_run(A));
    }
}
