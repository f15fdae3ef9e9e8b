//! PCI enumeration over a configuration-space trait (ECAM on hardware, a fake in tests),
//! and the VT-d rule deciding which remapping unit covers a device.

use super::dmar::{scope_kind, DmarInfo};

/// Most PCI functions recorded.
pub const MAX_PCI_DEVICES: usize = 64;

/// Reads PCI configuration space.
pub trait ConfigSpace {
    /// The dword at `offset` (4-byte aligned) of bus:device.function; all ones if absent.
    fn read32(&self, bus: u8, device: u8, function: u8, offset: u16) -> u32;
}

/// One PCI function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciDevice {
    /// Segment.
    pub segment: u16,
    /// Bus.
    pub bus: u8,
    /// Device (0..32).
    pub device: u8,
    /// Function (0..8).
    pub function: u8,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Header type, bit 7 = multi-function.
    pub header_type: u8,
    /// For PCI-PCI bridges: secondary bus.
    pub secondary_bus: u8,
    /// For PCI-PCI bridges: subordinate (highest) bus.
    pub subordinate_bus: u8,
}

impl PciDevice {
    /// Whether it is a PCI-PCI bridge (header type 1).
    pub fn is_bridge(&self) -> bool {
        self.header_type & 0x7f == 1
    }
}

/// Fixed-capacity list of functions found.
#[derive(Clone, Debug)]
pub struct PciDeviceList {
    items: [PciDevice; MAX_PCI_DEVICES],
    len: usize,
    overflowed: usize,
}

impl Default for PciDeviceList {
    fn default() -> Self {
        Self::new()
    }
}

impl PciDeviceList {
    /// An empty list.
    pub const fn new() -> Self {
        PciDeviceList {
            items: [PciDevice {
                segment: 0,
                bus: 0,
                device: 0,
                function: 0,
                vendor_id: 0,
                device_id: 0,
                class: 0,
                subclass: 0,
                prog_if: 0,
                header_type: 0,
                secondary_bus: 0,
                subordinate_bus: 0,
            }; MAX_PCI_DEVICES],
            len: 0,
            overflowed: 0,
        }
    }
    /// The functions found, in bus/device/function order.
    pub fn as_slice(&self) -> &[PciDevice] {
        &self.items[..self.len]
    }
    /// Functions found that did not fit.
    pub fn overflowed(&self) -> usize {
        self.overflowed
    }
    fn push(&mut self, d: PciDevice) {
        if self.len == MAX_PCI_DEVICES {
            self.overflowed += 1;
        } else {
            self.items[self.len] = d;
            self.len += 1;
        }
    }
    fn find(&self, bus: u8, device: u8, function: u8) -> Option<&PciDevice> {
        self.as_slice().iter().find(|d| d.bus == bus && d.device == device && d.function == function)
    }
}

/// Scans every bus in `bus_start..=bus_end` of `segment`, appending to `out`.
pub fn enumerate(cfg: &impl ConfigSpace, segment: u16, bus_start: u8, bus_end: u8, out: &mut PciDeviceList) {
    for bus in bus_start..=bus_end {
        for device in 0..32u8 {
            let id = cfg.read32(bus, device, 0, 0);
            if id & 0xffff == 0xffff {
                continue;
            }
            let header = (cfg.read32(bus, device, 0, 0x0c) >> 16) as u8;
            let functions = if header & 0x80 != 0 { 8 } else { 1 };
            for function in 0..functions {
                let id = cfg.read32(bus, device, function, 0);
                if id & 0xffff == 0xffff {
                    continue;
                }
                let class = cfg.read32(bus, device, function, 0x08);
                let header_type = (cfg.read32(bus, device, function, 0x0c) >> 16) as u8;
                let mut d = PciDevice {
                    segment,
                    bus,
                    device,
                    function,
                    vendor_id: id as u16,
                    device_id: (id >> 16) as u16,
                    class: (class >> 24) as u8,
                    subclass: (class >> 16) as u8,
                    prog_if: (class >> 8) as u8,
                    header_type,
                    ..Default::default()
                };
                if d.is_bridge() {
                    let buses = cfg.read32(bus, device, function, 0x18);
                    d.secondary_bus = (buses >> 8) as u8;
                    d.subordinate_bus = (buses >> 16) as u8;
                }
                out.push(d);
            }
        }
    }
}

/// Follows a scope path from `start_bus` through bridges; returns the final
/// (bus, device, function) and that function's entry if it was found.
fn resolve_path<'a>(
    start_bus: u8,
    path: &[(u8, u8)],
    devices: &'a PciDeviceList,
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
pub fn covering_drhd(info: &DmarInfo, dev: &PciDevice, devices: &PciDeviceList) -> Option<usize> {
    for (index, unit) in info.drhds().iter().enumerate() {
        if unit.segment != dev.segment {
            continue;
        }
        for scope in unit.scopes() {
            let Some((bus, device, function, found)) = resolve_path(scope.start_bus, scope.path(), devices) else {
                continue;
            };
            let exact = bus == dev.bus && device == dev.device && function == dev.function;
            match scope.kind {
                scope_kind::PCI_ENDPOINT if exact => return Some(index),
                scope_kind::PCI_SUB_HIERARCHY => {
                    let below = found
                        .filter(|b| b.is_bridge())
                        .is_some_and(|b| (b.secondary_bus..=b.subordinate_bus).contains(&dev.bus));
                    if exact || below {
                        return Some(index);
                    }
                }
                _ => {}
            }
        }
    }
    info.drhds().iter().position(|u| u.segment == dev.segment && u.include_pci_all())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::HashMap;

    use super::super::dmar::tests::{drhd, scope, table};
    use super::super::dmar::{parse_dmar, scope_kind};
    use super::*;

    /// Fake config space: (bus, dev, fn) -> 64 bytes of header.
    #[derive(Default)]
    struct Fake(HashMap<(u8, u8, u8), [u32; 16]>);

    impl Fake {
        fn add(&mut self, bdf: (u8, u8, u8), vendor: u16, device: u16, class: u32, header: u8, buses: (u8, u8)) {
            let mut h = [0u32; 16];
            h[0] = u32::from(vendor) | (u32::from(device) << 16);
            h[2] = class << 8;
            h[3] = u32::from(header) << 16;
            h[6] = (u32::from(buses.0) << 8) | (u32::from(buses.1) << 16);
            self.0.insert(bdf, h);
        }
    }

    impl ConfigSpace for Fake {
        fn read32(&self, bus: u8, device: u8, function: u8, offset: u16) -> u32 {
            self.0.get(&(bus, device, function)).map_or(u32::MAX, |h| h[usize::from(offset / 4)])
        }
    }

    fn machine() -> (Fake, PciDeviceList) {
        let mut f = Fake::default();
        f.add((0, 0, 0), 0x8086, 0x29c0, 0x06_00_00, 0, (0, 0)); // host bridge
        f.add((0, 2, 0), 0x1234, 0x11e8, 0x00_ff_00, 0, (0, 0)); // edu
        f.add((0, 0x1f, 0), 0x8086, 0x2918, 0x06_01_00, 0x80, (0, 0)); // multi-function LPC
        f.add((0, 0x1f, 2), 0x8086, 0x2922, 0x01_06_01, 0, (0, 0)); // SATA
        f.add((0, 0x1f, 5), 0x8086, 0x2930, 0x0c_05_00, 0, (0, 0)); // invisible: fn0 lacks... present
        f.add((0, 3, 1), 0x8086, 0xffff, 0, 0, (0, 0)); // fn1 of a single-function slot: not scanned
        f.add((0, 4, 0), 0x1b36, 0x000c, 0x06_04_00, 1, (1, 2)); // PCIe root port -> buses 1..2
        f.add((1, 0, 0), 0x8086, 0x10d3, 0x02_00_00, 0, (0, 0)); // NIC behind the bridge
        let mut list = PciDeviceList::new();
        enumerate(&f, 0, 0, 3, &mut list);
        (f, list)
    }

    #[test]
    fn enumerates_functions_and_bridges() {
        let (_, list) = machine();
        let bdfs: std::vec::Vec<_> = list.as_slice().iter().map(|d| (d.bus, d.device, d.function)).collect();
        assert_eq!(bdfs, [(0, 0, 0), (0, 2, 0), (0, 4, 0), (0, 0x1f, 0), (0, 0x1f, 2), (0, 0x1f, 5), (1, 0, 0)]);
        let bridge = list.as_slice()[2];
        assert!(bridge.is_bridge());
        assert_eq!((bridge.secondary_bus, bridge.subordinate_bus), (1, 2));
        let edu = list.as_slice()[1];
        assert_eq!((edu.vendor_id, edu.device_id, edu.class, edu.subclass), (0x1234, 0x11e8, 0x00, 0xff));
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
        let other_segment = PciDevice { segment: 1, ..list.as_slice()[0] };
        assert_eq!(covering_drhd(&info, &other_segment, &list), None);
    }

    #[test]
    fn overflow_is_counted() {
        let mut f = Fake::default();
        for bus in 0..3u8 {
            for dev in 0..32u8 {
                f.add((bus, dev, 0), 0x1af4, 0x1000, 0x02_00_00, 0, (0, 0));
            }
        }
        let mut list = PciDeviceList::new();
        enumerate(&f, 0, 0, 2, &mut list);
        assert_eq!(list.as_slice().len(), MAX_PCI_DEVICES);
        assert_eq!(list.overflowed(), 96 - MAX_PCI_DEVICES);
    }
}
