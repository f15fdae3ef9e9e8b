//! Checks that the boot image's Frame caps give read access and nothing more.
//!
//! The kernel maps the boot image read-only into the root task and hands it one
//! read-only Frame cap per page. These checks act as an attacker holding those caps:
//! no writable mapping (remap, copy with all rights, fresh map), no retype, and a
//! read-only second mapping reads the same bytes as the kernel's.

use libcap::abi::bootimage::IMAGE_MAGIC;
use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, Untyped, VSpace};

use crate::Checker;

/// Where a copy of the image's first frame is mapped a second time.
const COPY_VADDR: u64 = 0x0000_3200_0000_0000;

/// Runs the boot-image checks.
pub fn run(c: &mut Checker, bi: &'static BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let vspace = VSpace(slots::INIT_VSPACE);
    let frames = bi.boot_image_frames;
    c.check("boot image: bootinfo fields consistent", bi.boot_image_is_valid() && !frames.is_empty());
    c.check("boot image: mapped bytes start with the image magic", bi.boot_image().starts_with(&IMAGE_MAGIC));
    let first = Frame(frames.start);
    let rw = CapRights::READ.union(CapRights::WRITE);
    c.err(
        "boot image: remap the kernel's mapping writable",
        E::InsufficientRights,
        first.map(vspace, bi.boot_image_vaddr, rw, 0),
    );
    let copy = slots.alloc().unwrap_or(0);
    c.ok(
        "boot image: copy a frame cap asking for all rights",
        CNode::copy(root.slot(copy), root.slot(first.0), CapRights::ALL),
    );
    c.err(
        "boot image: the copy still cannot map writable",
        E::InsufficientRights,
        map_frame(objects, slots, Frame(copy), COPY_VADDR, rw, 0),
    );
    c.ok("boot image: the copy maps read-only", map_frame(objects, slots, Frame(copy), COPY_VADDR, CapRights::READ, 0));
    // SAFETY: the copy was just mapped read-only at COPY_VADDR (one 4 KiB page).
    let head = unsafe { core::slice::from_raw_parts(COPY_VADDR as *const u8, 4096) };
    let offset = bi.boot_image_offset as usize;
    c.check("boot image: second mapping reads the same bytes", head[offset..].starts_with(&IMAGE_MAGIC));
    c.ok("boot image: unmap the copy", Frame(copy).unmap());
    c.err(
        "boot image: a frame cap cannot be retyped",
        E::IllegalOperation,
        Untyped(frames.start).retype(ObjectType::Endpoint, 0, root, 0, 0, slots.alloc().unwrap_or(0), 1),
    );
    let addr = first.address();
    c.check(
        "boot image: frames are consecutive pages",
        matches!((addr, Frame(frames.end - 1).address()), (Ok(a), Ok(b)) if b == a + (frames.len() - 1) * 4096),
    );
    c.ok("boot image: delete the copy", CNode::delete(root.slot(copy)));
}
