//! VT-d invalidation requests: queued descriptors and CCMD/IOTLB register values.

use super::entries::sl;
use super::registers::{ContextCommand, IotlbCommand};

/// Queued-invalidation descriptor layouts (legacy 128-bit descriptors, VT-d 6.5.2).
pub mod qi {
    /// Type field (low bits 3:0): context-cache invalidation.
    pub const TYPE_CONTEXT: u64 = 0x1;
    /// Type: IOTLB invalidation.
    pub const TYPE_IOTLB: u64 = 0x2;
    /// Type: invalidation wait.
    pub const TYPE_WAIT: u64 = 0x5;
    /// Granularity field (low bits 5:4).
    pub const GRANULARITY_SHIFT: u32 = 4;
    /// IOTLB: drain writes / drain reads (low bits 6, 7).
    pub const IOTLB_DRAIN_WRITES: u64 = 1 << 6;
    /// See [`IOTLB_DRAIN_WRITES`].
    pub const IOTLB_DRAIN_READS: u64 = 1 << 7;
    /// Domain id (low bits 31:16).
    pub const DID_SHIFT: u32 = 16;
    /// Context: source id (low bits 47:32).
    pub const SID_SHIFT: u32 = 32;
    /// Context: function mask (low bits 49:48).
    pub const FM_SHIFT: u32 = 48;
    /// IOTLB high word: invalidation hint (bit 6: only leaves changed). Never set here.
    pub const IOTLB_IH: u64 = 1 << 6;
    /// IOTLB high word: address mask (bits 5:0).
    pub const IOTLB_AM: u64 = 0x3f;
    /// Wait: write the status data to the status address (bit 5). Never combined with
    /// the interrupt flag (bit 4): QEMU 7.2 aborts on both.
    pub const WAIT_STATUS_WRITE: u64 = 1 << 5;
    /// Wait: status data (low bits 63:32).
    pub const WAIT_DATA_SHIFT: u32 = 32;
    /// Entries in a queue of QS = 0 (one page of 16-byte descriptors).
    pub const QUEUE_ENTRIES: u64 = 256;
}

/// Invalidation granularities, as encoded in descriptors and registers.
mod granularity {
    pub const GLOBAL: u64 = 1;
    pub const DOMAIN: u64 = 2;
    /// Context: device-selective; IOTLB: page-selective within a domain.
    pub const DEVICE_OR_PAGE: u64 = 3;
}

/// A context-cache invalidation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextInvalidation {
    /// Every context entry.
    Global,
    /// The entries of one PCI function (function mask 0) tagged with `domain`.
    Device {
        /// Domain id of the entry being changed (0 for not-present entries in caching mode).
        domain: u16,
        /// Requester id (bus << 8 | device << 3 | function).
        source: u16,
    },
}

impl ContextInvalidation {
    fn fields(self) -> (u64, u64, u64) {
        match self {
            ContextInvalidation::Global => (granularity::GLOBAL, 0, 0),
            ContextInvalidation::Device { domain, source } => {
                (granularity::DEVICE_OR_PAGE, u64::from(domain), u64::from(source))
            }
        }
    }

    /// The queued-invalidation descriptor.
    pub fn descriptor(self) -> [u64; 2] {
        let (g, did, sid) = self.fields();
        // Function mask 0: exactly this function.
        [qi::TYPE_CONTEXT | (g << qi::GRANULARITY_SHIFT) | (did << qi::DID_SHIFT) | (sid << qi::SID_SHIFT), 0]
    }

    /// The CCMD register value that starts it.
    pub fn register(self) -> u64 {
        let (g, did, sid) = self.fields();
        use ContextCommand::*;
        (ICC::SET + CIRG.val(g) + SID.val(sid) + DID.val(did)).value
    }
}

/// An IOTLB (and paging-structure cache) invalidation request. Reads and writes are
/// always drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbInvalidation {
    /// Every domain.
    Global,
    /// Everything tagged with one domain id.
    Domain(u16),
    /// The 2^`mask` pages from `iova` (aligned to that size) of one domain, with the
    /// paging-structure entries above them (invalidation hint clear).
    Pages {
        /// Domain id.
        domain: u16,
        /// First IOVA, aligned to 4 KiB << mask.
        iova: u64,
        /// Address mask (AM): log2 of the page count.
        mask: u8,
    },
}

impl IotlbInvalidation {
    /// The cheapest request covering IOVAs `start..end` of `domain` on a unit whose
    /// CAP.PSI/MAMV allow page-selective requests up to mask `max_mask` (`None`: no PSI):
    /// one page-selective request over the smallest aligned power-of-two block holding
    /// the range, or domain-selective when that block's mask exceeds MAMV.
    #[inline(always)]
    pub fn for_range(domain: u16, start: u64, end: u64, max_mask: Option<u8>) -> Self {
        // One aligned page (every UnmapIO of a 4 KiB frame) is its own block.
        let (iova, mask) =
            if end == start + 4096 && start & 0xfff == 0 { (start, 0) } else { covering_block(start, end) };
        match max_mask {
            Some(max) if mask <= max => IotlbInvalidation::Pages { domain, iova, mask },
            _ => IotlbInvalidation::Domain(domain),
        }
    }

    fn fields(self) -> (u64, u64, u64, u64) {
        match self {
            IotlbInvalidation::Global => (granularity::GLOBAL, 0, 0, 0),
            IotlbInvalidation::Domain(d) => (granularity::DOMAIN, u64::from(d), 0, 0),
            IotlbInvalidation::Pages { domain, iova, mask } => {
                (granularity::DEVICE_OR_PAGE, u64::from(domain), iova & sl::ADDR, u64::from(mask) & qi::IOTLB_AM)
            }
        }
    }

    /// The queued-invalidation descriptor.
    pub fn descriptor(self) -> [u64; 2] {
        let (g, did, addr, am) = self.fields();
        let low = qi::TYPE_IOTLB
            | (g << qi::GRANULARITY_SHIFT)
            | qi::IOTLB_DRAIN_WRITES
            | qi::IOTLB_DRAIN_READS
            | (did << qi::DID_SHIFT);
        [low, addr | am]
    }

    /// The (IVA, IOTLB) register values: IVA first (page-selective only), then the IOTLB
    /// register write starts the invalidation.
    pub fn registers(self) -> (u64, u64) {
        let (g, did, addr, am) = self.fields();
        let iotlb = {
            use IotlbCommand::*;
            (IVT::SET + IIRG.val(g) + DR::SET + DW::SET + DID.val(did)).value
        };
        (addr | am, iotlb)
    }
}

/// The smallest naturally aligned block of 2^mask 4 KiB pages holding `start..end`
/// (end exclusive, non-empty): (first IOVA, mask).
pub fn covering_block(start: u64, end: u64) -> (u64, u8) {
    let last = end.max(start + 1) - 1;
    let differing = 64 - ((start >> 12) ^ (last >> 12)).leading_zeros();
    let mask = differing as u8;
    let size_mask = (1u64 << (12 + u32::from(mask)).min(63)) - 1;
    (start & !size_mask, mask)
}

/// An invalidation-wait descriptor writing `data` to `status` when everything before it
/// has completed.
pub const fn wait_descriptor(data: u32, status: u64) -> [u64; 2] {
    [qi::TYPE_WAIT | qi::WAIT_STATUS_WRITE | ((data as u64) << qi::WAIT_DATA_SHIFT), status & !3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_invalidation_encodings() {
        let device = ContextInvalidation::Device { domain: 5, source: 0x0018 };
        // Type 1, granularity 3 (device), DID 5 in 31:16, SID 0x18 in 47:32, FM 0.
        assert_eq!(device.descriptor(), [0x0000_0018_0005_0031, 0]);
        // ICC, CIRG 3, SID in 31:16, DID in 15:0.
        assert_eq!(device.register(), 0xe000_0000_0018_0005);
        assert_eq!(ContextInvalidation::Global.descriptor(), [0x11, 0]);
        assert_eq!(ContextInvalidation::Global.register(), 0xa000_0000_0000_0000);
    }

    #[test]
    fn iotlb_invalidation_encodings() {
        // Type 2, drain reads and writes; granularity 1 global, 2 domain, 3 page.
        assert_eq!(IotlbInvalidation::Global.descriptor(), [0xd2, 0]);
        assert_eq!(IotlbInvalidation::Domain(7).descriptor(), [0x0007_00e2, 0]);
        let page = IotlbInvalidation::Pages { domain: 7, iova: 0x1000_2000, mask: 0 };
        assert_eq!(page.descriptor(), [0x0007_00f2, 0x1000_2000], "IH clear, AM 0");
        let big = IotlbInvalidation::Pages { domain: 0x1234, iova: 0x20_0000, mask: 9 };
        assert_eq!(big.descriptor(), [0x1234_00f2, 0x20_0009]);
        // IVT, IIRG in 61:60, DR/DW 49:48, DID 47:32; IVA holds address | AM.
        assert_eq!(IotlbInvalidation::Global.registers(), (0, 0x9003_0000_0000_0000));
        assert_eq!(IotlbInvalidation::Domain(7).registers(), (0, 0xa003_0007_0000_0000));
        assert_eq!(big.registers(), (0x20_0009, 0xb003_1234_0000_0000));
    }

    #[test]
    fn covering_blocks_and_choice() {
        assert_eq!(covering_block(0x1000_2000, 0x1000_3000), (0x1000_2000, 0));
        assert_eq!(covering_block(0x1000_0000, 0x1004_0000), (0x1000_0000, 6), "64 aligned pages");
        assert_eq!(covering_block(0x1000_f000, 0x1001_1000), (0x1000_0000, 5), "2 pages across a 64 KiB line");
        assert_eq!(covering_block(0x20_0000, 0x40_0000), (0x20_0000, 9), "a 2 MiB frame");
        assert_eq!(covering_block(0x4000_0000, 0x4000_1000), (0x4000_0000, 0));
        assert_eq!(
            IotlbInvalidation::for_range(3, 0x20_0000, 0x40_0000, Some(18)),
            IotlbInvalidation::Pages { domain: 3, iova: 0x20_0000, mask: 9 }
        );
        assert_eq!(IotlbInvalidation::for_range(3, 0x20_0000, 0x40_0000, Some(8)), IotlbInvalidation::Domain(3));
        assert_eq!(IotlbInvalidation::for_range(3, 0x1000, 0x2000, None), IotlbInvalidation::Domain(3), "no PSI");
        // Two pages far apart need a block beyond MAMV 18 (1 GiB): domain-selective.
        assert_eq!(IotlbInvalidation::for_range(3, 0, 0x8000_0000, Some(18)), IotlbInvalidation::Domain(3));
    }

    #[test]
    fn wait_descriptor_encoding() {
        assert_eq!(wait_descriptor(3, 0x1234), [0x0000_0003_0000_0025, 0x1234]);
        assert_eq!(wait_descriptor(u32::MAX, 0x10_0007)[1], 0x10_0004, "status address is dword aligned");
    }
}
