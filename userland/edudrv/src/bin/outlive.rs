//! The `edudrv-outlive` program: a lent frame placed, a device write, then a crash.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Outlive)
}
