//! The user-level iommu-server scenario (`init=iommutest`).
//!
//! The iommu-server runs as a thread in its own VSpace and CSpace and builds edu's
//! VT-d domain from the caps it was given; an edu driver thread in another space gets
//! DMA buffers, an MSI and bus mastering only through it: IOVAs below edu's 28-bit
//! mask backed by RAM above 4 GiB, a guard page after every buffer, freed IOVAs
//! faulting (and the fault forwarded to the driver), the driver's frame caps revoked
//! with the buffer. The server's malicious attempts (a device frame, a forged slot,
//! a second IOSpace for the same device, a frame mapped into two domains) are refused
//! by the kernel; the supervisor cuts the device off at the end.

use abi::exit::ExitCode;
use scenarios::Scenario;

/// QEMU 7.2's remapping unit passes compatibility-format interrupts, so bus mastering
/// needs the logged opt-out (as in the other DMA scenarios).
const APPEND: &str = "init=iommutest iommu=allow-unremapped-dma";

#[test]
fn iommu_server_serves_an_edu_driver() {
    // edu's default DMA mask is 28 bits; 6 GiB puts RAM untyped above 4 GiB.
    let mut scenario = Scenario::new("iommusrv").append(APPEND).memory(6144);
    scenario.extra_args = vec!["-device".into(), "edu".into()];
    let o = scenario.run();
    o.expect_serial_not_contains("iommutest: FAIL")
        .expect_serial_not_contains("iommu-server: FAIL")
        .expect_serial_not_contains("ACCEPTED")
        .expect_serial_contains("iommu-server: device 0: IOVAs below 0x10000000 (dma mask 28 bits)")
        .expect_serial_contains("iommu-server: serving 1 devices")
        .expect_serial_contains("iommutest: ok enable decoding and bus mastering through the server")
        .expect_serial_contains("iommutest: ok a BAR read through the server is denied")
        .expect_serial_contains("iommutest: ok an MSI from the server")
        .expect_serial_contains("iommutest: ok dma_alloc of one page")
        .expect_serial_contains("iommutest: ok its IOVA lies below edu's 28-bit DMA mask")
        .expect_serial_contains("iommutest: ok its frame lies above 4 GiB")
        .expect_serial_contains("iommutest: ok edu DMA round trip RAM -> device -> RAM through the buffer")
        .expect_serial_contains("iommutest: ok one unmapped guard page lies between the buffers")
        .expect_serial_contains("iommutest: ok edu writes the third page of the buffer")
        .expect_serial_contains("iommutest: ok a DMA into the guard page faults and the fault is forwarded")
        .expect_serial_contains("iommutest: ok dma_free of the one-page buffer")
        .expect_serial_contains("iommutest: ok the driver's frame cap died with it (revoked)")
        .expect_serial_contains("iommutest: ok a DMA to the freed IOVA faults and the fault is forwarded")
        .expect_serial_contains("iommutest: ok freeing it again is refused")
        .expect_serial_contains("iommutest: ok the freed IOVA and frame are handed out again")
        .expect_serial_contains("iommutest: ok the supervisor cuts the device off")
        .expect_serial_contains("iommu-server: device 0 cut off: ")
        .expect_serial_contains("iommutest: done")
        .expect_exit(ExitCode::Success);
    for attempt in [
        "map a device-memory frame into the IOSpace",
        "map a forged frame slot into the IOSpace",
        "assign the device to a second IOSpace",
        "map a driver's mapped frame into another domain",
    ] {
        o.expect_serial_contains(&format!("iommu-server: malicious: {attempt}: refused ("));
    }
    // The server names what each faulting IOVA was.
    let guard = o.expect_line_starting("iommutest: guard page ");
    let guard = guard.trim_start_matches("iommutest: guard page ").split(':').next().unwrap().to_string();
    assert!(
        o.serial.lines().any(|l| l.starts_with("iommu-server: DMA fault: device 0 ")
            && l.contains(&format!("iova {guard} "))
            && l.ends_with("write: unmapped (guard page, freed buffer or never allocated)")),
        "the guard-page fault was not logged by the server; log in {}",
        o.log_path.display()
    );
}
