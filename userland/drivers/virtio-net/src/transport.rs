//! A transport wrapper that requires, accepts and checks VIRTIO_F_ACCESS_PLATFORM.
//!
//! `virtio-drivers` 0.13 negotiates only the features it knows and never reads the
//! status back after setting FEATURES_OK. A device offering ACCESS_PLATFORM (QEMU's
//! `iommu_platform=on`) then refuses the handshake silently (FEATURES_OK stays clear);
//! one that does not offer it would DMA around the IOMMU. [`PlatformTransport`] refuses
//! the latter up front, accepts the bit in `begin_init`, reads FEATURES_OK back, and on a
//! refusal sets FAILED and never DRIVER_OK; the outcome is in the [`Negotiation`] handle.

use alloc::sync::Arc;
use core::fmt::Debug;
use core::ops::BitAnd;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};

use crate::{F_ACCESS_PLATFORM, F_VERSION_1};

/// Why the device was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// Not a network device.
    NotNetwork,
    /// The device does not offer ACCESS_PLATFORM (its DMA would bypass VT-d) or
    /// VERSION_1; the device's feature bits.
    Offers(u64),
    /// FEATURES_OK was not read back after writing these driver features.
    FeaturesRefused(u64),
}

/// What negotiation came to: the features written, or why it failed.
pub type Negotiation = Arc<Mutex<Result<u64, NegotiationError>>>;

register_structs! {
    /// `virtio_pci_common_cfg` (virtio 1.x, 4.1.4.3) up to the queue addresses; only
    /// the queue's MSI-X routing is used here (the crate drives the rest).
    pub CommonCfg {
        (0x00 => _features_and_status),
        (0x16 => queue_select: ReadWrite<u16>),
        (0x18 => _queue_size),
        (0x1a => queue_msix_vector: ReadWrite<u16>),
        (0x1c => _queue_enable),
        (0x1e => queue_notify_off: ReadWrite<u16>),
        (0x20 => _queue_addresses),
        (0x38 => @END),
    }
}

/// Notifies `queue` through the notification structure (`notify`: address, length,
/// multiplier, from `ConfigView::notify_cfg`), its offset read from the common
/// configuration at `common`; `false` if that offset lies outside the structure.
///
/// The crate posts its receive buffers after setting DRIVER_OK and notifies only when
/// the device asks for it; QEMU holds a frame that arrived before the buffers until the
/// queue is notified, so the driver kicks the receive queue once after set-up.
///
/// # Safety
/// `common` and `notify` must be the device's mapped structures (uncached), as found by
/// the checked `ConfigView`.
pub unsafe fn kick(common: u64, notify: (u64, u64, u32), queue: u16) -> bool {
    // SAFETY: the caller guarantees `common` maps the common configuration.
    let regs = unsafe { &*(common as *const CommonCfg) };
    regs.queue_select.set(queue);
    let at = u64::from(regs.queue_notify_off.get()) * u64::from(notify.2);
    if at + 2 > notify.1 {
        return false;
    }
    // SAFETY: `at + 2 <= length`: inside the mapped notification structure.
    unsafe { ((notify.0 + at) as *mut u16).write_volatile(queue) };
    true
}

/// What the device reads back for a vector it did not take.
pub const NO_VECTOR: u16 = 0xffff;

/// Routes every queue the crate sets up to one MSI-X table entry (the crate does not).
struct QueueVectors {
    regs: &'static CommonCfg,
    entry: u16,
    /// Queues routed (vector read back), and queues the device refused.
    routed: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
}

impl Debug for QueueVectors {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "QueueVectors {{ entry: {} }}", self.entry)
    }
}

/// How many queues were routed to the MSI-X entry and how many the device refused.
#[derive(Clone, Debug)]
pub struct Routing {
    routed: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
}

impl Routing {
    /// (routed, refused) so far.
    pub fn counts(&self) -> (u32, u32) {
        (self.routed.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }
}

/// The crate's transport `T`, with the ACCESS_PLATFORM handshake and, optionally,
/// every queue's interrupt routed to an MSI-X entry.
#[derive(Debug)]
pub struct PlatformTransport<T: Transport> {
    inner: T,
    outcome: Negotiation,
    vectors: Option<QueueVectors>,
}

impl<T: Transport> PlatformTransport<T> {
    /// Wraps `inner` after checking the device offers ACCESS_PLATFORM and VERSION_1.
    pub fn new(mut inner: T) -> Result<(Self, Negotiation), NegotiationError> {
        if inner.device_type() != DeviceType::Network {
            return Err(NegotiationError::NotNetwork);
        }
        let offered = inner.read_device_features();
        if offered & (F_ACCESS_PLATFORM | F_VERSION_1) != F_ACCESS_PLATFORM | F_VERSION_1 {
            return Err(NegotiationError::Offers(offered));
        }
        let outcome: Negotiation = Arc::new(Mutex::new(Err(NegotiationError::FeaturesRefused(0))));
        Ok((PlatformTransport { inner, outcome: outcome.clone(), vectors: None }, outcome))
    }

    /// Routes each queue the crate sets up from now on to MSI-X table entry `entry`
    /// (writing `queue_msix_vector` and reading it back) through the common
    /// configuration structure mapped at `common`.
    ///
    /// # Safety
    /// `common` must map the device's common configuration structure (at least
    /// `size_of::<CommonCfg>()` bytes, uncached) for as long as the transport lives.
    pub unsafe fn route_queues(&mut self, common: u64, entry: u16) -> Routing {
        // SAFETY: the caller guarantees the mapping; registers are accessed volatile.
        let regs = unsafe { &*(common as *const CommonCfg) };
        let (routed, refused) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        self.vectors = Some(QueueVectors { regs, entry, routed: routed.clone(), refused: refused.clone() });
        Routing { routed, refused }
    }
}

impl<T: Transport> Transport for PlatformTransport<T> {
    fn begin_init<F: bitflags::Flags<Bits = u64> + BitAnd<Output = F> + Debug>(&mut self, supported: F) -> F {
        let driver = DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER;
        self.inner.set_status(DeviceStatus::empty());
        self.inner.set_status(driver);
        let offered = self.inner.read_device_features();
        let negotiated = F::from_bits_truncate(offered) & supported;
        let written = negotiated.bits() | (offered & F_ACCESS_PLATFORM);
        self.inner.write_driver_features(written);
        self.inner.set_status(driver | DeviceStatus::FEATURES_OK);
        let ok = offered & F_ACCESS_PLATFORM != 0 && self.inner.get_status().contains(DeviceStatus::FEATURES_OK);
        *self.outcome.lock() = if ok {
            Ok(written)
        } else {
            self.inner.set_status(driver | DeviceStatus::FAILED);
            Err(NegotiationError::FeaturesRefused(written))
        };
        negotiated
    }

    fn finish_init(&mut self) {
        if self.outcome.lock().is_ok() {
            self.inner.finish_init();
        }
    }

    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }
    fn read_device_features(&mut self) -> u64 {
        self.inner.read_device_features()
    }
    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner.write_driver_features(driver_features)
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }
    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue)
    }
    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }
    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status)
    }
    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }
    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }
    fn queue_set(&mut self, queue: u16, size: u32, descriptors: PhysAddr, driver: PhysAddr, device: PhysAddr) {
        self.inner.queue_set(queue, size, descriptors, driver, device);
        if let Some(v) = &self.vectors {
            // The device may refuse a vector (reads back NO_VECTOR): counted, and the
            // driver falls back to polling that queue.
            v.regs.queue_select.set(queue);
            v.regs.queue_msix_vector.set(v.entry);
            let counter = if v.regs.queue_msix_vector.get() == v.entry { &v.routed } else { &v.refused };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }
    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }
    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }
    fn read_config_space<V: zerocopy::FromBytes + zerocopy::IntoBytes>(&self, offset: usize) -> Result<V, Error> {
        self.inner.read_config_space(offset)
    }
    fn write_config_space<V: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<(), Error> {
        self.inner.write_config_space(offset, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_drivers::device::common::Feature;
    use virtio_drivers::device::net::VirtIONet;

    /// A device model: keeps FEATURES_OK only if the driver accepted ACCESS_PLATFORM
    /// whenever it is offered (as QEMU does with `iommu_platform=on`).
    #[derive(Debug)]
    struct Fake {
        offered: u64,
        written: u64,
        status: DeviceStatus,
    }

    impl Transport for Fake {
        fn device_type(&self) -> DeviceType {
            DeviceType::Network
        }
        fn read_device_features(&mut self) -> u64 {
            self.offered
        }
        fn write_driver_features(&mut self, f: u64) {
            self.written = f;
        }
        fn max_queue_size(&mut self, _: u16) -> u32 {
            0
        }
        fn notify(&mut self, _: u16) {}
        fn get_status(&self) -> DeviceStatus {
            self.status
        }
        fn set_status(&mut self, s: DeviceStatus) {
            let refuse = self.offered & F_ACCESS_PLATFORM != 0 && self.written & F_ACCESS_PLATFORM == 0;
            self.status = if refuse { s - DeviceStatus::FEATURES_OK } else { s };
        }
        fn set_guest_page_size(&mut self, _: u32) {}
        fn requires_legacy_layout(&self) -> bool {
            false
        }
        fn queue_set(&mut self, _: u16, _: u32, _: PhysAddr, _: PhysAddr, _: PhysAddr) {}
        fn queue_unset(&mut self, _: u16) {}
        fn queue_used(&mut self, _: u16) -> bool {
            false
        }
        fn ack_interrupt(&mut self) -> InterruptStatus {
            InterruptStatus::empty()
        }
        fn read_config_generation(&self) -> u32 {
            0
        }
        fn read_config_space<V: zerocopy::FromBytes + zerocopy::IntoBytes>(&self, _: usize) -> Result<V, Error> {
            Err(Error::ConfigSpaceMissing)
        }
        fn write_config_space<V: zerocopy::IntoBytes + zerocopy::Immutable>(
            &mut self,
            _: usize,
            _: V,
        ) -> Result<(), Error> {
            Err(Error::ConfigSpaceMissing)
        }
    }

    const MAC: u64 = 1 << 29; // RING_EVENT_IDX: a bit `Feature` knows

    fn fake(offered: u64) -> Fake {
        Fake { offered, written: 0, status: DeviceStatus::empty() }
    }

    #[test]
    fn the_crates_own_handshake_is_refused_by_an_iommu_platform_device() {
        let mut f = fake(F_ACCESS_PLATFORM | F_VERSION_1 | MAC);
        f.begin_init(Feature::from_bits_retain(MAC) | Feature::VERSION_1);
        assert!(!f.get_status().contains(DeviceStatus::FEATURES_OK), "0.13 drops bit 33: the device refuses");
    }

    #[test]
    fn access_platform_is_accepted_and_features_ok_read_back() {
        let (mut t, outcome) = PlatformTransport::new(fake(F_ACCESS_PLATFORM | F_VERSION_1 | MAC)).unwrap();
        let got = t.begin_init(Feature::from_bits_retain(MAC));
        assert_eq!(got.bits(), MAC);
        assert_eq!(*outcome.lock(), Ok(MAC | F_ACCESS_PLATFORM));
        assert!(t.get_status().contains(DeviceStatus::FEATURES_OK));
        t.finish_init();
        assert!(t.get_status().contains(DeviceStatus::DRIVER_OK));
    }

    #[test]
    fn a_device_without_access_platform_is_refused() {
        let offered = F_VERSION_1 | MAC;
        assert_eq!(PlatformTransport::new(fake(offered)).unwrap_err(), NegotiationError::Offers(offered));
        assert!(PlatformTransport::new(fake(F_ACCESS_PLATFORM)).is_err(), "no VERSION_1");
    }

    #[test]
    fn features_ok_not_read_back_fails_and_never_sets_driver_ok() {
        let (mut t, outcome) = PlatformTransport::new(fake(F_ACCESS_PLATFORM | F_VERSION_1)).unwrap();
        // The device changes its mind after the probe: no longer offers bit 33.
        t.inner.offered = F_VERSION_1;
        t.inner.written = 0;
        t.begin_init(Feature::VERSION_1);
        assert!(matches!(*outcome.lock(), Err(NegotiationError::FeaturesRefused(_))));
        assert!(t.get_status().contains(DeviceStatus::FAILED));
        t.finish_init();
        assert!(!t.get_status().contains(DeviceStatus::DRIVER_OK));
        // Through the crate's VirtIONet: the queues cannot be set up on the fake anyway.
        assert!(VirtIONet::<crate::hal::PoolHal, _, 4>::new(t, 2048).is_err());
    }
}
