//! The `edudrv-flood` program: the edu driver issuing 200 DMAs outside its pool.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Flood)
}
