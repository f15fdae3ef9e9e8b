//! The `e1000edrv-flaky` program: the e1000e driver crashing once under traffic.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    e1000edrv::main(info, e1000edrv::Mode::Flaky)
}
