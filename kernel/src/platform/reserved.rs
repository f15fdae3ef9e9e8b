//! Physical ranges that never become device untyped, with their reasons.
//!
//! Physical ranges that never become device untyped, each with the reason (logged at
//! boot): the MSI window and QEMU's HPET page always, and whatever the firmware tables
//! describe (LAPIC and IOAPICs from the MADT, the HPET table's block, VT-d register
//! pages from the DMAR, PCI ECAM from the MCFG). A device there can write memory or
//! raise interrupts outside the IOMMU's control, or the kernel owns its registers.
//! Register blocks the firmware places in RAM are refused: the kernel's MMIO writes
//! would land in memory handed out as untyped. Pure logic, tested on the host.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use abi::reserved::{reserved_port_overlap, MSI_WINDOW, QEMU_HPET_PAGE};

use crate::boot::memory::{Range, RangeSet, PAGE};

/// Most excluded ranges recorded.
pub const MAX_EXCLUSIONS: usize = 96;

/// One excluded range and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The range, whole pages.
    pub range: Range,
    /// Why it is excluded.
    pub reason: &'static str,
}

/// A register block the firmware described cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExclusionError {
    /// It overlaps RAM: the kernel's (or the device's) register writes would land in
    /// memory that is handed out as untyped.
    InRam {
        /// What it is.
        what: &'static str,
        /// Where.
        range: Range,
    },
    /// The kernel must reach it but it lies outside the direct map.
    OutsideDirectMap {
        /// What it is.
        what: &'static str,
        /// Where.
        range: Range,
    },
    /// More than [`MAX_EXCLUSIONS`] ranges.
    Full,
}

impl fmt::Display for ExclusionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExclusionError::InRam { what, range } => {
                write!(f, "{what} at {range} overlaps RAM in the memory map; refusing to boot")
            }
            ExclusionError::OutsideDirectMap { what, range } => {
                write!(f, "{what} at {range} lies outside the kernel's direct map")
            }
            ExclusionError::Full => write!(f, "more than {MAX_EXCLUSIONS} reserved platform ranges"),
        }
    }
}

/// The excluded ranges, in the order found.
#[derive(Clone, Debug)]
pub struct Exclusions {
    items: [Exclusion; MAX_EXCLUSIONS],
    len: usize,
}

impl Default for Exclusions {
    fn default() -> Self {
        Self::new()
    }
}

impl Exclusions {
    /// The ranges excluded on every platform: the whole MSI window and QEMU's fixed
    /// HPET page.
    pub fn new() -> Self {
        let none = Exclusion { range: Range::default(), reason: "" };
        let mut set = Exclusions { items: [none; MAX_EXCLUSIONS], len: 2 };
        set.items[0] = Exclusion {
            range: Range { start: MSI_WINDOW.0, end: MSI_WINDOW.1 },
            reason: "MSI window: a store here is an interrupt message, not remapped",
        };
        set.items[1] = Exclusion {
            range: Range::new(QEMU_HPET_PAGE, PAGE),
            reason: "HPET (QEMU's fixed page): its FSB interrupt write bypasses VT-d",
        };
        set
    }

    /// Records a register block the firmware describes. `what` names it in errors;
    /// `direct_map` is the direct map's limit if the kernel itself must reach it.
    /// Refused if any byte of it is RAM or (when the kernel reaches it) it lies beyond
    /// the direct map.
    pub fn add_mmio(
        &mut self,
        ram: &RangeSet,
        direct_map: Option<u64>,
        what: &'static str,
        range: Range,
        reason: &'static str,
    ) -> Result<(), ExclusionError> {
        let range = range.page_outer();
        if ram.overlaps(range) {
            return Err(ExclusionError::InRam { what, range });
        }
        if direct_map.is_some_and(|limit| range.end > limit) {
            return Err(ExclusionError::OutsideDirectMap { what, range });
        }
        if self.items[..self.len].iter().any(|e| e.range == range) {
            return Ok(());
        }
        if self.len == MAX_EXCLUSIONS {
            return Err(ExclusionError::Full);
        }
        self.items[self.len] = Exclusion { range, reason };
        self.len += 1;
        Ok(())
    }

    /// The ranges.
    pub fn as_slice(&self) -> &[Exclusion] {
        &self.items[..self.len]
    }

    /// Checks every range against RAM (the fixed ones too: a memory map that calls the
    /// MSI window RAM must not turn it into RAM untyped).
    pub fn check_ram(&self, ram: &RangeSet) -> Result<(), ExclusionError> {
        match self.as_slice().iter().find(|e| ram.overlaps(e.range)) {
            Some(e) => Err(ExclusionError::InRam { what: e.reason, range: e.range }),
            None => Ok(()),
        }
    }

    /// The first excluded range overlapping `r`.
    pub fn overlapping(&self, r: Range) -> Option<&Exclusion> {
        self.as_slice().iter().find(|e| e.range.start < r.end && r.start < e.range.end)
    }
}

/// The FADT's SMI command port (written once at boot; 0 = none or already reserved).
static FIRMWARE_SMI_PORT: AtomicU32 = AtomicU32::new(0);

/// Reserves the SMI command port the FADT names (a write there runs firmware SMM code,
/// which can reach all memory), in addition to `abi::reserved::RESERVED_IO_PORTS`.
/// Returns whether it was outside the fixed list.
pub fn reserve_smi_port(port: u16) -> bool {
    if port == 0 || reserved_port_overlap(port, port).is_some() {
        return false;
    }
    FIRMWARE_SMI_PORT.store(u32::from(port), Ordering::Relaxed);
    true
}

/// Why `first..=last` must not be issued, if it touches a reserved port.
pub fn reserved_port_reason(first: u16, last: u16) -> Option<&'static str> {
    if let Some(r) = reserved_port_overlap(first, last) {
        return Some(r.reason);
    }
    let smi = FIRMWARE_SMI_PORT.load(Ordering::Relaxed);
    (smi != 0 && u32::from(first) <= smi && smi <= u32::from(last)).then_some("the FADT's SMI command port")
}

/// An `IOPortControl::Issue` range from user arguments: `first..=last` as ports, or the
/// argument (0 or 1) that is out of range. Ports are 16 bits; `first > last` blames `last`.
pub fn issue_port_range(first: u64, last: u64) -> Result<(u16, u16), u64> {
    let first = u16::try_from(first).map_err(|_| 0u64)?;
    let last = u16::try_from(last).map_err(|_| 1u64)?;
    if first > last {
        return Err(1);
    }
    Ok((first, last))
}

/// The port a `width`-byte access at `port` (a user argument) touches, if the whole
/// access lies in an IOPort cap's `first..=last`. Checked arithmetic: a port near 2^64
/// must not wrap `port + width - 1` into the range, and ports above 0xffff do not exist.
pub fn port_access(first: u16, last: u16, port: u64, width: u64) -> Option<u16> {
    let port16 = u16::try_from(port).ok()?;
    let end = port.checked_add(width.checked_sub(1)?)?;
    (port16 >= first && end <= u64::from(last)).then_some(port16)
}

/// Why the ACPI HPET table is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpetError {
    /// Shorter than its fixed part (56 bytes).
    Truncated(usize),
    /// The block is not in memory space (address space id).
    NotMemory(u8),
}

impl fmt::Display for HpetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpetError::Truncated(n) => write!(f, "ACPI HPET table is {n} bytes, at least 56 expected"),
            HpetError::NotMemory(id) => write!(f, "ACPI HPET block is in address space {id}, not memory"),
        }
    }
}

/// Bytes of the HPET table's fixed part.
const HPET_TABLE_LEN: usize = 56;

/// The HPET register block's base from the ACPI HPET table (`table` is the whole table,
/// header included): the Generic Address Structure at offset 40 (address space id,
/// then the 64-bit address at offset 44).
pub fn parse_hpet(table: &[u8]) -> Result<u64, HpetError> {
    if table.len() < HPET_TABLE_LEN {
        return Err(HpetError::Truncated(table.len()));
    }
    if table[40] != 0 {
        return Err(HpetError::NotMemory(table[40]));
    }
    let mut address = [0u8; 8];
    address.copy_from_slice(&table[44..52]);
    Ok(u64::from_le_bytes(address))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    fn ram() -> RangeSet {
        let mut ram = RangeSet::new();
        ram.add(Range { start: 0x10_0000, end: 0x8000_0000 }).unwrap();
        ram.add(Range { start: 1 << 32, end: 0x1_8000_0000 }).unwrap();
        ram
    }

    #[test]
    fn always_excludes_msi_window_and_qemu_hpet() {
        let set = Exclusions::new();
        assert!(set.overlapping(Range::new(0xfee0_1000, PAGE)).is_some());
        assert!(set.overlapping(Range::new(0xfeef_f000, PAGE)).is_some());
        assert!(set.overlapping(Range::new(0xfed0_0000, PAGE)).is_some());
        assert!(set.overlapping(Range::new(0xfef0_0000, PAGE)).is_none());
        assert!(set.overlapping(Range::new(0xfed0_1000, PAGE)).is_none());
    }

    #[test]
    fn mmio_in_ram_or_beyond_the_direct_map_is_refused() {
        let mut set = Exclusions::new();
        let lapic = Range::new(0x7000_0000, PAGE);
        assert_eq!(
            set.add_mmio(&ram(), Some(1 << 33), "local APIC", lapic, "x"),
            Err(ExclusionError::InRam { what: "local APIC", range: lapic })
        );
        // One byte into RAM is enough; the range is widened to whole pages first.
        let ioapic = Range::new(0xfff_f000 + 0xffc, 0x20);
        assert!(matches!(set.add_mmio(&ram(), None, "IOAPIC", ioapic, "x"), Err(ExclusionError::InRam { .. })));
        let high = Range::new(0x2_0000_0000, PAGE);
        assert_eq!(
            set.add_mmio(&ram(), Some(1 << 32), "IOAPIC", high, "x"),
            Err(ExclusionError::OutsideDirectMap { what: "IOAPIC", range: high })
        );
        assert_eq!(set.as_slice().len(), 2, "nothing refused was recorded");
        set.add_mmio(&ram(), Some(1 << 32), "IOAPIC", Range::new(0xfec0_0000, 0x20), "IOAPIC").unwrap();
        set.add_mmio(&ram(), None, "HPET", high, "HPET").unwrap();
        set.add_mmio(&ram(), None, "HPET", high, "HPET").unwrap();
        assert_eq!(set.as_slice().len(), 4, "duplicates recorded once");
        assert_eq!(set.as_slice()[2].range, Range::new(0xfec0_0000, PAGE));
    }

    #[test]
    fn mmio_near_the_top_of_the_address_space_is_refused_not_wrapped() {
        let mut set = Exclusions::new();
        let top = Range { start: u64::MAX - 0x10, end: u64::MAX };
        assert!(set.add_mmio(&ram(), Some(1 << 40), "local APIC", top, "x").is_err());
    }

    #[test]
    fn full_set_reports_error() {
        let mut set = Exclusions::new();
        for i in 2..MAX_EXCLUSIONS as u64 {
            set.add_mmio(&ram(), None, "x", Range::new(0xc000_0000 + i * PAGE, PAGE), "x").unwrap();
        }
        assert_eq!(set.add_mmio(&ram(), None, "x", Range::new(0xd000_0000, PAGE), "x"), Err(ExclusionError::Full));
    }

    #[test]
    fn fixed_ranges_in_ram_are_refused() {
        let mut ram = ram();
        assert_eq!(Exclusions::new().check_ram(&ram), Ok(()));
        ram.add(Range::new(0xfee8_0000, PAGE)).unwrap();
        assert!(matches!(Exclusions::new().check_ram(&ram), Err(ExclusionError::InRam { .. })));
    }

    #[test]
    fn smi_port_from_the_fadt_is_reserved() {
        assert!(!reserve_smi_port(0xb2), "already in the fixed list");
        assert_eq!(
            reserved_port_reason(0xb2, 0xb2),
            abi::reserved::reserved_port_overlap(0xb2, 0xb2).map(|r| r.reason)
        );
        assert_eq!(reserved_port_reason(0x700, 0x7ff), None);
        assert!(reserve_smi_port(0x7b2));
        assert_eq!(reserved_port_reason(0x700, 0x7ff), Some("the FADT's SMI command port"));
        assert_eq!(reserved_port_reason(0x7b3, 0x7ff), None);
        assert!(reserved_port_reason(0x510, 0x510).is_some());
    }

    #[test]
    fn hpet_table_is_parsed() {
        let mut table = [0u8; 56];
        table[44..52].copy_from_slice(&0xfed0_0000u64.to_le_bytes());
        assert_eq!(parse_hpet(&table), Ok(0xfed0_0000));
        table[40] = 1;
        assert_eq!(parse_hpet(&table), Err(HpetError::NotMemory(1)));
        assert_eq!(parse_hpet(&table[..40]), Err(HpetError::Truncated(40)));
    }

    #[test]
    fn port_access_never_wraps() {
        // The cap 0x3f8..=0x3ff: every width inside, nothing straddling or outside.
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3f8, 1), Some(0x3f8));
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3fc, 4), Some(0x3fc));
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3fe, 2), Some(0x3fe));
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3fe, 4), None);
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3f7, 1), None);
        // port + width - 1 would wrap to 0 or 1 (<= 0x3ff) without checked arithmetic.
        assert_eq!(port_access(0x3f8, 0x3ff, u64::MAX, 2), None);
        assert_eq!(port_access(0x3f8, 0x3ff, u64::MAX - 2, 4), None);
        assert_eq!(port_access(0x3f8, 0x3ff, u64::MAX, 1), None);
        // Above 0xffff: its low 16 bits would land inside the cap.
        assert_eq!(port_access(0x3f8, 0x3ff, 0x1_03f8, 1), None);
        // A width of 0 names no port.
        assert_eq!(port_access(0x3f8, 0x3ff, 0x3f8, 0), None);
        // The top of the port space.
        assert_eq!(port_access(0xfff0, 0xffff, 0xfffe, 2), Some(0xfffe));
        assert_eq!(port_access(0xfff0, 0xffff, 0xffff, 2), None);
    }

    #[test]
    fn issue_port_range_checks_both_ends() {
        assert_eq!(issue_port_range(0x3f8, 0x3ff), Ok((0x3f8, 0x3ff)));
        assert_eq!(issue_port_range(0xffff, 0xffff), Ok((0xffff, 0xffff)));
        assert_eq!(issue_port_range(0x1_0000, 0x1_0000), Err(0));
        assert_eq!(issue_port_range(u64::MAX, 0x3ff), Err(0));
        assert_eq!(issue_port_range(0x3f8, 0x1_03ff), Err(1));
        assert_eq!(issue_port_range(0x3ff, 0x3f8), Err(1));
    }
}
