//! `management-restart-loop`: a handler restarts its component `victim` often.
//!
//! From the attack round (tests/tests/supervision.rs): every rebuild used to take
//! fresh init slots, and after about 22 restarts no component could be restarted.
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo, SUPERVISOR_RESTART};
use abi::exit::ExitCode;
use abi::msginfo::MessageInfo;
use libcap::{ipc, println};

libcap::component::entry!(main);

/// Restarts tried at most.
const MAX: u32 = 60;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let caps = info.caps();
    let Some(supervisor) = caps.iter().find(|c| c.kind() == Some(CapKind::Supervisor)).map(|c| c.slot) else {
        println!("restart-loop: no supervisor cap");
        return ExitCode::UserFailure;
    };
    let Some(victim) = caps.iter().find(|c| c.kind() == Some(CapKind::Peer) && c.name() == "victim").map(|c| c.badge)
    else {
        println!("restart-loop: no peer 'victim'");
        return ExitCode::UserFailure;
    };
    for k in 1..=MAX {
        let reply = ipc::call(supervisor, MessageInfo::new(SUPERVISOR_RESTART, 1), [victim, 0, 0, 0]);
        match reply {
            Ok(m) if m.mrs[0] == 0 => {}
            other => {
                println!("restart-loop: restart {k} of victim refused: {:?}", other.map(|m| m.mrs));
                return ExitCode::Success;
            }
        }
    }
    println!("restart-loop: {MAX} restarts all done");
    ExitCode::Success
}
