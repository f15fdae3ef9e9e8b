//! VT-d interrupt-remapping layouts (IRTE, IRTA, remappable MSI/IOAPIC).
//!
//! VT-d interrupt-remapping layouts, declared once: the interrupt-remapping table entry
//! (IRTE), the IRTA register value, the remappable-format MSI address and I/O APIC
//! redirection entry that name an IRTE by handle, and the interrupt-entry-cache
//! invalidation descriptor. Pure encoders, tested on the host.

use static_assertions::const_assert_eq;

/// Entries in the kernel's interrupt-remapping table: one 4 KiB page of 16-byte IRTEs.
/// The kernel uses handle = vector, so every vector has exactly one entry.
pub const TABLE_ENTRIES: usize = 256;
/// IRTA.S: the table holds 2^(S+1) entries.
const IRTA_SIZE_FIELD: u64 = 7;
const_assert_eq!(1usize << (IRTA_SIZE_FIELD + 1), TABLE_ENTRIES);

/// One interrupt-remapping table entry (remapped format, VT-d 9.10).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irte {
    /// Present, trigger mode, delivery mode, vector, destination.
    pub low: u64,
    /// Source-id, source-id qualifier and validation type.
    pub high: u64,
}
const_assert_eq!(core::mem::size_of::<Irte>(), 16);

/// IRTE bit fields.
pub mod irte {
    /// The entry is valid.
    pub const PRESENT: u64 = 1 << 0;
    /// Fault processing disable: requests this entry blocks are not recorded as faults.
    pub const FAULT_PROCESSING_DISABLE: u64 = 1 << 1;
    /// Trigger mode: level (else edge).
    pub const LEVEL: u64 = 1 << 4;
    /// Delivery mode field (bits 7:5); 0 = fixed.
    pub const DELIVERY_SHIFT: u32 = 5;
    /// Vector (bits 23:16).
    pub const VECTOR_SHIFT: u32 = 16;
    /// In xAPIC mode the destination APIC id sits in bits 47:40.
    pub const XAPIC_DEST_SHIFT: u32 = 40;
    /// Source-validation type (high bits 19:18): 1 = the requester id must equal SID
    /// (all 16 bits compared, SQ = 0).
    pub const SVT_EXACT: u64 = 1 << 18;
    /// Bits of the low word that must be zero in the remapped format (reserved and IM).
    pub const LOW_RESERVED: u64 = 0xff00_f000;
}

/// An IRTE delivering `vector` (fixed, physical destination) to the xAPIC `apic_id`,
/// accepted only from requester `source_id`.
pub const fn remapped_entry(vector: u8, apic_id: u8, level: bool, source_id: u16) -> Irte {
    let mut low =
        irte::PRESENT | ((vector as u64) << irte::VECTOR_SHIFT) | ((apic_id as u64) << irte::XAPIC_DEST_SHIFT);
    if level {
        low |= irte::LEVEL;
    }
    Irte { low, high: source_id as u64 | irte::SVT_EXACT }
}

/// The IRTE for MSI `vector` to `apic_id` that only requester `source_id` may raise
/// (what `remap_table::route_msi` writes). The `mutant-skip-sid` feature (mutation
/// gate only) drops the source-id validation.
pub const fn msi_entry(vector: u8, apic_id: u8, source_id: u16) -> Irte {
    let entry = remapped_entry(vector, apic_id, false, source_id);
    if cfg!(feature = "mutant-skip-sid") {
        return Irte { low: entry.low, high: 0 };
    }
    entry
}

/// The requester id an IRTE accepts, if it is present and validates one.
pub const fn entry_source(entry: Irte) -> Option<u16> {
    if entry.low & irte::PRESENT == 0 || entry.high & (3 << 18) != irte::SVT_EXACT {
        return None;
    }
    Some(entry.high as u16)
}

/// The IRTA register value for a table at `table` (4 KiB aligned, xAPIC mode: EIME clear).
pub const fn irta(table: u64) -> u64 {
    (table & !0xfff) | IRTA_SIZE_FIELD
}

/// MSI address bits of the remappable format.
mod msi {
    /// The interrupt window's base.
    pub const BASE: u64 = abi::reserved::MSI_WINDOW.0;
    /// Interrupt format: remappable.
    pub const REMAPPABLE: u64 = 1 << 4;
    /// Handle bits 14:0 sit in address bits 19:5.
    pub const HANDLE_LOW_SHIFT: u32 = 5;
    /// Handle bit 15 sits in address bit 2.
    pub const HANDLE_HIGH_BIT: u32 = 2;
}

/// The remappable-format MSI address naming IRTE `handle` (SHV clear: the data is
/// ignored, so [`MSI_DATA`] goes with it).
pub const fn msi_address(handle: u16) -> u64 {
    msi::BASE
        | msi::REMAPPABLE
        | (((handle & 0x7fff) as u64) << msi::HANDLE_LOW_SHIFT)
        | (((handle >> 15) as u64) << msi::HANDLE_HIGH_BIT)
}

/// MSI data to program with [`msi_address`].
pub const MSI_DATA: u32 = 0;

/// The IRTE handle a remappable MSI address names, or `None` for a compatibility-format
/// address or one outside the interrupt window.
pub const fn msi_handle(address: u64) -> Option<u16> {
    if address & !0xf_ffff != msi::BASE || address & msi::REMAPPABLE == 0 {
        return None;
    }
    let low = (address >> msi::HANDLE_LOW_SHIFT) & 0x7fff;
    let high = (address >> msi::HANDLE_HIGH_BIT) & 1;
    Some((low | (high << 15)) as u16)
}

/// I/O APIC redirection-entry bits of the remappable format.
mod rte {
    /// Level-triggered.
    pub const LEVEL: u64 = 1 << 15;
    /// Active low.
    pub const ACTIVE_LOW: u64 = 1 << 13;
    /// Masked.
    pub const MASKED: u64 = 1 << 16;
    /// Interrupt format: remappable.
    pub const REMAPPABLE: u64 = 1 << 48;
    /// Handle bits 14:0 sit in bits 63:49.
    pub const HANDLE_LOW_SHIFT: u32 = 49;
    /// Handle bit 15 sits in bit 11.
    pub const HANDLE_HIGH_BIT: u32 = 11;
}

/// An I/O APIC redirection entry in the remappable format naming IRTE `handle`. The
/// vector field repeats the IRTE's vector: the I/O APIC matches EOIs of level-triggered
/// lines by it.
pub const fn ioapic_entry(handle: u16, vector: u8, level: bool, active_low: bool, masked: bool) -> u64 {
    let mut entry = vector as u64
        | rte::REMAPPABLE
        | (((handle & 0x7fff) as u64) << rte::HANDLE_LOW_SHIFT)
        | (((handle >> 15) as u64) << rte::HANDLE_HIGH_BIT);
    if level {
        entry |= rte::LEVEL;
    }
    if active_low {
        entry |= rte::ACTIVE_LOW;
    }
    if masked {
        entry |= rte::MASKED;
    }
    entry
}

/// Interrupt-entry-cache invalidation descriptors (queued invalidation, type 4).
pub mod iec {
    /// Descriptor type.
    const TYPE: u64 = 0x4;
    /// Granularity: index-selective (else global).
    const INDEX_SELECTIVE: u64 = 1 << 4;
    /// Invalidates every cached IRTE.
    pub const GLOBAL: u64 = TYPE;

    /// Invalidates the cached copy of IRTE `handle` only (index mask 0).
    pub const fn index(handle: u16) -> u64 {
        TYPE | INDEX_SELECTIVE | ((handle as u64) << 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irte_fields_sit_where_the_specification_puts_them() {
        let e = remapped_entry(0x81, 3, false, 0x0018);
        assert_eq!(e.low, 0x0000_0300_0081_0001);
        assert_eq!(e.high, 0x0004_0018);
        assert_eq!(entry_source(e), Some(0x0018));
        let level = remapped_entry(0x32, 0, true, 0xff00);
        assert_eq!(level.low & irte::LEVEL, irte::LEVEL);
        assert_eq!(level.low & irte::LOW_RESERVED, 0);
        assert_eq!(entry_source(Irte::default()), None);
        assert_eq!(entry_source(Irte { low: 1, high: 0x18 }), None, "no validation type: no source");
    }

    #[test]
    fn msi_address_round_trips_every_handle() {
        for handle in [0u16, 1, 0x80, 0xbf, 0xff, 0x7fff, 0x8000, 0xffff] {
            let address = msi_address(handle);
            assert_eq!(address & 0xfff0_0000, 0xfee0_0000);
            assert_eq!(address & (1 << 3), 0, "SHV clear");
            assert_eq!(msi_handle(address), Some(handle));
        }
        assert_eq!(msi_address(0x81), 0xfee0_1030);
        assert_eq!(msi_handle(0xfee0_0000), None, "compatibility format");
        assert_eq!(msi_handle(0xfed0_1030), None, "outside the interrupt window");
    }

    #[test]
    fn ioapic_entry_names_the_handle_in_the_remappable_format() {
        let e = ioapic_entry(0x34, 0x34, true, true, true);
        assert_eq!(e & 0xff, 0x34);
        assert_eq!(e >> 48, (0x34 << 1) | 1);
        assert_eq!(e & ((1 << 15) | (1 << 13) | (1 << 16)), (1 << 15) | (1 << 13) | (1 << 16));
        let high = ioapic_entry(0x8001, 0x20, false, false, false);
        assert_eq!(high & (1 << 11), 1 << 11);
        assert_eq!((high >> 49) & 0x7fff, 1);
        assert_eq!(high & (7 << 8), 0, "fixed delivery");
    }

    #[test]
    fn irta_and_invalidation_encodings() {
        assert_eq!(irta(0x1234_5000), 0x1234_5007);
        assert_eq!(iec::GLOBAL, 0x4);
        assert_eq!(iec::index(0x81), 0x0000_0081_0000_0014);
    }
}
