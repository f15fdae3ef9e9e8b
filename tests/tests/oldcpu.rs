//! Older CPU model scenarios (`qemu64`, `Nehalem`).
//!
//! Older CPU models (QEMU `qemu64`: no FSGSBASE, SMEP, SMAP or UMIP; `Nehalem`): the
//! kernel logs the features it found, switches FS/GS bases itself, and the test
//! programs pass; a CPU without a required feature stops with a BOOT ERROR naming it.

use abi::exit::ExitCode;
use scenarios::Scenario;

const FALLBACK: &str = "cpu: FSGSBASE absent: the kernel sets FS/GS bases (MSRs, TCB SetTlsBase/SetGsBase)";

fn cputest_on(cpu: &str, memory_mib: u32) -> scenarios::Outcome {
    let scenario = Scenario::new(&format!("cputest_{}", cpu.to_lowercase())).cpu(cpu).memory(memory_mib);
    let o = scenario.append("init=cputest").run();
    o.expect_serial_contains("cpu: required features present (TSC APIC PGE FXSR SSE SSE2 SYSCALL NX)")
        .expect_serial_contains("optional: FSGSBASE no PDPE1GB no SMEP no SMAP no UMIP no")
        .expect_serial_contains(FALLBACK)
        .expect_serial_not_contains("cputest: FAIL")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("cputest: FSGSBASE absent: bases set through the TCB")
        .expect_serial_contains("cputest: ok the thread pointer is this thread's IPC buffer")
        .expect_serial_contains("cputest: ok another thread does not see this thread's GS base")
        .expect_serial_contains("cputest: ok this thread's GS base survives the switches")
        .expect_serial_contains("cputest: ok the other thread keeps its own GS base")
        .expect_serial_contains("cputest: all checks passed")
        .expect_exit(ExitCode::Success);
    o
}

#[test]
fn qemu64_cpu_state_isolation() {
    cputest_on("qemu64", 256);
}

/// With 3 GiB of RAM: a 1 GiB frame, which this CPU cannot map (no PDPE1GB).
#[test]
fn nehalem_cpu_state_isolation() {
    let o = cputest_on("Nehalem", 3072);
    o.expect_serial_contains(
        "cputest: ok a 1 GiB frame cannot be mapped for this CPU (no 1 GiB pages): IllegalOperation",
    );
}

/// IPC (fast path and slow path, cap transfer, faults) on a CPU without FSGSBASE.
#[test]
fn qemu64_ipc() {
    let o = Scenario::new("ipctest_qemu64").cpu("qemu64").append("init=ipctest").run();
    o.expect_serial_contains(FALLBACK)
        .expect_serial_not_contains("ipctest: FAIL")
        .expect_serial_contains("ipctest: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// A required feature missing: boot stops at once and names it.
#[test]
fn missing_required_feature_is_a_boot_error() {
    let o = Scenario::new("cpu_without_syscall").cpu("qemu64,-syscall").run();
    o.expect_serial_contains("BOOT ERROR: CPU lacks SYSCALL (needed for the syscall/sysret system call entry)")
        .expect_serial_not_contains("kernel: entering root task")
        .expect_exit(ExitCode::BadBootInput);
}
