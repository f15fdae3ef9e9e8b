//! The user-level IOMMU server (placeholder crate re-exporting its ABI).
//!
//! The user-level IOMMU server (domains from granted caps, delegation, fault policy).
//! The kernel side it builds on (IOSpace, IOPageTable, PciDevice and MSI caps) is in
//! place; until the server's own issue lands this crate only re-exports the ABI it will
//! speak, so the workspace layout is fixed.
#![no_std]

pub use abi;
