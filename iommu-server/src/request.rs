//! Request decoding: label, badge and registers to a checked Request.

use abi::iommu::{
    badge_device, badge_supervisor, buffer_pages, IommuLabel, IommuStatus, CONFIG_COMMAND, DMA_RIGHTS_MASK,
    MSI_CAPABILITY_BYTES,
};
use abi::layout::PAGE_SIZE;
use abi::rights::CapRights;

/// A decoded, checked request. `device` is the index the caller's badge names (for the
/// supervisor's requests: the index in the first message register).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Allocate `pages` pages the device may access with `rights` (READ and/or WRITE).
    DmaAlloc { device: u16, pages: u64, rights: CapRights },
    /// The frame cap of page `page` of the buffer at `iova`.
    DmaFrame { device: u16, iova: u64, page: u64 },
    /// Free the buffer at `iova`.
    DmaFree { device: u16, iova: u64 },
    /// An MSI for vector `index` of the device.
    MsiAlloc { device: u16, index: u64 },
    /// Read `width` bytes of config space at `offset`.
    ConfigRead { device: u16, offset: u64, width: u64 },
    /// Write `width` bytes of config space at `offset`.
    ConfigWrite { device: u16, offset: u64, width: u64, value: u64 },
    /// Map the frame the driver sent at `iova` (its own choice) with `rights`.
    DmaMapFrame { device: u16, iova: u64, rights: CapRights },
    /// Unmap the frame `DmaMapFrame` placed at `iova`.
    DmaUnmapFrame { device: u16, iova: u64 },
    /// Queue the device's DMA faults for its driver too, signalling the notification
    /// the driver sent.
    FaultWatch { device: u16 },
    /// Pop the oldest DMA fault report queued for the device's driver.
    DriverFaultNext { device: u16 },
    /// Supervisor `handler` (a component index): reset the device's domain.
    Reset { device: u16, handler: u16 },
    /// Supervisor `handler`: cut the device off.
    CutOff { device: u16, handler: u16 },
    /// Supervisor `handler`: pop the oldest queued DMA fault report of its devices.
    FaultNext { handler: u16 },
    /// Init: the driver instance of each device in `mask` (bit i: device i) was torn
    /// down.
    DriverGone { mask: u64 },
}

/// Decodes a request: `label` and `mrs` as received, `badge` of the caller's cap,
/// `devices` the number of devices the server manages. Changes nothing.
pub fn decode(label: u64, badge: u64, mrs: [u64; 4], devices: usize) -> Result<Request, IommuStatus> {
    let label = IommuLabel::try_from(label).map_err(|_| IommuStatus::BadRequest)?;
    let in_range = |d: u64| -> Result<u16, IommuStatus> {
        if d < devices as u64 {
            Ok(d as u16)
        } else {
            Err(IommuStatus::Denied)
        }
    };
    // The supervisor's requests: which devices it may act on (those it handles) is the
    // server's to check; here only that the badge is a supervisor's.
    if label == IommuLabel::FaultNext {
        let handler = badge_supervisor(badge).ok_or(IommuStatus::Denied)?;
        return Ok(Request::FaultNext { handler });
    }
    if label == IommuLabel::DriverGone {
        // Only init holds an unbadged send cap (drivers' and supervisors' are badged).
        if badge != 0 {
            return Err(IommuStatus::Denied);
        }
        let mask = mrs[0];
        if mask == 0 || (devices < 64 && mask >> devices != 0) {
            return Err(IommuStatus::Denied);
        }
        return Ok(Request::DriverGone { mask });
    }
    if matches!(label, IommuLabel::DriverReset | IommuLabel::DriverCutoff) {
        let handler = badge_supervisor(badge).ok_or(IommuStatus::Denied)?;
        let device = in_range(mrs[0])?;
        return Ok(if label == IommuLabel::DriverReset {
            Request::Reset { device, handler }
        } else {
            Request::CutOff { device, handler }
        });
    }
    let device = in_range(u64::from(badge_device(badge).ok_or(IommuStatus::Denied)?.0))?;
    let [a, b, c, _] = mrs;
    Ok(match label {
        IommuLabel::DmaAlloc => {
            let pages = buffer_pages(a).ok_or(IommuStatus::BadRequest)?;
            Request::DmaAlloc { device, pages, rights: dma_rights(b)? }
        }
        IommuLabel::DmaMapFrame => {
            if a % PAGE_SIZE != 0 {
                return Err(IommuStatus::BadRequest);
            }
            Request::DmaMapFrame { device, iova: a, rights: dma_rights(b)? }
        }
        IommuLabel::DmaUnmapFrame => {
            if a % PAGE_SIZE != 0 {
                return Err(IommuStatus::BadRequest);
            }
            Request::DmaUnmapFrame { device, iova: a }
        }
        IommuLabel::FaultWatch => Request::FaultWatch { device },
        IommuLabel::DriverFaultNext => Request::DriverFaultNext { device },
        IommuLabel::DmaFrame => {
            if a % PAGE_SIZE != 0 {
                return Err(IommuStatus::BadRequest);
            }
            Request::DmaFrame { device, iova: a, page: b }
        }
        IommuLabel::DmaFree => {
            if a % PAGE_SIZE != 0 {
                return Err(IommuStatus::BadRequest);
            }
            Request::DmaFree { device, iova: a }
        }
        IommuLabel::MsiAlloc => Request::MsiAlloc { device, index: a },
        IommuLabel::ConfigRead | IommuLabel::ConfigWrite => {
            if !matches!(b, 1 | 2 | 4) || a % b != 0 || a >= 0x1000 {
                return Err(IommuStatus::BadRequest);
            }
            if label == IommuLabel::ConfigRead {
                Request::ConfigRead { device, offset: a, width: b }
            } else {
                Request::ConfigWrite { device, offset: a, width: b, value: c }
            }
        }
        // Only the server sends DmaFault; the supervisor labels were handled above.
        IommuLabel::DmaFault
        | IommuLabel::DriverReset
        | IommuLabel::DriverCutoff
        | IommuLabel::FaultNext
        | IommuLabel::DriverGone => return Err(IommuStatus::BadRequest),
    })
}

/// The device's rights in a request: READ and/or WRITE, nothing else, not none.
fn dma_rights(raw: u64) -> Result<CapRights, IommuStatus> {
    if raw & !DMA_RIGHTS_MASK != 0 || raw == 0 {
        return Err(IommuStatus::BadRequest);
    }
    CapRights::from_raw(raw).ok_or(IommuStatus::BadRequest)
}

/// Whether a request must carry exactly one cap (`DmaMapFrame`: the frame;
/// `FaultWatch`: the notification).
pub fn wants_cap(request: &Request) -> bool {
    matches!(request, Request::DmaMapFrame { .. } | Request::FaultWatch { .. })
}

/// Whether a driver may access `width` bytes at `offset` of its device's config space:
/// the command register, or inside the MSI capability at `msi_cap` (if it has one).
pub fn config_allowed(offset: u64, width: u64, msi_cap: Option<u64>) -> bool {
    let end = offset + width;
    let command = offset >= CONFIG_COMMAND && end <= CONFIG_COMMAND + 2;
    let msi = msi_cap.is_some_and(|cap| offset >= cap && end <= cap + MSI_CAPABILITY_BYTES);
    command || msi
}

/// Whether a driver may read `width` bytes at `offset` besides what [`config_allowed`]
/// grants: vendor/device id, command/status, the capability pointer (word 0x34) and the capability
/// area 0x40..0x100 (virtio finds its register structures there). BARs and the rest of
/// the header stay out of reach; reads change nothing.
pub fn config_read_allowed(offset: u64, width: u64) -> bool {
    let end = offset + width;
    (end <= 0x08) || (offset >= 0x34 && end <= 0x38) || (offset >= 0x40 && end <= 0x100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::iommu::{driver_badge, supervisor_badge, SUPERVISOR_BADGE};

    const RW: u64 = 3;

    #[test]
    fn driver_requests_decode_with_the_badges_device() {
        let b = driver_badge(1, 1);
        assert_eq!(
            decode(IommuLabel::DmaAlloc.raw(), b, [4097, RW, 0, 0], 2),
            Ok(Request::DmaAlloc { device: 1, pages: 2, rights: CapRights::from_raw(RW).unwrap() })
        );
        assert_eq!(
            decode(IommuLabel::DmaFree.raw(), b, [0x10_0000, 0, 0, 0], 2),
            Ok(Request::DmaFree { device: 1, iova: 0x10_0000 })
        );
        assert_eq!(
            decode(IommuLabel::DmaFrame.raw(), b, [0x10_0000, 3, 0, 0], 2),
            Ok(Request::DmaFrame { device: 1, iova: 0x10_0000, page: 3 })
        );
        assert_eq!(
            decode(IommuLabel::ConfigWrite.raw(), b, [4, 2, 0x6, 0], 2),
            Ok(Request::ConfigWrite { device: 1, offset: 4, width: 2, value: 6 })
        );
        assert_eq!(decode(IommuLabel::MsiAlloc.raw(), b, [0; 4], 2), Ok(Request::MsiAlloc { device: 1, index: 0 }));
        let map = IommuLabel::DmaMapFrame.raw();
        let r = decode(map, b, [0, RW, 0, 0], 2);
        assert_eq!(r, Ok(Request::DmaMapFrame { device: 1, iova: 0, rights: CapRights::from_raw(RW).unwrap() }));
        assert!(r.as_ref().is_ok_and(wants_cap));
        assert_eq!(decode(map, b, [0x1001, RW, 0, 0], 2), Err(IommuStatus::BadRequest), "unaligned");
        assert_eq!(decode(map, b, [0, 0, 0, 0], 2), Err(IommuStatus::BadRequest), "no rights");
        assert_eq!(decode(map, b, [0, 0x10, 0, 0], 2), Err(IommuStatus::BadRequest), "rights beyond READ/WRITE");
        assert_eq!(
            decode(IommuLabel::DmaUnmapFrame.raw(), b, [0x2000, 0, 0, 0], 2),
            Ok(Request::DmaUnmapFrame { device: 1, iova: 0x2000 })
        );
        assert_eq!(decode(IommuLabel::FaultWatch.raw(), b, [0; 4], 2), Ok(Request::FaultWatch { device: 1 }));
        assert_eq!(decode(IommuLabel::DriverFaultNext.raw(), b, [0; 4], 2), Ok(Request::DriverFaultNext { device: 1 }));
        let sup = supervisor_badge(1);
        assert_eq!(decode(IommuLabel::DriverFaultNext.raw(), sup, [0; 4], 2), Err(IommuStatus::Denied));
        assert_eq!(decode(map, sup, [0, RW, 0, 0], 2), Err(IommuStatus::Denied));
    }

    #[test]
    fn bad_requests_are_refused() {
        let b = driver_badge(0, 1);
        let alloc = IommuLabel::DmaAlloc.raw();
        assert_eq!(decode(999, b, [0; 4], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(alloc, b, [0, RW, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(alloc, b, [u64::MAX, RW, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(alloc, b, [4096, 0, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(alloc, b, [4096, 4, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(IommuLabel::DmaFree.raw(), b, [0x123, 0, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(IommuLabel::ConfigRead.raw(), b, [4, 3, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(IommuLabel::ConfigRead.raw(), b, [5, 2, 0, 0], 1), Err(IommuStatus::BadRequest));
        assert_eq!(decode(IommuLabel::DmaFault.raw(), b, [0; 4], 1), Err(IommuStatus::BadRequest));
    }

    #[test]
    fn badges_are_checked() {
        let alloc = IommuLabel::DmaAlloc.raw();
        assert_eq!(decode(alloc, 0, [4096, RW, 0, 0], 1), Err(IommuStatus::Denied));
        assert_eq!(decode(alloc, driver_badge(1, 1), [4096, RW, 0, 0], 1), Err(IommuStatus::Denied));
        assert_eq!(decode(alloc, supervisor_badge(2), [4096, RW, 0, 0], 1), Err(IommuStatus::Denied));
        let reset = IommuLabel::DriverReset.raw();
        assert_eq!(decode(reset, driver_badge(0, 1), [0; 4], 1), Err(IommuStatus::Denied));
        assert_eq!(decode(reset, supervisor_badge(2), [0; 4], 1), Ok(Request::Reset { device: 0, handler: 2 }));
        assert_eq!(decode(reset, supervisor_badge(2), [1, 0, 0, 0], 1), Err(IommuStatus::Denied));
        assert_eq!(decode(reset, SUPERVISOR_BADGE | 1 << 40, [0; 4], 1), Err(IommuStatus::Denied), "junk badge");
        assert_eq!(
            decode(IommuLabel::DriverCutoff.raw(), supervisor_badge(2), [0; 4], 1),
            Ok(Request::CutOff { device: 0, handler: 2 })
        );
        let gone = IommuLabel::DriverGone.raw();
        assert_eq!(decode(gone, 0, [0b11, 0, 0, 0], 2), Ok(Request::DriverGone { mask: 0b11 }));
        assert_eq!(decode(gone, 0, [0b100, 0, 0, 0], 2), Err(IommuStatus::Denied), "no device 2");
        assert_eq!(decode(gone, 0, [0; 4], 2), Err(IommuStatus::Denied), "no device");
        assert_eq!(decode(gone, driver_badge(0, 1), [1, 0, 0, 0], 1), Err(IommuStatus::Denied), "init only");
        assert_eq!(decode(gone, supervisor_badge(2), [1, 0, 0, 0], 1), Err(IommuStatus::Denied), "init only");
        let next = IommuLabel::FaultNext.raw();
        assert_eq!(decode(next, supervisor_badge(3), [0; 4], 1), Ok(Request::FaultNext { handler: 3 }));
        assert_eq!(decode(next, driver_badge(0, 1), [0; 4], 1), Err(IommuStatus::Denied));
        // Any generation names the same device; the server compares generations itself.
        assert_eq!(decode(alloc, driver_badge(0, 9), [4096, RW, 0, 0], 1).map(|_| ()), Ok(()));
    }

    #[test]
    fn config_window() {
        assert!(config_allowed(4, 2, None));
        assert!(config_allowed(4, 1, None) && config_allowed(5, 1, None));
        assert!(!config_allowed(4, 4, None));
        assert!(!config_allowed(0x10, 4, None), "BARs stay out of reach");
        assert!(config_allowed(0x40, 4, Some(0x40)) && config_allowed(0x54, 4, Some(0x40)));
        assert!(!config_allowed(0x58, 4, Some(0x40)));
        assert!(!config_allowed(0x40, 4, None));
        assert!(config_read_allowed(0, 4) && config_read_allowed(4, 4) && config_read_allowed(0x34, 4));
        assert!(config_read_allowed(0x40, 4) && config_read_allowed(0xfc, 4));
        assert!(!config_read_allowed(0x10, 4) && !config_read_allowed(0x24, 4), "BARs stay out of reach");
        assert!(!config_read_allowed(0x30, 4) && !config_read_allowed(0x100, 4) && !config_read_allowed(0x08, 4));
    }
}
