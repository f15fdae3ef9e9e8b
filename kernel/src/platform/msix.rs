//! Where a function's MSI-X table and PBA lie: BAR decoding and bounds checks.
//!
//! Pure arithmetic over configuration-space values, tested on the host; the boot-time
//! reads (and the BAR sizing) are in `msix_table`. The table and the Pending Bit Array
//! must each lie wholly inside the memory BAR the capability names: the offsets come
//! from the device, and the kernel writes table entries, so a table that claims to lie
//! past its BAR (in another device's registers, or the kernel's) is refused.

use abi::pci::{MsixInfo, MSIX_ENTRY_BYTES};

use crate::boot::memory::Range;

/// A memory BAR: where it is and how big.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Physical base.
    pub base: u64,
    /// Bytes it decodes (a power of two).
    pub size: u64,
}

/// Why a function's MSI-X table is not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The BAR is an I/O BAR, does not exist, or the one before a 64-bit BAR's top half.
    NotMemoryBar(u8),
    /// The BAR is not assigned (base 0) or decodes nothing.
    Unassigned(u8),
    /// The table or PBA runs past the end of its BAR.
    OutsideBar(&'static str),
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NotMemoryBar(n) => write!(f, "BAR {n} is not a memory BAR"),
            Refusal::Unassigned(n) => write!(f, "BAR {n} is not assigned"),
            Refusal::OutsideBar(what) => write!(f, "the {what} runs past the end of its BAR"),
        }
    }
}

/// The low dword of a BAR: whether it is a 64-bit memory BAR (`Some(true)`), a 32-bit
/// one (`Some(false)`), or an I/O BAR / reserved type (`None`).
pub fn memory_bar_kind(low: u32) -> Option<bool> {
    match (low & 1, (low >> 1) & 3) {
        (0, 0) => Some(false),
        (0, 2) => Some(true),
        _ => None,
    }
}

/// Base and size of a memory BAR from its value(s) and what reads back after writing
/// all ones (`high` / `sized_high` are 0 for a 32-bit BAR).
pub fn bar(low: u32, high: u32, sized_low: u32, sized_high: u32) -> Bar {
    let base = (u64::from(high) << 32) | u64::from(low & !0xf);
    let wide = memory_bar_kind(low) == Some(true);
    let raw = (u64::from(if wide { sized_high } else { 0 }) << 32) | u64::from(sized_low & !0xf);
    // Nothing reads back: the BAR is not implemented and decodes nothing.
    let mask = if wide || raw == 0 { raw } else { raw | 0xffff_ffff_0000_0000 };
    Bar { base, size: if mask == 0 { 0 } else { (!mask).wrapping_add(1) } }
}

/// The physical ranges of the table and the PBA of `info`, each checked to lie inside
/// its BAR; `bar(n)` gives BAR `n` (or why it cannot be used).
pub fn placement(info: &MsixInfo, bar: impl Fn(u8) -> Result<Bar, Refusal>) -> Result<(Range, Range), Refusal> {
    let inside = |n: u8, offset: u64, bytes: u64, what| {
        let b = bar(n)?;
        if b.base == 0 || b.size == 0 {
            return Err(Refusal::Unassigned(n));
        }
        if offset.checked_add(bytes).is_none_or(|end| end > b.size) || b.base.checked_add(b.size).is_none() {
            return Err(Refusal::OutsideBar(what));
        }
        Ok(Range::new(b.base + offset, bytes))
    };
    let table = inside(info.table_bar, info.table_offset, info.table_size * MSIX_ENTRY_BYTES, "MSI-X table")?;
    let pba = inside(info.pba_bar, info.pba_offset, info.pba_bytes(), "MSI-X PBA")?;
    Ok((table, pba))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_decode_and_size() {
        assert_eq!(memory_bar_kind(0xfebd_1000), Some(false));
        assert_eq!(memory_bar_kind(0xfe00_000c), Some(true), "64-bit prefetchable");
        assert_eq!(memory_bar_kind(0xc001), None, "I/O");
        assert_eq!(memory_bar_kind(0x2), None, "below-1M type");
        assert_eq!(bar(0xfebd_1000, 0, 0xffff_f000, 0), Bar { base: 0xfebd_1000, size: 0x1000 });
        assert_eq!(
            bar(0xfe00_000c, 0x1, 0xffff_c00c, 0xffff_ffff),
            Bar { base: 0x1_fe00_0000, size: 0x4000 },
            "64-bit: both halves"
        );
        assert_eq!(bar(0, 0, 0, 0).size, 0, "not implemented");
    }

    fn info(table: (u8, u64), pba: (u8, u64), size: u64) -> MsixInfo {
        MsixInfo {
            at: 0x40,
            table_size: size,
            table_bar: table.0,
            table_offset: table.1,
            pba_bar: pba.0,
            pba_offset: pba.1,
            control: 0,
        }
    }

    #[test]
    fn table_and_pba_must_lie_inside_their_bars() {
        let bars = |n: u8| match n {
            1 => Ok(Bar { base: 0xfebd_1000, size: 0x1000 }),
            2 => Ok(Bar { base: 0, size: 0x1000 }),
            _ => Err(Refusal::NotMemoryBar(n)),
        };
        let (t, p) = placement(&info((1, 0), (1, 0x800), 3), bars).unwrap();
        assert_eq!((t, p), (Range::new(0xfebd_1000, 48), Range::new(0xfebd_1800, 8)));
        assert_eq!(placement(&info((1, 0xff8), (1, 0x800), 1), bars), Err(Refusal::OutsideBar("MSI-X table")));
        assert_eq!(placement(&info((1, 0), (1, 0xffc), 3), bars), Err(Refusal::OutsideBar("MSI-X PBA")));
        assert_eq!(placement(&info((1, 0), (2, 0), 3), bars), Err(Refusal::Unassigned(2)));
        assert_eq!(placement(&info((0, 0), (1, 0), 3), bars), Err(Refusal::NotMemoryBar(0)));
        assert_eq!(
            placement(&info((1, 0xffff_fff8), (1, 0), 2048), bars),
            Err(Refusal::OutsideBar("MSI-X table")),
            "a huge offset"
        );
    }
}
