//! The iommu-server as a component: its config read from the info page init wrote.
//!
//! Init gives it (docs/system.md, `abi::component`): the `iommu` endpoint its drivers
//! call, one PciDevice cap per device (`badge` = device index, `size` = the device's
//! DMA mask width when init records it, else 64) and each driver's DMA pool (an
//! untyped, `badge` = device index), its own spare untyped (IOSpaces, IO page tables,
//! the fault notification it binds to its TCB) and the endpoints of its channels; the first channel it is a client of receives
//! the forwarded DMA faults, and an `iommu-status` region, if described, receives its
//! status text (`crate::status`). It then runs `iommu_server::server::run`.

use alloc::vec::Vec;

use crate::server::{run, Config, DeviceCaps, MsixHandler, StatusOut, NO_HANDLER};
use crate::status::DeviceView;
use libcap::abi::component::{CNODE, FIRST_NAMED, TCB};
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::cap::{CNode, Msi, Notification, Tcb, Untyped};
use libcap::component::{CapKind, ComponentInfo};
use libcap::println;

/// Slots the server assumes when init does not say how big its CNode is (an init
/// older than `ComponentInfo::cnode_radix`): `cnode_bits = 8` or more.
const DEFAULT_SLOTS: u64 = 256;

/// Reads the caps init gave and runs the server; `malicious` first makes the attempts
/// of [`crate::malicious`] (the `iommu-server-malicious` program).
pub fn start(info: &'static ComponentInfo, malicious: bool) -> ExitCode {
    let Some(endpoint) = info.cap_of("iommu", CapKind::Endpoint) else {
        println!("iommu-server: FAIL no 'iommu' endpoint in the info page (is this component the iommu-server?)");
        return ExitCode::UserFailure;
    };
    let write = CapRights::WRITE.raw();
    let faults = info.caps().iter().find(|c| c.kind() == Some(CapKind::Endpoint) && c.rights & write != 0);
    let mut devices: Vec<(u64, DeviceCaps)> = Vec::new();
    let mut views: Vec<(u64, DeviceView<'static>)> = Vec::new();
    for pci in info.caps().iter().filter(|c| c.kind() == Some(CapKind::PciDevice)) {
        let pool = info.caps().iter().find(|c| c.kind() == Some(CapKind::Untyped) && c.badge == pci.badge);
        let Some(pool) = pool else {
            println!("iommu-server: device {} '{}': no DMA pool: not served", pci.badge, pci.name());
            continue;
        };
        let dma_mask_bits = if (12..=64).contains(&pci.size) { pci.size as u8 } else { 64 };
        let fault_ep = faults.map_or(0, |f| f.slot);
        // The MSI init made for the device (address in `vaddr`, data | vector << 32 in `size`).
        let msi = info.caps().iter().find(|c| c.kind() == Some(CapKind::Msi) && c.badge == pci.badge).map(|m| {
            let msi = Msi { vector: (m.size >> 32) as u8, address: m.vaddr, data: m.size as u32 };
            (m.slot, msi)
        });
        // The doorbell of its handler (size = device index, vaddr = handler's index).
        let bell = info.caps().iter().find(|c| c.kind() == Some(CapKind::FaultDoorbell) && c.size == pci.badge);
        let (handler, doorbell) = bell.map_or((NO_HANDLER, 0), |b| (b.vaddr as u16, b.slot));
        views.push((pci.badge, DeviceView { name: pci.name(), dma_mask_bits, pool_bytes: pool.size, faults: 0 }));
        devices.push((
            pci.badge,
            DeviceCaps { pci: pci.slot, pool: pool.slot, dma_mask_bits, fault_ep, msi, handler, doorbell },
        ));
    }
    // The protocol's device index is the description's: the list must be dense.
    devices.sort_by_key(|(index, _)| *index);
    if devices.iter().enumerate().any(|(i, (index, _))| i as u64 != *index) {
        println!(
            "iommu-server: FAIL device indices are not 0..n: {:?}",
            devices.iter().map(|d| d.0).collect::<Vec<_>>()
        );
        return ExitCode::UserFailure;
    }
    if info.budget_untyped.is_empty() {
        println!("iommu-server: FAIL no spare untyped for IOSpaces and IO page tables");
        return ExitCode::UserFailure;
    }
    let named_end = info.caps().iter().map(|c| c.slot + 1).max().unwrap_or(FIRST_NAMED);
    // The IOSpaces' fault handler: a notification of its own, bound to its TCB.
    let ntfn = named_end.max(FIRST_NAMED) + 1;
    let untyped = info.budget_untyped.start..info.budget_untyped.end;
    let made =
        untyped.clone().any(|u| Untyped(u).retype(ObjectType::Notification, 0, CNode(CNODE), 0, 0, ntfn, 1).is_ok());
    let fault_ntfn = if made && Tcb(TCB).bind_notification(Notification(ntfn)).is_ok() { ntfn } else { 0 };
    let devices: Vec<DeviceCaps> = devices.into_iter().map(|(_, d)| d).collect();
    views.sort_by_key(|(index, _)| *index);
    let views: Vec<DeviceView<'static>> = views.into_iter().map(|(_, v)| v).collect();
    // The `iommu-status` region, if the description gives the server one to write.
    let status = info.cap_of("iommu-status", CapKind::Region).filter(|r| r.rights & write != 0).map(|r| StatusOut {
        // SAFETY: init mapped the region writable for the server alone at this
        // address for its whole life; it is used only as a status page.
        page: unsafe { capring::status::StatusPage::new(r.vaddr as *mut u8, r.size as usize) },
        views: &views,
    });
    // MSI-X handlers init made (badge = device, size = entry | vector << 32).
    let msix: Vec<MsixHandler> = info
        .caps()
        .iter()
        .filter(|c| c.kind() == Some(CapKind::Msix))
        .map(|c| MsixHandler {
            device: c.badge as u16,
            entry: c.size as u16,
            slot: c.slot,
            vector: (c.size >> 32) as u8,
        })
        .collect();
    // Init says how big the CNode is; its slots above the named caps are the server's.
    let slots = match info.cnode_radix {
        0 => DEFAULT_SLOTS,
        radix => 1u64 << radix.min(16),
    };
    let config = Config {
        cnode: CNODE,
        endpoint: endpoint.slot,
        fault_ntfn,
        untyped,
        irq_control: 0,
        free_slots: named_end.max(FIRST_NAMED) + 8..slots,
        address_bits: 39,
        devices: &devices,
        msix: &msix,
        status,
        // The `iommu-server-malicious` program: the device's PciDevice cap stands in for
        // device memory, an untyped for a forged frame (an empty slot would be a cap
        // fault and an endpoint a Call: the server would stop, not be refused).
        malicious: malicious.then(|| {
            let device_frame = devices.first().map_or(0, |d| d.pci);
            crate::malicious::Attempts { device_frame, forged_slot: info.budget_untyped.start }
        }),
    };
    println!("iommu-server: component '{}' generation {}: {} devices", info.name(), info.generation, devices.len());
    run(&config)
}
