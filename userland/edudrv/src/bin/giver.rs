//! The `edudrv-giver` program: lends the edu driver a frame of its own.
//!
//! It sends a 4 KiB frame from its budget to the driver over the `share` endpoint
//! (the driver places it for its device with `DmaMapFrame`), then watches the frame:
//! once init has cut the driver off, the device must no longer reach it.
#![no_std]
#![no_main]

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::Frame;
use libcap::{ipc, println};

libcap::component::entry!(main);

/// Where the giver maps the frame it lends.
const VADDR: u64 = 0x0000_5500_0000_0000;
/// What the edu driver's device writes (edudrv's outlive mode).
const PATTERN: u64 = 0x0ede_d0de_0ede_d0de;
/// Yields while waiting for the device's write.
const POLLS: u32 = 2_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(share) = info.cap_of("share", CapKind::Endpoint) else {
        println!("giver: FAIL no 'share' endpoint");
        return ExitCode::UserFailure;
    };
    let first = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(32) + 1;
    let slots = SlotAllocator::window(first..first + 64);
    let mut objects = ObjectAllocator::budget(info.budget_untyped.start..info.budget_untyped.end);
    let rw = CapRights::READ.union(CapRights::WRITE);
    let Ok(frame) = objects.alloc(&slots, ObjectType::Frame4K, 0).map(Frame) else {
        println!("giver: FAIL no frame from the budget");
        return ExitCode::UserFailure;
    };
    if map_frame(&mut objects, &slots, frame, VADDR, rw, 0).is_err() {
        println!("giver: FAIL cannot map its frame");
        return ExitCode::UserFailure;
    }
    let words = VADDR as *mut u64;
    // A copy to send (the mapped cap stays here).
    let Ok(copy) = slots.alloc() else { return ExitCode::UserFailure };
    let root = libcap::cap::CNode(abi::component::CNODE);
    if libcap::cap::CNode::copy(root.slot(copy), root.slot(frame.0), CapRights::ALL).is_err() {
        println!("giver: FAIL cannot copy its frame cap");
        return ExitCode::UserFailure;
    }
    ipc::set_extra_cap(copy);
    let info = MessageInfo { label: 1, caps_unwrapped: 0, extra_caps: 1, length: 0 };
    let sent = ipc::send(share.slot, info, [0; 4]);
    println!("giver: lent a frame to the edu driver ({sent:?})");
    for _ in 0..POLLS {
        // SAFETY: the frame is mapped read-write at VADDR for this component alone.
        let v = unsafe { core::ptr::read_volatile(words) };
        if v == PATTERN {
            println!("giver: the edu device wrote {v:#x} into the lent frame");
            return ExitCode::Success;
        }
        ipc::yield_now();
    }
    println!("giver: the lent frame was never written");
    ExitCode::Success
}
