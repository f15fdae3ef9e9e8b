//! Test program: the iommu-server and an edu driver, each in its own space.
//!
//! Test program (`init=iommutest`, QEMU `-m 6G -device edu`): the root task builds the
//! iommu-server as a thread in its own VSpace and CSpace (its endpoint, an untyped
//! for IOSpaces, IRQ control, edu's PciDevice cap, a 64 KiB DMA pool from RAM above
//! 4 GiB, a device frame for the malicious attempts) and an edu driver thread in
//! another (a badged send cap to the server, an untyped for page tables, edu's BAR
//! mapped, a notification, a fault endpoint). The driver gets DMA buffers, an MSI
//! and bus mastering only through the server ([`client`]); the root task then cuts
//! the device off as the supervisor.
#![no_std]
#![no_main]

mod client;

use abi::bootinfo::BootInfo;
use abi::exit::ExitCode;
use abi::iommu::{driver_badge, supervisor_badge, IommuLabel, IommuStatus};
use abi::msginfo::MessageInfo;
use abi::object::ObjectType;
use abi::rights::CapRights;
use abi::slots;
use iommu_server::malicious::Attempts;
use iommu_server::server::{Config, DeviceCaps};
use libcap::alloc::{map_frame_in, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, CPtr, SlotRef, Tcb, Untyped, ATTR_UNCACHED};
use libcap::check::Checker;
use libcap::device::DeviceMemory;
use libcap::space::{clone_image_space, spawn_with};
use libcap::{ipc, println};

libcap::entry!(main);

/// Radix of the server's and the driver's CNodes (guarded: slot i is CPtr i).
const RADIX: u64 = 8;
/// Server CSpace slots.
mod srv {
    pub const CNODE: u64 = 2;
    pub const ENDPOINT: u64 = 3;
    pub const UNTYPED: u64 = 4;
    pub const IRQ: u64 = 5;
    pub const PCI: u64 = 6;
    pub const POOL: u64 = 7;
    pub const DEVICE_FRAME: u64 = 9;
    pub const FAULT_EP: u64 = 10;
    /// The fault notification (bound to the server's TCB).
    pub const FAULT_NTFN: u64 = 11;
    /// Never filled: the malicious server's forged frame "cap".
    pub const FORGED: u64 = 250;
}
/// Driver CSpace slots (the client module uses them).
pub(crate) mod drv {
    pub const CNODE: u64 = 2;
    pub const VSPACE: u64 = 3;
    pub const SERVER: u64 = 4;
    pub const UNTYPED: u64 = 5;
    pub const NOTIFICATION: u64 = 6;
    pub const DONE: u64 = 7;
    pub const FAULTS: u64 = 10;
}
/// Where the driver sees edu's registers.
pub(crate) const REGS_VADDR: u64 = 0x0000_4000_0000_0000;
const SERVER_REGION: u64 = 0x0000_3000_0000_0000;
const CLIENT_REGION: u64 = 0x0000_3000_1000_0000;
/// edu's DMA mask (QEMU's default for edu: 28 bits).
const EDU_MASK_BITS: u8 = 28;
/// Bytes of the driver's DMA pool.
const POOL_BITS: u64 = 16;
/// The component index the supervisor cap names (this test program is the handler).
const SUPERVISOR_INDEX: u16 = 0;

/// Failed checks of the driver thread (the image's data is shared by every space).
pub(crate) static FAILURES: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The server's configuration, built by the root task before the thread starts.
static SERVER: spin::Once<[DeviceCaps; 1]> = spin::Once::new();

extern "C" fn server_main(_: u64) -> ! {
    let devices = SERVER.get().expect("configured before the start");
    let config = Config {
        cnode: srv::CNODE,
        endpoint: srv::ENDPOINT,
        fault_ntfn: srv::FAULT_NTFN,
        untyped: srv::UNTYPED..srv::UNTYPED + 1,
        irq_control: srv::IRQ,
        free_slots: 16..240,
        address_bits: 39,
        devices,
        malicious: Some(Attempts { device_frame: srv::DEVICE_FRAME, forged_slot: srv::FORGED }),
        msix: &[],
        status: None,
    };
    iommu_server::server::run(&config)
}

/// A guarded CNode of radix [`RADIX`] and a closure naming its slots.
fn own_cnode(objects: &mut ObjectAllocator, slots: &SlotAllocator) -> Option<CPtr> {
    let root = CNode(slots::INIT_CNODE);
    let cnode = step(101, objects.alloc(slots, ObjectType::CNode, RADIX))?;
    let guarded = step(102, slots.alloc())?;
    step(103, CNode::mint(root.slot(guarded), root.slot(cnode), CapRights::ALL, 64 - RADIX))?;
    step(104, CNode::mint(in_cnode(guarded, 2), root.slot(cnode), CapRights::ALL, 64 - RADIX))?;
    step(105, CNode::copy(in_cnode(guarded, slots::DEBUG_CONSOLE), root.slot(slots::DEBUG_CONSOLE), CapRights::ALL))?;
    Some(guarded)
}

fn in_cnode(cnode: CPtr, index: u64) -> SlotRef {
    SlotRef { root: CNode(cnode), index, depth: 64 }
}

/// A RAM untyped of `2^bits` bytes at or above 4 GiB, retyped from the first large
/// enough high untyped, into a fresh root slot.
fn high_pool(bi: &BootInfo, slots: &SlotAllocator, bits: u64) -> Option<CPtr> {
    let (i, _) = bi
        .untyped()
        .iter()
        .enumerate()
        .find(|(_, u)| u.is_device == 0 && u.paddr >= 1 << 32 && u64::from(u.size_bits) > bits)?;
    let slot = slots.alloc().ok()?;
    let parent = Untyped(bi.untyped_caps.start + i as u64);
    parent.retype(ObjectType::Untyped, bits, CNode(slots::INIT_CNODE), 0, 0, slot, 1).ok()?;
    Some(slot)
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("iommutest");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let Some(index) = bi.pci_devices().iter().position(edu_driver::is_edu) else {
        println!("iommutest: FAIL no edu device (run QEMU with -device edu)");
        return ExitCode::UserFailure;
    };
    let pci = bi.pci_device_caps.start + index as u64;
    let Some(pool) = high_pool(bi, &slots, POOL_BITS) else {
        println!("iommutest: FAIL no RAM untyped above 4 GiB (run QEMU with -m 6G)");
        return ExitCode::UserFailure;
    };
    let built = build(bi, &mut objects, &slots, pci, pool);
    let Some((done, supervisor)) = built else {
        println!("iommutest: FAIL cannot build the server and the driver");
        return ExitCode::UserFailure;
    };
    // The driver runs above us: we run (and poll) only while it is blocked.
    let _ = Tcb(slots::INIT_TCB).set_priority(Tcb(slots::INIT_TCB), 50);
    let finished = ipc::wait_until(done, libcap::deadline::Deadline::after(40 * libcap::deadline::WAIT_TICKS));
    let failures = match finished {
        Ok(Some(_)) => FAILURES.load(core::sync::atomic::Ordering::SeqCst),
        _ => {
            c.check("the driver thread finished (it is stuck or faulted)", false);
            0
        }
    };
    // The supervisor cuts the device off; the driver's requests are refused then.
    let cutoff = MessageInfo::new(IommuLabel::DriverCutoff.raw(), 1);
    let reply = ipc::call(supervisor, cutoff, [0; 4]).map(|m| m.mrs[0]);
    c.check("the supervisor cuts the device off", reply == Ok(IommuStatus::Ok.raw()));
    let driver_cutoff = ipc::call(supervisor, MessageInfo::new(IommuLabel::DriverCutoff.raw(), 1), [7, 0, 0, 0]);
    c.check(
        "a cutoff of a device the server does not manage is refused",
        driver_cutoff.map(|m| m.mrs[0]) == Ok(IommuStatus::Denied.raw()),
    );
    c.failures += failures;
    println!("iommutest: done");
    c.finish()
}

/// `result`'s value, or `None` after saying which build step (`n`) failed and how.
fn step<T, E: core::fmt::Debug>(n: u32, result: Result<T, E>) -> Option<T> {
    result.map_err(|e| println!("iommutest: build step {n} failed: {e:?}")).ok()
}

/// Builds and starts the server and the driver; returns the driver's done notification
/// and the supervisor's cap to the server.
fn build(
    bi: &BootInfo,
    objects: &mut ObjectAllocator,
    slots: &SlotAllocator,
    pci: CPtr,
    pool: CPtr,
) -> Option<(CPtr, CPtr)> {
    let root = CNode(slots::INIT_CNODE);
    let ep = step(1, objects.alloc(slots, ObjectType::Endpoint, 0))?;
    let faults = step(2, objects.alloc(slots, ObjectType::Endpoint, 0))?;
    let done = step(3, objects.alloc(slots, ObjectType::Notification, 0))?;
    let supervisor = step(4, slots.alloc())?;
    step(5, CNode::mint(root.slot(supervisor), root.slot(ep), CapRights::WRITE, supervisor_badge(SUPERVISOR_INDEX)))?;
    let bar = libcap::cap::PciDevice(pci).config_read(0x10, 4).ok()? & !0xf;
    let bar_frame = DeviceMemory::new(bi).frame_at(slots, bar)?;

    // The server: its own CNode and VSpace.
    let s = own_cnode(objects, slots)?;
    let server_untyped = step(6, objects.alloc(slots, ObjectType::Untyped, 18))?;
    step(7, CNode::copy(in_cnode(s, srv::ENDPOINT), root.slot(ep), CapRights::ALL))?;
    step(8, CNode::move_cap(in_cnode(s, srv::UNTYPED), root.slot(server_untyped)))?;
    step(9, CNode::move_cap(in_cnode(s, srv::IRQ), root.slot(slots::IRQ_CONTROL)))?;
    step(10, CNode::copy(in_cnode(s, srv::PCI), root.slot(pci), CapRights::ALL))?;
    step(11, CNode::move_cap(in_cnode(s, srv::POOL), root.slot(pool)))?;
    step(12, CNode::copy(in_cnode(s, srv::DEVICE_FRAME), root.slot(bar_frame.0), CapRights::ALL))?;
    step(13, CNode::copy(in_cnode(s, srv::FAULT_EP), root.slot(faults), CapRights::WRITE))?;
    SERVER.call_once(|| {
        [DeviceCaps {
            pci: srv::PCI,
            pool: srv::POOL,
            dma_mask_bits: EDU_MASK_BITS,
            fault_ep: srv::FAULT_EP,
            msi: None,
            // This test program plays the device's handler (component index 0).
            handler: SUPERVISOR_INDEX,
            doorbell: 0,
        }]
    });
    let fault_ntfn = step(27, objects.alloc(slots, ObjectType::Notification, 0))?;
    step(28, CNode::copy(in_cnode(s, srv::FAULT_NTFN), root.slot(fault_ntfn), CapRights::ALL))?;
    let server_space = step(14, clone_image_space(objects, slots, bi))?;
    // The server starts once we block (it runs below us): bound by then.
    let server = step(15, spawn_with(objects, slots, CNode(s), server_space, server_main, 0, 200, SERVER_REGION, 0))?;
    step(29, server.bind_notification(libcap::cap::Notification(fault_ntfn)))?;

    // The driver: its own CNode and VSpace, edu's BAR mapped, no PciDevice cap.
    let d = own_cnode(objects, slots)?;
    let space = step(16, clone_image_space(objects, slots, bi))?;
    step(17, map_frame_in(objects, slots, space, bar_frame, REGS_VADDR, CapRights::ALL, ATTR_UNCACHED))?;
    let driver_untyped = step(18, objects.alloc(slots, ObjectType::Untyped, 16))?;
    let ntfn = step(19, objects.alloc(slots, ObjectType::Notification, 0))?;
    step(20, CNode::copy(in_cnode(d, drv::VSPACE), root.slot(space.0), CapRights::ALL))?;
    let send = CapRights::WRITE.union(CapRights::GRANT);
    step(21, CNode::mint(in_cnode(d, drv::SERVER), root.slot(ep), send, driver_badge(0, 1)))?;
    step(22, CNode::move_cap(in_cnode(d, drv::UNTYPED), root.slot(driver_untyped)))?;
    // Badged: an interrupt must leave a non-zero word for the driver's bounded waits.
    step(23, CNode::mint(in_cnode(d, drv::NOTIFICATION), root.slot(ntfn), CapRights::ALL, 1))?;
    step(24, CNode::mint(in_cnode(d, drv::DONE), root.slot(done), CapRights::WRITE, 1))?;
    step(25, CNode::copy(in_cnode(d, drv::FAULTS), root.slot(faults), CapRights::READ))?;
    step(26, spawn_with(objects, slots, CNode(d), space, client::driver_main, 0, 100, CLIENT_REGION, 0))?;
    Some((done, supervisor))
}
