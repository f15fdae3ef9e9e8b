//! The VMM running random guests, then its guest (`init=vmm-fuzz`).
//!
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    vmm::run(bi, vmm::Machine::Fuzz)
}
