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
        .expect_serial_contains("cputest: ok a system call with RFLAGS.NT set returns (IPC fast path entry)")
        .expect_serial_contains("cputest: ok NT, IOPL, RF and VM are cleared, IF is set, CF kept")
        .expect_serial_contains("cputest: ok another thread does not see this thread's GS base")
        .expect_serial_contains("cputest: ok this thread's GS base survives the switches")
        .expect_serial_contains("cputest: ok the other thread keeps its own GS base")
        .expect_serial_contains("cputest: ok sgdt in user mode raises #GP (UMIP)")
        .expect_serial_contains("cputest: all checks passed")
        .expect_exit(ExitCode::Success);
}
