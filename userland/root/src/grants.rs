//! What init grants besides channels and regions: BARs, IRQ control, fault sources.
//!
//! The driver of a device gets the first page of its BAR 0 mapped uncached at
//! `COMPONENT_DEVICE_VADDR` (a `DeviceFrame` entry); the iommu-server gets a copy of IRQ
//! control (it allocates the drivers' MSIs); a management component gets a send cap to
//! the iommu-server with the supervisor badge (`DriverReset` / `DriverCutoff`) and one
//! `FaultSource` entry per device and component whose faults it handles, so it can
//! name the driver and apply the description's policy.

use alloc::vec::Vec;

use libcap::abi::component::{CapEntry, CapKind, COMPONENT_DEVICE_VADDR, FAULT_SOURCE_DEVICE};
use libcap::abi::iommu::{IommuLabel, IommuStatus, SUPERVISOR_BADGE};
use libcap::abi::layout::PAGE_SIZE;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::system::ComponentRole;
use libcap::alloc::SlotAllocator;
use libcap::cap::{CNode, CPtr, PciDevice, Result};
use libcap::device::DeviceMemory;
use libcap::ipc;

use crate::build;
use crate::compose::System;
use crate::plan::Plan;

/// Where the `n`th device a driver drives has its BAR page (a guard page after each).
pub fn bar_vaddr(n: usize) -> u64 {
    COMPONENT_DEVICE_VADDR + 2 * PAGE_SIZE * n as u64
}

/// One frame cap (init slot) over the first page of each device's BAR 0; 0 where the
/// BAR is not memory or no device untyped covers it (the driver then gets no entry).
pub fn bar_frames(bi: &libcap::abi::bootinfo::BootInfo, plan: &Plan<'_>, slots: &SlotAllocator) -> Vec<CPtr> {
    let mut memory = DeviceMemory::new(bi);
    plan.devices
        .iter()
        .map(|d| {
            let pci = PciDevice(bi.pci_device_caps.start + d.pci as u64);
            let bar = pci.config_read(0x10, 4).unwrap_or(1);
            // Bit 0 set: an I/O BAR (ports come from the description instead).
            if bar & 1 != 0 || bar & !0xf == 0 {
                return 0;
            }
            memory.frame_at(slots, bar & !0xf).map_or(0, |f| f.0)
        })
        .collect()
}

/// Gives component `i` its BAR entries, IRQ control, iommu supervisor cap and fault
/// sources (after `compose::connect`; rebuilt on restart like the rest).
pub fn connect_extra(system: &mut System<'_>, i: usize) -> Result<()> {
    let desc = system.plan.desc;
    let me = i as u16;
    let h = desc.header();
    let role = ComponentRole::try_from(system.plan.components[i].rec.role);
    let built = &mut system.comps[i].built;
    let mut n = 0;
    for (k, d) in system.plan.devices.iter().enumerate().filter(|(_, d)| d.rec.driver == me) {
        if system.shared.bars.get(k).copied().unwrap_or(0) != 0 {
            let mut e = CapEntry::new(desc.str(d.rec.name), CapKind::DeviceFrame, CapRights::ALL.raw(), 0);
            e.vaddr = bar_vaddr(n);
            e.size = PAGE_SIZE;
            e.badge = u64::from(d.index);
            build::list(built, e)?;
            n += 1;
        }
    }
    if h.iommu_server == me {
        // IRQ control cannot be copied: the server gets init's (once; a restarted
        // server finds it in its CNode only if init still holds it, so it has none).
        let e = CapEntry::new("irq-control", CapKind::IrqControl, CapRights::ALL.raw(), 0);
        if build::give_moved(built, slots::IRQ_CONTROL, e).is_err() {
            libcap::println!("init: IRQ control already given away: the iommu-server gets none (no MSIs)");
        }
    }
    let handles_faults = role == Ok(ComponentRole::Management);
    if handles_faults && h.iommu_server != libcap::abi::system::NONE && system.shared.iommu_ep != 0 {
        let rights = CapRights::WRITE.union(CapRights::GRANT_REPLY);
        let mut e = CapEntry::new("iommu-supervisor", CapKind::IommuSupervisor, 0, 0);
        e.badge = libcap::abi::iommu::SUPERVISOR_BADGE;
        build::give(built, system.shared.iommu_ep, e, rights, libcap::abi::iommu::SUPERVISOR_BADGE)?;
    }
    for d in system.plan.devices.iter().filter(|d| d.rec.fault_handler == me) {
        let mut e = CapEntry::new(desc.str(d.rec.name), CapKind::FaultSource, 0, 0);
        e.badge = FAULT_SOURCE_DEVICE | u64::from(d.index);
        e.vaddr = u64::from(d.rec.driver);
        e.size = u64::from(d.rec.fault_policy) | u64::from(d.rec.restart_limit) << 8;
        build::list(built, e)?;
    }
    for (c, p) in system.plan.components.iter().enumerate() {
        if handles_faults {
            let mut e = CapEntry::new(p.name, CapKind::Peer, 0, 0);
            e.badge = c as u64;
            e.size = u64::from(p.rec.role);
            build::list(built, e)?;
        }
        if p.rec.fault_handler == me {
            let mut e = CapEntry::new(p.name, CapKind::FaultSource, 0, 0);
            e.badge = c as u64;
            e.size = u64::from(p.rec.fault_policy) | u64::from(p.rec.restart_limit) << 8;
            build::list(built, e)?;
        }
    }
    Ok(())
}

/// Before init tears component `i` down for a restart (`reset`) or for good, the
/// iommu-server resets or cuts off every device it drives: the domain forgets the
/// buffers (unmapped, revoked) before the driver's budget, and so its pool, is revoked.
pub fn tell_server(system: &System<'_>, i: usize, slots: &SlotAllocator, reset: bool) {
    let ep = system.shared.iommu_ep;
    let me = i as u16;
    if ep == 0 {
        return;
    }
    let label = if reset { IommuLabel::DriverReset } else { IommuLabel::DriverCutoff };
    for (k, _) in system.plan.devices.iter().enumerate().filter(|(_, d)| d.rec.driver == me) {
        let Ok(tmp) = slots.alloc() else { return };
        if CNode::mint(build::root(tmp), build::root(ep), CapRights::WRITE, SUPERVISOR_BADGE).is_ok() {
            let reply = ipc::call(tmp, MessageInfo::new(label.raw(), 1), [k as u64, 0, 0, 0]);
            if !matches!(reply, Ok(m) if m.mrs[0] == IommuStatus::Ok.raw()) {
                libcap::println!("init: the iommu-server did not {label:?} device {k}: {reply:?}");
            }
            let _ = CNode::delete(build::root(tmp));
        }
    }
}
