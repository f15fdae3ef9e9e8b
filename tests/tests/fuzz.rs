//! Robustness scenario: a sandboxed thread issues 20000 random system calls and
//! invocations, half of them aimed at its IOMMU, MSI and PciDevice caps; the kernel
//! must answer all of them and keep working.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn random_system_calls_never_hurt_the_kernel() {
    Scenario::new("fuzz")
        .append("init=fuzz")
        .run()
        .expect_serial_not_contains("fuzz: FAIL")
        .expect_serial_not_contains("KERNEL")
        .expect_serial_contains("fuzz: 20000 random calls")
        .expect_serial_contains("fuzz: ok give the sandbox IOMMU and interrupt caps")
        .expect_serial_contains("fuzz: ok some focused invocations got past every check")
        .expect_serial_contains("fuzz: ok the sandbox without a debug cap could not print or halt")
        .expect_serial_contains("fuzz: all checks passed")
        .expect_exit(ExitCode::Success);
}
