//! What init lists for a management component; which components serve forever.
//!
//! A management component gets one `FaultSource` entry per device and component whose
//! faults it handles (policy, restart limit, driver) and one `Peer` entry per
//! component (names), so it can name the driver and apply the description's policy.
//! [`serves_forever`] tells init which components the system may end without.

use libcap::abi::component::{CapEntry, CapKind, FAULT_SOURCE_DEVICE};
use libcap::abi::system::ComponentRole;
use libcap::cap::Result;

use crate::build;
use crate::compose::System;
use crate::plan::Plan;

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

/// Whether component `i` serves forever, so the system may end without it: a
/// management component that handles some device's or component's faults, and the
/// iommu-server of a system that has one.
pub fn serves_forever(plan: &Plan<'_>, i: usize) -> bool {
    let handles = |m: usize| {
        let me = m as u16;
        let role = ComponentRole::try_from(plan.components[m].rec.role);
        role == Ok(ComponentRole::Management)
            && (plan.devices.iter().any(|d| d.rec.fault_handler == me)
                || plan.components.iter().any(|c| c.rec.fault_handler == me))
    };
    let role = ComponentRole::try_from(plan.components[i].rec.role);
    handles(i) || (role == Ok(ComponentRole::IommuServer) && (0..plan.components.len()).any(handles))
}

/// Tells component `i`'s fault handler (if the description names one and it serves an
/// endpoint channel) what CPU fault init saw and did: an NBSend, so a busy handler
/// misses it (init logs every fault itself).
pub fn report_fault(system: &System<'_>, i: usize, label: u64, at: u64, action: u64) {
    let desc = system.plan.desc;
    let handler = system.plan.components[i].rec.fault_handler;
    let channel = desc
        .channels()
        .iter()
        .position(|c| c.server == handler && c.kind == libcap::abi::system::ChannelKind::Endpoint.raw());
    let Some(ep) = channel.and_then(|k| system.shared.channels.get(k)) else { return };
    let info = libcap::abi::msginfo::MessageInfo::new(libcap::abi::component::COMPONENT_FAULT_REPORT, 4);
    let _ = libcap::ipc::nb_send(*ep, info, [i as u64, label, at, action]);
}
