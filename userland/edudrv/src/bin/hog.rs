//! The `edudrv-hog` program: places one frame at many IOVAs to use up the server.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    edudrv::run(info, edudrv::Mode::Hog)
}
