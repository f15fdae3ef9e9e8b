//! The VMM timing its guest's exits (`init=vmm-bench`, `make bench`).
//!
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    vmm::run(bi, vmm::Machine::Bench)
}
