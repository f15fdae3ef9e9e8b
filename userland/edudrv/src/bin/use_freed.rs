//! The `edudrv-use-freed` component: the edu driver in mode `UseFreed` (see the crate docs).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::UseFreed)
}
