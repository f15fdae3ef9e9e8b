//! Attack PoC server: waits on a `shares` group and reports the badges it hears.
//!
//! `crasher-sharewait` serves two notification channels that share one object
//! (`a`, the owner, and `b`): it waits a few seconds and prints every badge word it
//! collects, so a scenario can tell which client the server believes signalled.
#![no_std]
#![no_main]

use libcap::abi::exit::ExitCode;
use libcap::component::{CapKind, ComponentInfo};
use libcap::deadline::Deadline;
use libcap::{ipc, println};

libcap::component::entry!(main);

/// How long to listen, in TSC ticks (a few seconds under TCG).
const LISTEN_TICKS: u64 = 3_000_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(group) = info.cap_of("a", CapKind::Notification) else {
        println!("sharewait: FAIL no notification 'a'");
        return ExitCode::UserFailure;
    };
    println!("sharewait: waiting on the shared object of 'a' and 'b'");
    let deadline = Deadline::after(LISTEN_TICKS);
    let mut heard = 0u64;
    while let Ok(Some(word)) = ipc::wait_until(group.slot, deadline) {
        heard |= word;
        println!("sharewait: woke with badge {word:#x}");
    }
    println!("sharewait: done, badges heard {heard:#x}");
    ExitCode::Success
}
