//! `netbench-http`: HTTP requests to the httpd partition, timed per request.
#![no_std]
#![no_main]

libcap::component::entry!(main);

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    netbench::main(info, netbench::Mode::Http)
}
