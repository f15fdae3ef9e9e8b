//! The `edudrv-keeper-flip` program: alternates two generations' client caps.
//!
//! Each flip used to make the iommu-server take it for a new instance and quarantine
//! the other's IOVAs for good; now the older cap is revoked and would be refused.
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo, CNODE};
use abi::exit::ExitCode;
use abi::iommu::IommuLabel;
use abi::msginfo::MessageInfo;
use libcap::cap::CNode;
use libcap::{ipc, println};

libcap::component::entry!(main);

const FLIPS: u32 = 20_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(leak) = info.cap_of("leak", CapKind::Endpoint) else {
        println!("keeper: FAIL no 'leak' endpoint");
        return ExitCode::UserFailure;
    };
    let free = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(32) + 1;
    let (gen1, gen2, frame) = (free, free + 1, free + 2);
    ipc::set_receive_slot(CNODE, gen1, 64);
    let m = ipc::recv(leak.slot);
    println!("keeper-flip: got generation 1's cap ({:?})", m.map(|m| m.info.extra_caps));
    ipc::set_receive_slot(CNODE, gen2, 64);
    let m = ipc::recv(leak.slot);
    println!("keeper-flip: got generation 2's cap ({:?}); flipping", m.map(|m| m.info.extra_caps));
    let root = CNode(CNODE);
    for i in 0..FLIPS {
        let cap = if i % 2 == 0 { gen1 } else { gen2 };
        ipc::set_receive_slot(CNODE, frame, 64);
        match ipc::call(cap, MessageInfo::new(IommuLabel::DmaAlloc.raw(), 4), [4096, 3, 0, 0]) {
            Ok(m) if m.mrs[0] == 0 => {
                if i % 512 == 0 {
                    println!("keeper-flip: flip {i}: iova {:#x}", m.mrs[1]);
                }
            }
            Ok(m) => {
                println!("keeper-flip: flip {i}: refused status {} (iova space or server memory gone)", m.mrs[0]);
                return ExitCode::Success;
            }
            Err(e) => {
                println!("keeper-flip: flip {i}: ipc error {e:?} (the server is gone)");
                return ExitCode::Success;
            }
        }
        let _ = CNode::delete(root.slot(frame));
    }
    println!("keeper-flip: {FLIPS} flips done");
    ExitCode::Success
}
