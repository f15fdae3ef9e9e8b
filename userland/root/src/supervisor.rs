//! Init as supervisor: component faults and exits, restart and cut-off requests.
//!
//! Init receives on its one endpoint: CPU faults of components (badge = component
//! index, label = `abi::fault::FaultKind`), exit notices (`COMPONENT_EXITED`) and
//! requests from the supervisor component (badge has `SUPERVISOR_BADGE`, labels
//! `SUPERVISOR_RESTART` / `SUPERVISOR_CUTOFF`). A fault follows the component's
//! policy: `log` leaves it suspended, `restart` revokes everything it held (each
//! budget piece is revoked: one Revoke per piece kills all its objects), rebuilds it
//! with generation + 1 and starts it, up to its limit, then it stays down; `cut-off`
//! tears it down for good. When no component runs any more, init ends the system.

use alloc::format;
use alloc::string::String;

use libcap::abi::component::{
    SupervisorStatus, COMPONENT_EXITED, GRAPH_LINE_WORDS, REPORT_LEFT_DOWN, REPORT_RESTARTED, REPORT_STAYS_DOWN,
    SUPERVISOR_BADGE, SUPERVISOR_CUTOFF, SUPERVISOR_FAULT_NEXT, SUPERVISOR_GRAPH_LINE, SUPERVISOR_RESTART,
};
use libcap::abi::exit::ExitCode;
use libcap::abi::fault::FaultKind;
use libcap::abi::iommu::IommuLabel;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::system::ComponentRole;
use libcap::abi::system::FaultPolicy;
use libcap::alloc::SlotAllocator;
use libcap::cap::{CNode, Result};
use libcap::ipc;
use libcap::println;

use crate::build::{self, root};
use crate::compose::{self, Status, System};

fn describe(label: u64, mrs: [u64; 4]) -> (String, u64) {
    match FaultKind::try_from(label) {
        Ok(FaultKind::VmFault) => {
            let what = if mrs[2] != 0 {
                "fetch"
            } else if mrs[3] & 2 != 0 {
                "write"
            } else {
                "read"
            };
            (format!("page fault ({what} {:#x})", mrs[1]), mrs[0])
        }
        Ok(FaultKind::UserException) => (format!("exception {}", mrs[3]), mrs[0]),
        Ok(FaultKind::CapFault) => (format!("cap fault (cptr {:#x})", mrs[1]), mrs[0]),
        Ok(FaultKind::UnknownSyscall) => (format!("unknown syscall {}", mrs[3]), mrs[0]),
        Ok(FaultKind::DmaFault) => (String::from("dma fault"), 0),
        Err(l) => (format!("message {l:#x}"), 0),
    }
}

/// Suspends component `i` and destroys everything it held.
fn teardown(system: &mut System<'_>, i: usize) -> Result<()> {
    let c = &mut system.comps[i];
    let _ = c.built.space.tcb.suspend();
    // First revoke every cap init gave it: copies it passed on (over a channel with
    // Grant) are their children and die too, so no peer keeps its authority (an old
    // driver generation's iommu-server cap, its supervisor caps) past this instance.
    // Revoking the budget below deletes its CNode, which would orphan them instead.
    for e in c.built.info.caps().iter().filter(|e| e.slot != 0) {
        let _ = CNode::revoke(c.built.space.slot(e.slot));
    }
    for p in c.budget.pieces.iter_mut() {
        CNode::revoke(root(p.cap))?;
        p.used = 0;
    }
    driver_gone(system, i);
    let c = &mut system.comps[i];
    for slot in c.built.extra.drain(..) {
        let _ = CNode::delete(root(slot));
    }
    let _ = CNode::delete(root(c.built.space.cnode));
    // Whatever else its build and connection left in init's slots goes too: the
    // rebuild takes the same slots again.
    for slot in c.windows.iter().flat_map(|w| w.clone()) {
        let _ = CNode::delete(root(slot));
    }
    Ok(())
}

/// Tells the iommu-server that the driver of each device component `i` drives is gone
/// (attack round 15): its budget and pools died with the revoke above, but a frame a
/// peer lent it and it placed for its device (`DmaMapFrame`) derives from the peer's
/// cap, and the device reached it until the next instance's first request (or for
/// good after a cut-off). An NBSend: init never waits for a component (a server that
/// is down, or a program in the server's role that never receives, would stop init's
/// supervision for good). The server waits in Recv whenever init runs unless a
/// component of its priority or above preempted it mid-request; then the message is
/// lost and the frames go at the next instance's first request, as before.
fn driver_gone(system: &System<'_>, i: usize) {
    let server = usize::from(system.plan.desc.header().iommu_server);
    let running = system.comps.get(server).is_some_and(|s| s.status == Status::Running);
    if server == i || !running || system.shared.iommu_ep == 0 {
        return;
    }
    // One message for all its devices: after the first NBSend the server is no
    // longer waiting in Recv (init runs on), so a second would be lost.
    let mask = system
        .plan
        .devices
        .iter()
        .filter(|d| usize::from(d.rec.driver) == i && d.index < 64)
        .fold(0u64, |m, d| m | 1 << d.index);
    if mask != 0 {
        let info = MessageInfo::new(IommuLabel::DriverGone.raw(), 1);
        let _ = ipc::nb_send(system.shared.iommu_ep, info, [mask, 0, 0, 0]);
    }
}

/// Tears component `i` down and starts a fresh instance (generation + 1).
pub fn restart(system: &mut System<'_>, i: usize, slots: &SlotAllocator) -> Result<u32> {
    teardown(system, i)?;
    let generation = system.comps[i].generation + 1;
    // The same init slots as the first build (teardown emptied them): a restart costs
    // init no slots, however often it happens. `slots` is not touched.
    let _ = slots;
    let [build_window, connect_window] = system.comps[i].windows.clone();
    let (built, pools) = {
        let c = &mut system.comps[i];
        let window = SlotAllocator::window(build_window);
        compose::build_one(&system.plan, i, &mut c.budget, &window, generation, &system.shared)?
    };
    let c = &mut system.comps[i];
    c.built = built;
    c.pools = pools;
    c.generation = generation;
    compose::connect(system, i, &SlotAllocator::window(connect_window))?;
    compose::hand_pools(system, i)?;
    build::start(&system.comps[i].built)?;
    system.comps[i].status = Status::Running;
    Ok(generation)
}

/// Cuts component `i` off: torn down, stays down.
pub fn cutoff(system: &mut System<'_>, i: usize) -> Result<()> {
    teardown(system, i)?;
    system.comps[i].status = Status::Down;
    Ok(())
}

fn on_fault(system: &mut System<'_>, i: usize, label: u64, mrs: [u64; 4], slots: &SlotAllocator) {
    let name = system.plan.components[i].name;
    let rec = system.plan.components[i].rec;
    let (kind, rip) = describe(label, mrs);
    let policy = FaultPolicy::try_from(rec.fault_policy).unwrap_or(FaultPolicy::Log);
    match policy {
        FaultPolicy::Log => {
            println!("init: fault in {name}: {kind} at {rip:#x}; policy log (left suspended)");
            let _ = system.comps[i].built.space.tcb.suspend();
            system.comps[i].status = Status::Down;
            crate::grants::report_fault(system, i, label, rip, REPORT_LEFT_DOWN);
        }
        FaultPolicy::Restart if system.comps[i].restarts < u32::from(rec.restart_limit) => {
            system.comps[i].restarts += 1;
            let n = system.comps[i].restarts;
            println!("init: fault in {name}: {kind} at {rip:#x}; policy restart ({n} of {})", rec.restart_limit);
            match restart(system, i, slots) {
                Ok(g) => {
                    println!("init: restarted {name}: generation {g}");
                    crate::grants::report_fault(system, i, label, rip, REPORT_RESTARTED | u64::from(n) << 8);
                }
                Err(e) => {
                    println!("init: restarting {name} failed ({e:?}): it stays down");
                    let _ = cutoff(system, i);
                    crate::grants::report_fault(system, i, label, rip, REPORT_STAYS_DOWN);
                }
            }
        }
        FaultPolicy::Restart => {
            println!(
                "init: fault in {name}: {kind} at {rip:#x}; policy restart: limit ({}) reached, {name} stays down",
                rec.restart_limit
            );
            let _ = cutoff(system, i);
            crate::grants::report_fault(system, i, label, rip, REPORT_STAYS_DOWN);
        }
        FaultPolicy::CutOff => {
            println!("init: fault in {name}: {kind} at {rip:#x}; policy cut-off: {name} stays down");
            let _ = cutoff(system, i);
            crate::grants::report_fault(system, i, label, rip, REPORT_STAYS_DOWN);
        }
    }
}

fn on_request(system: &mut System<'_>, from: usize, label: u64, target: u64, slots: &SlotAllocator) -> [u64; 4] {
    if label == SUPERVISOR_FAULT_NEXT {
        return crate::grants::fault_next(system, from);
    }
    let who = system.plan.components.get(from).map_or("?", |c| c.name);
    let Some(i) = usize::try_from(target).ok().filter(|&i| i < system.comps.len()) else {
        return [SupervisorStatus::NoSuchComponent.raw(), 0, 0, 0];
    };
    let name = system.plan.components[i].name;
    if matches!(label, SUPERVISOR_RESTART | SUPERVISOR_CUTOFF) && !may_supervise(system, from, i) {
        println!("init: {who} may not restart or cut off {name}: refused");
        return [SupervisorStatus::Denied.raw(), 0, 0, 0];
    }
    match label {
        SUPERVISOR_RESTART => {
            println!("init: {who} asks to restart {name}");
            match restart(system, i, slots) {
                Ok(g) => {
                    println!("init: restarted {name}: generation {g}");
                    [SupervisorStatus::Ok.raw(), u64::from(g), 0, 0]
                }
                Err(e) => {
                    println!("init: restarting {name} failed ({e:?}): it stays down");
                    let _ = cutoff(system, i);
                    [SupervisorStatus::RebuildFailed.raw(), 0, 0, 0]
                }
            }
        }
        SUPERVISOR_CUTOFF => {
            println!("init: {who} cuts {name} off: it stays down");
            let _ = cutoff(system, i);
            [SupervisorStatus::Ok.raw(), 0, 0, 0]
        }
        _ => [SupervisorStatus::BadRequest.raw(), 0, 0, 0],
    }
}

/// Whether component `from` may restart or cut off component `target`: the
/// description's supervisor component may act on every other component; a management
/// component on those whose faults it handles and on the drivers of the devices whose
/// faults it handles. Never on the iommu-server (its domains and pools would be lost;
/// the description checker refuses a restart policy for it too) nor on itself.
fn may_supervise(system: &System<'_>, from: usize, target: usize) -> bool {
    let plan = &system.plan;
    let role = ComponentRole::try_from(plan.components[target].rec.role);
    if from == target || role == Ok(ComponentRole::IommuServer) {
        return false;
    }
    let me = from as u16;
    plan.desc.header().supervisor == me
        || plan.components[target].rec.fault_handler == me
        || plan.devices.iter().any(|d| d.rec.fault_handler == me && usize::from(d.rec.driver) == target)
}

/// A `SUPERVISOR_GRAPH_LINE` request for line `n`: the reply words, with the text in
/// message words 4.. (how many returned). Read-only: what init granted at start.
fn graph_line(system: &System<'_>, n: u64) -> ([u64; 4], usize) {
    let lines = compose::graph_lines(system);
    let Some(line) = usize::try_from(n).ok().and_then(|n| lines.get(n)) else {
        return ([SupervisorStatus::Empty.raw(), lines.len() as u64, 0, 0], 0);
    };
    let bytes = &line.as_bytes()[..line.len().min(GRAPH_LINE_WORDS * 8)];
    for (w, chunk) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        ipc::set_mr(4 + w, u64::from_le_bytes(word));
    }
    ([SupervisorStatus::Ok.raw(), lines.len() as u64, bytes.len() as u64, 0], bytes.len().div_ceil(8))
}

/// The supervisor loop; returns when no component runs any more.
pub fn supervise(system: &mut System<'_>, slots: &SlotAllocator) -> ExitCode {
    let ep = system.shared.fault_ep;
    loop {
        // A management component that handles faults, and then the iommu-server, serve
        // forever: the system is done when every other component stopped.
        let server = |i: usize| crate::grants::serves_forever(&system.plan, i);
        let workers = (0..system.comps.len()).any(|i| !server(i));
        let stopped =
            system.comps.iter().enumerate().all(|(i, c)| c.status != Status::Running || (workers && server(i)));
        if stopped && !crate::grants::reports_pending(system) {
            let left = system.comps.iter().enumerate().any(|(i, c)| server(i) && c.status == Status::Running);
            let note = if left { " (servers left running)" } else { "" };
            if left {
                // Let the servers finish what they were told (a fault report, a log line):
                // init drops to the lowest priority and runs again once they all block.
                let me = libcap::cap::Tcb(libcap::abi::slots::INIT_TCB);
                let _ = me.set_priority(me, 0);
                ipc::yield_now();
            }
            println!("init: system '{}': every component stopped{note}", system.name);
            return ExitCode::Success;
        }
        let m = match ipc::recv(ep) {
            Ok(m) => m,
            Err(e) => {
                println!("init: receive on the fault endpoint failed: {e:?}");
                return ExitCode::UserFailure;
            }
        };
        if m.badge & SUPERVISOR_BADGE != 0 && m.info.label == SUPERVISOR_GRAPH_LINE {
            let (reply, words) = graph_line(system, m.mrs[0]);
            ipc::reply(MessageInfo::new(0, 4 + words as u8), reply);
            continue;
        }
        if m.badge & SUPERVISOR_BADGE != 0 {
            let from = (m.badge & 0xffff) as usize;
            let reply = on_request(system, from, m.info.label, m.mrs[0], slots);
            ipc::reply(MessageInfo::new(0, 4), reply);
            continue;
        }
        let i = m.badge as usize;
        if i >= system.comps.len() || system.comps[i].status != Status::Running {
            continue;
        }
        if m.info.label == COMPONENT_EXITED {
            println!("init: {} exited with code {}", system.plan.components[i].name, m.mrs[0]);
            system.comps[i].status = Status::Exited;
            continue;
        }
        on_fault(system, i, m.info.label, m.mrs, slots);
    }
}
