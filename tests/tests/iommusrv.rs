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
/// The server is every IOSpace's fault handler through a notification bound to its TCB.
const NOTIFIED: &str = "iommu-server: device 0: DMA faults by notification, records popped with IoSpaceNextFault";

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
        .expect_serial_contains(NOTIFIED)
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

/// The `iommu-server` program as a component of a described system: init gives it the
/// `iommu` endpoint, edu's PciDevice cap and the driver's DMA pool; it builds edu's
/// IOSpace, assigns the device and serves. It never stops (a server): the run ends when
/// the kernel finds every thread blocked (the driver, `hello`, has nothing to do), or
/// by the timeout; the scenario checks what was printed by then.
#[test]
fn iommu_server_component_builds_the_domain() {
    use abi::system::{encode, Component, ComponentRole, Device, DeviceMatch, FaultPolicy, SystemParts, NONE};
    const M: u64 = 1024 * 1024;
    let mut p = SystemParts { supervisor: NONE, iommu_server: 0, min_ram_bytes: 64 * M, ..Default::default() };
    p.name = p.strings.add("iommusrv-component");
    let mut component = |name: &str, program: &str, role: ComponentRole| Component {
        name: p.strings.add(name),
        program: p.strings.add(program),
        budget_bytes: 2 * M,
        stack_bytes: 16 * 1024,
        heap_bytes: 64 * 1024,
        priority: 100,
        mcp: 100,
        cnode_radix: 10,
        role: role.raw(),
        fault_handler: NONE,
        fault_policy: FaultPolicy::Log.raw(),
        restart_limit: 0,
    };
    let server = component("iommu-server", "iommu-server", ComponentRole::IommuServer);
    let driver = component("edu-driver", "hello", ComponentRole::Driver);
    p.components = vec![server, driver];
    p.devices = vec![Device {
        name: p.strings.add("edu"),
        match_kind: DeviceMatch::VendorDevice.raw(),
        vendor: 0x1234,
        device: 0x11e8,
        dma_mask_bits: 28,
        driver: 1,
        fault_handler: NONE,
        dma_pool_bytes: 64 * 1024,
        ..Default::default()
    }];
    let desc = encode(&p);
    abi::system::SystemDesc::parse(&desc).expect("the test description is valid");
    let bytes = std::fs::read(scenarios::build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = abi::bootimage::BootImage::parse(&bytes).expect("build/boot.img parses");
    let mut files: Vec<(&str, &[u8])> =
        image.files().filter(|f| f.name != "system").map(|f| (f.name, f.data)).collect();
    assert!(files.iter().any(|f| f.0 == "iommu-server"), "the iommu-server program is packed");
    files.push(("system", &desc));
    let out = scenarios::scenario_dir().join("iommusrv_component.img");
    scenarios::make_image(&out, &files);
    let mut scenario = Scenario::new("iommusrv_component").initrd(Some(out)).args(&["-device", "edu"]);
    scenario.timeout = std::time::Duration::from_secs(20);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'iommusrv-component' started: 2 components")
        .expect_serial_contains("iommu-server: component 'iommu-server' generation 1: 1 devices")
        .expect_serial_contains("iommu-server: device 0: IOVAs below ")
        .expect_serial_contains("iommu-server: serving 1 devices")
        .expect_serial_contains(NOTIFIED)
        .expect_serial_not_contains("iommu-server: FAIL")
        .expect_serial_not_contains("iommu-server: exited");
}
