//! The `edudrv-rogue-targets` program: the edu driver in rogue-targets mode.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::RogueTargets)
}
