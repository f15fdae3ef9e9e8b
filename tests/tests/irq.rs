//! Scheduling and interrupts scenario: `irqtest` checks timer preemption and round robin
//! between spinning threads, the PIT's IRQ delivered as a notification, Ack, Clear, and
//! the I/O-port and IRQ error paths.

use abi::exit::ExitCode;
use scenarios::Scenario;

#[test]
fn timer_preemption_and_irq_notifications() {
    let o = Scenario::new("irqtest").append("init=irqtest").run();
    o.expect_serial_not_contains("irqtest: FAIL")
        .expect_serial_contains("irqtest: ok timer preempts a spinning thread (no yield anywhere)")
        .expect_serial_contains("irqtest: ok round robin between two spinning threads and us")
        .expect_serial_contains("irqtest: ok an interrupt arrives as a signal with the handler's badge")
        .expect_serial_contains("irqtest: ok a second interrupt arrives after ack")
        .expect_serial_contains("irqtest: all checks passed")
        .expect_exit(ExitCode::Success);
}
