//! Attack round 15: what a driver can do with `DmaMapFrame`.
//!
//! Hog: `DmaMapFrame` costs the iommu-server a slot of its CNode for its copy of the frame,
//! and an IO page table (a slot and 4 KiB of its own untyped) for each 2 MiB of IOVA
//! space first touched. The driver sends the same 4 KiB frame again and again, 2 MiB
//! apart, until the server refuses; another device's driver that runs afterwards
//! must still get its DMA buffer.
//!
//! Block: the driver sends its own endpoint cap (to the server) as the frame of a
//! `DmaMapFrame`. A server that invokes the cap it got (`Frame::info`) makes an IPC
//! Call on its own endpoint and waits for ever; every driver after it too.
//!
//! Outlive: the driver places a frame a peer lent it (`edudrv-giver`), starts a device
//! write into it and CPU-faults; init cuts it off. The transfer lands after the
//! teardown: the device must not reach the frame once its driver is gone.

use abi::component::{CapKind, ComponentInfo, CNODE};
use abi::exit::ExitCode;
use abi::iommu::MAX_CLIENT_FRAMES;
use abi::object::ObjectType;
use abi::rights::CapRights;
use libcap::cap::{CNode, Frame, Untyped};
use libcap::iommu::DmaBuffer;
use libcap::iommu::IommuError;
use libcap::{ipc, println};

use crate::Driver;

/// Where the outlive mode places the lent frame, and what the device writes there.
const LENT_IOVA: u64 = 0x0400_0000;
const PATTERN: u64 = 0x0ede_d0de_0ede_d0de;
/// An address no component has mapped.
const CRASH_ADDRESS: u64 = 0x0000_dead_0000;

/// First IOVA the hog places its frame at (above its pool buffers), and the spacing.
const HOG_BASE: u64 = 0x0200_0000;
const HOG_STRIDE: u64 = 0x20_0000;

pub(crate) fn hog(info: &'static ComponentInfo, d: &mut Driver) -> ExitCode {
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

pub(crate) fn outlive(info: &'static ComponentInfo, d: &mut Driver, a: &DmaBuffer) -> ExitCode {
    let Some(share) = info.cap_of("share", CapKind::Endpoint) else {
        println!("edudrv: outlive: FAIL no 'share' endpoint");
        return ExitCode::UserFailure;
    };
    let lent = d.free_slot + 3;
    ipc::set_receive_slot(CNODE, lent, 64);
    let got = ipc::recv(share.slot).map(|m| m.info.extra_caps);
    if got != Ok(1) {
        println!("edudrv: outlive: FAIL no frame from the giver ({got:?})");
        return ExitCode::UserFailure;
    }
    let rw = CapRights::READ.union(CapRights::WRITE);
    if let Err(e) = d.client.map_frame(Frame(lent), LENT_IOVA, rw) {
        println!("edudrv: outlive: FAIL DmaMapFrame of the lent frame: {e:?}");
        return ExitCode::UserFailure;
    }
    // The pattern into edu's buffer (from the pool buffer), then a write of it into
    // the lent frame that completes only after this instance is gone.
    // SAFETY: the buffer is one page mapped read-write at `vaddr`.
    unsafe { (a.vaddr as *mut u64).write_volatile(PATTERN) };
    if d.edu.to_device(a.iova, 0, 8).is_err() || d.edu.start_to_ram(0, LENT_IOVA, 8).is_err() {
        println!("edudrv: outlive: FAIL programming edu");
        return ExitCode::UserFailure;
    }
    println!("edudrv: outlive: lent frame placed at iova {LENT_IOVA:#x}, device write started; crashing");
    // SAFETY: deliberately a read of an unmapped address: init applies the policy.
    let v = unsafe { core::ptr::read_volatile(CRASH_ADDRESS as *const u64) };
    println!("edudrv: outlive: FAIL read {v:#x} from an unmapped address");
    ExitCode::UserFailure
}

pub(crate) fn block(d: &mut Driver) -> ExitCode {
    use abi::iommu::{IommuLabel, IommuStatus};
    use abi::msginfo::MessageInfo;
    let endpoint = d.client.endpoint();
    let info = MessageInfo { label: IommuLabel::DmaMapFrame.raw(), caps_unwrapped: 0, extra_caps: 1, length: 4 };
    println!("edudrv: block: DmaMapFrame carrying the server's own endpoint cap");
    ipc::set_extra_cap(endpoint);
    let r = ipc::call(endpoint, info, [0x0400_0000, 3, 0, 0]).map(|m| IommuStatus::try_from(m.mrs[0]));
    println!("edudrv: block: answered {r:?}");
    ExitCode::Success
}
