//! The management component: hears DMA faults and applies the description's policy.
//!
//! The iommu-server forwards every DMA fault of a device (label `DmaFault`: requester,
//! IOVA, reason | write << 8, device index) on the channel whose server end management
//! holds. Init lists in management's info page each device whose faults it handles
//! (`FaultSource`: policy, restart limit, driver) and every component (`Peer`: names),
//! and gives it init's supervisor endpoint and the iommu-server's supervisor cap. Per
//! fault it logs `management: DMA fault from <driver> (device <name> <bdf>): iova ...,
//! reason ...; policy ...` and acts: `log` does nothing more; `restart` resets the
//! device's domain (`DriverReset`: unassigned, buffers unmapped, pool revoked,
//! assigned again) and has init rebuild the driver (generation + 1) up to the limit,
//! then cuts the device off; `cut-off` has the server unassign it for good
//! (`DriverCutoff`). Init applies CPU-fault policy itself and reports each CPU fault of
//! a component whose handler is management on the same channel
//! (`COMPONENT_FAULT_REPORT`); management logs it. It keeps counters and prints them
//! after each fault.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use abi::component::{
    CapKind, ComponentInfo, COMPONENT_FAULT_REPORT, FAULT_SOURCE_DEVICE, REPORT_RESTARTED, REPORT_STAYS_DOWN,
    SUPERVISOR_RESTART,
};
use abi::exit::ExitCode;
use abi::fault::FaultKind;
use abi::iommu::{IommuLabel, IommuStatus};
use abi::msginfo::MessageInfo;
use abi::rights::CapRights;
use abi::system::FaultPolicy;
use libcap::{ipc, println};

libcap::component::entry!(main);

/// One device whose faults management handles.
struct Watched {
    name: &'static str,
    index: u64,
    driver: u64,
    policy: FaultPolicy,
    limit: u8,
    restarts: u8,
    cut_off: bool,
}

/// What management did so far.
#[derive(Default)]
struct Counters {
    faults: u64,
    restarts: u64,
    cut_offs: u64,
    cpu_faults: u64,
}

fn reason_name(reason: u64) -> &'static str {
    match reason {
        0x2 => "context entry not present: device unassigned",
        0x3 => "bad context entry",
        0x4 => "IOVA beyond the address width",
        0x5 => "write to a read-only or unmapped IOVA",
        0x6 => "read of unmapped IOVA",
        _ => "see the VT-d fault reasons",
    }
}

fn main(info: &'static ComponentInfo) -> ExitCode {
    let caps = info.caps();
    let Some(faults) =
        caps.iter().find(|c| c.kind() == Some(CapKind::Endpoint) && c.rights & CapRights::READ.raw() != 0)
    else {
        println!("management: no fault channel (an endpoint whose server end is management)");
        return ExitCode::UserFailure;
    };
    let supervisor = caps.iter().find(|c| c.kind() == Some(CapKind::Supervisor)).map(|c| c.slot);
    let iommu = caps
        .iter()
        .find(|c| c.kind() == Some(CapKind::IommuClient) && c.badge == abi::iommu::SUPERVISOR_BADGE)
        .map(|c| c.slot);
    let peer = |index: u64| {
        caps.iter().find(|c| c.kind() == Some(CapKind::Peer) && c.badge == index).map_or("?", |c| c.name())
    };
    let mut watched: Vec<Watched> = caps
        .iter()
        .filter(|c| c.kind() == Some(CapKind::FaultSource) && c.badge & FAULT_SOURCE_DEVICE != 0)
        .map(|c| Watched {
            name: c.name(),
            index: c.badge & !FAULT_SOURCE_DEVICE,
            driver: c.vaddr,
            policy: FaultPolicy::try_from((c.size & 0xff) as u8).unwrap_or(FaultPolicy::Log),
            limit: (c.size >> 8) as u8,
            restarts: 0,
            cut_off: false,
        })
        .collect();
    for w in &watched {
        println!(
            "management: watching device {} (driver {}): policy {}, restart limit {}",
            w.name,
            peer(w.driver),
            policy_name(w.policy),
            w.limit
        );
    }
    println!("management: waiting for faults on '{}'", faults.name());
    let mut counters = Counters::default();
    loop {
        let m = match ipc::recv(faults.slot) {
            Ok(m) => m,
            Err(e) => {
                println!("management: receive failed: {e:?}");
                return ExitCode::UserFailure;
            }
        };
        if m.info.label == COMPONENT_FAULT_REPORT {
            counters.cpu_faults += 1;
            let [component, kind, at, action] = m.mrs;
            let kind = FaultKind::try_from(kind).map_or("fault", fault_name);
            let did = match action & 0xff {
                REPORT_RESTARTED => alloc::format!("init restarted it ({} of its limit)", action >> 8),
                REPORT_STAYS_DOWN => "init keeps it down (cut off or out of restarts)".into(),
                _ => "init left it suspended (policy log)".into(),
            };
            println!("management: CPU fault in {}: {kind} at {at:#x}; {did}", peer(component));
            // The devices it drives: a fresh domain for the new instance (init already
            // revoked the old one's pool and frames), or cut off with it.
            for w in watched.iter_mut().filter(|w| w.driver == component && !w.cut_off) {
                let (label, what) = match action & 0xff {
                    REPORT_RESTARTED => (IommuLabel::DriverReset, "reset"),
                    REPORT_STAYS_DOWN => (IommuLabel::DriverCutoff, "cut off"),
                    _ => continue,
                };
                w.cut_off = label == IommuLabel::DriverCutoff;
                let reply = request(iommu, label.raw(), w.index);
                println!("management: device {} {what} by the iommu-server: {}", w.name, status_name(reply));
            }
            println!(
                "management: counters: faults {}, restarts {}, cut-offs {}, CPU faults {}",
                counters.faults, counters.restarts, counters.cut_offs, counters.cpu_faults
            );
            continue;
        }
        if m.info.label != IommuLabel::DmaFault.raw() {
            println!("management: ignored message with label {:#x}", m.info.label);
            continue;
        }
        // The TSC counts guest instructions under `make bench` (restart row).
        let tsc = libcap::deadline::now();
        let [requester, iova, how, device] = m.mrs;
        counters.faults += 1;
        let bdf = (requester >> 8, (requester >> 3) & 0x1f, requester & 7);
        let reason = how & 0xff;
        let Some(w) = watched.iter_mut().find(|w| w.index == device) else {
            println!("management: DMA fault of device {device} nobody described to management: logged only");
            continue;
        };
        let driver = peer(w.driver);
        let policy = match w.policy {
            _ if w.cut_off => Action::AlreadyCut,
            FaultPolicy::Log => Action::Log,
            FaultPolicy::Restart if w.restarts < w.limit => Action::Restart(w.restarts + 1),
            FaultPolicy::Restart => Action::LimitReached,
            FaultPolicy::CutOff => Action::CutOff,
        };
        let what: alloc::string::String = match policy {
            Action::AlreadyCut => "device already cut off".into(),
            Action::Log => "policy log".into(),
            Action::Restart(n) => alloc::format!("policy restart ({n} of {})", w.limit),
            Action::LimitReached => alloc::format!("policy restart: limit ({}) reached, cut-off", w.limit),
            Action::CutOff => "policy cut-off".into(),
        };
        println!(
            "management: DMA fault from {driver} (device {} {:02x}:{:02x}.{}): iova {iova:#x}, reason {reason:#x} ({}); {what}",
            w.name,
            bdf.0,
            bdf.1,
            bdf.2,
            reason_name(reason)
        );
        println!("management: fault received at tsc {tsc}");
        match policy {
            Action::Restart(n) => {
                w.restarts = n;
                let reset = request(iommu, IommuLabel::DriverReset.raw(), w.index);
                println!("management: device {} reset by the iommu-server: {}", w.name, status_name(reset));
                match request(supervisor, SUPERVISOR_RESTART, w.driver) {
                    Some([0, generation, ..]) => {
                        counters.restarts += 1;
                        println!("management: restarted {driver}: generation {generation}");
                    }
                    other => println!("management: restart of {driver} refused: {other:?}"),
                }
            }
            Action::LimitReached | Action::CutOff => {
                w.cut_off = true;
                let cut = request(iommu, IommuLabel::DriverCutoff.raw(), w.index);
                counters.cut_offs += 1;
                println!("management: device {} cut off: it stays unassigned ({})", w.name, status_name(cut));
            }
            Action::Log | Action::AlreadyCut => {}
        }
        println!(
            "management: counters: faults {}, restarts {}, cut-offs {}, CPU faults {}",
            counters.faults, counters.restarts, counters.cut_offs, counters.cpu_faults
        );
    }
}

/// What a fault leads to.
#[derive(Clone, Copy)]
enum Action {
    AlreadyCut,
    Log,
    Restart(u8),
    LimitReached,
    CutOff,
}

fn policy_name(p: FaultPolicy) -> &'static str {
    match p {
        FaultPolicy::Log => "log",
        FaultPolicy::Restart => "restart",
        FaultPolicy::CutOff => "cut-off",
    }
}

/// Calls `ep` with `label` and one argument; the reply's words, None without a cap or
/// on an IPC error.
fn request(ep: Option<u64>, label: u64, arg: u64) -> Option<[u64; 4]> {
    let ep = ep?;
    ipc::call(ep, MessageInfo::new(label, 1), [arg, 0, 0, 0]).ok().map(|m| m.mrs)
}

fn status_name(reply: Option<[u64; 4]>) -> &'static str {
    match reply.map(|r| IommuStatus::try_from(r[0])) {
        Some(Ok(IommuStatus::Ok)) => "ok",
        Some(Ok(IommuStatus::Denied)) => "denied",
        Some(Ok(IommuStatus::CutOff)) => "already cut off",
        Some(_) => "failed",
        None => "no iommu supervisor cap",
    }
}

fn fault_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::VmFault => "page fault",
        FaultKind::UserException => "exception",
        FaultKind::CapFault => "cap fault",
        FaultKind::UnknownSyscall => "unknown syscall",
        _ => "fault",
    }
}
