//! What init tells a management component, and the server before a driver goes down.
//!
//! A management component gets one `FaultSource` entry per device and component whose
//! faults it handles (policy, restart limit, driver) and one `Peer` entry per
//! component (names), so it can name the driver and apply the description's policy.
//! Before init restarts or cuts off a driver, the iommu-server resets or cuts off its
//! devices, so the server's domain never keeps frames init is about to revoke.

use libcap::abi::component::{CapEntry, CapKind, FAULT_SOURCE_DEVICE};
use libcap::abi::iommu::{IommuLabel, IommuStatus, SUPERVISOR_BADGE};
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::rights::CapRights;
use libcap::abi::system::ComponentRole;
use libcap::alloc::SlotAllocator;
use libcap::cap::{CNode, Result};
use libcap::ipc;

use crate::build;
use crate::compose::System;

/// Lists for a management component the devices and components whose faults it
/// handles and every component's name (after `compose::connect`; on restart too).
pub fn connect_extra(system: &mut System<'_>, i: usize) -> Result<()> {
    let desc = system.plan.desc;
    let me = i as u16;
    let role = ComponentRole::try_from(system.plan.components[i].rec.role);
    if role != Ok(ComponentRole::Management) {
        return Ok(());
    }
    let built = &mut system.comps[i].built;
    for d in system.plan.devices.iter().filter(|d| d.rec.fault_handler == me) {
        let mut e = CapEntry::new(desc.str(d.rec.name), CapKind::FaultSource, 0, 0);
        e.badge = FAULT_SOURCE_DEVICE | u64::from(d.index);
        e.vaddr = u64::from(d.rec.driver);
        e.size = u64::from(d.rec.fault_policy) | u64::from(d.rec.restart_limit) << 8;
        build::list(built, e)?;
    }
    for (c, p) in system.plan.components.iter().enumerate() {
        {
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
