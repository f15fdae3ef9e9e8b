//! Composed-system scenarios: init builds components from a packed description.
//!
//! Each scenario packs a system description (`abi::system::encode`, the same form the
//! host tool writes) into a copy of the default boot image as its `system` entry and
//! boots it: the authority summary, channel IPC between two components, a read-only
//! region enforced, restart after a fault (generation 2), the restart limit (the
//! component stays down), and boot refusals (device missing, not enough RAM) with
//! nothing started.

use abi::bootimage::BootImage;
use abi::exit::ExitCode;
use abi::system::{
    encode, Channel, ChannelKind, Component, ComponentRole, Device, DeviceMatch, FaultPolicy, Region, RegionMap,
    SystemParts, NONE,
};
use scenarios::{build_dir, make_image, scenario_dir, Scenario};

const K: u64 = 1024;
const M: u64 = 1024 * 1024;

fn component(parts: &mut SystemParts, name: &str, program: &str, budget: u64, heap: u32) -> Component {
    Component {
        name: parts.strings.add(name),
        program: parts.strings.add(program),
        budget_bytes: budget,
        stack_bytes: 16 * 1024,
        heap_bytes: heap,
        priority: 100,
        mcp: 100,
        cnode_radix: 6,
        role: ComponentRole::Normal.raw(),
        fault_handler: NONE,
        fault_policy: FaultPolicy::Log.raw(),
        restart_limit: 0,
    }
}

/// server + client (channel `greet`, region `shared` read-only for the client) and
/// `crasher` (restart, limit 2).
fn compose_test(min_ram: u64, server_budget: u64) -> Vec<u8> {
    let mut p = SystemParts { supervisor: NONE, iommu_server: NONE, min_ram_bytes: min_ram, ..Default::default() };
    p.name = p.strings.add("compose-test");
    let server = component(&mut p, "server", "hello", server_budget, 512 * 1024);
    let client = component(&mut p, "client", "hello", 2 * M, 512 * 1024);
    let mut crasher = component(&mut p, "crasher", "crasher", M, 0);
    crasher.fault_policy = FaultPolicy::Restart.raw();
    crasher.restart_limit = 2;
    p.components = vec![server, client, crasher];
    let greet = p.strings.add("greet");
    p.channels = vec![Channel {
        name: greet,
        kind: ChannelKind::Endpoint.raw(),
        client: 1,
        server: 0,
        badge: 5,
        ..Default::default()
    }];
    let shared = p.strings.add("shared");
    p.regions = vec![Region { name: shared, size_bytes: 4 * K, readonly_for: 0 }];
    p.region_maps = vec![
        RegionMap { region: 0, component: 0, writable: 1, readonly: 0, _pad: 0, vaddr: 0 },
        RegionMap { region: 0, component: 1, writable: 0, readonly: 1, _pad: 0, vaddr: 0 },
    ];
    let bytes = encode(&p);
    abi::system::SystemDesc::parse(&bytes).expect("the test description is valid");
    bytes
}

/// An iommu-server and a driver for QEMU's edu device (1234:11e8).
fn with_edu() -> Vec<u8> {
    with_edu_driver("hello", FaultPolicy::Log, 0)
}

fn with_edu_driver(program: &str, policy: FaultPolicy, limit: u8) -> Vec<u8> {
    let mut p = SystemParts { supervisor: NONE, iommu_server: 0, min_ram_bytes: 64 * M, ..Default::default() };
    p.name = p.strings.add("compose-edu");
    let mut server = component(&mut p, "iommu-server", "hello", 2 * M, 0);
    server.role = ComponentRole::IommuServer.raw();
    let mut driver = component(&mut p, "edu-driver", program, 2 * M, 0);
    driver.role = ComponentRole::Driver.raw();
    driver.fault_policy = policy.raw();
    driver.restart_limit = limit;
    let mut mgmt = component(&mut p, "management", "hello", 2 * M, 0);
    mgmt.role = ComponentRole::Management.raw();
    mgmt.priority = 90;
    p.components = vec![server, driver, mgmt];
    p.devices = vec![Device {
        name: p.strings.add("edu"),
        match_kind: DeviceMatch::VendorDevice.raw(),
        vendor: 0x1234,
        device: 0x11e8,
        dma_mask_bits: 28,
        driver: 1,
        fault_handler: NONE,
        dma_pool_bytes: 64 * K,
        msi_count: 1,
        ..Default::default()
    }];
    let bytes = encode(&p);
    abi::system::SystemDesc::parse(&bytes).expect("the test description is valid");
    bytes
}

/// A management component with the supervisor cap and a worker it restarts, cuts off.
fn supervised() -> Vec<u8> {
    let mut p = SystemParts { supervisor: 0, iommu_server: NONE, min_ram_bytes: 64 * M, ..Default::default() };
    p.name = p.strings.add("compose-supervise");
    let mut mgmt = component(&mut p, "management", "hello", 2 * M, 0);
    mgmt.role = ComponentRole::Management.raw();
    mgmt.priority = 90;
    let worker = component(&mut p, "worker", "hello", 2 * M, 0);
    p.components = vec![mgmt, worker];
    let bytes = encode(&p);
    abi::system::SystemDesc::parse(&bytes).expect("the test description is valid");
    bytes
}

/// Two edus behind one PCIe-to-PCI bridge (one alias group), each with its own driver.
fn alias_pair() -> Vec<u8> {
    let mut p = SystemParts { supervisor: NONE, iommu_server: 0, min_ram_bytes: 64 * M, ..Default::default() };
    p.name = p.strings.add("compose-alias");
    let mut server = component(&mut p, "iommu-server", "hello", 2 * M, 0);
    server.role = ComponentRole::IommuServer.raw();
    let mut a = component(&mut p, "driver-a", "hello", 2 * M, 0);
    a.role = ComponentRole::Driver.raw();
    let mut b = component(&mut p, "driver-b", "hello", 2 * M, 0);
    b.role = ComponentRole::Driver.raw();
    p.components = vec![server, a, b];
    let edu = |p: &mut SystemParts, name: &str, devfn: u8, driver: u16| Device {
        name: p.strings.add(name),
        match_kind: DeviceMatch::PciAddress.raw(),
        bus: 1,
        devfn,
        dma_mask_bits: 28,
        driver,
        fault_handler: NONE,
        dma_pool_bytes: 64 * K,
        ..Default::default()
    };
    p.devices = vec![edu(&mut p, "edu-a", 0, 1), edu(&mut p, "edu-b", 1 << 3, 2)];
    let bytes = encode(&p);
    abi::system::SystemDesc::parse(&bytes).expect("the test description is valid");
    bytes
}

/// The default boot image with `system` = `desc`.
fn image_with(name: &str, desc: &[u8]) -> std::path::PathBuf {
    let bytes = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = BootImage::parse(&bytes).expect("build/boot.img parses");
    let mut files: Vec<(&str, &[u8])> =
        image.files().filter(|f| f.name != "system").map(|f| (f.name, f.data)).collect();
    assert!(files.iter().any(|f| f.0 == "hello") && files.iter().any(|f| f.0 == "crasher"), "hello, crasher packed");
    files.push(("system", desc));
    let out = scenario_dir().join(format!("{name}.img"));
    make_image(&out, &files);
    out
}

/// systems/compose-test.toml through the host tool's library (what `mksys` packs).
fn compose_test_toml() -> Vec<u8> {
    let path = scenarios::repo_root().join("systems/compose-test.toml");
    let text = std::fs::read_to_string(&path).expect("systems/compose-test.toml");
    let programs: Vec<String> = ["root", "hello", "crasher"].iter().map(|s| s.to_string()).collect();
    let bytes = scenarios::sysdesc::compile("systems/compose-test.toml", &text, Some(&programs))
        .unwrap_or_else(|e| panic!("systems/compose-test.toml: {e:?}"));
    // The hand-built form of the same description packs to the same bytes.
    assert_eq!(bytes, compose_test(64 * M, 2 * M), "toml and hand-built description differ");
    bytes
}

#[test]
fn composed_system_runs_supervised() {
    let o = Scenario::new("compose").initrd(Some(image_with("compose", &compose_test_toml()))).run();
    o.expect_serial_contains("init: system 'compose-test': 3 components, 1 channels, 1 regions, 0 devices")
        .expect_serial_contains("graph: client -> server [ep greet badge 5]")
        .expect_serial_contains("graph: server -> region:shared [rw]")
        .expect_serial_contains("graph: client -> region:shared [ro]")
        .expect_serial_contains("init: system 'compose-test' started: 3 components");
    let server = o.expect_line_starting("authority: server: ");
    assert!(server.contains("ep greet (recv)") && server.contains("region shared (rw)"), "{server}");
    let client = o.expect_line_starting("authority: client: ");
    assert!(client.contains("ep greet (send)") && client.contains("region shared (ro)"), "{client}");
    // The components see their info pages; the heap region is claimed.
    let info = o.expect_line_starting("hello: client: index 1 generation 1, 2 caps");
    assert!(info.contains("heap 512 KiB"), "{info}");
    o.expect_line_starting("hello: server: heap ok: 307200 bytes");
    // Its own VSpace cap (slot 3) and spare untyped (slot 10): it maps a page itself.
    o.expect_serial_contains("hello: client: mapped a page of its own untyped at 0x600000080000: reads 0x1234");
    // Channel IPC: the client's badge reaches the server, the reply comes back.
    o.expect_serial_contains("hello: server: got 41 with badge 5 on greet")
        .expect_serial_contains("hello: client: greet answered 42")
        // The region is shared; read-only for the client: its write faults.
        .expect_serial_contains("hello: client: region shared reads 0x68656c6c6f21")
        .expect_serial_not_contains("NOT refused")
        .expect_serial_contains("init: server exited with code 0");
    let fault = o.expect_line_starting("init: fault in client: page fault (write 0x5000");
    assert!(fault.ends_with("; policy log (left suspended)"), "{fault}");
    // Components get a print-only debug console: the crasher's Halt is refused and the
    // system goes on (generation 1 faults as planned).
    o.expect_serial_contains("crasher: halt refused: InsufficientRights");
    // Restart: generation 2 and 3 run, then the limit keeps it down.
    o.expect_serial_contains("crasher: generation 1: reading 0xdead0000")
        .expect_serial_contains("policy restart (1 of 2)")
        .expect_serial_contains("init: restarted crasher: generation 2")
        .expect_serial_contains("crasher: generation 2: reading 0xdead0000")
        .expect_serial_contains("policy restart (2 of 2)")
        .expect_serial_contains("crasher: generation 3: reading 0xdead0000")
        .expect_serial_contains("policy restart: limit (2) reached, crasher stays down")
        .expect_serial_not_contains("crasher: generation 4")
        .expect_serial_contains("init: system 'compose-test': every component stopped")
        .expect_exit(ExitCode::Success);
    let crashes = o.lines_starting("init: fault in crasher: page fault (read 0xdead0000) at 0x");
    assert_eq!(crashes.len(), 3, "{crashes:?}");
}

#[test]
fn devices_go_to_the_iommu_server_and_driver() {
    let o = Scenario::new("compose_edu")
        .args(&["-device", "edu,dma_mask=0xffffffffffffffff"])
        .initrd(Some(image_with("compose_edu", &with_edu())))
        .run();
    let server = o.expect_line_starting("authority: iommu-server: ");
    assert!(server.contains("ep iommu (recv)") && server.contains("device edu") && server.contains("dma pool edu"));
    let driver = o.expect_line_starting("authority: edu-driver: ");
    assert!(driver.contains("dma via iommu-server edu") && driver.contains("device edu 00:"), "{driver}");
    assert!(driver.contains("bar edu"), "{driver}");
    o.expect_serial_contains("graph: iommu-server -> device:edu [pci 00:")
        .expect_serial_contains("graph: edu-driver -> iommu-server [dma edu, pool 64 KiB]")
        .expect_serial_contains(
            "hello: iommu-server: cap edu Some(PciDevice) rights 0xf slot 17 vaddr 0x0 size 0x1c badge 0",
        )
        .expect_serial_contains("hello: iommu-server: cap edu Some(Untyped) rights 0xf slot")
        // Its MSI, bound to edu: the address is a remappable-format one (bit 4 set).
        .expect_serial_contains("hello: iommu-server: cap edu Some(Msi) rights 0xf slot 18 vaddr 0xfee")
        .expect_serial_contains("hello: edu-driver: cap edu Some(IommuClient) rights 0xe")
        // The server may mint its own endpoint; management may send supervisor requests,
        // its cap badged with its component index (2): the server serves it for the
        // devices it handles only.
        .expect_serial_contains("hello: iommu-server: cap iommu Some(Endpoint) rights 0xf slot 16")
        .expect_serial_contains(&format!(
            "hello: management: cap iommu Some(IommuClient) rights 0xe slot 16 vaddr 0x0 size 0x0 badge {}",
            abi::iommu::supervisor_badge(2)
        ))
        // edu's BAR 0 page, mapped for the driver: its identification register; the
        // slot holds a copy of the first page's cap (a VMM maps it into its guest).
        .expect_serial_contains("hello: edu-driver: cap edu Some(DeviceFrame) rights 0xf slot 17 vaddr 0x500000000000")
        .expect_serial_contains("hello: edu-driver: edu BAR0 at 0x500000000000 reads 0x010000ed")
        // The whole BAR (edu's is 1 MiB; init maps at most 256 KiB of one): its last
        // mapped page answers (edu reads all ones outside its registers).
        .expect_serial_contains(
            "hello: edu-driver: cap edu Some(DeviceFrame) rights 0xf slot 17 vaddr 0x500000000000 size 0x40000",
        )
        .expect_serial_contains("hello: edu-driver: edu BAR0 last page at 0x50000003f000 reads 0xffffffff")
        .expect_serial_contains("init: system 'compose-edu': every component stopped")
        .expect_exit(ExitCode::Success);
}

#[test]
fn supervisor_restarts_and_cuts_off_on_request() {
    let o = Scenario::new("compose_supervise").initrd(Some(image_with("compose_supervise", &supervised()))).run();
    let mgmt = o.expect_line_starting("authority: management: ");
    assert!(mgmt.contains("supervisor supervisor"), "{mgmt}");
    o.expect_serial_contains("hello: management: cap supervisor Some(Supervisor) rights 0xa slot 16")
        .expect_serial_contains("init: management asks to restart worker")
        .expect_serial_contains("init: restarted worker: generation 2")
        // The worker outranks management: the fresh instance runs before the reply.
        .expect_serial_contains("hello: worker: index 1 generation 2, 0 caps")
        .expect_serial_contains("hello: management: restart #1: status 0 generation 2")
        .expect_serial_contains("init: management cuts worker off: it stays down")
        .expect_serial_contains("hello: management: cutoff #1: status 0")
        .expect_serial_contains("init: system 'compose-supervise': every component stopped")
        .expect_exit(ExitCode::Success);
}

#[test]
fn two_devices_of_one_alias_group_are_refused() {
    let edu = "edu,dma_mask=0xffffffffffffffff";
    let o = Scenario::new("compose_alias")
        .args(&[
            "-device",
            "pcie-pci-bridge,id=br,bus=pcie.0,addr=0x5",
            "-device",
            &format!("{edu},bus=br,addr=0x0"),
            "-device",
            &format!("{edu},bus=br,addr=0x1"),
        ])
        .initrd(Some(image_with("compose_alias", &alias_pair())))
        .run();
    o.expect_serial_contains(
        "init: system 'compose-alias': devices 'edu-a' and 'edu-b' are in one alias group (01:01.0): a group is assigned whole: nothing started",
    )
    .expect_serial_not_contains("hello:")
    .expect_exit(ExitCode::UserFailure);
}

/// A driver that faults is rebuilt from its budget: its DMA pool (in the
/// iommu-server's CNode) dies with it, so the fresh pool can move into the same slot
/// (a Move into a slot still holding the old pool would fail the restart).
#[test]
fn a_restarted_driver_gets_a_fresh_pool_in_the_same_slot() {
    let desc = with_edu_driver("crasher", FaultPolicy::Restart, 1);
    let o = Scenario::new("compose_driver_restart")
        .args(&["-device", "edu,dma_mask=0xffffffffffffffff"])
        .initrd(Some(image_with("compose_driver_restart", &desc)))
        .run();
    o.expect_serial_contains("hello: iommu-server: cap edu Some(Untyped) rights 0xf slot 19")
        .expect_serial_contains("crasher: generation 1: reading 0xdead0000")
        .expect_serial_contains("init: fault in edu-driver: page fault (read 0xdead0000) at 0x")
        .expect_serial_contains("policy restart (1 of 1)")
        .expect_serial_contains("init: restarted edu-driver: generation 2")
        .expect_serial_contains("crasher: generation 2: reading 0xdead0000")
        .expect_serial_contains("policy restart: limit (1) reached, edu-driver stays down")
        .expect_serial_not_contains("failed")
        .expect_serial_contains("init: system 'compose-edu': every component stopped")
        .expect_exit(ExitCode::Success);
}

#[test]
fn missing_device_stops_the_boot_with_nothing_started() {
    let o = Scenario::new("compose_nodev").initrd(Some(image_with("compose_nodev", &with_edu()))).run();
    o.expect_serial_contains("init: system 'compose-edu': device 'edu' (1234:11e8) not found: nothing started")
        .expect_serial_not_contains("hello:")
        .expect_serial_not_contains("authority:")
        .expect_exit(ExitCode::UserFailure);
}

/// systems/default.toml packed into the kernel (as `make run SYSTEM=default` boots
/// it); without an edu device init refuses it before starting anything.
#[test]
fn default_system_without_its_device_is_refused() {
    let mut scenario = Scenario::new("compose_default_nodev");
    scenario.kernel = scenarios::systems::elf_for("default", "compose_default_nodev");
    let o = scenario.run();
    o.expect_serial_contains("root: the console server wrote 50 bytes")
        .expect_serial_contains("init: system 'default': device 'edu' (1234:11e8) not found: nothing started")
        .expect_serial_not_contains("authority:")
        .expect_exit(ExitCode::UserFailure);
}

#[test]
fn a_budget_too_small_for_its_component_is_refused() {
    let desc = compose_test(64 * M, 768 * K);
    let o = Scenario::new("compose_budget").initrd(Some(image_with("compose_budget", &desc))).run();
    let line = o.expect_line_starting("init: system 'compose-test': component 'server' needs ");
    assert!(line.ends_with("its budget is 768 KiB: nothing started"), "{line}");
    o.expect_serial_not_contains("hello:").expect_exit(ExitCode::UserFailure);
}

#[test]
fn not_enough_ram_stops_the_boot_with_nothing_started() {
    let desc = compose_test(1024 * M, 512 * M);
    let o = Scenario::new("compose_nomem").initrd(Some(image_with("compose_nomem", &desc))).run();
    let line = o.expect_line_starting("init: system 'compose-test': not enough RAM: budgets and regions need ");
    assert!(line.ends_with("KiB of RAM untyped available: nothing started"), "{line}");
    o.expect_serial_not_contains("hello:").expect_exit(ExitCode::UserFailure);
}

/// ISA devices (`[isa.<name>]`): each component gets its ports and its line; a
/// management component's line rings its fault doorbell (`IrqLine` size
/// `DOORBELL_IRQ`), an ordinary component's is left for it to bind (size 0).
#[test]
fn isa_devices_give_ports_and_a_line_bound_only_for_management() {
    let text = "[system]\nname = \"compose-isa\"\nmin_ram = \"64M\"\n\n\
                [components.management]\nprogram = \"hello\"\nrole = \"management\"\nbudget = \"2M\"\nheap = \"0\"\n\n\
                [components.worker]\nprogram = \"hello\"\nbudget = \"2M\"\nheap = \"0\"\n\n\
                [isa.com2]\nports = [[0x2f8, 0x2ff]]\nirq = 3\ncomponent = \"worker\"\n\n\
                [isa.com4]\nports = [[0x2e8, 0x2ef]]\nirq = 4\ncomponent = \"management\"\n";
    let programs: Vec<String> = ["root", "hello"].iter().map(|s| s.to_string()).collect();
    let desc =
        scenarios::sysdesc::compile("compose-isa.toml", text, Some(&programs)).unwrap_or_else(|e| panic!("{e:?}"));
    let o = Scenario::new("compose_isa").initrd(Some(image_with("compose_isa", &desc))).run();
    o.expect_serial_contains("graph: worker -> isa:com2 [ports 0x2f8..=0x2ff, irq 3]")
        .expect_serial_contains("graph: management -> isa:com4 [ports 0x2e8..=0x2ef, irq 4]")
        .expect_serial_contains("init: system 'compose-isa' started: 2 components");
    let worker = o.expect_line_starting("authority: worker: ");
    assert!(worker.contains("ports com2, irq com2") && !worker.contains("com4"), "{worker}");
    let mgmt = o.expect_line_starting("authority: management: ");
    assert!(mgmt.contains("ports com4, irq com4") && !mgmt.contains("com2"), "{mgmt}");
    let cap = |who: &str, kind: &str| {
        o.expect_line_starting(&format!(
            "hello: {who}: cap {} Some({kind}) ",
            if who == "worker" { "com2" } else { "com4" }
        ))
        .to_string()
    };
    assert!(cap("worker", "IoPort").ends_with("vaddr 0x2f8 size 0x8 badge 0"), "{}", cap("worker", "IoPort"));
    assert!(cap("worker", "IrqLine").ends_with("size 0x0 badge 3"), "{}", cap("worker", "IrqLine"));
    assert!(cap("management", "IoPort").ends_with("vaddr 0x2e8 size 0x8 badge 0"), "{}", cap("management", "IoPort"));
    assert!(cap("management", "IrqLine").ends_with("size 0x4 badge 4"), "{}", cap("management", "IrqLine"));
    o.expect_serial_contains("init: system 'compose-isa': every component stopped").expect_exit(ExitCode::Success);
}
