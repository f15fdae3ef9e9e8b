//! Checks that the debug console is a capability.
//!
//! The debug console: a user buffer the kernel cannot read through its direct map (a
//! device frame) is refused with an error, not a kernel fault; printing and halting
//! need the debug-console cap, so a sandbox without one can do neither.

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::exit::ExitCode;
use libcap::abi::invocation::Invocation;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Error, Frame, SlotRef, Untyped, VSpace, ATTR_UNCACHED};
use libcap::console::DebugConsole;
use libcap::ipc;
use libcap::println;
use libcap::space::spawn_with;

use crate::Checker;

/// Where the device frames are mapped.
const DEVICE_VADDR: u64 = 0x0000_3000_0000_0000;
/// Stack and IPC buffer of the sandboxed thread (in the root task's VSpace).
const SANDBOX_REGION: u64 = 0x0000_3100_0000_0000;
/// The sandbox's own CNode: radix and the only cap it starts with (its report endpoint).
const SANDBOX_RADIX: u64 = 4;
const SANDBOX_REPORT: u64 = 1;
/// Labels of the sandbox's two reports.
const REPORT_WITHOUT: u64 = 1;
const REPORT_WITH: u64 = 2;

/// Runs the debug-console checks.
pub fn run(c: &mut Checker, bi: &'static BootInfo, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    device_frames(c, bi, objects, slots);
    sandbox_without_the_cap(c, objects, slots);
    delegation_and_errors(c, slots);
}

/// The root task's own cap, a copy and a minted copy print; an empty slot, a bad code,
/// an oversized buffer and a foreign label are refused with an error.
fn delegation_and_errors(c: &mut Checker, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let own = DebugConsole::default();
    c.ok("print a byte through the debug cap", own.put_char(b'\n'));
    let (copy, minted, empty) = (slots.alloc().unwrap_or(0), slots.alloc().unwrap_or(0), slots.alloc().unwrap_or(0));
    c.ok("copy the debug cap", CNode::copy(root.slot(copy), root.slot(slots::DEBUG_CONSOLE), CapRights::ALL));
    c.ok("print through the copy", DebugConsole(copy).write(b"captest: printed through a copy of the debug cap\n"));
    c.ok("mint the debug cap (badge 0)", CNode::mint(root.slot(minted), root.slot(copy), CapRights::ALL, 0));
    c.ok("print through the minted copy", DebugConsole(minted).write(b"captest: printed through a minted debug cap\n"));
    c.err(
        "mint the debug cap with a badge",
        E::IllegalOperation,
        CNode::mint(root.slot(slots.alloc().unwrap_or(0)), root.slot(copy), CapRights::ALL, 7),
    );
    c.err("DebugWrite through an empty slot", E::FailedLookup, DebugConsole(empty).write(b"no"));
    let halt = DebugConsole(empty).halt(0);
    c.err("DebugHalt through an empty slot", E::FailedLookup, Err::<(), _>(halt));
    c.err("DebugHalt with a code above 0x7f", E::RangeError, Err::<(), _>(own.halt(0x80)));
    let big = [b'x'; 4097];
    c.err("DebugWrite of more than 4096 bytes", E::RangeError, own.write(&big));
    c.err(
        "a CNode label on the debug cap",
        E::IllegalOperation,
        libcap::cap::invoke(minted, Invocation::CNodeDelete, &[0, 0], &[]),
    );
    iommu_counters_reach(c, slots, minted, empty);
    c.ok("delete the minted copy", CNode::delete(root.slot(minted)));
    c.err("print through the deleted copy", E::FailedLookup, DebugConsole(minted).write(b"no"));
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

/// Result code of a debug-console call: 0 or the error's raw value.
fn code(r: Result<(), E>) -> u64 {
    r.err().map_or(0, E::raw)
}

/// A thread with its own CSpace that holds only its report endpoint.
extern "C" fn sandbox(_: u64) -> ! {
    let write = libcap::syscall::debug_write(b"captest: FAIL the sandbox printed without a debug cap\n");
    let halt = libcap::syscall::debug_halt_raw(u64::from(ExitCode::Success.raw()));
    let _ = ipc::call(SANDBOX_REPORT, MessageInfo::new(REPORT_WITHOUT, 2), [code(write), halt.raw(), 0, 0]);
    // The root task has given it a minted copy of the debug cap in the usual slot.
    let write = libcap::syscall::debug_write(b"captest: ok the sandbox prints through its minted debug cap\n");
    let _ = ipc::call(SANDBOX_REPORT, MessageInfo::new(REPORT_WITH, 1), [code(write), 0, 0, 0]);
    loop {
        ipc::yield_now();
    }
}

/// A sandbox without the debug cap can neither print nor halt (and the system runs on);
/// given a minted copy, it prints.
fn sandbox_without_the_cap(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let (Ok(report), Ok(cnode), Ok(guarded)) = (
        objects.alloc(slots, ObjectType::Endpoint, 0),
        objects.alloc(slots, ObjectType::CNode, SANDBOX_RADIX),
        slots.alloc(),
    ) else {
        return c.check("objects for the sandbox", false);
    };
    let own = |index: u64| SlotRef { root: CNode(guarded), index, depth: 64 };
    let built = CNode::mint(root.slot(guarded), root.slot(cnode), CapRights::ALL, 64 - SANDBOX_RADIX).is_ok()
        && CNode::copy(own(SANDBOX_REPORT), root.slot(report), CapRights::WRITE).is_ok();
    c.check("a sandbox CNode holding only its report endpoint", built);
    let spawned =
        spawn_with(objects, slots, CNode(guarded), VSpace(slots::INIT_VSPACE), sandbox, 0, 100, SANDBOX_REGION, 0);
    let Some(thread) = c.ok("start the sandboxed thread", spawned) else { return };
    let Ok(m) = ipc::recv(report) else { return c.check("the sandbox reports", false) };
    let failed = E::FailedLookup.raw();
    c.check(
        "the sandbox's DebugWrite without the cap -> FailedLookup",
        m.info.label == REPORT_WITHOUT && m.mrs[0] == failed,
    );
    c.check(
        "the sandbox's DebugHalt without the cap -> FailedLookup",
        m.info.label == REPORT_WITHOUT && m.mrs[1] == failed,
    );
    c.check("the system runs on after the sandbox's refused halt", true);
    let given = CNode::mint(own(slots::DEBUG_CONSOLE), root.slot(slots::DEBUG_CONSOLE), CapRights::ALL, 0);
    c.ok("mint a copy of the debug cap into the sandbox", given);
    ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    let Ok(m) = ipc::recv(report) else { return c.check("the sandbox reports again", false) };
    c.check("the sandbox's DebugWrite through the minted cap works", m.info.label == REPORT_WITH && m.mrs[0] == 0);
    c.ok("stop the sandbox", thread.suspend());
}

/// Attack PoC (DebugIommuCounters): who can read the system-wide IOMMU work counters.
/// A rightless copy of the debug cap reads them (the invocation needs no right, and
/// every component gets a print-only copy); an empty slot and a cap of another type
/// cannot; the kernel stays up.
fn iommu_counters_reach(c: &mut Checker, slots: &SlotAllocator, minted: u64, empty: u64) {
    let root = CNode(slots::INIT_CNODE);
    let rightless = slots.alloc().unwrap_or(0);
    c.ok(
        "attack: copy the debug cap with no rights",
        CNode::copy(root.slot(rightless), root.slot(minted), CapRights::NONE),
    );
    match DebugConsole(rightless).iommu_counters() {
        Ok((leaves, invalidations)) => println!(
            "captest: attack: a rightless debug cap reads the IOMMU counters: {leaves} leaf writes, {invalidations} IOTLB invalidations"
        ),
        Err(e) => println!("captest: attack: a rightless debug cap cannot read the IOMMU counters: {:?}", e.code),
    }
    c.err("attack: DebugIommuCounters through an empty slot", E::FailedLookup, DebugConsole(empty).iommu_counters());
    c.err(
        "attack: DebugIommuCounters on the root CNode cap",
        E::IllegalOperation,
        libcap::cap::invoke(slots::INIT_CNODE, Invocation::DebugIommuCounters, &[], &[]),
    );
    let words = libcap::cap::invoke(rightless, Invocation::DebugIommuCounters, &[1, 2, 3, 4], &[]);
    c.check("attack: DebugIommuCounters with stray words answers the same way", words.is_ok());
    let _ = CNode::delete(root.slot(rightless));
}
