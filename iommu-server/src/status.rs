//! The iommu-server's status text: each DMA domain, its pool and what is allocated.
//!
//! When the description gives the server an `iommu-status` region (writable for it, a
//! user partition maps it read-only: `systems/appliance.toml`), the server writes this
//! text into it after every request that changed a domain. It is a table in the
//! status-page markup of `capring::status` (`# caption`, `! header | ...`, rows of
//! cells separated by ` | `). It names no IOVA and no frame: a partition reading it
//! learns sizes and counts only.

use alloc::string::String;
use core::fmt::Write;

use crate::domain::Domain;

/// What the server knows of one device besides its [`Domain`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceView<'a> {
    /// The device's name in the description.
    pub name: &'a str,
    /// Address bits the device can put on the bus.
    pub dma_mask_bits: u8,
    /// Bytes of its driver's DMA pool.
    pub pool_bytes: u64,
    /// DMA faults the server received from its IOSpace.
    pub faults: u64,
}

/// The status text of `domains` (index `i` described by `views[i]`).
pub fn render(views: &[DeviceView<'_>], domains: &[Domain]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# DMA domains (one IOSpace per device, built by the iommu-server)");
    let _ = writeln!(
        text,
        "! device | DMA mask | pool | allocated | buffers | spare frames | driver generation | DMA faults | state"
    );
    for (view, domain) in views.iter().zip(domains) {
        let pages: usize = domain.buffers().iter().map(|b| b.frames.len()).sum();
        let state = if domain.cut_off {
            "cut off (unassigned)"
        } else if domain.generation == 0 {
            "assigned, no driver request yet"
        } else {
            "assigned"
        };
        let _ = writeln!(
            text,
            "{} | {} bits | {} KiB | {} KiB ({} pages) | {} | {} | {} | {} | {state}",
            view.name,
            view.dma_mask_bits,
            view.pool_bytes / 1024,
            pages * 4,
            pages,
            domain.buffers().len(),
            domain.free_frames().len(),
            domain.generation,
            view.faults,
        );
    }
    text
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::domain::DmaOps;
    use abi::rights::CapRights;

    struct Ops(u64);
    impl DmaOps for Ops {
        fn new_frame(&mut self, _: u16) -> Option<u64> {
            self.0 += 1;
            Some(self.0)
        }
        fn map_io(&mut self, _: u16, _: u64, _: u64, _: CapRights) -> Result<(), u64> {
            Ok(())
        }
        fn unmap_io(&mut self, _: u64) -> Result<(), u64> {
            Ok(())
        }
        fn revoke(&mut self, _: u64) -> Result<(), u64> {
            Ok(())
        }
    }

    #[test]
    fn each_domain_is_a_row_with_its_pool_and_allocation() {
        let mut nic = Domain::new(0, 1 << 39);
        nic.generation = 2;
        nic.alloc(&mut Ops(0), 3, CapRights::ALL).expect("a buffer");
        let mut rogue = Domain::new(1, 1 << 28);
        rogue.cut_off = true;
        let views = [
            DeviceView { name: "nic", dma_mask_bits: 64, pool_bytes: 128 << 10, faults: 0 },
            DeviceView { name: "rogue", dma_mask_bits: 28, pool_bytes: 64 << 10, faults: 1 },
        ];
        let text = render(&views, &[nic, rogue]);
        let lines: std::vec::Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# DMA domains"), "{text}");
        assert!(lines[1].starts_with("! device | DMA mask | pool | allocated"), "{text}");
        assert_eq!(lines[2], "nic | 64 bits | 128 KiB | 12 KiB (3 pages) | 1 | 0 | 2 | 0 | assigned");
        assert_eq!(lines[3], "rogue | 28 bits | 64 KiB | 0 KiB (0 pages) | 0 | 0 | 0 | 1 | cut off (unassigned)");
        assert!(!text.contains("0x"), "no IOVA is published: {text}");
    }
}
