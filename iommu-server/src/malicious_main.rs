//! The `iommu-server-malicious` component: the server in malicious mode (attempts first).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
libcap::component::entry!(main);

#[cfg(target_os = "none")]
fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    iommu_server::component::start(info, true)
}

/// On the host there is nothing to serve: the server runs on the kernel only.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("iommu-server-malicious is a component of the kernel's system: boot it with `make run`");
}
