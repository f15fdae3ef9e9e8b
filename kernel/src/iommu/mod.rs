//! The IOMMU (Intel VT-d).
//!
//! The IOMMU (Intel VT-d): register and table layouts, IOSpaces, interrupt remapping.
//!
//! `registers` (register block, CAP/ECAP, fault records), `entries` (root, context and
//! second-level entries), `invalidation` (descriptors and register encodings) and
//! `intremap` (interrupt-remapping layouts) are pure encoders, tested on the host, as are
//! `cfi_verdict` (the compatibility-format probe's decision), `register_set` (where a
//! unit's register blocks lie) and `fault_queue` (the DMA fault queue's logic).
//! `iospace` and `io_mapping` (IOSpaces, assignment, IO mappings) reach the hardware
//! only through `access::VtdAccess`, so they run on the host against a VT-d simulator
//! (proofs/README.md). `unit` (the remapping-unit driver) and `remap_table` run on
//! bare metal only.
//! `counters` (IOMMU work since boot, for `make bench`) builds everywhere.

pub mod access;
pub mod cfi_verdict;
pub mod counters;
pub mod entries;
pub mod fault_queue;
pub mod intremap;
pub mod invalidation;
pub mod io_mapping;
pub mod iospace;
pub mod register_set;
pub mod registers;
pub mod root_index;

#[cfg(target_os = "none")]
pub mod cfi_probe;
#[cfg(target_os = "none")]
pub mod remap_table;
#[cfg(target_os = "none")]
pub mod unit;

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
pub mod vtd_sim;
