//! The `edudrv-block` program: a DmaMapFrame whose "frame" is the server's endpoint.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Block)
}
