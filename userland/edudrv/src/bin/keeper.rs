//! The `edudrv-keeper` program: keeps a dead driver instance's client cap.
//!
//! It holds the cap past the driver's restart and calls the iommu-server with it;
//! init revokes the cap at the teardown, so the call faults the keeper, not the server.
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo, CNODE};
use abi::exit::ExitCode;
use abi::iommu::IommuLabel;
use abi::msginfo::MessageInfo;
use libcap::{ipc, println};

libcap::component::entry!(main);

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(leak) = info.cap_of("leak", CapKind::Endpoint) else {
        println!("keeper: FAIL no 'leak' endpoint");
        return ExitCode::UserFailure;
    };
    let free = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(32) + 1;
    let stale = free;
    let frame = free + 1;
    ipc::set_receive_slot(CNODE, stale, 64);
    let m = ipc::recv(leak.slot);
    println!("keeper: got {:?} (extra caps {})", m.map(|m| m.info.label), m.map_or(0, |m| m.info.extra_caps));
    // Wait for generation 2 to have used its own buffer.
    ipc::set_receive_slot(CNODE, free + 2, 64);
    let m = ipc::recv(leak.slot);
    println!(
        "keeper: generation 2 says go ({:?}); calling the iommu-server with generation 1's cap",
        m.map(|m| m.info.label)
    );
    ipc::set_receive_slot(CNODE, frame, 64);
    let r = ipc::call(stale, MessageInfo::new(IommuLabel::DmaAlloc.raw(), 4), [4096, 3, 0, 0]);
    match r {
        Ok(m) => println!(
            "keeper: DmaAlloc through the dead generation 1's cap: status {} iova {:#x}, frame caps received {}",
            m.mrs[0], m.mrs[1], m.info.extra_caps
        ),
        Err(e) => println!("keeper: DmaAlloc through generation 1's cap: ipc error {e:?}"),
    }
    let addr = libcap::cap::Frame(frame).address();
    println!("keeper: holding a DMA frame of the device's domain: {addr:x?}");
    ExitCode::Success
}
