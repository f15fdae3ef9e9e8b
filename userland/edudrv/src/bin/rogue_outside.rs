//! The `edudrv-rogue-outside` component: the edu driver in mode `RogueOutside` (see the crate docs).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::RogueOutside)
}
