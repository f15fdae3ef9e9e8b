//! What init lists for a management component; which components serve forever.
//!
//! A management component gets one `FaultSource` entry per device and component whose
//! faults it handles (policy, restart limit, driver) and one `Peer` entry per
//! component (names), so it can name the driver and apply the description's policy,
//! and its fault doorbell bound to its TCB; the iommu-server gets a signal cap to the
//! doorbell of the management component that handles device faults. CPU-fault reports
//! wait in init's per-handler queue ([`report_fault`]) until the handler fetches them.
//! [`serves_forever`] tells init which components the system may end without.

use libcap::abi::component::SupervisorStatus;
use libcap::abi::component::{CapEntry, CapKind, COMPONENT_REPORT_QUEUE, DOORBELL_IOMMU, FAULT_SOURCE_DEVICE};
use libcap::abi::rights::CapRights;
use libcap::abi::system::ComponentRole;
use libcap::cap::{Notification, Result};

use crate::build;
use crate::compose::System;
use crate::plan::Plan;

/// Lists for a management component the devices and components whose faults it
/// handles and every component's name (after `compose::connect`; on restart too).
pub fn connect_extra(system: &mut System<'_>, i: usize) -> Result<()> {
    let desc = system.plan.desc;
    let me = i as u16;
    let role = ComponentRole::try_from(system.plan.components[i].rec.role);
    if role == Ok(ComponentRole::IommuServer) {
        // Per device, the doorbell of the management component handling its faults:
        // the server rings that one, and serves that handler alone for the device
        // (entry size = device index, vaddr = the handler's component index).
        for d in &system.plan.devices {
            let h = usize::from(d.rec.fault_handler);
            let Some(&(doorbell, _)) = system.shared.doorbells.get(h).filter(|b| b.0 != 0) else { continue };
            let mut e = CapEntry::new(desc.str(d.rec.name), CapKind::FaultDoorbell, 0, 0);
            e.size = u64::from(d.index);
            e.vaddr = h as u64;
            build::give(&mut system.comps[i].built, doorbell, e, CapRights::WRITE, DOORBELL_IOMMU)?;
        }
        return Ok(());
    }
    if role != Ok(ComponentRole::Management) {
        return Ok(());
    }
    let built = &mut system.comps[i].built;
    // The doorbell latches: a signal while management is busy is seen at its next Recv.
    built.space.tcb.bind_notification(Notification(system.shared.doorbells[i].0))?;
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
/// iommu-server.
pub fn serves_forever(plan: &Plan<'_>, i: usize) -> bool {
    let handles = |m: usize| {
        let me = m as u16;
        let role = ComponentRole::try_from(plan.components[m].rec.role);
        role == Ok(ComponentRole::Management)
            && (plan.devices.iter().any(|d| d.rec.fault_handler == me)
                || plan.components.iter().any(|c| c.rec.fault_handler == me))
    };
    // The iommu-server serves its drivers for as long as the system runs; a driver
    // that waits on a channel from a component (its client: rings, not a fault
    // forwarder) serves that client for as long as it runs.
    let role = ComponentRole::try_from(plan.components[i].rec.role);
    let server =
        plan.components.iter().position(|c| ComponentRole::try_from(c.rec.role) == Ok(ComponentRole::IommuServer));
    let drives = plan.devices.iter().any(|d| usize::from(d.rec.driver) == i);
    let serves_client = plan
        .desc
        .channels()
        .iter()
        .any(|c| usize::from(c.server) == i && Some(usize::from(c.client)) != server && usize::from(c.client) != i);
    handles(i) || role == Ok(ComponentRole::IommuServer) || (drives && serves_client)
}

/// Tells component `i`'s fault handler what CPU fault init saw and did. A management
/// handler gets it queued (never lost silently: a full queue counts it lost) and its
/// doorbell rung, which never blocks init; any other handler that serves an endpoint
/// channel gets an NBSend (lossy fallback; init logs every fault itself).
pub fn report_fault(system: &mut System<'_>, i: usize, label: u64, at: u64, action: u64) {
    let desc = system.plan.desc;
    let handler = system.plan.components[i].rec.fault_handler;
    if let Some(&(_, mine)) = system.shared.doorbells.get(usize::from(handler)).filter(|d| d.0 != 0) {
        let reports = &mut system.reports[usize::from(handler)];
        if reports.queue.len() < COMPONENT_REPORT_QUEUE {
            reports.queue.push_back([i as u64, label, at, action]);
        } else {
            reports.lost += 1;
        }
        let _ = libcap::ipc::signal(mine);
        return;
    }
    let channel = desc
        .channels()
        .iter()
        .position(|c| c.server == handler && c.kind == libcap::abi::system::ChannelKind::Endpoint.raw());
    let Some(ep) = channel.and_then(|k| system.shared.channels.get(k)) else { return };
    let info = libcap::abi::msginfo::MessageInfo::new(libcap::abi::component::COMPONENT_FAULT_REPORT, 4);
    let _ = libcap::ipc::nb_send(*ep, info, [i as u64, label, at, action]);
}

/// A handler's `SUPERVISOR_FAULT_NEXT`: its oldest queued CPU-fault report, in the
/// reply layout of `abi::component`.
pub fn fault_next(system: &mut System<'_>, from: usize) -> [u64; 4] {
    let Some(reports) = system.reports.get_mut(from) else {
        return [SupervisorStatus::BadRequest.raw(), 0, 0, 0];
    };
    let lost = core::mem::take(&mut reports.lost).min(0xff_ffff) << 8;
    let popped = reports.queue.pop_front();
    let remaining = (reports.queue.len() as u64) << 32;
    match popped {
        Some([component, kind, at, action]) => {
            [SupervisorStatus::Ok.raw() | lost | remaining, component | kind << 32, at, action]
        }
        None => [SupervisorStatus::Empty.raw() | lost, 0, 0, 0],
    }
}

/// Whether a running handler still has CPU-fault reports to fetch (the system does not
/// end before it has them).
pub fn reports_pending(system: &System<'_>) -> bool {
    system
        .reports
        .iter()
        .zip(&system.comps)
        .any(|(r, c)| !r.queue.is_empty() && c.status == crate::compose::Status::Running)
}
