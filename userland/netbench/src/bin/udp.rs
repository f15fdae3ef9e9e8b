//! `netbench`: 64-byte UDP datagrams through the appliance, timed by the driver.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    netbench::main(info, netbench::Mode::Udp)
}
