//! The iommu-server protocol: labels, reply status, badges, IOVA rules.
//!
//! A driver holds a send cap (with Grant) to the iommu-server's endpoint, minted with
//! badge `device index + 1` ([`driver_badge`]); the supervisor's cap carries
//! [`SUPERVISOR_BADGE`]. Requests are `Call`s whose label is an [`IommuLabel`] and whose
//! message registers are the arguments; every reply has the label 0 and the message
//! registers `[status, a, b, c]` with `status` an [`IommuStatus`]. Replies that hand
//! over a capability (a DMA frame, an MSI handler) carry it as their one extra cap
//! (the caller sets a receive slot). docs/iommu-server.md describes every request.

use crate::layout::PAGE_SIZE;

crate::abi_enum! {
    /// The label of a request to the iommu-server.
    pub enum IommuLabel: u64 {
        /// `[bytes, rights]` -> `[status, iova, pages, 0]` + the first page's frame cap.
        DmaAlloc = 1,
        /// `[iova, page_index]` -> `[status, iova of that page, 0, 0]` + its frame cap.
        DmaFrame = 2,
        /// `[iova]` -> `[status, pages freed, 0, 0]`; every copy of the frames is revoked.
        DmaFree = 3,
        /// `[index]` -> `[status, vector, address, data]` + the MSI IRQHandler cap.
        MsiAlloc = 4,
        /// `[offset, width]` -> `[status, value, 0, 0]` (command register, MSI capability).
        ConfigRead = 5,
        /// `[offset, width, value]` -> `[status, 0, 0, 0]` (command register, MSI capability).
        ConfigWrite = 6,
        /// Supervisor only: `[device index]`: unassign, drop every mapping, revoke the
        /// pool, then assign the device to a fresh domain.
        DriverReset = 16,
        /// Supervisor only: `[device index]`: like reset, but the device stays unassigned.
        DriverCutoff = 17,
        /// Server -> a device's fault handler: `[requester, iova, reason | is_write << 8,
        /// device index]`.
        DmaFault = 32,
    }
}

crate::abi_enum! {
    /// The first message register of every reply.
    pub enum IommuStatus: u64 {
        /// Done.
        Ok = 0,
        /// Malformed request: unknown label, zero or oversized length, bad rights,
        /// unaligned or out-of-range argument.
        BadRequest = 1,
        /// No IOVA range below the device's DMA mask is free (guards and MSI window
        /// excluded).
        OutOfIova = 2,
        /// The driver's DMA pool is exhausted.
        OutOfMemory = 3,
        /// No buffer at that IOVA, or page index past its end.
        NotFound = 4,
        /// The caller's badge does not allow this request (unknown device, supervisor
        /// request from a driver, config register outside the allowed window).
        Denied = 5,
        /// The kernel refused an operation the server needed (logged by the server).
        KernelError = 6,
        /// The device was cut off by the supervisor.
        CutOff = 7,
    }
}

/// Badge of the supervisor's send cap (no driver badge has bit 32 set).
pub const SUPERVISOR_BADGE: u64 = 1 << 32;

/// Badge of the driver of device `index` (as numbered in the system description).
pub const fn driver_badge(index: u16) -> u64 {
    index as u64 + 1
}

/// The device index a driver badge names, `None` for 0, the supervisor or junk.
pub const fn badge_device(badge: u64) -> Option<u16> {
    if badge == 0 || badge > 0x1_0000 {
        None
    } else {
        Some((badge - 1) as u16)
    }
}

/// The MSI window (a DMA write there is an interrupt request): never an IOVA.
pub const MSI_WINDOW: core::ops::Range<u64> = 0xfee0_0000..0xfef0_0000;
/// The lowest IOVA handed out (IOVA 0 and the first MiB stay unmapped, so a device
/// programmed with a null or small address faults).
pub const IOVA_BASE: u64 = 0x10_0000;
/// Unmapped pages after every buffer (a DMA running past the end faults).
pub const GUARD_PAGES: u64 = 1;
/// Largest buffer one `DmaAlloc` returns, in pages.
pub const MAX_BUFFER_PAGES: u64 = 64;
/// Largest buffer one `DmaAlloc` returns, in bytes.
pub const MAX_BUFFER_BYTES: u64 = MAX_BUFFER_PAGES * PAGE_SIZE;
/// Rights bits a `DmaAlloc` accepts (device may read / device may write): the
/// [`crate::rights::CapRights`] READ and WRITE bits.
pub const DMA_RIGHTS_MASK: u64 =
    crate::rights::CapRights::READ.raw() as u64 | crate::rights::CapRights::WRITE.raw() as u64;
/// PCI config-space offset of the command register, the one register besides the MSI
/// capability a driver may read or write through the server.
pub const CONFIG_COMMAND: u64 = 0x04;
/// Bytes of the MSI capability (64-bit address, per-vector masking) a driver may touch.
pub const MSI_CAPABILITY_BYTES: u64 = 24;

/// Pages a buffer of `bytes` takes, `None` for 0 or more than [`MAX_BUFFER_BYTES`].
pub const fn buffer_pages(bytes: u64) -> Option<u64> {
    if bytes == 0 || bytes > MAX_BUFFER_BYTES {
        None
    } else {
        Some(bytes.div_ceil(PAGE_SIZE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_status_round_trip() {
        for l in IommuLabel::ALL {
            assert_eq!(IommuLabel::try_from(l.raw()), Ok(*l));
        }
        for s in IommuStatus::ALL {
            assert_eq!(IommuStatus::try_from(s.raw()), Ok(*s));
        }
        assert_eq!(IommuLabel::try_from(0), Err(0));
        assert_eq!(IommuStatus::try_from(99), Err(99));
    }

    #[test]
    fn badges_name_devices_and_nothing_else() {
        assert_eq!(badge_device(driver_badge(0)), Some(0));
        assert_eq!(badge_device(driver_badge(0xffff)), Some(0xffff));
        assert_eq!(badge_device(0), None);
        assert_eq!(badge_device(SUPERVISOR_BADGE), None);
    }

    #[test]
    fn buffer_sizes() {
        assert_eq!(buffer_pages(0), None);
        assert_eq!(buffer_pages(1), Some(1));
        assert_eq!(buffer_pages(4096), Some(1));
        assert_eq!(buffer_pages(4097), Some(2));
        assert_eq!(buffer_pages(MAX_BUFFER_BYTES), Some(MAX_BUFFER_PAGES));
        assert_eq!(buffer_pages(MAX_BUFFER_BYTES + 1), None);
        assert!(!MSI_WINDOW.contains(&IOVA_BASE));
    }
}
