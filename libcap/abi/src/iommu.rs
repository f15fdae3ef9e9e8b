//! The iommu-server protocol: labels, reply status, badges, IOVA rules.
//!
//! A driver holds a send cap (with Grant) to the iommu-server's endpoint, minted with
//! badge `device index + 1` in bits 0..16 and the driver instance's 32-bit generation
//! in bits 16..48 ([`driver_badge`]); a management component's supervisor cap carries
//! [`SUPERVISOR_BADGE`] and its component index ([`supervisor_badge`]), and the server
//! serves it only for the devices it handles. The server keeps each domain's records
//! per generation: the first request of a newer instance drops the old instance's
//! records (its frames died with its budget), so nothing a restarted driver sends can
//! name a dead cap. Requests are `Call`s whose label is an [`IommuLabel`] and whose
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
        /// `[iova, rights]` + a 4 KiB Frame cap of the driver's own (sent with Grant) ->
        /// `[status, 0, 0, 0]`: the server maps its copy of the frame at `iova` (any
        /// page-aligned IOVA below the device's limit, 0 included, outside the MSI window
        /// and every range already in use) with `rights` (READ/WRITE: what the device
        /// may do; never more than the cap grants). A VMM mirrors guest memory this
        /// way (IOVA = guest-physical). At most [`MAX_CLIENT_FRAMES`] per device.
        DmaMapFrame = 7,
        /// `[iova]` -> `[status, 0, 0, 0]`: unmaps a frame `DmaMapFrame` mapped (the
        /// kernel completes the invalidation first) and drops the server's copy.
        DmaUnmapFrame = 8,
        /// `[]` + a Notification cap (Write) -> `[status, 0, 0, 0]`: from now on the
        /// server also queues every DMA fault of the caller's device for the driver and
        /// signals this notification (it replaces an earlier one). Management still gets
        /// every report; the driver fetches its copies with `DriverFaultNext`.
        FaultWatch = 9,
        /// `[]` -> as `FaultNext`, from the caller's own device's driver queue (after
        /// `FaultWatch`; `NotFound` when empty).
        DriverFaultNext = 10,
        /// Supervisor only: `[device index]`: unassign, drop every mapping, revoke the
        /// pool, then assign the device to a fresh domain.
        DriverReset = 16,
        /// Supervisor only: `[device index]`: like reset, but the device stays unassigned.
        DriverCutoff = 17,
        /// Supervisor only: `[]` -> `[status, requester | reason << 16 | is_write << 24 |
        /// device << 32, iova, lost]`: pops the oldest queued DMA fault report
        /// ([`FaultReport`]); `NotFound` when none is queued. `lost` counts reports
        /// dropped because the queue was full since the previous fetch.
        FaultNext = 18,
        /// Init only (its unbadged cap): `[device mask]` (bit i: device i): the driver
        /// instance of each of these devices was torn down (one message: init NBSends). The frames it placed (`DmaMapFrame`) and its fault watch are
        /// dropped (unmapped, invalidation completed) and their IOVAs quarantined: a
        /// placed frame a peer lent the driver is not revoked with the driver's budget,
        /// and the device must not reach it once its driver is gone.
        DriverGone = 19,
        /// Server -> a device's fault handler when no doorbell exists (lossy fallback):
        /// `[requester, iova, reason | is_write << 8, device index]`. With a doorbell the
        /// handler fetches reports with `FaultNext` instead.
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
        /// `DmaMapFrame`: the IOVA is in use (a buffer, its guard page, a frame mapped
        /// before, or quarantined after a restart) or inside the MSI window.
        IovaInUse = 8,
    }
}

/// Badge bit of a supervisor's send cap (above every driver badge).
pub const SUPERVISOR_BADGE: u64 = 1 << 63;

/// Badge of the supervisor cap init gives component `index` (a management component):
/// the server lets it fetch the faults of, reset and cut off only the devices whose
/// fault handler the description makes it.
pub const fn supervisor_badge(index: u16) -> u64 {
    SUPERVISOR_BADGE | index as u64
}

/// The component index a supervisor badge names; `None` for a driver badge or junk.
pub const fn badge_supervisor(badge: u64) -> Option<u16> {
    if badge & SUPERVISOR_BADGE != 0 && badge & !SUPERVISOR_BADGE <= 0xffff {
        Some(badge as u16)
    } else {
        None
    }
}

/// Badge of generation `generation` of the driver of device `index` (as numbered in
/// the system description; `index` < 0xffff). The whole 32-bit generation is in the
/// badge (bits 16..48), so no later instance can pass for an earlier one.
pub const fn driver_badge(index: u16, generation: u32) -> u64 {
    (index as u64 + 1) | ((generation as u64) << 16)
}

/// The device index and driver generation a driver badge names; `None` for 0, the
/// supervisor or junk.
pub const fn badge_device(badge: u64) -> Option<(u16, u32)> {
    let index = badge & 0xffff;
    if index == 0 || badge >> 48 != 0 {
        None
    } else {
        Some(((index - 1) as u16, (badge >> 16) as u32))
    }
}

/// Reports the server queues for the fault handler (`FaultNext`); beyond this the
/// oldest stay and new ones are counted lost.
pub const FAULT_REPORT_QUEUE: usize = 128;

/// One DMA fault as the server reports it to the device's fault handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultReport {
    /// Device index (description order).
    pub device: u16,
    /// PCI requester id (bus << 8 | device << 3 | function).
    pub requester: u16,
    /// VT-d fault reason.
    pub reason: u8,
    /// Whether the DMA was a write.
    pub is_write: bool,
    /// The faulting IOVA.
    pub iova: u64,
}

impl FaultReport {
    /// The reply words after the status: `[packed, iova, lost]`.
    pub const fn encode(&self, lost: u64) -> [u64; 3] {
        let packed = self.requester as u64
            | (self.reason as u64) << 16
            | (self.is_write as u64) << 24
            | (self.device as u64) << 32;
        [packed, self.iova, lost]
    }

    /// The report in a `FaultNext` reply's words 1 and 2.
    pub const fn decode(packed: u64, iova: u64) -> Self {
        FaultReport {
            device: (packed >> 32) as u16,
            requester: packed as u16,
            reason: (packed >> 16) as u8,
            is_write: (packed >> 24) & 1 != 0,
            iova,
        }
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
/// Frames one device's driver may have mapped with `DmaMapFrame` at a time (each
/// takes a slot of the server's CNode).
pub const MAX_CLIENT_FRAMES: usize = 256;
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
    fn badges_name_devices_generations_and_nothing_else() {
        assert_eq!(badge_device(driver_badge(0, 1)), Some((0, 1)));
        assert_eq!(badge_device(driver_badge(0xfffe, 7)), Some((0xfffe, 7)));
        assert_eq!(badge_device(driver_badge(3, 0x1_0002)), Some((3, 0x1_0002)), "no 16-bit wrap");
        assert_eq!(badge_device(driver_badge(3, u32::MAX)), Some((3, u32::MAX)));
        assert_eq!(badge_device(0), None);
        assert_eq!(badge_device(5 << 16), None, "a generation without a device");
        assert_eq!(badge_device(SUPERVISOR_BADGE), None);
        assert_eq!(badge_device(supervisor_badge(1)), None);
        assert_eq!(badge_supervisor(supervisor_badge(7)), Some(7));
        assert_eq!(badge_supervisor(driver_badge(7, 1)), None);
        assert_eq!(badge_supervisor(SUPERVISOR_BADGE | 1 << 20), None, "junk above the index");
    }

    #[test]
    fn fault_reports_round_trip() {
        let r = FaultReport { device: 3, requester: 0x0018, reason: 0x5, is_write: true, iova: 0x1234_5000 };
        let [packed, iova, lost] = r.encode(9);
        assert_eq!((FaultReport::decode(packed, iova), lost), (r, 9));
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
