//! `management-thief`: a management component tries another handler's device.
//!
//! From the attack round (tests/tests/supervision.rs): it polls `FaultNext` for the
//! DMA fault reports of a device whose handler it is not, and asks the server to cut
//! that device off. The server must give it nothing and refuse the cut-off.
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::iommu::{badge_supervisor, FaultReport, IommuLabel, IommuStatus};
use abi::msginfo::MessageInfo;
use libcap::{ipc, println};

libcap::component::entry!(main);

/// TSC ticks the thief polls for (a few seconds under TCG).
const POLL_TICKS: u64 = 20_000_000_000;
/// The reports it waits for (edudrv-storm issues five DMA faults).
const WANTED: u64 = 5;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let caps = info.caps();
    let Some(iommu) = caps
        .iter()
        .find(|c| c.kind() == Some(CapKind::IommuClient) && badge_supervisor(c.badge).is_some())
        .map(|c| c.slot)
    else {
        println!("thief: no iommu supervisor cap");
        return ExitCode::UserFailure;
    };
    let sources = caps.iter().filter(|c| c.kind() == Some(CapKind::FaultSource)).count();
    println!("thief: fault sources described to me: {sources}; polling FaultNext");
    let until = libcap::deadline::now() + POLL_TICKS;
    let mut stolen = 0;
    while stolen < WANTED && libcap::deadline::now() < until {
        match ipc::call(iommu, MessageInfo::new(IommuLabel::FaultNext.raw(), 1), [0; 4]) {
            Ok(m) if m.mrs[0] == IommuStatus::Ok.raw() => {
                let r = FaultReport::decode(m.mrs[1], m.mrs[2]);
                stolen += 1;
                println!(
                    "thief: stole DMA fault report of device {} iova {:#x} write {}",
                    r.device, r.iova, r.is_write
                );
            }
            _ => ipc::yield_now(),
        }
    }
    println!("thief: stole {stolen} DMA fault reports meant for another handler");
    let cutoff = ipc::call(iommu, MessageInfo::new(IommuLabel::DriverCutoff.raw(), 1), [0; 4]);
    let status = cutoff.map(|m| IommuStatus::try_from(m.mrs[0]));
    println!("thief: DriverCutoff of device 0 (not mine): {status:?}");
    ExitCode::Success
}
