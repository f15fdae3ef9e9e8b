//! The `nvmedrv-rogue` program: the NVMe driver in the fault scenarios' mode.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    nvmedrv::main(info, nvmedrv::Mode::Rogue)
}
