//! The debug console: a user buffer the kernel cannot read through its direct map (a
//! device frame) is refused with an error, not a kernel fault.

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Error, Frame, Untyped, ATTR_UNCACHED};

use crate::Checker;

/// Where the device frames are mapped.
const DEVICE_VADDR: u64 = 0x0000_3000_0000_0000;

/// Runs the debug-console checks.
pub fn run(c: &mut Checker, bi: &'static BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    device_frames(c, bi, objects, slots);
}

/// DebugWrite of a buffer in device frames, above the direct map (the attack that gave a
/// kernel #PF) and below it (MMIO, never read on a user's behalf): both refused.
fn device_frames(c: &mut Checker, bi: &BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let device_untyped = |high: bool| {
        bi.untyped()
            .iter()
            .position(|u| u.is_device == 1 && (u.paddr >= 1 << 32) == high)
            .map(|i| Untyped(bi.untyped_caps.start + i as u64))
    };
    for (n, high, what) in [
        (0u64, true, "DebugWrite from a device frame above 4 GiB"),
        (1, false, "DebugWrite from a device frame below 4 GiB"),
    ] {
        let Some(ut) = device_untyped(high) else {
            c.check("a device untyped to map", false);
            continue;
        };
        let frame = Frame(slots.alloc().unwrap_or(0));
        c.ok("retype a device frame", ut.retype(ObjectType::Frame4K, 0, root, 0, 0, frame.0, 1));
        let vaddr = DEVICE_VADDR + n * 4096;
        let mapped = map_frame(objects, slots, frame, vaddr, CapRights::ALL, ATTR_UNCACHED);
        c.ok("map the device frame", mapped);
        let written = libcap::syscall::debug_write_raw(vaddr + 8, 16).map_err(|code| Error { code, detail: 0 });
        c.err(what, E::InvalidUserPointer, written);
    }
}
