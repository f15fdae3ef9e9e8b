//! The debug console is a capability: `captest` maps device frames and asks the kernel
//! to print from them (refused with an error, not a kernel fault), and runs a sandboxed
//! thread without the debug cap, whose prints and halt are refused while the system
//! runs on, then with a minted copy, through which it prints.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn debug_console_needs_the_cap_and_readable_memory() {
    let o = Scenario::new("captest_debugcap").append("init=captest").run();
    o.expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_not_contains("captest: FAIL")
        .expect_serial_contains("captest: ok DebugWrite from a device frame above 4 GiB -> InvalidUserPointer")
        .expect_serial_contains("captest: ok DebugWrite from a device frame below 4 GiB -> InvalidUserPointer")
        .expect_exit(ExitCode::RootTaskFault);
}
