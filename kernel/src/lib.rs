//! The capability microkernel library.
//!
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
