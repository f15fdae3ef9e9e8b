//! The VMM as a component of a system description (`program = "vmm-component"`).
//!
//! Its guest gets the device the description gives it, through the iommu-server.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static libcap::abi::component::ComponentInfo) -> libcap::abi::exit::ExitCode {
    vmm::run_component(info)
}
