//! The `nvmedrv` program: the NVMe driver's self-test.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    nvmedrv::main(info, nvmedrv::Mode::Normal)
}
