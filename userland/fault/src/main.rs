//! User-fault test program: touches an unmapped address.
//!
//! Test program: touches an unmapped address, so the kernel must report a user fault
//! (and, with no fault handler, stop the system with `RootTaskFault`).
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::println;

libcap::entry!(main);

/// An address no user program has mapped.
const BAD_POINTER: u64 = 0x0000_dead_0000;

fn main(_bi: &'static BootInfo) -> ExitCode {
    println!("fault: reading bad pointer {BAD_POINTER:#x}");
    // SAFETY: deliberately unsound: this read must fault; the kernel reports it.
    let value = unsafe { core::ptr::read_volatile(BAD_POINTER as *const u64) };
    println!("fault: read {value:#x} from a bad pointer: the kernel did not stop us");
    ExitCode::UserFailure
}
