//! Threads and IPC scenario (`ipctest`).
//!
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
        .expect_serial_contains("ipctest: ok reply cap: Call with GRANT (fastpath call) gets the cap")
        .expect_serial_contains("ipctest: ok reply cap: Call without GRANT: reply arrives, no cap, slot stays empty")
        .expect_serial_contains("ipctest: ok reply cap: Call with GRANT into an occupied slot: no cap, slot unchanged")
        .expect_serial_contains(
            "ipctest: ok reply cap: revoking the frame's original cap removes every copy replied with",
        )
        .expect_serial_contains("ipctest: ok higher priority runs first")
        .expect_serial_contains("ipctest: ok round robin with yield")
        .expect_serial_contains("ipctest: ok xmm0 preserved across thread switches")
        .expect_serial_contains("ipctest: ok faulting thread resumed and read the fixed page")
        .expect_serial_contains("ipctest: ok the killed thread never continues")
        .expect_serial_contains("ipctest: ok the send runs again after the handler fixed the slot")
        .expect_serial_contains("ipctest: ok the thread continues after its unknown syscall")
        .expect_serial_contains("has no fault handler; suspended it")
        .expect_serial_contains("ipctest: ok the notification can be bound to another thread")
        .expect_serial_contains("ipctest: ok a call cut by Suspend does not come back as a success when resumed")
        .expect_serial_contains("ipctest: ok CancelBadgedSends through a write-only badged cap is refused")
        .expect_serial_contains("ipctest: ok the cancelled fault sender does not continue (no error in its rax)")
        .expect_serial_contains("ipctest: ok it faulted again: the same UnknownSyscall message is waiting")
        .expect_serial_contains("ipctest: ok replied to, it continues with its registers intact")
        .expect_serial_contains("ipctest: ok the fault sender of a deleted endpoint does not continue")
        .expect_serial_contains("ipctest: ok ... and no error code was written into its rax")
        .expect_serial_contains("ipctest: ok the first server's stale reply is dropped; the second call gets its own")
        .expect_serial_contains("ipctest: all checks passed")
        .expect_exit(ExitCode::Success);
    let oks = o.lines_starting("ipctest: ok ").len();
    assert!(oks >= 38, "only {oks} checks ran");
}
