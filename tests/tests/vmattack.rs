//! Attacks on the VCPU and GuestSpace objects (`init=vmattack`) all fail.
//!
//! A hostile VMM with two guests (userland/vmattack) tries instructions that reach the
//! host, memory its GuestSpace does not map, stale or foreign guest translations, a
//! reused GuestSpace root page, state shared through SSE and PKRU, odd guest register
//! values, odd event injection and the wrong caps. Every attempt must be refused, fault
//! in the guest or exit to the VMM, and the kernel must take no exception.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn every_vm_attack_fails() {
    let mut scenario = Scenario::new("vmattack").append("init=vmattack");
    scenario.timeout = std::time::Duration::from_secs(120);
    let o = scenario.run();
    o.expect_serial_contains("svm: on, nested paging")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_not_contains("vmattack: FAIL")
        // Escapes: the SVM instructions, I/O and MSRs exit to the VMM.
        .expect_serial_contains("vmattack: ok the guest's VMLOAD exits to the VMM (Denied)")
        .expect_serial_contains("vmattack: ok the guest's CLGI exits to the VMM (Denied)")
        .expect_serial_contains("vmattack: ok the guest's WRMSR 0xc0010117 exits to the VMM")
        .expect_serial_contains("vmattack: ok the guest's OUT to port 0xcf9 exits to the VMM")
        .expect_serial_contains("vmattack: ok a guest triple fault is a Shutdown exit, not a host reset")
        // Memory: host-physical addresses of the VMM's and the other guest's frames.
        .expect_serial_contains("vmattack: ok a guest load at guest-physical 0x100000 is a nested page fault")
        // A shutdown's failed #DF is not repeated forever (the VCPU can be restarted).
        .expect_serial_contains("vmattack: ok Run after a shutdown returns an exit (no kernel fault)")
        // Translations.
        .expect_serial_contains("vmattack: ok a guest load after Frame::Unmap of its page is a nested page fault")
        .expect_serial_contains(
            "vmattack: ok after run A, an unmap, run B: guest A reads its own page, never guest B's",
        )
        .expect_serial_contains(
            "vmattack: ok a GuestSpace remade on a deleted one's root page maps nothing of the old one",
        )
        // Shared state: SSE and PKRU.
        .expect_serial_contains("vmattack: ok a guest never sees the VMM's SSE registers")
        .expect_serial_contains("vmattack: ok guest B never sees guest A's SSE registers")
        .expect_serial_contains("vmattack: ok guest B never sees guest A's PKRU")
        .expect_serial_contains("vmattack: ok guest A keeps its own PKRU across guest B's run")
        // Odd states.
        .expect_serial_contains(
            "vmattack: ok every odd register value runs to an exit (or a bad TR is refused) and the VCPU recovers",
        )
        .expect_serial_contains("vmattack: ok 200 random guest states run to an exit and the VCPU recovers each time")
        // TR states WriteRegs never checked: a new VCPU's, and a busy TSS under a 32-bit
        // guest (QEMU's TCG stopped with "invalid tss" / "invalid tss type").
        .expect_serial_contains(
            "vmattack: ok a new VCPU whose VMM never writes TR takes an IST interrupt (QEMU survives)",
        )
        .expect_serial_contains(
            "vmattack: ok a 32-bit guest with a busy TSS in TR takes an interrupt from CPL 3 (QEMU survives)",
        )
        .expect_serial_contains("vmattack: ok the TR a guest run leaves is accepted by WriteRegs")
        .expect_serial_contains(
            "vmattack: ok a guest that leaves long mode by itself takes an interrupt from CPL 3 (QEMU survives)",
        )
        // Caps.
        .expect_serial_contains("vmattack: ok GuestSpace refuses a PDPT at the top of the address space (span wraps)")
        .expect_serial_contains("vmattack: ok TCB Configure with a GuestSpace as its VSpace is refused")
        .expect_serial_contains("vmattack: ok a VCPU from device untyped is InvalidArgument")
        .expect_serial_contains("vmattack: ok after every attack a guest still runs to its HLT")
        .expect_serial_contains("vmattack: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// A guest's CR8 write while the kernel requests its interrupt window (V_IRQ pending)
/// aborted QEMU 7.2's TCG (`tcg_handle_interrupt: assertion failed`: its SVM CR8 helper
/// raises the virtual interrupt without the I/O thread lock), so any guest could bring
/// the whole emulated machine down. The kernel now intercepts CR8 writes while it
/// requests the window and runs the write again without the request.
#[test]
fn a_guest_cr8_write_with_an_interrupt_pending_does_not_stop_the_platform() {
    let o = Scenario::new("vmattack_cr8").append("init=vmattack-cr8").run();
    o.expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("vmattack-cr8: the platform survived the guest's CR8 write")
        .expect_serial_contains("vmattack-cr8: all checks passed")
        .expect_exit(ExitCode::Success);
}
