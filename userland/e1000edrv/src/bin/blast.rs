//! The `e1000edrv-blast` program: the receive benchmark's sender (`make bench`).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    e1000edrv::main(info, e1000edrv::Mode::Blast)
}
