//! The `edudrv` component: the edu driver in mode `Normal` (see the crate docs).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Normal)
}
