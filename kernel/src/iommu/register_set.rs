//! Where a VT-d unit's register blocks lie, checked against its register set.
//!
//! The IOTLB registers sit at ECAP.IRO * 16 and the CAP.NFR + 1 fault-recording
//! registers at CAP.FRO * 16 from the unit's base: offsets the hardware reports, up to
//! 0x3ff0 and 0x3ff0 + 256 * 16 bytes. The kernel makes MMIO references from them, so
//! before it does, each block must lie inside the register set the DMAR's DRHD declares
//! (2^size 4 KiB pages; the pages the kernel keeps from user level), above the
//! architected registers it uses and apart from the other block. A unit that breaks
//! this is refused at boot. Pure arithmetic, tested on the host.

use core::fmt;
use core::mem::size_of;

use super::registers::{
    CapabilityDecode, ExtendedCapabilityDecode, FaultRecordingRegister, IotlbRegisters, VtdRegisters,
};

/// Bytes of one register page.
pub const REGISTER_PAGE: u64 = 4096;
/// Largest DRHD size field (bits 3:0: 2^15 pages = 128 MiB).
pub const MAX_SIZE_FIELD: u8 = 15;

/// Bytes of a unit's register set as its DRHD declares it: 2^size 4 KiB pages (the
/// field's reserved upper bits are ignored; 0, as older tables say, is one page).
pub const fn register_set_bytes(size_field: u8) -> u64 {
    let field = size_field & 0xf;
    REGISTER_PAGE << if field > MAX_SIZE_FIELD { MAX_SIZE_FIELD } else { field }
}

/// A register block of a unit that does not fit its register set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutError {
    /// Which block.
    pub what: &'static str,
    /// Its first byte, from the unit's base.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// The register set's size.
    pub set_bytes: u64,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offsets {:#x}..{:#x} {} (register set of {:#x} bytes from the DRHD size field; architected registers 0..{:#x}): unit refused",
            self.what,
            self.start,
            self.end,
            self.why,
            self.set_bytes,
            ARCHITECTED
        )
    }
}

/// Bytes of the architected register block the kernel uses at the base.
const ARCHITECTED: u64 = size_of::<VtdRegisters>() as u64;

/// Checks that the IOTLB registers (ECAP.IRO) and the fault-recording registers
/// (CAP.FRO, CAP.NFR) lie inside a register set of `set_bytes`, above the architected
/// block and apart from each other; returns how many bytes from the base the kernel
/// reaches (the end of the last block).
pub fn check(cap: &CapabilityDecode, ecap: &ExtendedCapabilityDecode, set_bytes: u64) -> Result<u64, LayoutError> {
    let record = size_of::<FaultRecordingRegister>() as u64;
    let blocks = [
        ("IOTLB registers (ECAP.IRO)", ecap.iotlb_register_offset, size_of::<IotlbRegisters>() as u64),
        (
            "fault-recording registers (CAP.FRO, CAP.NFR)",
            cap.fault_record_offset,
            u64::from(cap.fault_records) * record,
        ),
    ];
    let mut reach = ARCHITECTED;
    for (i, &(what, start, len)) in blocks.iter().enumerate() {
        let end = start.saturating_add(len);
        let error = |why| Err(LayoutError { what, start, end, set_bytes, why });
        if end > set_bytes {
            return error("lie beyond the unit's register set");
        }
        if start < ARCHITECTED {
            return error("overlap the architected registers");
        }
        let (_, other, other_len) = blocks[1 - i];
        if start < other.saturating_add(other_len) && other < end {
            return error("overlap the other register block");
        }
        reach = reach.max(end);
    }
    Ok(reach)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    /// CAP with FRO `fro` (in 16-byte units) and NFR `nfr` (records - 1).
    fn cap(fro: u64, nfr: u64) -> CapabilityDecode {
        CapabilityDecode::from_raw((fro << 24) | (nfr << 40))
    }

    /// ECAP with IRO `iro` (in 16-byte units).
    fn ecap(iro: u64) -> ExtendedCapabilityDecode {
        ExtendedCapabilityDecode::from_raw(iro << 8)
    }

    #[test]
    fn size_field_is_pages_as_a_power_of_two() {
        assert_eq!(register_set_bytes(0), 0x1000);
        assert_eq!(register_set_bytes(1), 0x2000);
        assert_eq!(register_set_bytes(15), 0x1000 << 15);
        assert_eq!(register_set_bytes(0xf1), 0x2000, "reserved bits 7:4 ignored");
    }

    #[test]
    fn qemu_and_typical_layouts_fit_one_page() {
        // QEMU: IOTLB at 0xf0, one fault record at 0x220.
        assert_eq!(check(&cap(0x22, 0), &ecap(0xf), 0x1000), Ok(0x230));
        // A common Intel layout: IOTLB at 0x500, 8 records at 0x400.
        assert_eq!(check(&cap(0x40, 7), &ecap(0x50), 0x1000), Ok(0x510));
    }

    #[test]
    fn blocks_beyond_the_register_set_are_refused() {
        // IRO at its largest (0x3ff0): outside one page, inside four.
        let e = check(&cap(0x22, 0), &ecap(0x3ff), 0x1000).unwrap_err();
        assert_eq!((e.what, e.start, e.end), ("IOTLB registers (ECAP.IRO)", 0x3ff0, 0x4000));
        assert_eq!(check(&cap(0x22, 0), &ecap(0x3ff), register_set_bytes(2)), Ok(0x4000));
        // 256 fault records at 0xf00 run past the page.
        let e = check(&cap(0xf0, 255), &ecap(0xf), 0x1000).unwrap_err();
        assert_eq!((e.start, e.end), (0xf00, 0x1f00));
        assert!(e.what.starts_with("fault-recording"));
        let text = std::format!("{e}");
        assert!(text.contains("0xf00..0x1f00 lie beyond the unit's register set") && text.ends_with("unit refused"));
        // The last record ending exactly at the page end fits.
        assert_eq!(check(&cap(0xff, 0), &ecap(0xf), 0x1000), Ok(0x1000));
    }

    #[test]
    fn blocks_over_the_architected_registers_or_each_other_are_refused() {
        let e = check(&cap(0x22, 0), &ecap(0), 0x1000).unwrap_err();
        assert_eq!(e.why, "overlap the architected registers");
        let e = check(&cap(0x0b, 0), &ecap(0xf), 0x1000).unwrap_err();
        assert_eq!(
            (e.what, e.why),
            ("fault-recording registers (CAP.FRO, CAP.NFR)", "overlap the architected registers")
        );
        let e = check(&cap(0x20, 3), &ecap(0x21), 0x1000).unwrap_err();
        assert_eq!(e.why, "overlap the other register block");
        assert!(check(&cap(0x20, 0), &ecap(0x21), 0x1000).is_ok(), "adjacent blocks do not overlap");
    }
}
