//! Debug-console capability scenario (`captest`).
//!
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
        .expect_serial_contains("captest: ok the sandbox's DebugWrite without the cap -> FailedLookup")
        .expect_serial_contains("captest: ok the sandbox's DebugHalt without the cap -> FailedLookup")
        .expect_serial_contains("captest: ok the system runs on after the sandbox's refused halt")
        .expect_serial_contains("captest: ok the sandbox prints through its minted debug cap")
        .expect_serial_contains("captest: ok the sandbox's DebugWrite through the minted cap works")
        .expect_serial_contains("captest: printed through a copy of the debug cap")
        .expect_serial_contains("captest: printed through a minted debug cap")
        .expect_serial_contains("captest: ok mint the debug cap with a badge -> IllegalOperation")
        .expect_serial_contains("captest: ok DebugHalt through an empty slot -> FailedLookup")
        .expect_serial_contains("captest: ok DebugHalt with a code above 0x7f -> RangeError")
        .expect_serial_contains("captest: ok print through the deleted copy -> FailedLookup")
        .expect_exit(ExitCode::RootTaskFault);
}

/// Attack PoC: DebugIommuCounters needs the debug cap (an empty slot or another cap
/// type is refused) but no right on it: a rightless copy reads the system-wide counters.
#[test]
fn attack_iommu_counters_need_the_cap_but_no_right() {
    let o = Scenario::new("captest_debugcap").append("init=captest").run();
    o.expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_not_contains("KERNEL PANIC")
        .expect_serial_contains("captest: ok attack: DebugIommuCounters through an empty slot -> FailedLookup")
        .expect_serial_contains("captest: ok attack: DebugIommuCounters on the root CNode cap -> IllegalOperation")
        .expect_serial_contains("captest: attack: a rightless debug cap reads the IOMMU counters: ");
}
