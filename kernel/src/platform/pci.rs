//! PCI enumeration, the VT-d unit covering a device, and DMA alias groups.
//!
//! Enumeration reads the configuration header through `pci_types` over its
//! `ConfigRegionAccess` trait (ECAM on hardware, an array in tests). Alias groups are
//! the functions whose DMA (and MSIs) can carry one requester id.

use abi::bootinfo::{PciDeviceDesc, NO_DRHD};
use pci_types::{ConfigRegionAccess, HeaderType, PciAddress, PciHeader, PciPciBridgeHeader};

use super::dmar::{scope_kind, DmarInfo};

/// One PCI function: the record bootinfo reports (`abi::bootinfo::PciDeviceDesc`),
/// plus the bridge topology the kernel needs for VT-d coverage and DMA aliases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciDevice {
    /// What bootinfo reports; discovery fills `drhd_index` and `alias_group`.
    pub desc: PciDeviceDesc,
    /// For PCI-PCI bridges: secondary bus.
    pub secondary_bus: u8,
    /// For PCI-PCI bridges: subordinate (highest) bus.
    pub subordinate_bus: u8,
    /// Device/port type from its PCI Express capability, [`NOT_PCIE`] if it has none.
    pub pcie_type: u8,
}

/// [`PciDevice::pcie_type`] of a conventional PCI function (no PCI Express capability).
pub const NOT_PCIE: u8 = 0xff;
/// Capability id of PCI Express.
const CAPABILITY_PCIE: u8 = 0x10;
/// PCI Express device/port types (PCIe capability register bits 7:4).
pub mod pcie_type {
    /// Root port.
    pub const ROOT_PORT: u8 = 0x4;
    /// Switch upstream port.
    pub const UPSTREAM: u8 = 0x5;
    /// Switch downstream port.
    pub const DOWNSTREAM: u8 = 0x6;
    /// PCI Express to PCI/PCI-X bridge.
    pub const PCI_BRIDGE: u8 = 0x7;
    /// PCI/PCI-X to PCI Express bridge.
    pub const PCIE_BRIDGE: u8 = 0x8;
}

impl PciDevice {
    /// Whether it is a PCI-PCI bridge (header type 1).
    pub fn is_bridge(&self) -> bool {
        self.desc.header_type == 1
    }
    /// Its own requester id (bus << 8 | device << 3 | function).
    pub fn requester_id(&self) -> u16 {
        self.desc.requester_id()
    }
    /// Its bus.
    pub fn bus(&self) -> u8 {
        self.desc.bus
    }
    /// Its device number (0..32).
    pub fn device(&self) -> u8 {
        self.desc.devfn >> 3
    }
    /// Its function number (0..8).
    pub fn function(&self) -> u8 {
        self.desc.devfn & 7
    }
}

/// The functions found, in storage the caller provides (boot memory in the kernel,
/// sized by a counting pass: a list over an empty slice only counts, in `overflowed`).
#[derive(Debug)]
pub struct PciDeviceList<'a> {
    items: &'a mut [PciDevice],
    len: usize,
    overflowed: usize,
}

impl<'a> PciDeviceList<'a> {
    /// An empty list that can hold `storage.len()` functions.
    pub fn new(storage: &'a mut [PciDevice]) -> Self {
        PciDeviceList { items: storage, len: 0, overflowed: 0 }
    }
    /// Functions it can hold.
    pub fn capacity(&self) -> usize {
        self.items.len()
    }
    /// The functions found, in bus/device/function order.
    pub fn as_slice(&self) -> &[PciDevice] {
        &self.items[..self.len]
    }
    /// The functions found, for discovery to fill in `drhd_index` and `alias_group`.
    pub fn as_mut_slice(&mut self) -> &mut [PciDevice] {
        &mut self.items[..self.len]
    }
    /// Functions found that did not fit.
    pub fn overflowed(&self) -> usize {
        self.overflowed
    }
    fn push(&mut self, d: PciDevice) {
        if self.len == self.items.len() {
            self.overflowed += 1;
        } else {
            self.items[self.len] = d;
            self.len += 1;
        }
    }
    fn find(&self, bus: u8, device: u8, function: u8) -> Option<&PciDevice> {
        self.as_slice().iter().find(|d| d.bus() == bus && d.device() == device && d.function() == function)
    }
}

/// Scans every bus in `bus_start..=bus_end` of `segment`, appending to `out`. The
/// header fields are read through `pci_types`; absent functions read all ones.
pub fn enumerate(cfg: &impl ConfigRegionAccess, segment: u16, bus_start: u8, bus_end: u8, out: &mut PciDeviceList<'_>) {
    for bus in bus_start..=bus_end {
        for device in 0..32u8 {
            let first = PciHeader::new(PciAddress::new(segment, bus, device, 0));
            if first.id(cfg).0 == 0xffff {
                continue;
            }
            let functions = if first.has_multiple_functions(cfg) { 8 } else { 1 };
            for function in 0..functions {
                let address = PciAddress::new(segment, bus, device, function);
                let header = PciHeader::new(address);
                let (vendor_id, device_id) = header.id(cfg);
                if vendor_id == 0xffff {
                    continue;
                }
                let (_revision, class, subclass, prog_if) = header.revision_and_class(cfg);
                let header_type = match header.header_type(cfg) {
                    HeaderType::Endpoint => 0,
                    HeaderType::PciPciBridge => 1,
                    HeaderType::CardBusBridge => 2,
                    HeaderType::Unknown(t) => t,
                    _ => 0x7f,
                };
                let mut d = PciDevice {
                    desc: PciDeviceDesc {
                        segment,
                        bus,
                        devfn: (device << 3) | function,
                        vendor_id,
                        device_id,
                        class,
                        subclass,
                        prog_if,
                        header_type,
                        drhd_index: NO_DRHD,
                        _reserved: 0,
                        alias_group: 0,
                    },
                    ..Default::default()
                };
                d.pcie_type = pcie_type_of(cfg, address);
                if let Some(bridge) = PciPciBridgeHeader::from_header(header, cfg) {
                    d.secondary_bus = bridge.secondary_bus_number(cfg);
                    d.subordinate_bus = bridge.subordinate_bus_number(cfg);
                }
                out.push(d);
            }
        }
    }
}

/// The device/port type in the function's PCI Express capability, [`NOT_PCIE`] if none.
/// The list is walked by `abi::pci::find_capability`, not `pci_types`' iterator: that
/// one follows device-provided pointers without a bound (a looping list, or a loop of
/// null capabilities inside one `next()`, would hang the kernel) and keeps their
/// reserved low bits.
fn pcie_type_of(cfg: &impl ConfigRegionAccess, address: PciAddress) -> u8 {
    let read = |offset: u64, width: u64| {
        // SAFETY: the function is present (its vendor id read back); `find_capability`
        // reads only the header and the capability area (offsets below 0x100), and the
        // implementations (ECAM, the test fake) bound every offset themselves.
        let dword = unsafe { cfg.read(address, (offset & !3) as u16) };
        let value = u64::from(dword) >> (8 * (offset & 3));
        Ok::<u64, ()>(value & ((1u64 << (8 * width)) - 1))
    };
    match abi::pci::find_capability(read, CAPABILITY_PCIE) {
        Ok(Some(at)) => ((read(at + 2, 2).unwrap_or(0) >> 4) & 0xf) as u8,
        _ => NOT_PCIE,
    }
}

/// Most alias requester ids one function's DMA can carry besides its own (one per
/// aliasing bridge above it).
pub const MAX_ALIASES: usize = 8;

/// The requester ids a function's DMA may carry besides its own, nearest bridge first,
/// as Linux's `pci_for_each_dma_alias` finds them walking up to the root bus: a PCIe-to-
/// PCI(-X) bridge takes ownership as (its secondary bus, 00.0); a PCI-to-PCIe bridge
/// and a conventional PCI bridge (no PCIe capability) as their own id; PCIe root and
/// switch ports pass requester ids through. The last one is what the root complex sees
/// (the id its MSIs carry); `(count, ids)`.
pub fn dma_aliases(dev: &PciDevice, devices: &PciDeviceList<'_>) -> (usize, [u16; MAX_ALIASES]) {
    let mut ids = [0u16; MAX_ALIASES];
    let mut count = 0;
    let mut bus = dev.bus();
    // Each step goes to a bridge's own (primary) bus; a malformed topology (a loop of
    // bus numbers) ends after as many steps as there are functions.
    for _ in 0..devices.as_slice().len() {
        let Some(bridge) =
            devices.as_slice().iter().find(|b| b.is_bridge() && b.secondary_bus == bus && b.bus() != bus)
        else {
            break;
        };
        let alias = match bridge.pcie_type {
            pcie_type::ROOT_PORT | pcie_type::UPSTREAM | pcie_type::DOWNSTREAM => None,
            pcie_type::PCI_BRIDGE => Some(u16::from(bridge.secondary_bus) << 8),
            pcie_type::PCIE_BRIDGE | NOT_PCIE => Some(bridge.requester_id()),
            _ => None,
        };
        if let Some(id) = alias.filter(|id| *id != dev.requester_id() && !ids[..count].contains(id)) {
            if count < MAX_ALIASES {
                ids[count] = id;
                count += 1;
            }
        }
        bus = bridge.bus();
    }
    (count, ids)
}

/// The requester id `dev`'s DMA and MSIs reach the root complex with: its topmost alias,
/// or its own id.
pub fn wire_id(dev: &PciDevice, devices: &PciDeviceList<'_>) -> u16 {
    let (count, ids) = dma_aliases(dev, devices);
    if count == 0 {
        dev.requester_id()
    } else {
        ids[count - 1]
    }
}

/// One function's own requester id and its DMA alias ids (scratch for [`alias_groups`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct AliasIds {
    count: usize,
    ids: [u16; MAX_ALIASES + 1],
}

impl AliasIds {
    fn of(dev: &PciDevice, devices: &PciDeviceList<'_>) -> Self {
        let (count, aliases) = dma_aliases(dev, devices);
        let mut ids = [0u16; MAX_ALIASES + 1];
        ids[0] = dev.requester_id();
        ids[1..=count].copy_from_slice(&aliases[..count]);
        AliasIds { count: count + 1, ids }
    }
    fn as_slice(&self) -> &[u16] {
        &self.ids[..self.count]
    }
}

/// Alias groups: fills `groups[i]` with the index of the first function of function
/// `i`'s group (`groups` and the scratch `sets` hold at least one entry per function;
/// extra entries are left alone). Two functions are in one group when their sets
/// {own id} + aliases share an id (transitively): the IOMMU cannot tell their DMA apart.
pub fn alias_groups(devices: &PciDeviceList<'_>, sets: &mut [AliasIds], groups: &mut [u16]) {
    let list = devices.as_slice();
    assert!(sets.len() >= list.len() && groups.len() >= list.len(), "alias_groups: storage too small");
    let (sets, group) = (&mut sets[..list.len()], &mut groups[..list.len()]);
    for ((set, dev), (i, g)) in sets.iter_mut().zip(list).zip(group.iter_mut().enumerate()) {
        *set = AliasIds::of(dev, devices);
        *g = i as u16;
    }
    // Union by relabelling: repeat until no pair sharing an id has different labels.
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..list.len() {
            for j in i + 1..list.len() {
                if group[i] != group[j] && sets[i].as_slice().iter().any(|id| sets[j].as_slice().contains(id)) {
                    let (keep, drop) = (group[i].min(group[j]), group[i].max(group[j]));
                    for g in group.iter_mut().filter(|g| **g == drop) {
                        *g = keep;
                    }
                    changed = true;
                }
            }
        }
    }
}

/// Follows a scope path from `start_bus` through bridges; returns the final
/// (bus, device, function) and that function's entry if it was found.
fn resolve_path<'a>(
    start_bus: u8,
    path: &[(u8, u8)],
    devices: &'a PciDeviceList<'_>,
) -> Option<(u8, u8, u8, Option<&'a PciDevice>)> {
    let mut bus = start_bus;
    for (i, &(device, function)) in path.iter().enumerate() {
        let found = devices.find(bus, device, function);
        if i + 1 == path.len() {
            return Some((bus, device, function, found));
        }
        let bridge = found.filter(|d| d.is_bridge())?;
        bus = bridge.secondary_bus;
    }
    None
}

/// The index of the DRHD that translates `dev`'s DMA, by the VT-d rules: a unit that
/// lists the device (endpoint scope) or a bridge above it (sub-hierarchy scope) wins;
/// otherwise the INCLUDE_PCI_ALL unit of the device's segment; otherwise none.
pub fn covering_drhd(info: &DmarInfo, dev: &PciDevice, devices: &PciDeviceList<'_>) -> Option<usize> {
    for (index, unit) in info.drhds().iter().enumerate() {
        if unit.segment != dev.desc.segment {
            continue;
        }
        for scope in info.scopes(unit.scopes) {
            let Some((bus, device, function, found)) = resolve_path(scope.start_bus, scope.path(), devices) else {
                continue;
            };
            let exact = bus == dev.bus() && device == dev.device() && function == dev.function();
            match scope.kind {
                scope_kind::PCI_ENDPOINT if exact => return Some(index),
                scope_kind::PCI_SUB_HIERARCHY => {
                    let below = found
                        .filter(|b| b.is_bridge())
                        .is_some_and(|b| (b.secondary_bus..=b.subordinate_bus).contains(&dev.bus()));
                    if exact || below {
                        return Some(index);
                    }
                }
                _ => {}
            }
        }
    }
    info.drhds().iter().position(|u| u.segment == dev.desc.segment && u.include_pci_all())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::HashMap;

    use super::super::dmar::fixtures::{drhd, scope, table};
    use super::super::dmar::{parse_dmar, scope_kind};
    use super::*;

    /// Fake config space: (bus, dev, fn) -> 256 bytes (header and capabilities).
    #[derive(Default)]
    struct Fake(HashMap<(u8, u8, u8), [u32; 64]>);

    impl Fake {
        fn add(&mut self, bdf: (u8, u8, u8), vendor: u16, device: u16, class: u32, header: u8, buses: (u8, u8)) {
            let mut h = [0u32; 64];
            h[0] = u32::from(vendor) | (u32::from(device) << 16);
            h[2] = class << 8;
            h[3] = u32::from(header) << 16;
            h[6] = (u32::from(buses.0) << 8) | (u32::from(buses.1) << 16);
            self.0.insert(bdf, h);
        }
    }

    impl Fake {
        /// Gives `bdf` a PCI Express capability (at 0x40) of device/port type `kind`.
        fn pcie(&mut self, bdf: (u8, u8, u8), kind: u8) {
            let h = self.0.get_mut(&bdf).unwrap();
            h[1] |= 0x10 << 16;
            h[13] = 0x40;
            h[16] = 0x10 | (u32::from(kind) << 20);
        }
    }

    impl ConfigRegionAccess for Fake {
        unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
            let bdf = (address.bus(), address.device(), address.function());
            self.0.get(&bdf).map_or(u32::MAX, |h| h.get(usize::from(offset / 4)).copied().unwrap_or(u32::MAX))
        }

        unsafe fn write(&self, _address: PciAddress, _offset: u16, _value: u32) {
            unreachable!("enumeration only reads");
        }
    }

    /// Storage for a test list (the kernel uses boot memory).
    fn storage(n: usize) -> &'static mut [PciDevice] {
        std::boxed::Box::leak(std::vec![PciDevice::default(); n].into_boxed_slice())
    }

    /// The alias groups of `list`, one per function.
    fn groups_of(list: &PciDeviceList<'_>) -> std::vec::Vec<u16> {
        let n = list.as_slice().len();
        let (mut sets, mut groups) = (std::vec![AliasIds::default(); n], std::vec![0u16; n]);
        alias_groups(list, &mut sets, &mut groups);
        groups
    }

    fn machine() -> (Fake, PciDeviceList<'static>) {
        let mut f = Fake::default();
        f.add((0, 0, 0), 0x8086, 0x29c0, 0x06_00_00, 0, (0, 0)); // host bridge
        f.add((0, 2, 0), 0x1234, 0x11e8, 0x00_ff_00, 0, (0, 0)); // edu
        f.add((0, 0x1f, 0), 0x8086, 0x2918, 0x06_01_00, 0x80, (0, 0)); // multi-function LPC
        f.add((0, 0x1f, 2), 0x8086, 0x2922, 0x01_06_01, 0, (0, 0)); // SATA
        f.add((0, 0x1f, 5), 0x8086, 0x2930, 0x0c_05_00, 0, (0, 0)); // invisible: fn0 lacks... present
        f.add((0, 3, 1), 0x8086, 0xffff, 0, 0, (0, 0)); // fn1 of a single-function slot: not scanned
        f.add((0, 4, 0), 0x1b36, 0x000c, 0x06_04_00, 1, (1, 2)); // PCIe root port -> buses 1..2
        f.add((1, 0, 0), 0x8086, 0x10d3, 0x02_00_00, 0, (0, 0)); // NIC behind the bridge
        let mut list = PciDeviceList::new(storage(64));
        enumerate(&f, 0, 0, 3, &mut list);
        (f, list)
    }

    #[test]
    fn enumerates_functions_and_bridges() {
        let (_, list) = machine();
        let bdfs: std::vec::Vec<_> = list.as_slice().iter().map(|d| (d.bus(), d.device(), d.function())).collect();
        assert_eq!(bdfs, [(0, 0, 0), (0, 2, 0), (0, 4, 0), (0, 0x1f, 0), (0, 0x1f, 2), (0, 0x1f, 5), (1, 0, 0)]);
        let bridge = list.as_slice()[2];
        assert!(bridge.is_bridge());
        assert_eq!((bridge.secondary_bus, bridge.subordinate_bus), (1, 2));
        let edu = list.as_slice()[1];
        assert_eq!(
            (edu.desc.vendor_id, edu.desc.device_id, edu.desc.class, edu.desc.subclass),
            (0x1234, 0x11e8, 0x00, 0xff)
        );
        assert_eq!(list.overflowed(), 0);
    }

    #[test]
    fn drhd_coverage_rules() {
        let (_, list) = machine();
        let t = table(
            38,
            0,
            &[
                drhd(0, 0, 0x1000, &[scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(2, 0)])]),
                drhd(0, 0, 0x2000, &[scope(scope_kind::PCI_SUB_HIERARCHY, 0, 0, &[(4, 0)])]),
                drhd(1, 0, 0x3000, &[]),
            ],
        );
        let info = parse_dmar(&t).unwrap();
        let cover = |b, d, f| covering_drhd(&info, list.find(b, d, f).unwrap(), &list);
        assert_eq!(cover(0, 2, 0), Some(0), "explicit endpoint");
        assert_eq!(cover(1, 0, 0), Some(1), "below a listed bridge");
        assert_eq!(cover(0, 4, 0), Some(1), "the bridge itself");
        assert_eq!(cover(0, 0x1f, 2), Some(2), "include-all");
        let no_all = parse_dmar(&table(38, 0, &[drhd(0, 0, 0x1000, &[])])).unwrap();
        assert_eq!(covering_drhd(&no_all, &list.as_slice()[0], &list), None);
        let mut other_segment = list.as_slice()[0];
        other_segment.desc.segment = 1;
        assert_eq!(covering_drhd(&info, &other_segment, &list), None);
    }

    /// Bus 0: a PCIe-to-PCI bridge (00:05.0 -> bus 1: two functions), a conventional
    /// PCI bridge (00:06.0 -> bus 2: one), a root port (00:04.0 -> bus 3: one), and a
    /// PCIe-to-PCI bridge (00:07.0 -> bus 4) with a function and a conventional bridge
    /// (04:02.0 -> bus 5: one) below it.
    fn bridged() -> PciDeviceList<'static> {
        let mut f = Fake::default();
        let edu = |f: &mut Fake, bdf| f.add(bdf, 0x1234, 0x11e8, 0x00_ff_00, 0, (0, 0));
        f.add((0, 0, 0), 0x8086, 0x29c0, 0x06_00_00, 0, (0, 0));
        edu(&mut f, (0, 2, 0));
        f.add((0, 4, 0), 0x1b36, 0x000c, 0x06_04_00, 1, (3, 3));
        f.pcie((0, 4, 0), pcie_type::ROOT_PORT);
        f.add((0, 5, 0), 0x1b36, 0x000e, 0x06_04_00, 1, (1, 1));
        f.pcie((0, 5, 0), pcie_type::PCI_BRIDGE);
        f.add((0, 6, 0), 0x1b36, 0x0001, 0x06_04_00, 1, (2, 2));
        f.add((0, 7, 0), 0x1b36, 0x000e, 0x06_04_00, 1, (4, 5));
        f.pcie((0, 7, 0), pcie_type::PCI_BRIDGE);
        edu(&mut f, (1, 0, 0));
        edu(&mut f, (1, 1, 0));
        edu(&mut f, (2, 3, 0));
        edu(&mut f, (3, 0, 0));
        f.pcie((3, 0, 0), 0);
        edu(&mut f, (4, 1, 0));
        f.add((4, 2, 0), 0x1b36, 0x0001, 0x06_04_00, 1, (5, 5));
        edu(&mut f, (5, 0, 0));
        let mut list = PciDeviceList::new(storage(64));
        enumerate(&f, 0, 0, 5, &mut list);
        list
    }

    fn aliases_of(list: &PciDeviceList<'_>, bdf: (u8, u8, u8)) -> std::vec::Vec<u16> {
        let (count, ids) = dma_aliases(list.find(bdf.0, bdf.1, bdf.2).unwrap(), list);
        ids[..count].to_vec()
    }

    #[test]
    fn dma_aliases_follow_bridges() {
        let list = bridged();
        let types: std::vec::Vec<u8> = list.as_slice().iter().map(|d| d.pcie_type).collect();
        assert_eq!(&types[..6], [NOT_PCIE, NOT_PCIE, pcie_type::ROOT_PORT, pcie_type::PCI_BRIDGE, NOT_PCIE, 7]);
        assert_eq!(aliases_of(&list, (0, 2, 0)), [] as [u16; 0], "bus 0: no bridge above");
        // Behind the PCIe-to-PCI bridge: (secondary bus, 00.0), which is 01:00.0 itself.
        assert_eq!(aliases_of(&list, (1, 0, 0)), [] as [u16; 0]);
        assert_eq!(aliases_of(&list, (1, 1, 0)), [0x0100]);
        // Behind a conventional bridge: the bridge's own id.
        assert_eq!(aliases_of(&list, (2, 3, 0)), [0x0030]);
        // A root port passes ids through.
        assert_eq!(aliases_of(&list, (3, 0, 0)), [] as [u16; 0]);
        // Chained: the conventional bridge's id, then the PCIe-to-PCI bridge's alias.
        assert_eq!(aliases_of(&list, (5, 0, 0)), [0x0410, 0x0400]);
        assert_eq!(aliases_of(&list, (4, 2, 0)), [0x0400]);
        let wire = |b, d, f| wire_id(list.find(b, d, f).unwrap(), &list);
        assert_eq!((wire(1, 1, 0), wire(1, 0, 0), wire(5, 0, 0), wire(0, 2, 0)), (0x0100, 0x0100, 0x0400, 0x0010));
    }

    #[test]
    fn alias_groups_join_functions_sharing_an_id() {
        let list = bridged();
        let groups = groups_of(&list);
        let index =
            |b, d, f| list.as_slice().iter().position(|x| (x.bus(), x.device(), x.function()) == (b, d, f)).unwrap();
        let group = |b, d, f| groups[index(b, d, f)] as usize;
        let members = |g: usize| -> std::vec::Vec<(u8, u8, u8)> {
            let l = list.as_slice();
            (0..l.len())
                .filter(|&i| groups[i] as usize == g)
                .map(|i| (l[i].bus(), l[i].device(), l[i].function()))
                .collect()
        };
        assert_eq!(members(group(1, 1, 0)), [(1, 0, 0), (1, 1, 0)], "both functions behind the PCIe-to-PCI bridge");
        assert_eq!(group(1, 0, 0), index(1, 0, 0), "the group is named by its first member");
        assert_eq!(members(group(2, 3, 0)), [(0, 6, 0), (2, 3, 0)], "the conventional bridge and its device");
        assert_eq!(members(group(5, 0, 0)), [(4, 1, 0), (4, 2, 0), (5, 0, 0)], "chained bridges");
        for single in [(0, 0, 0), (0, 2, 0), (0, 4, 0), (0, 5, 0), (0, 7, 0), (3, 0, 0)] {
            assert_eq!(members(group(single.0, single.1, single.2)), [single], "{single:?} stands alone");
        }
    }

    #[test]
    fn a_looping_capability_list_ends_the_walk() {
        let mut f = Fake::default();
        f.add((0, 2, 0), 0x1234, 0x11e8, 0x00_ff_00, 0, (0, 0));
        let h = f.0.get_mut(&(0, 2, 0)).unwrap();
        h[1] |= 0x10 << 16;
        h[13] = 0x40;
        // Two null capabilities pointing at each other: the device, not the kernel,
        // decides where the list goes.
        h[16] = 0x44 << 8;
        h[17] = 0x40 << 8;
        let mut list = PciDeviceList::new(storage(64));
        enumerate(&f, 0, 0, 0, &mut list);
        assert_eq!(list.as_slice()[0].pcie_type, NOT_PCIE);
    }

    #[test]
    fn overflow_is_counted() {
        let mut f = Fake::default();
        for bus in 0..20u8 {
            for dev in 0..32u8 {
                f.add((bus, dev, 0), 0x1af4, 0x1000, 0x02_00_00, 0, (0, 0));
            }
        }
        let mut count = PciDeviceList::new(&mut []);
        enumerate(&f, 0, 0, 19, &mut count);
        assert_eq!((count.as_slice().len(), count.overflowed()), (0, 640), "an empty list only counts");
        let mut list = PciDeviceList::new(storage(512));
        enumerate(&f, 0, 0, 19, &mut list);
        assert_eq!(list.as_slice().len(), 512);
        assert_eq!(list.overflowed(), 640 - 512);
        // More than 64 functions (the old bootinfo cap) on many buses get groups of their own.
        let groups = groups_of(&list);
        assert!(groups.iter().enumerate().all(|(i, &g)| usize::from(g) == i));
    }
}
