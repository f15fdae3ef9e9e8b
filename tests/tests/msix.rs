//! MSI-X scenario: two virtio-net functions, entries written only by the kernel.
//!
//! MSI-X through interrupt remapping (`init=dmatest` with two modern virtio-net
//! functions behind the IOMMU, which interrupt only by MSI-X): the kernel reports the
//! capability, keeps table and PBA pages out of device untyped, writes entries itself
//! and alone writes the message control; a vector fires, a stale entry naming another
//! device's vector raises nothing, deleting a vector's cap blocks it.

use abi::exit::ExitCode;
use scenarios::{Iommu, Scenario};

const VIRTIO_NET: &str = "virtio-net-pci,iommu_platform=on,disable-legacy=on";

#[test]
fn msix_with_two_virtio_net_functions() {
    // QEMU 7.2 passes compatibility-format interrupts: bus mastering (which MSI-X
    // messages need) takes the opt-out, as in the MSI scenario.
    let mut scenario =
        Scenario::new("msix_virtio").append("init=dmatest iommu=allow-unremapped-dma").iommu(Iommu::Default);
    scenario.extra_args = vec!["-device".into(), VIRTIO_NET.into(), "-device".into(), VIRTIO_NET.into()];
    let o = scenario.run();
    o.expect_serial_not_contains("dmatest: FAIL").expect_serial_contains("pages kept out of device untyped");
    for name in ["A", "B"] {
        o.expect_serial_contains(&format!("dmatest: ok {name}: the kernel reports its MSI-X capability"))
            .expect_serial_contains(&format!("dmatest: ok {name}: no device frame covers its MSI-X table page"))
            .expect_serial_contains(&format!("dmatest: ok {name}: no device frame covers its PBA page"))
            .expect_serial_contains(&format!(
                "dmatest: ok {name}: a ConfigWrite to the MSI-X message control is refused"
            ))
            .expect_serial_contains(&format!(
                "dmatest: ok {name}: the rest of the BARs stays mappable (common config page)"
            ));
    }
    o.expect_serial_contains("dmatest: ok GetMsix with memory decoding off is refused")
        .expect_serial_contains("dmatest: ok GetMsix past the table is refused")
        .expect_serial_contains("dmatest: ok MsixControl with another bit is refused")
        .expect_serial_contains("dmatest: ok a second cap for the same entry is refused")
        .expect_serial_contains("dmatest: ok A reports the driver error (NEEDS_RESET)")
        .expect_serial_contains("dmatest: ok A's config-change interrupt arrives on A's MSI-X vector")
        .expect_serial_contains("dmatest: ok B's entry 0 gets the vector A's stale entry names")
        .expect_serial_contains("dmatest: ok A's stale entry naming B's vector raises nothing")
        .expect_serial_contains("dmatest: ok B's own config-change interrupt arrives on B's vector")
        .expect_serial_contains("dmatest: ok after the delete B's interrupt is blocked")
        .expect_serial_contains("dmatest: ok the blocked message waited in the PBA (entry masked, pending)")
        .expect_serial_contains("dmatest: ok unmasking the reprogrammed entry delivers it")
        .expect_serial_contains("dmatest: ok masking an MSI handler's entry is refused for a plain MSI")
        .expect_serial_contains("dmatest: ok after a burst of raises B's vector works again on a later tick")
        .expect_serial_contains(
            "irq: MSI vector 0x80 raised more than 64 times in one tick; masked until the next tick",
        )
        .expect_serial_contains("dmatest: all checks passed")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_exit(ExitCode::Success);
    // QEMU reports each driver error, and the one message the remapping unit refused:
    // A's (00:03.0, sid 24) stale entry naming the IRTE now owned by B (00:04.0, 32).
    let stderr = &o.qemu_stderr;
    assert!(stderr.matches("wrong value for queue_enable 0").count() > 4, "{stderr}");
    assert_eq!(stderr.matches("invalid IRTE SID").count(), 1, "{stderr}");
    assert!(stderr.contains("sid=24, source_id=32)"), "{stderr}");
    // No untyped covers a table or PBA page: every boot-logged MSI-X table is excluded.
    for line in o.lines_starting("pci 0000:").into_iter().filter(|l| l.contains("MSI-X") && l.contains("table 0x")) {
        let table = line.split("table ").nth(1).and_then(|s| s.split_whitespace().next()).expect("table address");
        let table = u64::from_str_radix(table.trim_start_matches("0x"), 16).expect("hex");
        for u in o.lines_starting("untyped: 0x") {
            let mut words = u.split_whitespace().skip(1);
            let base = u64::from_str_radix(words.next().unwrap().trim_start_matches("0x"), 16).unwrap();
            let bits: u32 = words.next().unwrap().trim_start_matches('2').trim_start_matches('^').parse().unwrap();
            assert!(!(base..base + (1u64 << bits)).contains(&table), "{u} covers the MSI-X table of {line}");
        }
    }
}
