//! The management component: fetches fault reports and applies the policy.
//!
//! The iommu-server queues every DMA fault of a device it serves (requester, IOVA,
//! reason, device index) and rings management's fault doorbell, a notification init
//! bound to management's TCB; init does the same with a report of each CPU fault of a
//! component management handles. Management fetches both queues until empty
//! (`FaultNext` from the server with its supervisor cap, `SUPERVISOR_FAULT_NEXT` from
//! init) before every wait, so a report queued while it was busy is collected at its
//! next turn and a full queue is counted, never lost silently: `management: received
//! N DMA fault reports, L lost; M CPU fault reports, K lost`. Init lists in its info
//! page each device whose faults it handles (`FaultSource`: policy, restart limit,
//! driver) and every component (`Peer`: names). Per DMA fault it logs `management: DMA
//! fault from <driver> (device <name> <bdf>): iova ..., reason ...; policy ...` and
//! acts: `log` does nothing more; `restart` resets the device's domain (`DriverReset`:
//! unassigned, buffers unmapped, pool revoked, assigned again) and has init rebuild the
//! driver (generation + 1) up to the limit, then cuts the device off; `cut-off` has the
//! server unassign it for good (`DriverCutoff`). Init applies CPU-fault policy itself;
//! after a CPU-fault restart of a driver the server drops the old instance's records
//! when the new one first calls (its frames died with its budget), and a driver that
//! stays down has its device cut off. Messages on its fault endpoint in the old format
//! (label `DmaFault` / `COMPONENT_FAULT_REPORT`, from systems without a doorbell) are
//! handled as before. The `management-busy` program first spins (busy) for
//! [`BUSY_CYCLES`] so reports pile up: the fault scenario checks none is lost. If the
//! description gives management an ISA UART (`[isa.com2]`), it serves a console on it
//! (`console`: status, graph, restart, cutoff) from the same loop.
#![no_std]

extern crate alloc;

mod console;

use alloc::vec::Vec;

use abi::component::{
    CapKind, ComponentInfo, SupervisorStatus, COMPONENT_FAULT_REPORT, FAULT_SOURCE_DEVICE, REPORT_RESTARTED,
    REPORT_STAYS_DOWN, SUPERVISOR_FAULT_NEXT, SUPERVISOR_RESTART,
};
use abi::exit::ExitCode;
use abi::fault::FaultKind;
use abi::iommu::{FaultReport, IommuLabel, IommuStatus};
use abi::msginfo::MessageInfo;
use abi::rights::CapRights;
use abi::system::FaultPolicy;
use libcap::{ipc, println};

mod status;

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
    dma_reports: u64,
    dma_lost: u64,
    cpu_reports: u64,
    cpu_lost: u64,
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

/// How long `management-busy` spins before its first fetch, in TSC cycles.
pub const BUSY_CYCLES: u64 = 400_000_000;

/// Management's caps and state.
struct Management {
    info: &'static ComponentInfo,
    faults: u64,
    supervisor: Option<u64>,
    iommu: Option<u64>,
    watched: Vec<Watched>,
    counters: Counters,
    /// Per component: CPU faults and restarts heard of (the status page).
    heard: Vec<status::Heard>,
}

/// Runs management; `busy` spins for [`BUSY_CYCLES`] before the first fetch.
pub fn run(info: &'static ComponentInfo, busy: bool) -> ExitCode {
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
        .find(|c| c.kind() == Some(CapKind::IommuClient) && abi::iommu::badge_supervisor(c.badge).is_some())
        .map(|c| c.slot);
    let watched: Vec<Watched> = caps
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
    let mut m = Management {
        info,
        faults: faults.slot,
        supervisor,
        iommu,
        watched,
        counters: Counters::default(),
        heard: Vec::new(),
    };
    for w in &m.watched {
        println!(
            "management: watching device {} (driver {}): policy {}, restart limit {}",
            w.name,
            m.peer(w.driver),
            policy_name(w.policy),
            w.limit
        );
    }
    println!("management: waiting for faults on '{}'", faults.name());
    m.publish_status();
    let mut console = console::Console::open(&m);
    if busy {
        let until = libcap::deadline::now() + BUSY_CYCLES;
        println!("management: busy: not fetching fault reports for {BUSY_CYCLES} cycles");
        while libcap::deadline::now() < until {
            core::hint::spin_loop();
        }
        println!("management: busy: done, fetching");
    }
    loop {
        m.fetch_all();
        // A keystroke rings the same doorbell (init bound COM2's line to it).
        if console.as_mut().is_some_and(|c| c.poll(&mut m)) {
            continue;
        }
        let msg = match ipc::recv(m.faults) {
            Ok(msg) => msg,
            Err(e) => {
                println!("management: receive failed: {e:?}");
                return ExitCode::UserFailure;
            }
        };
        // A doorbell (bound notification) or anything else: fetch at the loop's top.
        // The old push format still works for systems without a doorbell.
        if msg.info.label == COMPONENT_FAULT_REPORT {
            m.cpu_fault(msg.mrs);
        } else if msg.info.label == IommuLabel::DmaFault.raw() && msg.info.length == 4 {
            let [requester, iova, how, device] = msg.mrs;
            let report = FaultReport {
                device: device as u16,
                requester: requester as u16,
                reason: how as u8,
                is_write: how >> 8 & 1 != 0,
                iova,
            };
            m.dma_fault(report);
        }
    }
}

impl Management {
    fn peer(&self, index: u64) -> &'static str {
        self.info.caps().iter().find(|c| c.kind() == Some(CapKind::Peer) && c.badge == index).map_or("?", |c| c.name())
    }

    /// Fetches every queued report from the iommu-server and from init, in order.
    fn fetch_all(&mut self) {
        let (mut dma, mut cpu) = (0u64, 0u64);
        let mut lost = (0u64, 0u64);
        while let Some(reply) = request(self.iommu, IommuLabel::FaultNext.raw(), 0) {
            lost.0 += reply[3];
            if IommuStatus::try_from(reply[0]) != Ok(IommuStatus::Ok) {
                break;
            }
            dma += 1;
            self.dma_fault(FaultReport::decode(reply[1], reply[2]));
        }
        while let Some(reply) = request(self.supervisor, SUPERVISOR_FAULT_NEXT, 0) {
            lost.1 += reply[0] >> 8 & 0xff_ffff;
            if SupervisorStatus::try_from(reply[0] & 0xff) != Ok(SupervisorStatus::Ok) {
                break;
            }
            cpu += 1;
            let [_, who, at, action] = reply;
            self.cpu_fault([who & 0xffff_ffff, who >> 32, at, action]);
            // None left: no last call (init stops answering once the system ended).
            if reply[0] >> 32 == 0 {
                break;
            }
        }
        let c = &mut self.counters;
        (c.dma_reports, c.dma_lost, c.cpu_reports, c.cpu_lost) =
            (c.dma_reports + dma, c.dma_lost + lost.0, c.cpu_reports + cpu, c.cpu_lost + lost.1);
        // One report is logged on its own; a batch or a loss gets the running totals
        // (serial output is most of a restart's cost: `make bench`).
        if dma + cpu < 2 && lost.0 + lost.1 == 0 {
            return;
        }
        println!(
            "management: received {} DMA fault reports, {} lost; {} CPU fault reports, {} lost",
            c.dma_reports, c.dma_lost, c.cpu_reports, c.cpu_lost
        );
    }

    /// One CPU-fault report from init: `[component, kind, at, action]`.
    fn cpu_fault(&mut self, [component, kind, at, action]: [u64; 4]) {
        self.counters.cpu_faults += 1;
        let kind = FaultKind::try_from(kind).map_or("fault", fault_name);
        let did = match action & 0xff {
            REPORT_RESTARTED => alloc::format!("init restarted it ({} of its limit)", action >> 8),
            REPORT_STAYS_DOWN => "init keeps it down (cut off or out of restarts)".into(),
            _ => "init left it suspended (policy log)".into(),
        };
        println!("management: CPU fault in {}: {kind} at {at:#x}; {did}", self.peer(component));
        status::note(&mut self.heard, component, true, action & 0xff == REPORT_RESTARTED);
        // A driver that stays down: its devices are cut off with it. A restarted one
        // needs nothing here: init revoked its budget (pool, frames, their IO mappings,
        // invalidation completed), and the server drops the old records and
        // quarantines their IOVAs when the new instance first calls.
        if action & 0xff == REPORT_STAYS_DOWN {
            for i in 0..self.watched.len() {
                if self.watched[i].driver != component || self.watched[i].cut_off {
                    continue;
                }
                self.watched[i].cut_off = true;
                let reply = request(self.iommu, IommuLabel::DriverCutoff.raw(), self.watched[i].index);
                println!(
                    "management: device {} cut off by the iommu-server: {}",
                    self.watched[i].name,
                    status_name(reply)
                );
            }
        }
        self.print_counters();
    }

    fn print_counters(&self) {
        let c = &self.counters;
        println!(
            "management: counters: faults {}, restarts {}, cut-offs {}, CPU faults {}",
            c.faults, c.restarts, c.cut_offs, c.cpu_faults
        );
        self.publish_status();
    }

    /// One DMA fault report from the iommu-server.
    fn dma_fault(&mut self, r: FaultReport) {
        // The TSC counts guest instructions under `make bench` (restart row).
        let tsc = libcap::deadline::now();
        self.counters.faults += 1;
        let requester = u64::from(r.requester);
        let bdf = (requester >> 8, (requester >> 3) & 0x1f, requester & 7);
        let Some(at) = self.watched.iter().position(|w| w.index == u64::from(r.device)) else {
            println!("management: DMA fault of device {} nobody described to management: logged only", r.device);
            return;
        };
        let driver = self.peer(self.watched[at].driver);
        let w = &mut self.watched[at];
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
            "management: DMA fault from {driver} (device {} {:02x}:{:02x}.{}): iova {:#x}, reason {:#x} ({}); {what}",
            w.name,
            bdf.0,
            bdf.1,
            bdf.2,
            r.iova,
            r.reason,
            reason_name(u64::from(r.reason))
        );
        println!("management: fault received at tsc {tsc}");
        let (name, index, driver_index) = (w.name, w.index, w.driver);
        match policy {
            Action::Restart(n) => {
                w.restarts = n;
                let reset = request(self.iommu, IommuLabel::DriverReset.raw(), index);
                println!("management: device {name} reset by the iommu-server: {}", status_name(reset));
                match request(self.supervisor, SUPERVISOR_RESTART, driver_index) {
                    Some([0, generation, ..]) => {
                        self.counters.restarts += 1;
                        status::note(&mut self.heard, driver_index, false, true);
                        println!("management: restarted {driver}: generation {generation}");
                    }
                    other => println!("management: restart of {driver} refused: {other:?}"),
                }
            }
            Action::LimitReached | Action::CutOff => {
                w.cut_off = true;
                let cut = request(self.iommu, IommuLabel::DriverCutoff.raw(), index);
                self.counters.cut_offs += 1;
                println!("management: device {name} cut off: it stays unassigned ({})", status_name(cut));
            }
            Action::Log | Action::AlreadyCut => {}
        }
        self.print_counters();
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
