//! Threads and IPC scenario: `ipctest` as root task checks endpoints, notifications,
//! faults, priorities, round robin, FPU state and the error paths, then exits 0.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn threads_ipc_notifications_and_faults() {
    let o = Scenario::new("ipctest").append("init=ipctest").run();
    o.expect_serial_not_contains("ipctest: FAIL")
        .expect_serial_contains("ipctest: ok call/reply-recv with badge and 6 registers")
        .expect_serial_contains("ipctest: ok grant a frame cap over IPC")
        .expect_serial_contains("ipctest: ok higher priority runs first")
        .expect_serial_contains("ipctest: ok round robin with yield")
        .expect_serial_contains("ipctest: ok xmm0 preserved across thread switches")
        .expect_serial_contains("ipctest: ok faulting thread resumed and read the fixed page")
        .expect_serial_contains("ipctest: ok the killed thread never continues")
        .expect_serial_contains("ipctest: ok the send runs again after the handler fixed the slot")
        .expect_serial_contains("ipctest: ok the thread continues after its unknown syscall")
        .expect_serial_contains("has no fault handler; suspended it")
        .expect_serial_contains("ipctest: ok the notification can be bound to another thread")
        .expect_serial_contains("ipctest: ok the first server's stale reply is dropped; the second call gets its own")
        .expect_serial_contains("ipctest: all checks passed")
        .expect_exit(ExitCode::Success);
    let oks = o.lines_starting("ipctest: ok ").len();
    assert!(oks >= 38, "only {oks} checks ran");
}
