//! Direct device assignment: an edu device given to the guest (`init=vmm-edu`).
//!
//! The VMM maps the device's BAR into the GuestSpace (the guest's driver programs the
//! device itself), builds an IOSpace that mirrors guest memory (every RAM frame, by a
//! third cap to it, at IOVA = its guest-physical address; built after guest memory
//! exists and back-filled, and kept in step when the VMM adds a page later), assigns
//! the device to it, and turns the device's MSI into an interrupt injected into the
//! guest. A DMA the guest aims outside its memory faults in the IOMMU and reaches the
//! VMM through the IOSpace's fault handler.
//!
//! As a component the VMM holds no IOSpace: `served` does the same through the
//! iommu-server ([`Route::Served`]), which mirrors the frames the VMM sends it.

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::pci;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{
    CNode, Error, Frame, IoPageTable, IoSpace, IrqControl, IrqHandler, Notification, PciDevice, ATTR_UNCACHED,
};
use libcap::check::Checker;
use libcap::deadline::Deadline;
use libcap::device::DeviceMemory;
use libcap::iommu::IommuClient;
use libcap::vm::GuestSpace;
use libcap::{ipc, println};

use crate::layout::EDU_BAR;

/// Who holds the IOSpace that mirrors guest memory.
pub enum Route {
    /// The VMM itself (a root task with the device's PciDevice cap).
    Own(IoSpace),
    /// The iommu-server, asked to map each frame the VMM sends (a component); and the
    /// device's BAR page cap (the server must refuse to map it).
    Served(IommuClient, Frame),
}

/// The assigned device and the caps that serve it.
pub struct Assigned {
    /// The IOSpace mirroring guest memory, or the server holding it.
    pub route: Route,
    /// The device's MSI handler.
    pub handler: IrqHandler,
    /// Signalled (badge 1) by the device's MSI.
    pub msi: Notification,
    /// Signalled on each DMA fault of the device.
    pub faults: Notification,
    /// MSIs turned into guest interrupts.
    pub msis: u32,
}

/// A notification cap with a non-zero badge (a poll sees a signal only then).
pub fn badged_notification(
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    badge: u64,
) -> Result<Notification, Error> {
    let root = CNode(slots::INIT_CNODE);
    let object = objects.alloc(slots, ObjectType::Notification, 0)?;
    let badged = slots.alloc()?;
    CNode::mint(root.slot(badged), root.slot(object), CapRights::ALL, badge)?;
    Ok(Notification(badged))
}

/// Maps `frame` (a copy of a guest RAM cap) at IOVA `gpa` in `iospace`.
fn mirror_own(slots: &SlotAllocator, iospace: IoSpace, frame: Frame, gpa: u64) -> Result<(), Error> {
    let root = CNode(slots::INIT_CNODE);
    let copy = slots.alloc()?;
    CNode::copy(root.slot(copy), root.slot(frame.0), CapRights::ALL)?;
    Frame(copy).map_io(iospace, gpa, CapRights::READ.union(CapRights::WRITE))
}

/// Assigns edu device number `nth` to the guest in `space` whose RAM is `ram`
/// (guest-physical address, VMM's frame cap).
pub fn attach(
    c: &mut Checker,
    bi: &BootInfo,
    (objects, slots, device_memory): (&mut ObjectAllocator<'_>, &SlotAllocator, &mut DeviceMemory),
    space: GuestSpace,
    ram: &[(u64, Frame)],
    nth: usize,
) -> Option<Assigned> {
    let Some((index, _)) = bi.pci_devices().iter().enumerate().filter(|(_, d)| edu_driver::is_edu(d)).nth(nth) else {
        println!("vmm: FAIL no edu device number {nth} to assign (QEMU -device edu)");
        return None;
    };
    let dev = PciDevice(bi.pci_device_caps.start + index as u64);
    let bar = dev.config_read(0x10, 4).ok()? & !0xf;
    let frame = device_memory.frame_at(slots, bar);
    let rw = CapRights::READ.union(CapRights::WRITE);
    let mapped = frame.is_some_and(|f| space.map_frame(objects, slots, f, EDU_BAR, rw, ATTR_UNCACHED).is_ok());
    c.check("map the edu BAR into the guest", mapped);
    let command = dev.config_read(pci::COMMAND, 2).ok()?;
    let command = command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER;
    c.check("enable decoding and bus mastering", dev.write_command(command as u16).is_ok());

    // The device's MSI arrives at the VMM, which injects it into the guest.
    let root = CNode(slots::INIT_CNODE);
    let handler = IrqHandler(slots.alloc().ok()?);
    let msi = IrqControl(slots::IRQ_CONTROL).get_msi(dev, root.slot(handler.0));
    let msi_ntfn = badged_notification(objects, slots, 1).ok()?;
    let bound = msi.as_ref().is_ok_and(|m| handler.set_notification(msi_ntfn).is_ok() && dev.enable_msi(m) == Ok(true));
    c.check("route the device's MSI to the VMM", bound);

    // An IOSpace that mirrors guest memory, made after it and back-filled.
    let iospace = IoSpace(objects.alloc(slots, ObjectType::IoSpace, 0).ok()?);
    for _ in 0..3 {
        let table = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).ok()?);
        let _ = table.map(iospace, 0);
    }
    let faults = badged_notification(objects, slots, 1).ok()?;
    c.check("take the IOSpace's DMA faults", iospace.set_fault_handler(faults.0).is_ok());
    let filled = ram.iter().all(|&(gpa, frame)| mirror_own(slots, iospace, frame, gpa).is_ok());
    c.check("back-fill the IOSpace with guest memory at IOVA = guest-physical", filled);
    c.check("assign the device to the IOSpace", iospace.assign(dev).is_ok());
    println!("vmm: edu at BAR {bar:#x} assigned; guest memory mirrored in its IOSpace ({} pages)", ram.len());
    Some(Assigned { route: Route::Own(iospace), handler, msi: msi_ntfn, faults, msis: 0 })
}

impl Assigned {
    /// Makes the guest RAM frame `frame` at `gpa` reachable by the device at IOVA `gpa`.
    pub fn mirror(&self, slots: &SlotAllocator, frame: Frame, gpa: u64) -> Result<(), Error> {
        match &self.route {
            Route::Own(iospace) => mirror_own(slots, *iospace, frame, gpa),
            Route::Served(client, _) => {
                client.map_frame(frame, gpa, CapRights::READ.union(CapRights::WRITE)).map_err(|e| {
                    println!("vmm: the iommu-server did not map guest-physical {gpa:#x}: {e:?}");
                    Error { code: libcap::abi::error::SyscallError::IllegalOperation, detail: gpa }
                })
            }
        }
    }

    /// Whether the device's MSI arrived (acknowledged then), waiting until `deadline`
    /// if given, else only looking.
    pub fn take_msi(&mut self, deadline: Option<Deadline>) -> bool {
        let arrived = match deadline {
            Some(d) => matches!(ipc::wait_until(self.msi.0, d), Ok(Some(_))),
            None => matches!(ipc::poll(self.msi.0), Ok(w) if w != 0),
        };
        if arrived {
            let _ = self.handler.ack();
            self.msis += 1;
        }
        arrived
    }

    /// After the guest's DMA outside its memory (at IOVA `aimed`): the fault must be
    /// reported.
    pub fn check_outside_fault(&mut self, c: &mut Checker, aimed: u64) {
        let signalled = matches!(ipc::wait_until(self.faults.0, Deadline::default_wait()), Ok(Some(_)));
        let iospace = match &self.route {
            Route::Own(iospace) => *iospace,
            Route::Served(client, _) => {
                c.check("the iommu-server signals the VMM of its device's DMA fault", signalled);
                return crate::served::check_reported(c, client, aimed);
            }
        };
        c.check("the IOSpace's fault handler is signalled", signalled);
        match iospace.next_fault() {
            Ok(f) => match f.record {
                Some(r) => {
                    let kind = if r.is_write { "write" } else { "read" };
                    println!(
                        "vmm: DMA fault: requester {:#06x} reason {} {kind} at IOVA {:#x}",
                        r.requester, r.reason, r.iova
                    );
                    c.check(
                        "the DMA outside guest memory was blocked and reported with its address",
                        r.is_write && r.iova & !0xfff == aimed,
                    );
                }
                None => c.check("a DMA fault record", false),
            },
            Err(e) => {
                println!("vmm: NextFault: {}", e.code.name());
                c.check("a DMA fault record", false);
            }
        }
    }

    /// Whether this IOSpace has no fault record left (nothing queued, none lost).
    pub fn no_faults_queued(&self) -> bool {
        match &self.route {
            Route::Own(iospace) => {
                matches!(iospace.next_fault(), Err(e) if e.code == libcap::abi::fault::NEXT_FAULT_EMPTY)
            }
            Route::Served(client, _) => matches!(client.fault_next(), Ok((None, 0))),
        }
    }
}
