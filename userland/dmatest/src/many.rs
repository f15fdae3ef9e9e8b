//! manydev: every alias group of a many-device machine gets its own IOSpace.
//!
//! The scenario (tests/tests/many.rs) has 200+ PCI functions on 20+ buses.

use libcap::abi::bootinfo::{BootInfo, NO_DRHD};
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{IoSpace, PciDevice};
use libcap::check::Checker;
use libcap::println;

/// More PCI functions than bootinfo version 3 could list (64): this scenario.
pub fn present(bi: &BootInfo) -> bool {
    bi.pci_devices().len() > 64
}

/// Retypes one IOSpace per alias group and assigns the group to it; prints the count.
pub fn run(bi: &BootInfo, c: &mut Checker, slots: &SlotAllocator, objects: &mut ObjectAllocator) -> ExitCode {
    let devs = bi.pci_devices();
    let mut buses = [false; 256];
    for d in devs {
        buses[usize::from(d.bus)] = true;
    }
    let bus_count = buses.iter().filter(|b| **b).count();
    println!("manydev: {} PCI functions on {bus_count} buses", devs.len());
    let (mut groups, mut assigned) = (0usize, 0usize);
    for (leader, dev) in devs.iter().enumerate().filter(|(i, d)| usize::from(d.alias_group) == *i) {
        if dev.drhd_index == NO_DRHD {
            continue;
        }
        groups += 1;
        let cap = |i: usize| PciDevice(bi.pci_device_caps.start + i as u64);
        let mut others = [PciDevice(0); 63];
        let mut n = 0;
        for member in bi.alias_group_of(leader).filter(|&m| m != leader).take(others.len()) {
            others[n] = cap(member);
            n += 1;
        }
        let bdf = (dev.bus, dev.devfn >> 3, dev.devfn & 7);
        let result = objects
            .alloc(slots, ObjectType::IoSpace, 0)
            .and_then(|space| IoSpace(space).assign_group(cap(leader), &others[..n]));
        match result {
            Ok(()) => assigned += 1,
            Err(e) => println!("manydev: FAIL {:02x}:{:02x}.{}: IOSpace or Assign failed: {e:?}", bdf.0, bdf.1, bdf.2),
        }
    }
    println!("manydev: {assigned} of {groups} alias groups assigned, each to its own IOSpace");
    c.check("every alias group is assigned to an IOSpace of its own", assigned == groups && groups > 64);
    c.finish()
}
