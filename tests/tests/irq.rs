//! Scheduling and interrupts scenario (`irqtest`).
//!
//! Scheduling and interrupts scenario: `irqtest` checks timer preemption and round robin
//! between spinning threads, the PIT's IRQ delivered as a notification, Ack, Clear, and
//! the I/O-port and IRQ error paths, with the I/O APIC line remapped through an IRTE
//! (the default) and without interrupt remapping.

use abi::exit::ExitCode;
use scenarios::{Iommu, Scenario};

#[test]
fn timer_preemption_and_irq_notifications() {
    irq_scenario("irqtest", Iommu::Default);
}

/// The same with I/O APIC entries in the compatibility format (no interrupt remapping).
#[test]
fn irq_notifications_without_interrupt_remapping() {
    irq_scenario("irqtest_compat", Iommu::NoInterruptRemapping);
}

fn irq_scenario(name: &str, iommu: Iommu) {
    let o = Scenario::new(name).append("init=irqtest").iommu(iommu).run();
    o.expect_serial_not_contains("irqtest: FAIL")
        .expect_serial_contains("irqtest: ok timer preempts a spinning thread (no yield anywhere)")
        .expect_serial_contains("irqtest: ok round robin between two spinning threads and us")
        .expect_serial_contains("irqtest: ok an interrupt arrives as a signal with the handler's badge")
        .expect_serial_contains("irqtest: ok a second interrupt arrives after ack")
        .expect_serial_contains("reserved: 0x0000fee00000..0x0000fef00000 MSI window")
        .expect_serial_contains("reserved: 0x0000fed00000..0x0000fed01000 HPET")
        .expect_serial_contains("reserved: I/O ports 0x0510..=0x051b QEMU fw_cfg")
        .expect_serial_contains("irqtest: ok ports near 2^64 or above 0xffff are refused (no wrap into 0xffff)")
        .expect_serial_contains("irqtest: ok fw_cfg ports 0x510..0x51b are not handed out")
        .expect_serial_contains("irqtest: ok ISA DMA ports are not handed out")
        .expect_serial_contains(
            "irqtest: ok the isa-debug-exit ports 0xf4..0xf7 are not handed out (they stop the system)",
        )
        .expect_serial_contains(
            "irqtest: ok every reserved I/O port range is refused, whole, by its last port and straddled",
        )
        .expect_serial_contains("irqtest: ok no device untyped covers the HPET page 0xfed00000")
        .expect_serial_contains("irqtest: ok no device untyped covers the MSI window 0xfee00000..0xfef00000")
        .expect_serial_contains("irqtest: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// An interrupt that never comes (QEMU without a PIT: irqtest programs ports nothing
/// answers): irqtest's bounded wait reports it and the system ends long before the
/// scenario's timeout, instead of idling until killed.
#[test]
fn missing_interrupt_fails_quickly_with_a_message() {
    let mut s = Scenario::new("irqtest_no_pit").append("init=irqtest");
    s.extra_args.extend(["-machine".to_string(), "pit=off".to_string()]);
    let started = std::time::Instant::now();
    let o = s.run();
    let took = started.elapsed();
    o.expect_serial_contains("irqtest: FAIL the PIT interrupt (ISA IRQ 0) did not arrive")
        .expect_serial_contains("irqtest: FAIL an interrupt arrives as a signal with the handler's badge")
        .expect_exit(ExitCode::UserFailure);
    assert!(took < o.timeout / 2, "the missing interrupt took {took:?} to report (timeout {:?})", o.timeout);
}
