//! The root task: checks its boot caps, then builds and supervises the system.
//!
//! The root task receives every initial capability (listed in bootinfo), checks what
//! the kernel handed over and reports it. If the boot image holds a `system` entry (a
//! packed system description), it then acts as init: builds every component the
//! description names (`compose`, `plan`, `build`) and supervises them (`supervisor`).
#![no_std]
#![no_main]

extern crate alloc;

mod build;
mod compose;
mod console;
mod grants;
mod graph_page;
mod isa;
mod plan;
mod supervisor;

use alloc::vec::Vec;

use libcap::abi::bootinfo::{BootInfo, NO_DRHD};
use libcap::abi::error::SyscallError;
use libcap::abi::exit::ExitCode;
use libcap::println;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    println!("root: hello from the root task");
    let ram: u64 = bi.untyped().iter().filter(|u| u.is_device == 0).map(|u| 1u64 << u.size_bits).sum();
    println!(
        "root: bootinfo ok: {} untyped, {} PCI devices, {} IOMMUs",
        bi.untyped().len(),
        bi.pci_devices().len(),
        bi.iommus().len()
    );
    println!(
        "root: {} MiB of RAM untyped, caps from slot {} ({} free slots)",
        ram >> 20,
        bi.untyped_caps.start,
        bi.empty.len()
    );
    for d in bi.pci_devices() {
        let drhd = if d.drhd_index == NO_DRHD { -1 } else { i32::from(d.drhd_index) };
        println!(
            "root: pci {:04x}:{:02x}:{:02x}.{} {:04x}:{:04x} drhd={}",
            d.segment,
            d.bus,
            d.devfn >> 3,
            d.devfn & 7,
            d.vendor_id,
            d.device_id,
            drhd
        );
    }
    // The boot image, mapped read-only by the kernel, parsed with the ABI's checked parser.
    match libcap::abi::bootimage::BootImage::parse(bi.boot_image()) {
        Ok(image) => println!(
            "root: boot image: {} bytes, {} entries, {} frame caps from slot {}",
            bi.boot_image_size,
            image.len(),
            bi.boot_image_frames.len(),
            bi.boot_image_frames.start
        ),
        Err(e) => {
            println!("root: boot image unreadable: {e}");
            return ExitCode::UserFailure;
        }
    }
    // The kernel must refuse a pointer into kernel memory with an error, not a fault.
    match libcap::syscall::debug_write_raw(0xffff_ffff_8000_0000, 16) {
        Err(SyscallError::InvalidUserPointer) => println!("root: kernel pointer rejected: invalid user pointer"),
        other => {
            println!("root: kernel pointer NOT rejected as expected: {other:?}");
            return ExitCode::UserFailure;
        }
    }
    match libcap::syscall::debug_write_raw(0x10_0000_0000, 16) {
        Err(SyscallError::InvalidUserPointer) => println!("root: unmapped pointer rejected: invalid user pointer"),
        other => {
            println!("root: unmapped pointer NOT rejected as expected: {other:?}");
            return ExitCode::UserFailure;
        }
    }
    // The heap works: collect the untyped sizes into a Vec.
    let mut sizes: Vec<u8> = bi.untyped().iter().map(|u| u.size_bits).collect();
    sizes.sort_unstable();
    sizes.dedup();
    println!("root: heap ok: {} distinct untyped sizes, largest 2^{}", sizes.len(), sizes.last().copied().unwrap_or(0));
    // From here on, print through the user-level console server.
    let slots = libcap::alloc::SlotAllocator::new(bi);
    let mut objects = libcap::alloc::ObjectAllocator::new(bi);
    match console::start(bi, &mut objects, &slots) {
        Ok(ep) => libcap::console::set_server(ep),
        Err(e) => {
            println!("root: cannot start the console server: {e:?}");
            return ExitCode::UserFailure;
        }
    }
    println!("root: hello through the user-level console server");
    let written = console::WRITTEN.load(core::sync::atomic::Ordering::SeqCst);
    libcap::console::set_server(0);
    println!("root: the console server wrote {written} bytes");
    if written == 0 {
        return ExitCode::UserFailure;
    }
    if bi.untyped().is_empty() || bi.iommus().is_empty() {
        println!("root: bootinfo lacks untyped memory or IOMMUs");
        return ExitCode::UserFailure;
    }
    // Init: build the described system, if the boot image has one.
    if let Some(code) = compose::run(bi, bi.boot_image(), &slots, &mut objects) {
        return code;
    }
    ExitCode::Success
}
