//! The `nvmedrv-bench` program: the NVMe self-test, then timed 4 KiB transfers.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    nvmedrv::main(info, nvmedrv::Mode::Bench)
}
