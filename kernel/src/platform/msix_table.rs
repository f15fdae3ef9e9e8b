//! MSI-X tables: found at boot, kept from device untyped, written by the kernel.
//!
//! At boot every function's MSI-X capability is read, the BARs holding its table and
//! Pending Bit Array are sized (memory decoding off for the moment), and the pages the
//! two lie in are added to the ranges that never become device untyped. Excluding them
//! at boot (rather than refusing a Retype that would cover them) keeps the rule in one
//! place the boot checks already verify (no untyped overlaps an excluded range) and costs
//! nothing per Retype; it works because BARs never move after boot (a PciDevice cannot
//! write them). The rest of each BAR stays device untyped. A driver with an entry
//! page mapped could store a compatibility-format address naming any vector (QEMU 7.2
//! delivers it) or another device's IRTE handle: so only the kernel writes entries,
//! always with a remappable-format address from the vector's own IRTE.
//!
//! The recorded tables serve the PciDevice and MSI handler invocations: entries are
//! programmed masked, masked and cleared when their cap goes, and every entry no cap
//! owns is masked when MSI-X is enabled.

use abi::pci::{self, MsixInfo, MSIX_ENABLE, MSIX_ENTRY_BYTES};

use super::msix::{self, Bar, Refusal};
use super::pci::PciDevice;
use super::pci_config::{config_read, config_write, function_base};
use super::reserved::{ExclusionError, Exclusions};
use crate::arch::mmio;
use crate::boot::memory::{Range, RangeSet};
use crate::object::kcell::KernelCell;
use crate::{info, warn};

/// Functions whose MSI-X table the kernel records (each also excluded from untyped).
pub const MAX_MSIX_FUNCTIONS: usize = 32;

/// Why a range is excluded (the boot log prints it).
const TABLE_REASON: &str = "MSI-X table: only the kernel writes its entries";
const PBA_REASON: &str = "MSI-X pending bit array (read through the kernel)";

/// One function's MSI-X capability and where its table and PBA are.
#[derive(Clone, Copy, Debug)]
pub struct MsixTable {
    /// The function.
    pub requester_id: u16,
    /// Its ECAM page.
    function_base: u64,
    /// The capability as read at boot.
    pub info: MsixInfo,
    /// Physical address of entry 0.
    table: u64,
    /// Physical address of the PBA.
    pba: u64,
}

static TABLES: KernelCell<[Option<MsixTable>; MAX_MSIX_FUNCTIONS]> = KernelCell::new([None; MAX_MSIX_FUNCTIONS]);

/// Sizes BAR `n` of the function at `fb` (memory decoding is off meanwhile).
pub(super) fn size_bar(fb: u64, n: u8, last_bar: u8) -> Result<Bar, Refusal> {
    if n > last_bar {
        return Err(Refusal::NotMemoryBar(n));
    }
    let at = 0x10 + 4 * u64::from(n);
    let low = config_read(fb, at, 4) as u32;
    let wide = msix::memory_bar_kind(low).ok_or(Refusal::NotMemoryBar(n))?;
    if wide && n == last_bar {
        return Err(Refusal::NotMemoryBar(n));
    }
    let command = config_read(fb, pci::COMMAND, 2);
    config_write(fb, pci::COMMAND, 2, command & !(pci::COMMAND_MEMORY | 1));
    let probe = |offset| {
        let value = config_read(fb, offset, 4);
        config_write(fb, offset, 4, 0xffff_ffff);
        let sized = config_read(fb, offset, 4);
        config_write(fb, offset, 4, value);
        (value as u32, sized as u32)
    };
    let (_, sized_low) = probe(at);
    let (high, sized_high) = if wide { probe(at + 4) } else { (0, 0) };
    config_write(fb, pci::COMMAND, 2, command);
    Ok(msix::bar(low, high, sized_low, sized_high))
}

/// The MSI-X capability of the function at `fb`, if it has one.
fn capability(fb: u64) -> Option<MsixInfo> {
    let read = |offset, width| Ok::<u64, ()>(config_read(fb, offset, width));
    let at = pci::find_capability(read, pci::CAPABILITY_MSIX).ok().flatten()?;
    MsixInfo::parse(at, config_read(fb, at + 2, 2), config_read(fb, at + 4, 4), config_read(fb, at + 8, 4))
}

/// At boot, after ECAM is known: finds every function's MSI-X table and PBA, excludes
/// their pages from device untyped and records the tables the kernel can reach (inside
/// the direct map, clear of every range the kernel owns). Only a full exclusion list
/// is an error (the boot stops: a table left in device untyped would be mappable).
pub fn boot(
    excluded: &mut Exclusions,
    devices: &[PciDevice],
    ram: &RangeSet,
    limit: u64,
) -> Result<(), ExclusionError> {
    let mut tables = TABLES.borrow_mut();
    let mut recorded = 0;
    for dev in devices.iter().filter(|d| d.desc.segment == 0) {
        let (b, d, f) = (dev.bus(), dev.device(), dev.function());
        let Some(fb) = function_base(dev.requester_id()) else { continue };
        let Some(cap) = capability(fb) else { continue };
        let last_bar = if dev.is_bridge() { 1 } else { 5 };
        let (table, pba) = match msix::placement(&cap, |n| size_bar(fb, n, last_bar)) {
            Ok(ranges) => ranges,
            Err(why) => {
                warn!("pci 0000:{b:02x}:{d:02x}.{f}: MSI-X not offered: {why}");
                continue;
            }
        };
        // Overlapping a range the kernel owns (APIC, VT-d, ECAM...): never written.
        let foreign = |r: Range| {
            excluded.as_slice().iter().any(|e| {
                let p = r.page_outer();
                e.range.start < p.end && p.start < e.range.end && e.reason != TABLE_REASON && e.reason != PBA_REASON
            })
        };
        let clash = foreign(table) || foreign(pba);
        let mut usable = !clash;
        for (range, reason) in [(table, TABLE_REASON), (pba, PBA_REASON)] {
            match excluded.add_mmio(ram, None, "MSI-X table/PBA", range, reason) {
                Ok(()) => {}
                Err(ExclusionError::Full) => return Err(ExclusionError::Full),
                Err(e) => {
                    warn!("pci 0000:{b:02x}:{d:02x}.{f}: MSI-X not offered: {e}");
                    usable = false;
                }
            }
        }
        if clash {
            warn!("pci 0000:{b:02x}:{d:02x}.{f}: MSI-X not offered: its table or PBA overlaps a range the kernel owns");
        }
        if table.page_outer().end > limit || pba.page_outer().end > limit {
            warn!("pci 0000:{b:02x}:{d:02x}.{f}: MSI-X not offered: table beyond the kernel's direct map");
            usable = false;
        }
        info!(
            "pci 0000:{b:02x}:{d:02x}.{f}: MSI-X {} entries, table {:#x} (BAR {} + {:#x}), PBA {:#x}: pages kept out of device untyped",
            cap.table_size, table.start, cap.table_bar, cap.table_offset, pba.start
        );
        if !usable {
            continue;
        }
        if recorded == MAX_MSIX_FUNCTIONS {
            warn!(
                "pci 0000:{b:02x}:{d:02x}.{f}: MSI-X not offered: more than {MAX_MSIX_FUNCTIONS} functions with MSI-X"
            );
            continue;
        }
        let entry = MsixTable {
            requester_id: dev.requester_id(),
            function_base: fb,
            info: cap,
            table: table.start,
            pba: pba.start,
        };
        tables[recorded] = Some(entry);
        recorded += 1;
    }
    Ok(())
}

/// The recorded MSI-X table of function `requester_id` (segment 0).
pub fn lookup(requester_id: u16) -> Option<MsixTable> {
    TABLES.borrow_mut().iter().flatten().find(|t| t.requester_id == requester_id).copied()
}

impl MsixTable {
    /// Physical address of dword `word` (0..4) of entry `entry` (< table size).
    fn word(&self, entry: u16, word: u64) -> u64 {
        debug_assert!(u64::from(entry) < self.info.table_size);
        self.table + u64::from(entry) * MSIX_ENTRY_BYTES + word * 4
    }

    fn write(&self, entry: u16, word: u64, value: u32) {
        // SAFETY: the table was checked at boot to lie inside the function's own BAR,
        // in the direct map and clear of every kernel-owned range; its pages are in no
        // untyped. Entries are dword registers; `entry` < table size (callers check).
        unsafe { mmio::write32(self.word(entry, word), value) }
    }

    fn read(&self, entry: u16, word: u64) -> u32 {
        // SAFETY: as in `write`; reading an entry has no side effect.
        unsafe { mmio::read32(self.word(entry, word)) }
    }

    /// Whether the function decodes memory (else table writes are dropped by it).
    pub fn memory_decoding(&self) -> bool {
        config_read(self.function_base, pci::COMMAND, 2) & pci::COMMAND_MEMORY != 0
    }

    /// Writes entry `entry`: masked first, then `address` and `data`; left masked.
    pub fn program(&self, entry: u16, address: u64, data: u32) {
        self.set_masked(entry, true);
        self.write(entry, 0, address as u32);
        self.write(entry, 1, (address >> 32) as u32);
        self.write(entry, 2, data);
    }

    /// Masks entry `entry` and clears its address and data (its cap is gone).
    pub fn clear(&self, entry: u16) {
        self.program(entry, 0, 0);
    }

    /// Sets or clears the mask bit of entry `entry` (the other control bits are kept).
    pub fn set_masked(&self, entry: u16, masked: bool) {
        let control = self.read(entry, 3);
        self.write(entry, 3, (control & !1) | u32::from(masked));
    }

    /// The pending bit of entry `entry`.
    pub fn pending(&self, entry: u16) -> bool {
        let at = self.pba + u64::from(entry / 32) * 4;
        // SAFETY: the PBA was checked at boot like the table; PBA dwords are read-only
        // and reading them has no side effect.
        let word = unsafe { mmio::read32(at) };
        word & (1 << (entry % 32)) != 0
    }

    /// The message control register now.
    pub fn control(&self) -> u64 {
        config_read(self.function_base, self.info.at + 2, 2)
    }

    /// Writes Enable and Function Mask (`value` holds no other bit). Enabling first masks
    /// every entry `owned` says has no handler cap, whatever firmware left in it.
    pub fn write_control(&self, value: u64, owned: impl Fn(u16) -> bool) {
        if value & MSIX_ENABLE != 0 {
            for entry in (0..self.info.table_size as u16).filter(|&e| !owned(e)) {
                self.set_masked(entry, true);
            }
        }
        config_write(self.function_base, self.info.at + 2, 2, value);
    }
}
