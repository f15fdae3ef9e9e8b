//! The `virtionetdrv-rogue` program: the virtio-net driver in the fault scenarios' mode.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    virtionetdrv::main(info, virtionetdrv::Mode::Rogue)
}
