//! The `netclient` program: a NIC driver's client, hostile entries, ARP and DHCP.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    netclient::main(info, netclient::Mode::Normal)
}
