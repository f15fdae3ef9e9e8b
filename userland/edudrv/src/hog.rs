//! A driver that places one frame of its own at many IOVAs (attack round 15).
//!
//! `DmaMapFrame` costs the iommu-server a slot of its CNode for its copy of the frame,
//! and an IO page table (a slot and 4 KiB of its own untyped) for each 2 MiB of IOVA
//! space first touched. The driver sends the same 4 KiB frame again and again, 2 MiB
//! apart, until the server refuses; another device's driver that runs afterwards
//! must still get its DMA buffer.

use abi::component::{ComponentInfo, CNODE};
use abi::exit::ExitCode;
use abi::iommu::MAX_CLIENT_FRAMES;
use abi::object::ObjectType;
use abi::rights::CapRights;
use libcap::cap::{CNode, Frame, Untyped};
use libcap::iommu::IommuError;
use libcap::println;

use crate::Driver;

/// First IOVA the hog places its frame at (above its pool buffers), and the spacing.
const HOG_BASE: u64 = 0x0200_0000;
const HOG_STRIDE: u64 = 0x20_0000;

pub(crate) fn run(info: &'static ComponentInfo, d: &mut Driver) -> ExitCode {
    let frame = d.free_slot + 2;
    let made = (info.budget_untyped.start..info.budget_untyped.end)
        .any(|u| Untyped(u).retype(ObjectType::Frame4K, 0, CNode(CNODE), 0, 0, frame, 1).is_ok());
    if !made {
        println!("edudrv: hog: FAIL no frame from the budget");
        return ExitCode::UserFailure;
    }
    let rw = CapRights::READ.union(CapRights::WRITE);
    let mut placed = 0u64;
    let mut refusal = None;
    for k in 0..MAX_CLIENT_FRAMES as u64 {
        let iova = HOG_BASE + k * HOG_STRIDE;
        if iova >= 1 << 28 {
            break;
        }
        match d.client.map_frame(Frame(frame), iova, rw) {
            Ok(()) => placed += 1,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    match refusal {
        Some(IommuError::Status(s)) => {
            println!("edudrv: hog: placed one frame at {placed} IOVAs 2 MiB apart, then refused ({s:?})")
        }
        Some(e) => println!("edudrv: hog: placed one frame at {placed} IOVAs 2 MiB apart, then refused ({e:?})"),
        None => println!("edudrv: hog: placed one frame at {placed} IOVAs 2 MiB apart, never refused"),
    }
    ExitCode::Success
}
