//! Direct assignment through the iommu-server, for the VMM as a system component.
//!
//! The description makes the VMM its device's driver: init gives it a client cap to
//! the iommu-server (badged with the device and the VMM's generation) and the first
//! page of BAR 0, never the PciDevice, IOSpace or IO page tables. The VMM maps the BAR
//! page into the guest, turns on decoding and bus mastering and takes the device's MSI
//! through the server, then sends the server every guest RAM frame with its
//! guest-physical address (`DmaMapFrame`: the device's IOSpace mirrors guest memory,
//! back-filled after the memory exists, and pages added later follow). It asks the
//! server to tell it of the device's DMA faults (`FaultWatch`) besides the device's
//! fault handler (management), so a DMA the guest aims outside its memory is blocked
//! and reported to both.

use libcap::abi::component::{CapKind, ComponentInfo};
use libcap::abi::iommu::{IommuLabel, IommuStatus};
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::pci;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, Notification, ATTR_UNCACHED};
use libcap::check::Checker;
use libcap::iommu::{DriverClient, IommuClient, IommuError};
use libcap::vm::GuestSpace;
use libcap::{ipc, println};

use crate::assigned::{badged_notification, Assigned, Route};
use crate::layout::{EDU_BAR, RAM_BYTES};

/// Assigns the device of `info`'s client cap (`dc`, made by `libcap::iommu::
/// driver_client`) to the guest in `space` whose RAM is `ram` (guest-physical address,
/// VMM's frame cap).
pub fn attach(
    c: &mut Checker,
    info: &'static ComponentInfo,
    (objects, slots): (&mut ObjectAllocator<'_>, &SlotAllocator),
    space: GuestSpace,
    ram: &[(u64, Frame)],
    dc: DriverClient,
) -> Option<Assigned> {
    let DriverClient { mut client, device, ntfn, badged, .. } = dc;
    let Some(bar) = info.cap_of(device, CapKind::DeviceFrame) else {
        println!("vmm: FAIL the description gives no BAR page of device {device}");
        return None;
    };
    // The VMM's own cap is mapped in its VSpace; the guest's mapping takes a copy.
    let root = CNode(slots::INIT_CNODE);
    let copy = slots.alloc().ok()?;
    let rw = CapRights::READ.union(CapRights::WRITE);
    let mapped = CNode::copy(root.slot(copy), root.slot(bar.slot), CapRights::ALL)
        .and_then(|()| space.map_frame(objects, slots, Frame(copy), EDU_BAR, rw, ATTR_UNCACHED));
    if let Err(e) = mapped {
        println!("vmm: the BAR page (slot {}): {} (argument {})", bar.slot, e.code.name(), e.detail);
    }
    c.check("map the device's BAR page into the guest", mapped.is_ok());
    let command = client.config_read(pci::COMMAND, 2).ok()?;
    let command = command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER;
    c.check(
        "enable decoding and bus mastering through the iommu-server",
        client.config_write(pci::COMMAND, 2, command).is_ok(),
    );

    // The device's MSI comes from the server; the VMM injects it into the guest.
    let msi = client.msi();
    let bound = msi.as_ref().is_ok_and(|(handler, _)| handler.set_notification(Notification(badged)).is_ok());
    c.check("route the device's MSI to the VMM through the iommu-server", bound);
    let (handler, msi) = msi.ok()?;

    // The server tells the VMM of the device's DMA faults too (management hears of
    // each as its fault handler).
    let faults = badged_notification(objects, slots, 1).ok()?;
    c.check("ask the iommu-server for the device's DMA fault reports", client.watch_faults(faults.0).is_ok());
    let assigned =
        Assigned { route: Route::Served(client, Frame(copy)), handler, msi: Notification(ntfn), faults, msis: 0 };
    let filled = ram.iter().all(|&(gpa, frame)| assigned.mirror(slots, frame, gpa).is_ok());
    c.check("back-fill the device's IOSpace through the iommu-server at IOVA = guest-physical", filled);
    println!(
        "vmm: device {device} assigned through the iommu-server (MSI vector {:#x}); guest memory mirrored ({} pages)",
        msi.vector,
        ram.len()
    );
    filled.then_some(assigned)
}

/// After the guest's DMA outside its memory (at IOVA `aimed`): the server must have
/// queued the report for the VMM.
pub fn check_reported(c: &mut Checker, client: &IommuClient, aimed: u64) {
    match client.fault_next() {
        Ok((Some(r), lost)) => {
            let kind = if r.is_write { "write" } else { "read" };
            println!(
                "vmm: DMA fault reported by the iommu-server: device {} requester {:#06x} reason {} {kind} at IOVA {:#x} ({lost} lost)",
                r.device, r.requester, r.reason, r.iova
            );
            c.check(
                "the DMA outside guest memory was blocked and reported with its address",
                r.is_write && r.iova & !0xfff == aimed,
            );
        }
        Ok((None, _)) => c.check("the iommu-server queued a DMA fault report for the VMM", false),
        Err(e) => {
            println!("vmm: DriverFaultNext: {e:?}");
            c.check("the iommu-server queued a DMA fault report for the VMM", false);
        }
    }
}

/// What the iommu-server must refuse a driver's `DmaMapFrame`, `DmaUnmapFrame` and
/// `FaultWatch` (each with its status), and what it must allow (an IOVA given back is
/// reusable); it keeps serving after every refusal. `bar` is the device's BAR page cap.
pub fn refusals(
    c: &mut Checker,
    client: &mut IommuClient,
    bar: Frame,
    (objects, slots): (&mut ObjectAllocator<'_>, &SlotAllocator),
) {
    let rw = CapRights::READ.union(CapRights::WRITE);
    let status = |r: Result<(), IommuError>| match r {
        Ok(()) => IommuStatus::Ok,
        Err(IommuError::Status(s)) => s,
        Err(_) => IommuStatus::KernelError,
    };
    // A request as a rogue driver would send it: any label, with or without a cap.
    let raw = |label: IommuLabel, mrs: [u64; 4], cap: Option<u64>| {
        let info =
            MessageInfo { label: label.raw(), caps_unwrapped: 0, extra_caps: u8::from(cap.is_some()), length: 4 };
        if let Some(cap) = cap {
            ipc::set_extra_cap(cap);
        }
        match ipc::call(client.endpoint(), info, mrs) {
            Ok(m) => IommuStatus::try_from(m.mrs[0]).unwrap_or(IommuStatus::KernelError),
            Err(_) => IommuStatus::KernelError,
        }
    };
    let frame = objects.alloc(slots, ObjectType::Frame4K, 0).map(Frame);
    let ntfn = objects.alloc(slots, ObjectType::Notification, 0);
    let large = objects.alloc(slots, ObjectType::Frame2M, 0).map(Frame);
    let (Ok(frame), Ok(ntfn), Ok(large)) = (frame, ntfn, large) else {
        return c.check("a 4 KiB frame, a 2 MiB frame and a notification for the iommu-server checks", false);
    };
    let spare = RAM_BYTES.max(0x20_0000);
    let tries = [
        ("DmaMapFrame at an IOVA guest memory uses", status(client.map_frame(frame, 0, rw)), IommuStatus::IovaInUse),
        (
            "DmaMapFrame past the device's DMA mask",
            status(client.map_frame(frame, 1 << 28, rw)),
            IommuStatus::OutOfIova,
        ),
        ("DmaMapFrame at an unaligned IOVA", status(client.map_frame(frame, spare + 8, rw)), IommuStatus::BadRequest),
        (
            "DmaMapFrame with no rights",
            status(client.map_frame(frame, spare, CapRights::NONE)),
            IommuStatus::BadRequest,
        ),
        ("DmaMapFrame of the device's BAR page", status(client.map_frame(bar, spare, rw)), IommuStatus::BadRequest),
        ("DmaMapFrame of a 2 MiB frame", status(client.map_frame(large, spare, rw)), IommuStatus::BadRequest),
        ("DmaMapFrame of a notification", status(client.map_frame(Frame(ntfn), spare, rw)), IommuStatus::BadRequest),
        ("DmaMapFrame without a cap", raw(IommuLabel::DmaMapFrame, [spare, 3, 0, 0], None), IommuStatus::BadRequest),
        ("FaultWatch without a cap", raw(IommuLabel::FaultWatch, [0; 4], None), IommuStatus::BadRequest),
        ("DmaAlloc carrying a cap", raw(IommuLabel::DmaAlloc, [4096, 3, 0, 0], Some(frame.0)), IommuStatus::BadRequest),
        ("DmaUnmapFrame where nothing was placed", status(client.unmap_frame(spare)), IommuStatus::NotFound),
        ("DmaMapFrame of a fresh frame at a free IOVA", status(client.map_frame(frame, spare, rw)), IommuStatus::Ok),
        ("DmaMapFrame of the same IOVA again", status(client.map_frame(frame, spare, rw)), IommuStatus::IovaInUse),
        ("DmaUnmapFrame of it", status(client.unmap_frame(spare)), IommuStatus::Ok),
        ("DmaMapFrame at the IOVA given back", status(client.map_frame(frame, spare, rw)), IommuStatus::Ok),
        ("DmaUnmapFrame of it again", status(client.unmap_frame(spare)), IommuStatus::Ok),
    ];
    for (what, got, want) in tries {
        println!("vmm: iommu-server: {what}: {got:?}");
        c.check(what, got == want);
    }
    // A buffer's frame placed a second time dies when the buffer is freed (revoked):
    // unmapping it afterwards must neither fault the server nor fail.
    let placed_buffer = client.dma_alloc(4096, rw).map(|b| {
        let placed = status(client.map_frame(Frame(b.frames.start), spare, rw));
        let freed = client.dma_free(&b).is_ok();
        (placed, freed, status(client.unmap_frame(spare)))
    });
    println!("vmm: iommu-server: a DmaAlloc buffer's frame placed, freed, unmapped: {placed_buffer:?}");
    c.check(
        "a placed copy of a freed buffer's frame unmaps cleanly",
        placed_buffer == Ok((IommuStatus::Ok, true, IommuStatus::Ok)),
    );
    c.check("the iommu-server still serves the VMM", client.config_read(pci::COMMAND, 2).is_ok());
}
