//! The user-level IOMMU server. It arrives with the IOMMU-capabilities issue; until then
//! this crate only re-exports the ABI it will speak so the workspace layout is fixed.
#![no_std]

pub use abi;
