//! A copier: the one component a user partition shares its buffers with.
//!
//! The description gives it two connections: up, the client side of
//! `<client>-filtered` (served by the filter); down, the served side of its one other
//! `<name>-queues` connection (the partition's virtual NIC). It copies every frame
//! between the two data regions and does nothing else (`relay`).
#![no_std]
#![no_main]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use alloc::string::String;
use alloc::vec::Vec;
use libcap::println;

libcap::component::entry!(main);

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("copier: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let ups: Vec<&str> = relay::connections(info, "-filtered-queues").collect();
    let [client] = ups[..] else {
        return Err(alloc::format!("needs exactly one '<client>-filtered-queues' connection, has {}", ups.len()));
    };
    let up = alloc::format!("{client}-filtered");
    let downs: Vec<&str> = info
        .caps()
        .iter()
        .filter(|c| c.kind() == Some(CapKind::Region))
        .filter_map(|c| c.name().strip_suffix("-queues"))
        .filter(|n| *n != up)
        .collect();
    let [down] = downs[..] else {
        return Err(alloc::format!("needs exactly one '<name>-queues' connection to serve, has {}", downs.len()));
    };
    let mut hops = [relay::Hop::open(info, "copier", client, &up, down, None)?];
    println!("copier: '{client}': copying between {up} and {down}");
    relay::run(info, &mut hops, |_, _| {})
}
