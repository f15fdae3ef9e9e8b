//! The `netclient-rxbench` program: frames received through the rings, timed.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    netclient::main(info, netclient::Mode::RxBench)
}
