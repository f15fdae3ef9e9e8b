//! The `edudrv-rogue-outside` program: the edu driver in rogue-outside mode.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::RogueOutside)
}
