//! The `iommu-server` component: serves the protocol of docs/iommu-server.md.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
libcap::component::entry!(main);

#[cfg(target_os = "none")]
fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    iommu_server::component::start(info, false)
}

/// On the host there is nothing to serve: the server runs on the kernel only.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("iommu-server is a component of the kernel's system: boot it with `make run`");
}
