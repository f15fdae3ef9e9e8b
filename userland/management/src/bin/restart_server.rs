//! `management-restart-server`: a management component asks to restart the server.
//!
//! From the attack round (tests/tests/supervision.rs): init must refuse it (the
//! description checker refuses a restart policy for the iommu-server too).
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo, SUPERVISOR_RESTART};
use abi::exit::ExitCode;
use abi::msginfo::MessageInfo;
use abi::system::ComponentRole;
use libcap::{ipc, println};

libcap::component::entry!(main);

fn main(info: &'static ComponentInfo) -> ExitCode {
    let caps = info.caps();
    let Some(supervisor) = caps.iter().find(|c| c.kind() == Some(CapKind::Supervisor)).map(|c| c.slot) else {
        println!("restarter: no supervisor cap");
        return ExitCode::UserFailure;
    };
    let server = caps
        .iter()
        .find(|c| c.kind() == Some(CapKind::Peer) && c.size == u64::from(ComponentRole::IommuServer.raw()))
        .map(|c| c.badge);
    let Some(server) = server else {
        println!("restarter: no iommu-server peer");
        return ExitCode::UserFailure;
    };
    let reply = ipc::call(supervisor, MessageInfo::new(SUPERVISOR_RESTART, 1), [server, 0, 0, 0]);
    println!("restarter: SUPERVISOR_RESTART of component {server} (iommu-server): {:?}", reply.map(|m| m.mrs));
    ExitCode::Success
}
