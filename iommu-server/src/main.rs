//! The iommu-server as a component of a described system.
//!
//! Init gives it (docs/system.md, `abi::component`): the `iommu` endpoint its drivers
//! call, one PciDevice cap per device (`badge` = device index, `size` = the device's
//! DMA mask width when init records it, else 64) and each driver's DMA pool (an
//! untyped, `badge` = device index), its own spare untyped (IOSpaces, IO page tables,
//! the fault notification it binds to its TCB) and the endpoints of its channels; the first channel it is a client of receives
//! the forwarded DMA faults. It then runs `iommu_server::server::run`.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("iommu-server is a bare-metal component (x86_64-unknown-none); see docs/iommu-server.md");
}

#[cfg(target_os = "none")]
libcap::component::entry!(main);

#[cfg(target_os = "none")]
fn main(info: &'static libcap::component::ComponentInfo) -> libcap::abi::exit::ExitCode {
    iommu_server::component::start(info, false)
}
