//! The IOMMU (Intel VT-d): register and table layouts, IOSpaces, interrupt remapping.
//!
//! `vtd` (register block, entries, invalidation, faults) and `intremap` (interrupt-remapping
//! layouts) are pure encoders, tested on the host; `remap_table` is the driver that uses
//! them. The rest runs on bare metal only.
//! `unit` is the hardware driver for a remapping unit.

pub mod intremap;
pub mod vtd;

#[cfg(target_os = "none")]
pub mod cfi_probe;
#[cfg(target_os = "none")]
pub mod iospace;
#[cfg(target_os = "none")]
pub mod remap_table;
#[cfg(target_os = "none")]
pub mod unit;
