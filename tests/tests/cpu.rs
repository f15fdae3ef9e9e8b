//! CPU-state scenario (`init=cputest`).
//!
//! CPU state a thread controls (`init=cputest`): RFLAGS.NT before a system call,
//! RFLAGS through TCB WriteRegisters, the GS base per thread, UMIP; and the boot log
//! names the CPU protections the kernel turned on.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn cpu_state_isolation() {
    let o = Scenario::new("cputest").append("init=cputest").run();
    o.expect_serial_not_contains("cputest: FAIL")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("cputest: ok a system call with RFLAGS.NT set returns (slow path)")
        .expect_serial_contains("cputest: ok a system call with RFLAGS.NT set returns (Yield fast path)")
        .expect_serial_contains("cputest: ok a Yield with nothing else ready keeps every register but rax, rcx, r11")
        .expect_serial_contains("cputest: ok a system call with RFLAGS.NT set returns (IPC fast path entry)")
        .expect_serial_contains("cputest: ok NT, IOPL, RF and VM are cleared, IF is set, CF kept")
        .expect_serial_contains("cputest: ok another thread does not see this thread's GS base")
        .expect_serial_contains("cputest: ok this thread's GS base survives the switches")
        .expect_serial_contains("cputest: ok the other thread keeps its own GS base")
        .expect_serial_contains("cputest: ok sgdt in user mode raises #GP (UMIP)")
        .expect_serial_contains("cputest: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// The boot log says which CPU protections are on (QEMU `-cpu max` offers all three).
#[test]
fn cpu_protections_are_enabled() {
    let o = Scenario::new("cpu_protections").run();
    o.expect_serial_contains("cpu: SMEP on, SMAP on, UMIP on; kernel text and rodata read-only in every mapping")
        .expect_exit(ExitCode::Success);
}

/// Kernel text is read-only through its direct-map alias too: the write faults.
#[test]
fn kernel_text_alias_is_read_only() {
    let o = Scenario::new("write_kernel_text").append("test=write-kernel-text").run();
    o.expect_serial_contains("kernel: writing to kernel text through its direct-map alias")
        .expect_serial_contains("KERNEL EXCEPTION: #PF page fault (vector 14) error=0x3")
        .expect_serial_not_contains("the write to kernel text went through")
        .expect_exit(ExitCode::KernelException);
}
