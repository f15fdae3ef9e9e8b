//! Platform description from firmware: ACPI, PCI devices, VT-d units.
//!
//! Platform description from firmware: ACPI (MADT, MCFG, DMAR), PCI devices and the
//! VT-d remapping units. Parsing is pure and host-tested; `discover` reads the hardware.

#[cfg(target_os = "none")]
pub mod bars;
pub mod dmar;
pub mod msix;
pub mod pci;
pub mod reserved;
pub mod rmrr;

#[cfg(target_os = "none")]
mod discover;
#[cfg(target_os = "none")]
pub mod msix_table;
#[cfg(target_os = "none")]
pub mod pci_config;
#[cfg(target_os = "none")]
pub use discover::{discover, Platform};
