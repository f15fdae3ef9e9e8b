//! The iommu-server as a component: its config read from the info page init wrote.
//!
//! Init gives the server (docs/system.md, docs/iommu-server.md): its endpoint `iommu`
//! (all rights), one `PciDevice` and one DMA-pool `Untyped` entry per device (badge =
//! device index), `irq-control`, its spare budget untyped (IOSpaces and IO page tables
//! come from the first) and the channels the description names: DMA faults are
//! forwarded to its first send endpoint (the channel to the management component).

use abi::component::{CapKind, ComponentInfo, BUDGET_UNTYPED, CNODE};
use abi::exit::ExitCode;
use abi::object::ObjectType;
use abi::rights::CapRights;
use alloc::vec::Vec;
use libcap::cap::Untyped;
use libcap::println;

use crate::malicious::Attempts;
use crate::server::{run, Config, DeviceCaps};

/// Slots of the server's CNode (the description's `cnode_bits` must be at least 10).
const CNODE_SLOTS: u64 = 1 << 10;
/// Address bits QEMU's intel-iommu translates by default (3-level tables).
const ADDRESS_BITS: u8 = 39;

/// Reads the caps init gave and runs the server (never returns unless a cap is missing).
pub fn start(info: &'static ComponentInfo, malicious: bool) -> ExitCode {
    let Some(endpoint) = info.cap_of("iommu", CapKind::Endpoint) else {
        println!("iommu-server: no 'iommu' endpoint in the info page");
        return ExitCode::UserFailure;
    };
    let fault_ep = info
        .caps()
        .iter()
        .find(|c| c.kind() == Some(CapKind::Endpoint) && c.rights & CapRights::WRITE.raw() != 0 && c.name() != "iommu")
        .map_or(0, |c| c.slot);
    let count = info.caps().iter().filter(|c| c.kind() == Some(CapKind::PciDevice)).count();
    let mut devices = Vec::new();
    for index in 0..count as u64 {
        let pci = info.caps().iter().find(|c| c.kind() == Some(CapKind::PciDevice) && c.badge == index);
        let pool = info.caps().iter().find(|c| c.kind() == Some(CapKind::Untyped) && c.badge == index);
        let (Some(pci), Some(pool)) = (pci, pool) else {
            println!("iommu-server: device {index}: no PciDevice or DMA pool cap");
            return ExitCode::UserFailure;
        };
        // Init puts the description's dma_mask_bits in the PciDevice entry's size.
        let dma_mask_bits = u8::try_from(pci.size).ok().filter(|b| (12..=64).contains(b)).unwrap_or(28);
        devices.push(DeviceCaps { pci: pci.slot, pool: pool.slot, dma_mask_bits, fault_ep });
        println!(
            "iommu-server: device {index} ({}): pool {} KiB, faults to {}",
            pci.name(),
            pool.size / 1024,
            if fault_ep != 0 { "the management channel" } else { "nobody (logged only)" }
        );
    }
    let used = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(BUDGET_UNTYPED + 6);
    let irq_control = info.cap_of("irq-control", CapKind::IrqControl).map_or(0, |c| c.slot);
    // One untyped for IOSpaces and IO page tables: the biggest piece the spare budget
    // yields (its untyped caps come in watermark order, not by size).
    let untyped = used + 1;
    let carved = [21u64, 20, 19, 18, 17, 16].iter().find_map(|&bits| {
        (info.budget_untyped.start..info.budget_untyped.end).find(|&u| {
            let root = libcap::cap::CNode(CNODE);
            Untyped(u).retype(ObjectType::Untyped, bits, root, 0, 0, untyped, 1).is_ok()
        })?;
        Some(bits)
    });
    let Some(bits) = carved else {
        println!("iommu-server: no spare untyped of 64 KiB or more for IOSpaces and IO page tables");
        return ExitCode::UserFailure;
    };
    println!("iommu-server: {} KiB for IOSpaces and IO page tables", (1u64 << bits) / 1024);
    let free_slots = used + 2..CNODE_SLOTS;
    let attempts = malicious.then(|| Attempts {
        // The server holds no device memory: a PciDevice cap stands in for one.
        device_frame: devices.first().map_or(0, |d| d.pci),
        // Not a frame: invoking an empty slot would be a cap fault (the server would
        // stop) and an endpoint would be a Call, so the "forged" frame is its untyped.
        forged_slot: untyped,
    });
    let config = Config {
        cnode: CNODE,
        endpoint: endpoint.slot,
        untyped,
        irq_control,
        free_slots: free_slots.start..free_slots.end - 1,
        address_bits: ADDRESS_BITS,
        devices: &devices,
        malicious: attempts,
    };
    run(&config)
}
