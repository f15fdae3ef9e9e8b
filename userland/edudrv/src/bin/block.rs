//! The `edudrv-block` program: an endpoint sent as a DmaMapFrame frame.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Block)
}
