//! Test component: prints its info page and caps, serves or calls its channels.
//!
//! `hello` shows the component boot ABI at work: it prints its name, generation and
//! named caps, proves its heap region is claimed (allocates more than the static
//! arena), and then, per cap: a receive endpoint is served once (writing a greeting
//! into its writable regions first), a send endpoint is called, a read-only region is
//! read and then written (which must fault: init logs it).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use libcap::abi::exit::ExitCode;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::rights::CapRights;
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
