//! The VMM with an edu device assigned to its guest (`init=vmm-edu`).
//!
//! The VMM with an edu device assigned to its guest (`init=vmm-edu`; see the library).
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    vmm::run(bi, vmm::Machine::WithEdu)
}
