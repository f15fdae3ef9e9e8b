//! Host tests of `mksys`: one per description error, the default system, DOT.
//!
//! No QEMU: these compile TOML text with `scenarios::sysdesc::compile` (and run the
//! `mksys` binary once) and assert the exact `file:line: entry: message` lines.

use abi::system::{ComponentRole, DeviceMatch, FaultPolicy, SystemDesc, NONE};
use scenarios::sysdesc::{compile, dot};

/// Programs every test system may name.
fn programs() -> Vec<String> {
    ["root", "iommu-server", "edudrv", "management"].iter().map(|s| s.to_string()).collect()
}

/// A valid system; tests append tables or replace lines.
const BASE: &str = r#"[system]
name = "t"
min_ram = "64M"

[components.iommu-server]
program = "iommu-server"
role = "iommu-server"
priority = 200
budget = "4M"

[components.management]
program = "management"
budget = "1M"

[components.drv]
program = "edudrv"
budget = "2M"

[devices.edu]
match = { vendor = 0x1234, device = 0x11e8 }
driver = "drv"
dma_pool = "64K"
"#;

fn errors(text: &str) -> Vec<String> {
    match compile("t.toml", text, Some(&programs())) {
        Ok(_) => panic!("accepted a bad description:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that `text` is rejected with exactly the one error `want`.
fn rejects(text: &str, want: &str) {
    let got = errors(text);
    assert_eq!(got, [want.to_string()], "description:\n{text}");
}

#[test]
fn base_system_is_accepted_and_packed() {
    let bytes = compile("t.toml", BASE, Some(&programs())).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    let names: Vec<&str> = d.components().iter().map(|c| d.str(c.name)).collect();
    assert_eq!(names, ["iommu-server", "management", "drv"], "file order is kept");
    let drv = d.components().get(2).unwrap();
    assert_eq!(drv.role, ComponentRole::Driver.raw(), "a component named as driver is a driver");
    assert_eq!((drv.priority, drv.mcp, drv.cnode_radix, drv.stack_bytes, drv.heap_bytes), (100, 100, 10, 16384, 65536));
    assert_eq!(d.header().iommu_server, 0);
    assert_eq!(d.header().supervisor, NONE);
    let edu = d.devices().get(0).unwrap();
    assert_eq!((edu.match_kind, edu.vendor, edu.device), (DeviceMatch::VendorDevice.raw(), 0x1234, 0x11e8));
    assert_eq!((edu.driver, edu.dma_mask_bits, edu.dma_pool_bytes), (2, 64, 65536));
}

#[test]
fn default_system_compiles_with_every_part_of_the_spec() {
    let path = scenarios::repo_root().join("systems/default.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let bytes = compile("systems/default.toml", &text, Some(&programs())).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    assert_eq!(d.name(), "default");
    assert_eq!(d.header().min_ram_bytes, 256 << 20);
    let (drv_index, drv) = d.component_by_name("edu-driver").unwrap();
    assert_eq!(d.str(drv.program), "edudrv");
    assert_eq!(drv.fault_policy, FaultPolicy::Restart.raw());
    assert_eq!(drv.restart_limit, 3);
    assert_eq!(Some(drv.fault_handler), d.component_by_name("management").map(|(i, _)| i));
    let (_, edu) = d.device_by_name("edu").unwrap();
    assert_eq!((edu.driver, edu.dma_mask_bits, edu.msi_count), (drv_index, 28, 1));
    let ro = d.region_maps().iter().find(|m| m.component == drv_index).unwrap();
    assert_eq!((ro.writable, ro.readonly), (0, 1));
}

#[test]
fn pci_and_class_matches_and_ports_pack() {
    let text = BASE.replace(
        "match = { vendor = 0x1234, device = 0x11e8 }",
        "match = { pci = \"00:03.0\" }\nports = [[0x3e8, 0x3ef], [0x2e8, 0x2ef]]",
    ) + "\n[devices.nic]\nmatch = { class = 2 }\ndriver = \"drv\"\n";
    let bytes = compile("t.toml", &text, Some(&programs())).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    let edu = d.devices().get(0).unwrap();
    assert_eq!((edu.match_kind, edu.bus, edu.devfn), (DeviceMatch::PciAddress.raw(), 0, 3 << 3));
    let ports: Vec<(u16, u16)> = d.port_ranges(edu.ports).iter().map(|p| (p.first, p.last)).collect();
    assert_eq!(ports, [(0x3e8, 0x3ef), (0x2e8, 0x2ef)]);
    let nic = d.devices().get(1).unwrap();
    assert_eq!((nic.match_kind, nic.class, nic.subclass), (DeviceMatch::Class.raw(), 2, 0));
}

#[test]
fn unknown_program() {
    let text = BASE.replace("program = \"edudrv\"", "program = \"edudrvv\"");
    rejects(
        &text,
        "t.toml:16: component 'drv': unknown program 'edudrvv' (built programs: root, iommu-server, edudrv, management)",
    );
}

#[test]
fn device_named_twice_by_name() {
    let text = format!("{BASE}\n[devices.edu]\nmatch = {{ class = 2 }}\ndriver = \"drv\"\n");
    let got = errors(&text);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("t.toml:24: device 'edu': ") && got[0].contains("duplicate key"), "{got:?}");
}

#[test]
fn device_named_twice_by_match() {
    let text = format!("{BASE}\n[devices.again]\nmatch = {{ vendor = 0x1234, device = 0x11e8 }}\ndriver = \"drv\"\n");
    rejects(&text, "t.toml:25: device 'again': matches the same device as 'edu' (a device is named once)");
}

#[test]
fn budgets_above_min_ram() {
    let text = BASE.replace("min_ram = \"64M\"", "min_ram = \"7M\"");
    rejects(
        &text,
        "t.toml:3: [system]: budgets (7340032) + DMA pools (65536) + regions (0) = 7405568 bytes exceed min_ram (7340032)",
    );
}

#[test]
fn writable_map_of_read_only_region() {
    let text = format!(
        "{BASE}\n[regions.status]\nsize = \"4K\"\nmaps = [\n  {{ component = \"management\", writable = true }},\n  \
         {{ component = \"drv\", writable = true }},\n]\nreadonly = [\"drv\"]\n"
    );
    rejects(&text, "t.toml:28: region 'status': 'drv' maps it writable, but the region is read-only for it");
}

#[test]
fn read_only_for_a_component_that_does_not_map_it() {
    let text = format!("{BASE}\n[regions.status]\nsize = \"4K\"\nreadonly = [\"drv\"]\n");
    rejects(&text, "t.toml:26: region 'status': read-only for 'drv', which does not map it");
}

#[test]
fn channel_to_missing_component() {
    let text = format!("{BASE}\n[channels.c]\nkind = \"endpoint\"\nclient = \"drv\"\nserver = \"ghost\"\n");
    rejects(&text, "t.toml:27: channel 'c': server 'ghost' is not a component");
}

#[test]
fn driver_without_a_device() {
    let text = BASE.replace("budget = \"1M\"", "budget = \"1M\"\nrole = \"driver\"");
    rejects(&text, "t.toml:11: component 'management': driver without a device (no device names it as driver)");
    let text = BASE.replace("budget = \"1M\"", "budget = \"1M\"\ndrives = \"nic\"");
    rejects(&text, "t.toml:14: component 'management': drives 'nic', which is not a device");
}

#[test]
fn device_whose_driver_is_missing() {
    rejects(
        &BASE.replace("driver = \"drv\"", "driver = \"drvv\""),
        "t.toml:21: device 'edu': driver 'drvv' is not a component",
    );
    let text = BASE.replace("driver = \"drv\"\n", "");
    rejects(&text, "t.toml:19: device 'edu': no driver (set driver = \"<component>\" or drives = on a component)");
}

#[test]
fn drives_on_the_component_names_the_driver() {
    let text = BASE
        .replace("driver = \"drv\"\n", "")
        .replace("program = \"edudrv\"", "program = \"edudrv\"\ndrives = [\"edu\"]");
    let d = compile("t.toml", &text, Some(&programs())).unwrap();
    assert_eq!(SystemDesc::parse(&d).unwrap().devices().get(0).unwrap().driver, 2);
}

#[test]
fn devices_need_an_iommu_server() {
    let text = BASE.replace("role = \"iommu-server\"\n", "");
    rejects(&text, "t.toml:1: [system]: devices need a component with role = \"iommu-server\"");
}

#[test]
fn syntax_error_has_its_line() {
    let text = BASE.replace("budget = \"2M\"", "budget = \"2M");
    let got = errors(&text);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("t.toml:17: component 'drv': "), "{got:?}");
}

#[test]
fn type_error_has_its_line() {
    let text = BASE.replace("priority = 200", "priority = \"high\"");
    let got = errors(&text);
    assert!(got[0].starts_with("t.toml:8: component 'iommu-server': ") && got[0].contains("expected i64"), "{got:?}");
}

#[test]
fn unknown_key_is_an_error() {
    let text = BASE.replace("budget = \"1M\"", "budget = \"1M\"\nbugdet = \"1M\"");
    let got = errors(&text);
    assert!(
        got[0].starts_with("t.toml:14: component 'management': ") && got[0].contains("unknown field `bugdet`"),
        "{got:?}"
    );
}

#[test]
fn duplicate_component_names() {
    let text = format!("{BASE}\n[components.drv]\nprogram = \"root\"\nbudget = \"1M\"\n");
    let got = errors(&text);
    assert!(got[0].starts_with("t.toml:24: component 'drv': ") && got[0].contains("duplicate key"), "{got:?}");
}

#[test]
fn bad_names_and_reserved_init() {
    let text = BASE.replace("[components.management]", "[components.\"bad name\"]");
    rejects(&text, "t.toml:11: component 'bad name': name must be 1..=23 characters of A-Z a-z 0-9 - _ .");
    let text = BASE.replace("[components.management]", "[components.init]");
    rejects(&text, "t.toml:11: component 'init': the name 'init' is reserved for the root task");
}

#[test]
fn priority_above_mcp() {
    let text = BASE.replace("priority = 200", "priority = 200\nmcp = 150");
    rejects(&text, "t.toml:8: component 'iommu-server': priority 200 is above its mcp 150");
}

#[test]
fn cnode_radix_out_of_range() {
    let text = BASE.replace("budget = \"4M\"", "budget = \"4M\"\ncnode_bits = 30");
    rejects(&text, "t.toml:10: component 'iommu-server': cnode_bits 30 is out of range 5..=16");
}

#[test]
fn zero_budget() {
    let text = BASE.replace("budget = \"1M\"", "budget = 0");
    rejects(&text, "t.toml:13: component 'management': budget is zero");
}

#[test]
fn stack_and_heap_must_fit_the_budget() {
    let text = BASE.replace("budget = \"1M\"", "budget = \"64K\"");
    rejects(&text, "t.toml:13: component 'management': stack 16384 + heap 65536 do not fit in budget 65536");
}

#[test]
fn region_size_not_a_page_multiple() {
    let text = format!("{BASE}\n[regions.status]\nsize = 5000\n");
    rejects(&text, "t.toml:25: region 'status': size 5000 is not a multiple of the page size (4096)");
    let text = format!("{BASE}\n[regions.status]\nsize = \"4Q\"\n");
    rejects(&text, "t.toml:25: region 'status': size: '4Q' is not a size (like 4096, 64K, 2M, 1G)");
}

#[test]
fn port_range_first_above_last() {
    let text = BASE.replace("dma_pool = \"64K\"", "dma_pool = \"64K\"\nports = [[0x3ef, 0x3e8]]");
    rejects(&text, "t.toml:23: device 'edu': port range 0x3ef..0x3e8: first is above last");
}

#[test]
fn overlapping_port_ranges() {
    let text = BASE.replace("dma_pool = \"64K\"", "dma_pool = \"64K\"\nports = [[0x3e8, 0x3ef]]")
        + "\n[devices.nic]\nmatch = { class = 2 }\ndriver = \"drv\"\nports = [[0x3e0, 0x3e8]]\n";
    let msg =
        "t.toml:28: device 'nic': ports 0x3e0..=0x3e8 overlap 0x3e8..=0x3ef of device 'edu' (a port has one owner)";
    rejects(&text, msg);
}

#[test]
fn overlapping_fixed_region_maps() {
    let text = format!(
        "{BASE}\n[regions.a]\nsize = \"8K\"\nmaps = [{{ component = \"drv\", vaddr = 0x10000 }}]\n\n\
         [regions.b]\nsize = \"4K\"\nmaps = [{{ component = \"drv\", vaddr = 0x11000 }}]\n"
    );
    rejects(&text, "t.toml:30: region 'b': 'drv' maps it at 0x11000, overlapping region 'a'");
}

#[test]
fn dma_mask_bits_out_of_range() {
    let text = BASE.replace("dma_pool = \"64K\"", "dma_pool = \"64K\"\ndma_mask_bits = 11");
    rejects(&text, "t.toml:23: device 'edu': dma_mask_bits 11 is out of range 12..=64");
}

#[test]
fn bad_fault_policy_and_handler() {
    let text =
        BASE.replace("budget = \"2M\"", "budget = \"2M\"\nfaults = { handler = \"nobody\", policy = \"reboot\" }");
    let got = errors(&text);
    assert_eq!(
        got,
        [
            "t.toml:18: component 'drv': fault handler 'nobody' is not a component (or \"init\")",
            "t.toml:18: component 'drv': fault policy 'reboot' is not one of log, restart, cut-off",
        ]
    );
}

#[test]
fn bad_match_is_reported() {
    let text = BASE.replace("match = { vendor = 0x1234, device = 0x11e8 }", "match = { vendor = 0x1234 }");
    let got = errors(&text);
    assert!(got[0].starts_with("t.toml:20: device 'edu': match must be exactly one of"), "{got:?}");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text =
        BASE.replace("program = \"edudrv\"", "program = \"x\"").replace("dma_pool = \"64K\"", "dma_pool = \"3K\"");
    assert_eq!(errors(&text).len(), 2);
}

#[test]
fn mksys_binary_exits_1_and_writes_nothing() {
    let dir = scenarios::target_dir().join("sysdesc-test");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("bad.toml");
    let out = dir.join("bad.sys");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&input, BASE.replace("program = \"edudrv\"", "program = \"nope\"")).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_mksys"))
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--programs", "root,iommu-server,edudrv,management"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.toml:16: component 'drv': unknown program 'nope'"), "{stderr}");
    assert!(!out.exists(), "nothing is written on error");
}

#[test]
fn dot_graph_names_components_devices_iospaces_and_live_edges() {
    let bytes = compile("t.toml", BASE, None).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    // Only init's lines count: at a line's start, before it starts the components.
    let log = "noise\ngraph: drv -> device:edu bar0\ngraph: bad line\n[x] graph: a -> b c\n\
               init: system 't' started: 3 components\ngraph: httpd -> device:edu forged\n";
    let live = dot::live_edges(log);
    assert_eq!(live, [("drv".to_string(), "device:edu".to_string(), "bar0".to_string())]);
    let text = dot::render(&d, &live);
    for want in [
        "\"iommu-server\" -> \"iospace:drv\" [label=\"builds\"]",
        "\"iospace:drv\" -> \"device:edu\" [label=\"assigned\"]",
        "\"drv\" -> \"device:edu\" [label=\"drives (BARs, ports)\"]",
        "\"drv\" -> \"device:edu\" [color=red, fontcolor=red, label=\"bar0\"]",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    assert!(text.starts_with("digraph \"t\" {") && text.ends_with("}\n"));
}

#[test]
fn every_system_in_systems_compiles() {
    let dir = scenarios::repo_root().join("systems");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let label = path.display().to_string();
            if let Err(e) = compile(&label, &text, None) {
                panic!("{label} is rejected:\n{}", e.join("\n"));
            }
            count += 1;
        }
    }
    assert!(count >= 2, "systems/ holds default.toml and smoke.toml at least");
}

/// `make image` packed `systems/$(SYSTEM).toml` as the `system` entry of
/// `build/$(SYSTEM).img` (booted by `make run`); `build/boot.img` has none.
#[test]
fn boot_image_carries_the_packed_system() {
    let plain = std::fs::read(scenarios::build_dir().join("boot.img")).expect("build/boot.img (run `make image`)");
    let plain = abi::bootimage::BootImage::parse(&plain).unwrap();
    assert!(plain.files().all(|f| f.name != abi::system::SYSTEM_ENTRY), "boot.img stays root-only");
    let system = std::env::var("SYSTEM").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "appliance".into());
    let path = scenarios::build_dir().join(format!("{system}.img"));
    let image = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make image` first)", path.display()));
    let image = abi::bootimage::BootImage::parse(&image).unwrap();
    let entry = image
        .files()
        .find(|f| f.name == abi::system::SYSTEM_ENTRY)
        .expect("build/$(SYSTEM).img has no 'system' entry (make image packs build/$(SYSTEM).sys)");
    let desc = SystemDesc::parse(entry.data).unwrap();
    let toml = scenarios::repo_root().join(format!("systems/{}.toml", desc.name()));
    let text = std::fs::read_to_string(&toml).unwrap();
    assert_eq!(compile("x", &text, None).unwrap(), entry.data, "the entry is {} packed", toml.display());
}

/// The complete example in docs/system.md is a valid description.
#[test]
fn docs_example_compiles() {
    let doc = std::fs::read_to_string(scenarios::repo_root().join("docs/system.md")).unwrap();
    let start = doc.find("```toml\n").expect("docs/system.md has a ```toml example") + 8;
    let len = doc[start..].find("```").unwrap();
    let bytes = compile("docs/system.md", &doc[start..start + len], Some(&programs()))
        .unwrap_or_else(|e| panic!("the docs example is rejected:\n{}", e.join("\n")));
    let d = SystemDesc::parse(&bytes).unwrap();
    assert_eq!((d.components().len(), d.channels().len(), d.regions().len(), d.devices().len()), (3, 1, 1, 1));
}

#[test]
fn iommu_server_with_restart_policy() {
    let text = BASE.replace(
        "role = \"iommu-server\"\n",
        "role = \"iommu-server\"\nfaults = { handler = \"management\", policy = \"restart\" }\n",
    );
    rejects(
        &text,
        "t.toml:5: component 'iommu-server': the iommu-server cannot be restarted (its domains, DMA pools and buffers would be lost): use policy \"log\" or \"cut-off\"",
    );
}

/// BASE plus an ISA device `com2` with `ports`, `irq`, `component` (lines 25..=27).
fn with_isa(ports: &str, irq: &str, component: &str) -> String {
    format!("{BASE}\n[isa.com2]\nports = {ports}\nirq = {irq}\ncomponent = \"{component}\"\n")
}

#[test]
fn isa_device_is_packed_and_drawn() {
    let text = with_isa("[[0x2f8, 0x2ff]]", "3", "management");
    let bytes = compile("t.toml", &text, Some(&programs())).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    let com2 = d.isa_devices().get(0).expect("the ISA device");
    assert_eq!((d.str(com2.name), com2.component, com2.irq), ("com2", 1, 3));
    let ports: Vec<(u16, u16)> = d.port_ranges(com2.ports).iter().map(|p| (p.first, p.last)).collect();
    assert_eq!(ports, [(0x2f8, 0x2ff)]);
    assert_eq!(d.components().get(1).unwrap().role, ComponentRole::Normal.raw(), "no driver role: no PCI device");
    let g = dot::render(&d, &[]);
    assert!(g.contains("\"management\" -> \"isa:com2\" [label=\"ports, irq\"]"), "{g}");
    assert!(g.contains("com2\\nports 0x2f8-0x2ff\\nISA IRQ 3, no DMA"), "{g}");
    // Without a line the component polls.
    let text = format!("{BASE}\n[isa.com2]\nports = [[0x2f8, 0x2ff]]\ncomponent = \"management\"\n");
    let d = compile("t.toml", &text, Some(&programs())).unwrap();
    assert_eq!(SystemDesc::parse(&d).unwrap().isa_devices().get(0).unwrap().irq, abi::system::NO_IRQ);
}

#[test]
fn bad_isa_devices_are_refused_with_the_reason() {
    rejects(
        &with_isa("[[0x2f8, 0x2ff]]", "3", "ghost"),
        "t.toml:27: ISA device 'com2': component 'ghost' is not a component",
    );
    rejects(
        &with_isa("[[0x2f8, 0x2ff]]", "16", "management"),
        "t.toml:26: ISA device 'com2': irq 16 is not an ISA line (0..=15)",
    );
    rejects(
        &with_isa("[]", "3", "management"),
        "t.toml:25: ISA device 'com2': no port ranges (ports = [[first, last]])",
    );
    rejects(
        &with_isa("[[0x2ff, 0x2f8]]", "3", "management"),
        "t.toml:25: ISA device 'com2': port range 0x2ff..0x2f8: first is above last",
    );
    rejects(
        &with_isa("[[0x3f8, 0x3ff]]", "4", "management"),
        "t.toml:25: ISA device 'com2': ports 0x3f8..=0x3ff touch COM1 (0x3f8..=0x3ff: the kernel's log)",
    );
    rejects(
        &with_isa("[[0x510, 0x511]]", "3", "management"),
        "t.toml:25: ISA device 'com2': ports 0x510..=0x511 touch 0x510..=0x51b, which the kernel never issues: \
         QEMU fw_cfg: its DMA interface reads and writes any memory",
    );
    // A port and a line have one owner: a PCI device's ports, another ISA device's line.
    let text = BASE.replace("dma_pool = \"64K\"", "dma_pool = \"64K\"\nports = [[0x2f0, 0x2f8]]");
    let text = format!("{text}\n[isa.com2]\nports = [[0x2f8, 0x2ff]]\nirq = 3\ncomponent = \"management\"\n");
    rejects(
        &text,
        "t.toml:26: ISA device 'com2': ports 0x2f8..=0x2ff overlap 0x2f0..=0x2f8 of device 'edu' (a port has one owner)",
    );
    let text = with_isa("[[0x2f8, 0x2ff]]", "3", "management")
        + "\n[isa.com4]\nports = [[0x2e8, 0x2ef]]\nirq = 3\ncomponent = \"management\"\n";
    rejects(&text, "t.toml:31: ISA device 'com4': irq 3 is taken by ISA device 'com2' (a line has one owner)");
}
