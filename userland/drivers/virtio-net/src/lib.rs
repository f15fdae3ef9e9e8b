//! virtio-net behind VT-d: checked config, ACCESS_PLATFORM, IOVA pool Hal.
//!
//! `virtio-drivers` 0.13 drives the device; this crate supplies what it lacks for a
//! user-level driver whose device DMAs only through IOVAs:
//! - [`config::ConfigView`]: the function's config space as the driver may see it (read
//!   through the iommu-server), with the BARs answered from the driver's own BAR
//!   mappings (the kernel keeps BARs read-only: sizing writes never reach the device), and
//!   every virtio capability checked against the BAR it names before the crate follows it;
//! - [`transport::PlatformTransport`]: wraps the crate's transport so that
//!   VIRTIO_F_ACCESS_PLATFORM (bit 33) is required, accepted, and FEATURES_OK read back;
//! - [`pool::Pool`] and [`hal::PoolHal`]: DMA pages and bounce buffers carved from one
//!   region the driver got from its iommu-server, so the device is handed IOVAs only;
//! - [`net::Net`]: the crate's non-blocking `VirtIONetRaw` with the driver's own
//!   buffers: sends are queued and reclaimed, never spun on, and their age is known.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
pub use netframe as frame;
pub mod hal;
pub mod net;
pub mod pool;
pub mod transport;

pub use virtio_drivers;

/// The virtio PCI vendor id.
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// The modern (non-transitional) virtio-net device id.
pub const VIRTIO_NET_MODERN: u16 = 0x1041;
/// VIRTIO_F_ACCESS_PLATFORM: the device's DMA goes through the platform's IOMMU.
pub const F_ACCESS_PLATFORM: u64 = 1 << 33;
/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << 32;
