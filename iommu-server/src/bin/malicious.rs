//! The `iommu-server-malicious` program: the server in malicious mode.
//!
//! It first tries what a compromised server would (each attempt refused by the kernel),
//! then serves.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("iommu-server-malicious is a bare-metal component (x86_64-unknown-none); see docs/iommu-server.md");
}

#[cfg(target_os = "none")]
libcap::component::entry!(main);

#[cfg(target_os = "none")]
fn main(info: &'static libcap::component::ComponentInfo) -> libcap::abi::exit::ExitCode {
    iommu_server::component::start(info, true)
}
