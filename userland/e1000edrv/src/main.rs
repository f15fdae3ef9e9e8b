//! The `e1000edrv` program: the e1000e driver (self-test, or serving its client).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    e1000edrv::main(info, e1000edrv::Mode::Normal)
}
