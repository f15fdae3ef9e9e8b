//! `management-busy`: management that spins before its first fetch (a scenario).
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    management::run(info, true)
}
