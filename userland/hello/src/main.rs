//! Test component: prints its info page and caps, serves or calls its channels.
//!
//! `hello` shows the component boot ABI at work: it prints its name, generation and
//! named caps, proves its heap region is claimed (allocates more than the static
//! arena), and then, per cap: a receive endpoint is served once (writing a greeting
//! into its writable regions first), a send endpoint is called, a read-only region is
//! read and then written (which must fault: init logs it). With a supervisor cap it
//! asks init to restart and then cut off the component after it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use libcap::abi::component::{CNODE, FIRST_NAMED, SUPERVISOR_CUTOFF, SUPERVISOR_RESTART, VSPACE};
use libcap::abi::exit::ExitCode;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::cap::{CNode, Frame, Untyped, VSpace};
use libcap::component::{CapKind, ComponentInfo};
use libcap::{ipc, println};

libcap::component::entry!(main);

/// The word a server writes at the start of its writable regions.
const GREETING: u64 = 0x6865_6c6c_6f21;

fn main(info: &'static ComponentInfo) -> ExitCode {
    let name = info.name();
    println!(
        "hello: {name}: index {} generation {}, {} caps, {} KiB spare untyped in {} caps, heap {} KiB",
        info.index,
        info.generation,
        info.caps().len(),
        info.budget_bytes / 1024,
        info.budget_untyped.len(),
        info.heap_bytes / 1024
    );
    for c in info.caps() {
        println!(
            "hello: {name}: cap {} {:?} rights {:#x} slot {} vaddr {:#x} size {:#x} badge {}",
            c.name(),
            c.kind(),
            c.rights,
            c.slot,
            c.vaddr,
            c.size,
            c.badge
        );
    }
    // More than libcap's static arena: only the claimed heap region can serve it.
    if info.heap_bytes >= 512 * 1024 {
        let big: Vec<u8> = alloc::vec![7; 300 * 1024];
        println!("hello: {name}: heap ok: {} bytes at {:#x}", big.len(), big.as_ptr() as u64);
    }
    // Its own VSpace and spare untyped: a fresh page right after the heap.
    if info.heap_bytes > 0 && !info.budget_untyped.is_empty() {
        let vaddr = info.heap_vaddr + info.heap_bytes;
        let slot = FIRST_NAMED + 40;
        let made = Untyped(info.budget_untyped.start).retype(ObjectType::Frame4K, 0, CNode(CNODE), 0, 0, slot, 1);
        let mapped = made.and_then(|()| Frame(slot).map(VSpace(VSPACE), vaddr, CapRights::ALL, 0));
        match mapped {
            Ok(()) => {
                // SAFETY: the page was just mapped read-write at vaddr, used by nothing else.
                let v = unsafe {
                    core::ptr::write_volatile(vaddr as *mut u64, 0x1234);
                    core::ptr::read_volatile(vaddr as *const u64)
                };
                println!("hello: {name}: mapped a page of its own untyped at {vaddr:#x}: reads {v:#x}");
            }
            Err(e) => println!("hello: {name}: mapping its own page failed: {e:?}"),
        }
    }
    // Device BAR pages (drivers): the first register reads the device's identification.
    for b in info.caps().iter().filter(|c| c.kind() == Some(CapKind::DeviceFrame)) {
        // SAFETY: init mapped this BAR page (uncached) at vaddr for us.
        let id = unsafe { core::ptr::read_volatile(b.vaddr as *const u32) };
        println!("hello: {name}: {} BAR{} at {:#x} reads {id:#010x}", b.name(), b.badge, b.vaddr);
        // The whole BAR is mapped (size bytes): its last page too.
        let last = b.vaddr + b.size.max(4096) - 4096;
        // SAFETY: init mapped `size` bytes of this BAR from vaddr on (MSI-X pages aside).
        let tail = unsafe { core::ptr::read_volatile(last as *const u32) };
        println!("hello: {name}: {} BAR{} last page at {last:#x} reads {tail:#010x}", b.name(), b.badge);
    }
    // A supervisor cap: restart, then cut off the next component (the test's worker).
    if let Some(sup) = info.cap_of("supervisor", CapKind::Supervisor) {
        let target = u64::from(info.index) + 1;
        for (what, label) in [("restart", SUPERVISOR_RESTART), ("cutoff", SUPERVISOR_CUTOFF)] {
            match ipc::call(sup.slot, MessageInfo::new(label, 1), [target, 0, 0, 0]) {
                Ok(m) => println!("hello: {name}: {what} #{target}: status {} generation {}", m.mrs[0], m.mrs[1]),
                Err(e) => println!("hello: {name}: {what} #{target} failed: {e:?}"),
            }
        }
    }
    let readable = |c: &&libcap::component::CapEntry| c.rights & CapRights::READ.raw() != 0;
    let writable = |c: &&libcap::component::CapEntry| c.rights & CapRights::WRITE.raw() != 0;
    for r in info.caps().iter().filter(|c| c.kind() == Some(CapKind::Region)).filter(writable) {
        // SAFETY: init mapped this region read-write at vaddr (size bytes) for us.
        unsafe { core::ptr::write_volatile(r.vaddr as *mut u64, GREETING) };
        println!("hello: {name}: wrote {GREETING:#x} to region {}", r.name());
    }
    // Channels only: the iommu-server's protocol endpoint is not hello's to serve.
    for ep in info.caps().iter().filter(|c| c.kind() == Some(CapKind::Endpoint) && c.name() != "iommu") {
        if readable(&ep) {
            match ipc::recv(ep.slot) {
                Ok(m) => {
                    println!("hello: {name}: got {} with badge {} on {}", m.mrs[0], m.badge, ep.name());
                    ipc::reply(MessageInfo::new(0, 1), [m.mrs[0] + 1, 0, 0, 0]);
                }
                Err(e) => println!("hello: {name}: receive on {} failed: {e:?}", ep.name()),
            }
        } else {
            match ipc::call(ep.slot, MessageInfo::new(1, 1), [41, 0, 0, 0]) {
                Ok(m) => println!("hello: {name}: {} answered {}", ep.name(), m.mrs[0]),
                Err(e) => println!("hello: {name}: call on {} failed: {e:?}", ep.name()),
            }
        }
    }
    for r in info.caps().iter().filter(|c| c.kind() == Some(CapKind::Region)) {
        if writable(&r) {
            continue;
        }
        // SAFETY: init mapped this region readable at vaddr for us.
        let v = unsafe { core::ptr::read_volatile(r.vaddr as *const u64) };
        println!("hello: {name}: region {} reads {v:#x}; writing it (read-only: must fault)", r.name());
        // SAFETY: deliberately a write to a read-only mapping: the fault goes to init.
        unsafe { core::ptr::write_volatile(r.vaddr as *mut u64, 1) };
        println!("hello: {name}: wrote a read-only region: NOT refused");
        return ExitCode::UserFailure;
    }
    ExitCode::Success
}
