//! Round-trip and rejection tests of the packed system description.

use super::*;
use std::vec::Vec;

/// A small valid system: init supervises, an iommu-server, a driver with one device,
/// a management component, an endpoint, a notification, a region.
fn sample() -> SystemParts {
    let mut p = SystemParts { min_ram_bytes: 64 << 20, supervisor: NONE, iommu_server: 0, ..Default::default() };
    p.name = p.strings.add("default");
    let comp = |s: &mut StringTable, name: &str, program: &str, role: ComponentRole| Component {
        name: s.add(name),
        program: s.add(program),
        budget_bytes: 4 << 20,
        stack_bytes: 16 << 10,
        heap_bytes: 64 << 10,
        priority: 100,
        mcp: 200,
        cnode_radix: 10,
        role: role.raw(),
        fault_handler: NONE,
        fault_policy: FaultPolicy::Log.raw(),
        restart_limit: 0,
    };
    p.components.push(comp(&mut p.strings, "iommu-server", "iommu-server", ComponentRole::IommuServer));
    let mut drv = comp(&mut p.strings, "edu-driver", "edudrv", ComponentRole::Driver);
    drv.fault_handler = 2;
    drv.fault_policy = FaultPolicy::Restart.raw();
    drv.restart_limit = 3;
    p.components.push(drv);
    p.components.push(comp(&mut p.strings, "management", "management", ComponentRole::Management));
    let name = p.strings.add("mgmt-faults");
    p.channels.push(Channel { name, kind: 0, client: 0, server: 2, badge: 1, ..Default::default() });
    let name = p.strings.add("edu-irq");
    p.channels.push(Channel { name, kind: 1, client: 0, server: 1, badge: 4, ..Default::default() });
    let name = p.strings.add("status");
    p.regions.push(Region { name, size_bytes: 4096, readonly_for: 0 });
    p.region_maps.push(RegionMap { region: 0, component: 2, writable: 1, ..Default::default() });
    p.region_maps.push(RegionMap { region: 0, component: 1, readonly: 1, vaddr: 0x4000_0000, ..Default::default() });
    p.port_ranges.push(PortRange { first: 0x3f8, last: 0x3ff, _pad: 0 });
    let name = p.strings.add("edu");
    p.devices.push(Device {
        name,
        match_kind: DeviceMatch::VendorDevice.raw(),
        vendor: 0x1234,
        device: 0x11e8,
        dma_mask_bits: 28,
        msi_count: 1,
        fault_policy: FaultPolicy::Restart.raw(),
        driver: 1,
        fault_handler: 2,
        restart_limit: 2,
        dma_pool_bytes: 64 << 10,
        ports: IndexRange { first: 0, count: 1 },
        ..Default::default()
    });
    // A second UART for management: ports and an ISA line, no PCI function.
    p.port_ranges.push(PortRange { first: 0x2f8, last: 0x2ff, _pad: 0 });
    let name = p.strings.add("com2");
    p.isa_devices.push(IsaDevice {
        name,
        ports: IndexRange { first: 1, count: 1 },
        component: 2,
        irq: 3,
        _pad: [0; 5],
    });
    p
}

fn parse_err(p: &SystemParts) -> SystemError {
    SystemDesc::parse(&encode(p)).expect_err("must be rejected")
}

#[test]
fn round_trip_keeps_every_record_and_name() {
    let p = sample();
    let bytes = encode(&p);
    assert_eq!(bytes.len() % 8, 0);
    let d = SystemDesc::parse(&bytes).unwrap();
    assert_eq!(d.name(), "default");
    assert_eq!(d.header().min_ram_bytes, 64 << 20);
    assert_eq!(d.header().supervisor, NONE);
    assert_eq!(d.components().iter().collect::<Vec<_>>(), p.components);
    assert_eq!(d.channels().iter().collect::<Vec<_>>(), p.channels);
    assert_eq!(d.regions().iter().collect::<Vec<_>>(), p.regions);
    assert_eq!(d.region_maps().iter().collect::<Vec<_>>(), p.region_maps);
    assert_eq!(d.devices().iter().collect::<Vec<_>>(), p.devices);
    let names: Vec<&str> = d.components().iter().map(|c| d.str(c.name)).collect();
    assert_eq!(names, ["iommu-server", "edu-driver", "management"]);
    assert_eq!(d.str(d.components().get(1).unwrap().program), "edudrv");
    let edu = d.devices().get(0).unwrap();
    assert_eq!(d.port_ranges(edu.ports).iter().collect::<Vec<_>>(), p.port_ranges[..1]);
    assert_eq!(d.isa_devices().iter().collect::<Vec<_>>(), p.isa_devices);
    let com2 = d.isa_devices().get(0).unwrap();
    assert_eq!(d.str(com2.name), "com2");
    assert_eq!(d.port_ranges(com2.ports).iter().collect::<Vec<_>>(), p.port_ranges[1..]);
    assert_eq!(d.component_by_name("management").map(|(i, _)| i), Some(2));
    assert_eq!(d.device_by_name("edu").map(|(_, dev)| dev.vendor), Some(0x1234));
    assert_eq!(d.devices_of(1).collect::<Vec<_>>(), [0]);
    assert!(d.port_ranges(IndexRange { first: 2, count: 1 }).is_empty());
}

#[test]
fn bad_isa_devices_are_rejected() {
    let isa = |reason: &'static str| SystemError::Invalid { at: At::IsaDevice(0), reason };
    let mut p = sample();
    p.isa_devices[0].component = 3;
    assert_eq!(parse_err(&p), isa("its component is not a component"));
    let mut p = sample();
    p.isa_devices[0].irq = 16;
    assert_eq!(parse_err(&p), isa("irq is not an ISA line (0..=15)"));
    let mut p = sample();
    p.isa_devices[0].irq = NO_IRQ;
    assert!(SystemDesc::parse(&encode(&p)).is_ok(), "an ISA device without a line is polled");
    let mut p = sample();
    p.isa_devices[0].ports.count = 0;
    assert_eq!(parse_err(&p), isa("no port ranges, or port ranges out of range"));
    let mut p = sample();
    p.isa_devices[0].ports.first = 2;
    assert_eq!(parse_err(&p), isa("no port ranges, or port ranges out of range"));
    let mut p = sample();
    p.port_ranges[1] = PortRange { first: 0x510, last: 0x51b, _pad: 0 };
    assert_eq!(parse_err(&p), isa("a port range touches ports the kernel never issues"));
    let mut p = sample();
    p.port_ranges[0] = PortRange { first: 0x2e8, last: 0x2ef, _pad: 0 };
    p.port_ranges[1] = PortRange { first: 0x3fc, last: 0x3fc, _pad: 0 };
    assert_eq!(parse_err(&p), isa("a port range touches COM1 (the kernel's log)"));
    let mut p = sample();
    p.isa_devices[0]._pad[4] = 1;
    assert_eq!(parse_err(&p), isa("padding is not zero"));
    let mut p = sample();
    p.port_ranges.push(PortRange { first: 0x3e8, last: 0x3ef, _pad: 0 });
    let second =
        IsaDevice { name: p.strings.add("com3"), ports: IndexRange { first: 2, count: 1 }, ..p.isa_devices[0] };
    p.isa_devices.push(second);
    let reason = "irq taken by another ISA device (a line has one owner)";
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::IsaDevice(1), reason });
    p.isa_devices[1].irq = 4;
    assert!(SystemDesc::parse(&encode(&p)).is_ok());
    p.isa_devices[1].name = p.isa_devices[0].name;
    assert_eq!(parse_err(&p), SystemError::Duplicate { at: At::IsaDevice(1), first: 0 });
}

#[test]
fn parse_works_at_any_alignment() {
    let bytes = encode(&sample());
    let mut shifted = std::vec![0u8; 3];
    shifted.extend_from_slice(&bytes);
    let d = SystemDesc::parse(&shifted[3..]).unwrap();
    assert_eq!(d.components().len(), 3);
}

#[test]
fn header_errors_are_reported() {
    let bytes = encode(&sample());
    assert_eq!(SystemDesc::parse(&bytes[..10]).unwrap_err(), SystemError::TooShort { len: 10 });
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(SystemDesc::parse(&bad).unwrap_err(), SystemError::BadMagic);
    let mut bad = bytes.clone();
    bad[8] = 9;
    assert_eq!(SystemDesc::parse(&bad).unwrap_err(), SystemError::BadVersion(9));
    let short = &bytes[..bytes.len() - 8];
    assert!(matches!(SystemDesc::parse(short).unwrap_err(), SystemError::SizeMismatch { .. }));
    let mut bad = bytes.clone();
    // components.offset (header offset 40) pointing past the end.
    bad[40..44].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    assert_eq!(SystemDesc::parse(&bad).unwrap_err(), SystemError::ArrayOutOfBounds("components"));
}

#[test]
fn rule_breaking_records_are_rejected() {
    let mut p = sample();
    p.components[1].priority = 250;
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::Component(1), reason: "priority above mcp" });
    let mut p = sample();
    p.components[0].cnode_radix = 30;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Component(0), .. }));
    let mut p = sample();
    p.components[2].budget_bytes = 0;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Component(2), .. }));
    let mut p = sample();
    p.components[2].role = 9;
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::Component(2), reason: "unknown role" });
    let mut p = sample();
    p.components[2].name = p.components[0].name;
    assert_eq!(parse_err(&p), SystemError::Duplicate { at: At::Component(2), first: 0 });
    let mut p = sample();
    p.components[2].role = ComponentRole::Driver.raw();
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::Component(2), reason: "driver without a device" });
    let mut p = sample();
    (p.components[0].fault_handler, p.components[0].fault_policy) = (2, FaultPolicy::Restart.raw());
    assert_eq!(
        parse_err(&p),
        SystemError::Invalid { at: At::Component(0), reason: "the iommu-server cannot be restarted" }
    );
    let mut p = sample();
    p.min_ram_bytes = 8 << 20;
    assert!(matches!(parse_err(&p), SystemError::OverBudget { min_ram: 0x80_0000, .. }));
    let mut p = sample();
    p.channels[0].server = 7;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Channel(0), .. }));
    let mut p = sample();
    p.channels[1].name = p.channels[0].name;
    assert_eq!(parse_err(&p), SystemError::Duplicate { at: At::Channel(1), first: 0 });
    let mut p = sample();
    p.region_maps[1].writable = 1;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::RegionMap(1), .. }));
    let mut p = sample();
    p.regions[0].size_bytes = 100;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Region(0), .. }));
    let mut p = sample();
    p.devices[0].dma_mask_bits = 8;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Device(0), .. }));
    let mut p = sample();
    p.devices[0].driver = 2;
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::Component(1), reason: "driver without a device" });
    p.components[1].role = ComponentRole::Normal.raw();
    let reason = "its driver does not have the driver role";
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::Device(0), reason });
    let mut p = sample();
    p.port_ranges[0] = PortRange { first: 0x400, last: 0x3ff, _pad: 0 };
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::PortRange(0), .. }));
    let mut p = sample();
    p.port_ranges.push(PortRange { first: 0x3f0, last: 0x3f8, _pad: 0 });
    let reason = "overlaps another port range (a port has one owner)";
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::PortRange(2), reason });
    let mut p = sample();
    p.devices[0].ports.count = 2;
    let reason = "named by two devices (a port has one owner)";
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::PortRange(1), reason });
    let mut p = sample();
    let name = p.strings.add("second");
    p.regions.push(Region { name, size_bytes: 8192, readonly_for: 0 });
    p.region_maps.push(RegionMap { region: 1, component: 1, vaddr: 0x3fff_f000, ..Default::default() });
    let reason = "overlaps another region mapped by the same component";
    assert_eq!(parse_err(&p), SystemError::Invalid { at: At::RegionMap(2), reason });
    p.region_maps[2].vaddr = 0x4000_1000;
    assert!(SystemDesc::parse(&encode(&p)).is_ok(), "adjacent maps do not overlap");
    let mut p = sample();
    let again = Device { name: p.strings.add("edu2"), ..p.devices[0] };
    p.devices.push(again);
    assert_eq!(parse_err(&p), SystemError::Duplicate { at: At::Device(1), first: 0 });
    let mut p = sample();
    p.components[1].name = p.strings.add("bad name!");
    assert_eq!(parse_err(&p), SystemError::BadName(At::Component(1)));
}

#[test]
fn random_mutations_never_panic() {
    let good = encode(&sample());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut rejected = 0;
    for _ in 0..20_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 16 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        match SystemDesc::parse(&bytes) {
            Ok(d) => {
                // Accessors on an accepted description stay in bounds.
                for c in d.components().iter() {
                    let _ = d.str(c.name);
                }
                for dev in d.devices().iter() {
                    let _ = d.port_ranges(dev.ports).iter().count();
                }
                for dev in d.isa_devices().iter() {
                    let _ = (d.str(dev.name), d.port_ranges(dev.ports).iter().count());
                }
            }
            Err(e) => {
                rejected += 1;
                assert!(!std::format!("{e}").is_empty());
            }
        }
    }
    assert!(rejected > 1000, "mutations were hardly ever rejected: {rejected}");
}

#[test]
fn shared_notifications_and_filter_rules_round_trip_and_are_checked() {
    let with_share = |p: &mut SystemParts| {
        let name = p.strings.add("edu-irq2");
        p.channels.push(Channel { name, kind: 1, client: 2, server: 1, badge: 8, shares: 1, ..Default::default() });
    };
    let rule = |p: &mut SystemParts, protocol: RuleProtocol, first: u16, last: u16| {
        let client = p.strings.add("web");
        let r = FilterRule {
            client,
            filter: 2,
            direction: 0,
            protocol: protocol.raw(),
            port_first: first,
            port_last: last,
        };
        p.filter_rules.push(r);
    };
    let mut p = sample();
    with_share(&mut p);
    rule(&mut p, RuleProtocol::Tcp, 80, 80);
    rule(&mut p, RuleProtocol::Arp, 0, 0);
    let bytes = encode(&p);
    let desc = SystemDesc::parse(&bytes).expect("valid");
    assert_eq!(desc.channels().get(2).map(|c| c.shares), Some(1));
    assert_eq!(desc.channels().get(0).map(|c| c.shares), Some(NONE));
    let rules: Vec<FilterRule> = desc.filter_rules().iter().collect();
    assert_eq!(rules, p.filter_rules);
    assert_eq!(desc.str(rules[0].client), "web");
    let back = FilterRule::from_word(rules[0].word()).expect("valid word");
    assert_eq!((back.protocol, back.port_first, back.port_last), (RuleProtocol::Tcp.raw(), 80, 80));
    assert_eq!(FilterRule::from_word(9 << 8), None, "unknown protocol");
    assert_eq!(FilterRule::from_word(1 << 60), None, "bits above the fields");

    // A share with another server, of an endpoint, of itself, or of a sharer: refused.
    let mut p = sample();
    with_share(&mut p);
    p.channels[2].server = 0;
    assert!(matches!(
        parse_err(&p),
        SystemError::Invalid { at: At::Channel(2), reason: "shares a channel with another server" }
    ));
    let mut p = sample();
    with_share(&mut p);
    p.channels[2].shares = 0;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Channel(2), .. }));
    let mut p = sample();
    with_share(&mut p);
    p.channels[2].shares = 2;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Channel(2), .. }));
    let mut p = sample();
    with_share(&mut p);
    p.channels[1].shares = 2;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::Channel(1), .. }));
    // Rules with a bad port range, protocol or filter: refused.
    let mut p = sample();
    rule(&mut p, RuleProtocol::Udp, 9, 7);
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::FilterRule(0), .. }));
    let mut p = sample();
    rule(&mut p, RuleProtocol::Icmp, 1, 1);
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::FilterRule(0), .. }));
    let mut p = sample();
    rule(&mut p, RuleProtocol::Tcp, 1, 1);
    p.filter_rules[0].filter = 9;
    assert!(matches!(parse_err(&p), SystemError::Invalid { at: At::FilterRule(0), .. }));
}
