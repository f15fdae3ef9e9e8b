//! The `virtionetdrv-rogue` program: the virtio-net driver in fault-scenario mode.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    virtionetdrv::main(info, virtionetdrv::Mode::Rogue)
}
