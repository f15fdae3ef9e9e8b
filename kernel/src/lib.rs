//! The capability microkernel: hardware-independent logic (built and tested on the host)
//! and, on bare metal, the x86_64 layer and the boot sequence.
#![cfg_attr(not(test), no_std)]

pub mod log;

pub mod boot;
pub mod iommu;
pub mod object;
pub mod platform;
pub mod thread;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod invoke;

/// The page-table layout's old path, still named by `iommu/vtd.rs`, which another branch
/// splits at the same time; removed when both land.
#[doc(hidden)]
pub use object::paging;
