//! The VMM with two guests and an edu each (`init=vmm-two-edu`).
//!
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    vmm::run(bi, vmm::Machine::TwoEdu)
}
