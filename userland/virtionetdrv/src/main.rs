//! The `virtionetdrv` program: the virtio-net driver's self-test.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    virtionetdrv::main(info, virtionetdrv::Mode::Normal)
}
