//! The user-level IOMMU server: IOVA allocation, domains, request decoding.
//!
//! The host-testable logic of the iommu-server (docs/iommu-server.md): an IOVA allocator
//! that honours the device's DMA mask, leaves a guard page after every buffer and never
//! touches the MSI window ([`iova`]); the per-driver domain state with rollback and
//! frame reuse only after unmap and revoke ([`domain`]); request decoding ([`request`]);
//! fault reports queued per device for their handler ([`reports`]); the status text
//! a partition may show read-only ([`status`]).
//! On bare metal `server` runs the request loop over real caps and `malicious` shows
//! what the kernel refuses a server that misbehaves.
#![no_std]

extern crate alloc;

#[cfg(target_os = "none")]
pub mod component;
pub mod domain;
pub mod iova;
#[cfg(target_os = "none")]
pub mod malicious;
pub mod reports;
pub mod request;
#[cfg(target_os = "none")]
pub mod server;
pub mod status;

pub use abi;
