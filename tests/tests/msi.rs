//! MSI through interrupt remapping scenario (`init=edu`).
//!
//! MSI through interrupt remapping with the user-level edu driver (`init=edu`): the
//! kernel hands out an MSI bound to a PciDevice (an IRTE accepting only its requester
//! id), the driver programs it and runs DMA in both directions completed by the MSI,
//! refuses transfers QEMU would abort on; a second edu programmed with the first one's
//! MSI address raises nothing, and deleting a handler cap blocks that device's MSI.
//! Without interrupt remapping the kernel hands out no MSI. QEMU 7.2's unit passes
//! compatibility-format interrupts, so bus mastering needs `iommu=allow-unremapped-dma`.

use abi::exit::ExitCode;
use scenarios::{Iommu, Outcome, Scenario};

const EDU: &str = "edu,dma_mask=0xffffffffffffffff";

#[test]
fn edu_driver_with_remapped_msis() {
    edu_driver("edu_msi", Iommu::Default);
}

/// The same with 4-level IO page tables (aw-bits=48; QEMU turns remapping on by default).
#[test]
fn edu_driver_with_remapped_msis_4_level() {
    edu_driver("edu_msi_aw48", Iommu::AwBits(48));
}

fn edu_driver(name: &str, iommu: Iommu) {
    // QEMU 7.2 passes compatibility-format interrupts: bus mastering needs the opt-out.
    let mut scenario = Scenario::new(name).append("init=edu iommu=allow-unremapped-dma").iommu(iommu);
    scenario.extra_args = vec!["-device".into(), EDU.into(), "-device".into(), EDU.into()];
    let o = scenario.run();
    o.expect_serial_contains(
        "warning: iommu: iommu=allow-unremapped-dma: bus mastering allowed although compatibility-format interrupts are not known to be blocked; any bus master can raise any vector, NMI or INIT",
    );
    o.expect_serial_not_contains("edu: FAIL")
        .expect_serial_contains("edu: ok the kernel returns a remappable-format MSI address")
        .expect_serial_contains("edu: ok program the MSI capability through the PciDevice cap")
        .expect_serial_contains("edu: ok GetMsi with something other than a PciDevice is refused")
        .expect_serial_contains("edu: ok an interrupt the device raises arrives as its MSI")
        .expect_serial_contains("edu: ok RAM -> device DMA completes by MSI")
        .expect_serial_contains("edu: ok device -> RAM DMA completes by MSI")
        .expect_serial_contains("edu: ok the data made the round trip RAM -> device -> RAM intact")
        .expect_serial_contains("edu: ok a zero-length transfer is refused")
        .expect_serial_contains("edu: ok a transfer past the device buffer is refused")
        .expect_serial_contains("edu: ok an offset that wraps is refused")
        .expect_serial_contains("edu: ok edu #2 raising it reaches nobody (the IRTE checks the requester)")
        .expect_serial_contains("edu: ok edu #2's own MSI arrives on its notification and nowhere else")
        .expect_serial_contains("edu: ok after the delete edu #2's MSI is blocked")
        .expect_serial_contains("edu: ok a compatibility-format MSI address is refused")
        .expect_serial_contains("edu: ok the remappable-format address stays programmed")
        .expect_serial_contains("edu: ok the freed vector is handed to edu #1")
        .expect_serial_contains("edu: ok edu #2's stale MSI address does not reach the vector's new owner")
        .expect_serial_contains("edu: all checks passed")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_exit(ExitCode::Success);
    forged_exception_vectors(&o);
    forged_spurious_vector_and_nmi(&o);
    // A blocked MSI never reaches the CPU: edu #2's vector never fires after its IRTE
    // is gone; edu #1's fires unbound once its notification was deleted.
    let msi = o.expect_line_starting("edu: MSI on vector ");
    let vector = msi.split_whitespace().nth(4).expect("vector").trim_end_matches(':').to_string();
    o.expect_serial_contains("edu: ok the MSI arrives again");
    o.expect_serial_contains("edu: ok after a burst of MSIs the vector works again on a later tick");
    o.expect_serial_contains(&format!(
        "irq: MSI vector {vector} raised more than 64 times in one tick; masked until the next tick"
    ));
    let unbound: Vec<&str> = o.serial.lines().filter(|l| l.contains("fired with no notification bound")).collect();
    assert_eq!(unbound.len(), 1, "{unbound:?}");
    assert!(unbound[0].contains(&format!("irq: MSI vector {vector} ")), "{unbound:?}");
    assert!(msi.contains("address 0xfee") && msi.ends_with("data 0x0"), "{msi}");
    // The handler cap deleted with an MSI pending: the late MSI is ignored, does not
    // throttle the freed vector, and the tick does not bring its IRTE back (the device
    // raising again reaches nothing: no "fired" line after the release).
    o.expect_serial_contains("edu: ok the freed vector is handed out again");
    o.expect_serial_contains("edu: ok 64 MSIs delivered one at a time");
    o.expect_serial_contains("edu: ok delete the MSI handler cap right after a raise");
    o.expect_serial_contains("edu: raised the released vector's MSI again after several ticks");
    let released = format!("irq: MSI vector {vector} fired after its release; ignored");
    let after: Vec<&str> = o.serial.lines().skip_while(|l| !l.contains("64 MSIs delivered one at a time")).collect();
    assert_eq!(after.iter().filter(|l| l.contains(&released)).count(), 3, "three late MSIs, ignored: {after:?}");
    assert!(
        !after.iter().any(|l| l.contains(&format!("irq: MSI vector {vector} raised more than"))
            || l.contains("fired with no notification bound")),
        "the released vector was throttled or reached again: {after:?}"
    );
}

/// QEMU 7.2 delivers a compatibility-format message a device DMA-writes to the MSI
/// window even with remapping on: exception vectors arriving that way are dropped
/// (recognised by the LAPIC's in-service bit), never handled as the exception.
fn forged_exception_vectors(o: &scenarios::Outcome) {
    for (vector, name, mode) in [
        (14, "#PF page fault", "kernel"),
        (8, "#DF double fault", "kernel"),
        (14, "#PF page fault", "user"),
        (8, "#DF double fault", "user"),
        (13, "#GP general protection", "user"),
        (2, "NMI", "user"),
        (18, "#MC machine check", "kernel"),
    ] {
        o.expect_serial_contains(&format!(
            "edu: ok the system survives vector {vector} DMA-written to the MSI window ({mode} mode)"
        ));
        o.expect_serial_contains(&format!("irq: exception vector {vector} ({name}) arrived as an interrupt ("));
    }
    o.expect_serial_contains("arrived as an interrupt (user mode), not raised by the CPU: dropped");
}

/// The spurious vector 0xff forged the same way is in service at the LAPIC (a real
/// spurious interrupt never is) and must be ended with an EOI, else the timer and every
/// MSI stay blocked; a forged NMI striking while the kernel prints must not deadlock on
/// the console lock (the NMI is counted and logged later, from the timer tick).
fn forged_spurious_vector_and_nmi(o: &scenarios::Outcome) {
    o.expect_serial_contains(
        "edu: ok the timer still preempts after vector 255 (spurious) is DMA-written to the MSI window",
    )
    .expect_serial_contains("edu: ok the completion MSI arrives after the forged vector 255")
    .expect_serial_contains("edu: ok the next MSI arrives after the forged vector 255")
    .expect_serial_contains("edu: ok the system survives vector 255 DMA-written to the MSI window (kernel mode)")
    .expect_serial_contains("irq: vector 0xff in service (not a spurious interrupt): ended with an EOI (1 so far")
    .expect_serial_contains("irq: vector 0xff in service (not a spurious interrupt): ended with an EOI (2 so far")
    .expect_serial_contains("edu: ok the system survives an NMI DMA-written to the MSI window during console output")
    .expect_serial_contains("irq: 1 NMI so far (the last at rip ");
    let during = o.expect_line_starting("edu: NMI message DMA-written to 0xfee00000 during ");
    assert!(during.ends_with("done true"), "{during}");
}

/// QEMU 7.2's remapping unit passes compatibility-format interrupts although CFI is
/// clear: the boot probe sees its I/O APIC message arrive, and without the opt-out Bus
/// Master Enable is refused although remapping is on (a bus master could otherwise
/// DMA-write INIT, NMI or any vector to 0xfee00000). MSIs are still handed out.
#[test]
fn bus_mastering_refused_when_compatibility_format_passes() {
    let mut scenario = Scenario::new("edu_cfi_gap").append("init=edu").iommu(Iommu::Default);
    scenario.extra_args = vec!["-device".into(), EDU.into()];
    let o = scenario.run();
    o.expect_serial_contains(
        "warning: iommu: the remapping unit passes compatibility-format interrupts (QEMU < 8): a bus master could raise any vector, NMI or INIT; bus mastering refused unless iommu=allow-unremapped-dma",
    )
    .expect_serial_contains("edu: ok the kernel returns a remappable-format MSI address");
    expect_bus_mastering_refused(&o);
}

/// The probe must not fail open: pointed at an I/O APIC pin with nothing wired
/// (`test_cfi_probe_irq=23`), neither the compatibility-format interrupt nor the control
/// through an IRTE arrives, so the verdict is "inconclusive", never "blocked": bus
/// mastering stays refused (and AHCI's, left on by firmware, is cleared at boot).
#[test]
fn probe_on_an_unwired_pin_is_inconclusive() {
    let mut scenario = Scenario::new("edu_cfi_unwired").append("init=edu test_cfi_probe_irq=23").iommu(Iommu::Default);
    scenario.extra_args = vec!["-device".into(), EDU.into()];
    let o = scenario.run();
    o.expect_serial_contains(
        "test_cfi_probe_irq: the compatibility-format probe uses IRQ 23 instead of the PIT's (IRQ 0)",
    )
    .expect_serial_contains(
        "warning: iommu: compatibility-format probe inconclusive: the control interrupt through an IRTE did not arrive",
    )
    .expect_serial_not_contains("compatibility-format interrupts blocked")
    .expect_serial_not_contains("still pending")
    .expect_serial_contains("pci 0000:00:1f.2: bus mastering left on by firmware turned off");
    expect_bus_mastering_refused(&o);
}

/// edu ran to the end with Bus Master Enable refused and still clear, and nothing
/// anywhere allowed bus mastering.
fn expect_bus_mastering_refused(o: &Outcome) {
    o.expect_serial_contains(
        "edu: bus mastering refused with interrupt remapping on (compatibility-format interrupts not known to be blocked)",
    )
    .expect_serial_contains("edu: ok Bus Master Enable stays clear")
    .expect_serial_not_contains("edu: FAIL")
    .expect_serial_not_contains("bus mastering allowed")
    .expect_serial_contains("edu: all checks passed")
    .expect_exit(ExitCode::Success);
}

#[test]
fn no_msis_without_interrupt_remapping() {
    let mut scenario = Scenario::new("edu_no_ir").append("init=edu").iommu(Iommu::NoInterruptRemapping);
    scenario.extra_args = vec!["-device".into(), EDU.into()];
    let o = scenario.run();
    o.expect_serial_not_contains("edu: FAIL")
        .expect_serial_contains("edu: no interrupt remapping: GetMsi refused with IllegalOperation")
        .expect_serial_contains("edu: ok writing its MSI address is refused without remapping")
        .expect_serial_contains("edu: bus mastering refused without interrupt remapping")
        .expect_serial_contains("edu: all checks passed")
        .expect_exit(ExitCode::Success);
    o.expect_line_starting("iommu: interrupt remapping unavailable (0 of 1 units support it)");
    o.expect_serial_contains(
        "iommu: interrupt remapping off: bus mastering refused (iommu=allow-unremapped-dma allows it)",
    );
    let command = o.expect_line_starting("edu: command register now ");
    let value = u64::from_str_radix(command.trim_start_matches("edu: command register now 0x"), 16);
    assert!(value.is_ok_and(|v| v & 0x4 == 0), "Bus Master Enable set: {command}");
}

/// The logged opt-out: bus mastering without interrupt remapping.
#[test]
fn bus_mastering_without_remapping_by_opt_out() {
    let mut scenario = Scenario::new("edu_no_ir_optout")
        .append("init=edu iommu=allow-unremapped-dma")
        .iommu(Iommu::NoInterruptRemapping);
    scenario.extra_args = vec!["-device".into(), EDU.into()];
    let o = scenario.run();
    o.expect_serial_not_contains("edu: FAIL")
        .expect_serial_contains("edu: bus mastering allowed without interrupt remapping (iommu=allow-unremapped-dma)")
        .expect_serial_contains("edu: all checks passed")
        .expect_exit(ExitCode::Success);
    o.expect_serial_contains(
        "iommu: iommu=allow-unremapped-dma: bus mastering allowed without interrupt remapping; any bus master can raise any interrupt vector",
    );
}
