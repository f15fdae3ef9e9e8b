//! Kernel entry from traps: which handler runs for an exception, IRQ, syscall.
//!
//! The assembly stubs in `arch/x86_64/entry.S` save the frame and call the two
//! `extern "C"` functions here by name (seL4's `c_handle_*` pattern), so `arch` calls
//! no kernel policy; the hardware checks (a forged exception vector, an NMI) stay in
//! `arch::trap` and are called from here.

use crate::arch::trap::{
    self, TrapFrame, DOUBLE_FAULT_VECTOR, FIRST_INTERRUPT_VECTOR, MACHINE_CHECK_VECTOR, NMI_VECTOR,
};

/// Called by every exception stub with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn exception_dispatch(frame: &mut TrapFrame) {
    let start = crate::thread::latency::enter();
    exception(frame);
    crate::thread::latency::leave(start);
}

/// What `exception_dispatch` does with the trap.
#[inline(always)]
fn exception(frame: &mut TrapFrame) {
    if frame.vector < FIRST_INTERRUPT_VECTOR && trap::drop_forged_exception(frame) {
        // Returns to where it struck, the frame unchanged.
    } else if frame.vector >= FIRST_INTERRUPT_VECTOR {
        crate::thread::irq::interrupt(frame);
    } else if frame.vector == NMI_VECTOR {
        // Nothing in this kernel sends NMIs; note it and carry on where we were.
        trap::record_nmi(frame);
    } else if frame.from_user() && frame.vector != DOUBLE_FAULT_VECTOR && frame.vector != MACHINE_CHECK_VECTOR {
        crate::thread::syscall::user_exception(frame);
    } else {
        crate::boot::init::kernel_exception(frame);
    }
}

/// Called by the syscall entry with the saved user frame; results go back in the frame.
#[unsafe(no_mangle)]
extern "C" fn syscall_dispatch(frame: &mut TrapFrame) {
    let start = crate::thread::latency::enter();
    crate::thread::syscall::handle(frame);
    crate::thread::latency::leave(start);
}

/// Called by the syscall entry for a `Call` on a Frame cap, with the cap's slot (the
/// fastpath's single-level lookup found it; `thread::fastpath`).
#[unsafe(no_mangle)]
extern "C" fn syscall_frame_dispatch(frame: &mut TrapFrame, slot: u64) {
    let start = crate::thread::latency::enter();
    crate::thread::syscall::handle_frame_call(frame, slot);
    crate::thread::latency::leave(start);
}
