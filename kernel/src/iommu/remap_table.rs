//! Interrupt remapping: the shared interrupt-remapping table and its IRTEs.
//!
//! Interrupt remapping: one interrupt-remapping table (allocated at boot) shared by
//! every VT-d unit, with IRTE handle = vector. I/O APIC lines get IRTEs that accept
//! only the I/O APIC's source id; each MSI IRQHandler cap gets an IRTE that accepts
//! only the requester id its PciDevice's MSIs carry (the function's own, or its alias
//! group's behind a PCI bridge), so a device raises only the interrupts set up for it
//! or its alias group (invariant 7; a group is one protection unit). Every change is followed by a completed invalidation of the
//! entry in every unit's interrupt entry cache.

use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::arch::kmem;
use crate::iommu::intremap::{self, Irte};
use crate::iommu::unit;

/// The table's physical address (0: interrupt remapping is off).
static TABLE: AtomicU64 = AtomicU64::new(0);
/// Units remapping interrupts (bit per unit index).
static UNITS: AtomicU32 = AtomicU32::new(0);
/// The I/O APIC's source id from the DMAR device scope (remapping is only turned on
/// when the DMAR names it).
static IOAPIC_SOURCE: AtomicU32 = AtomicU32::new(0);
/// Whether every unit remaps (MSI caps and MSI-capability writes need it).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns remapping on in every unit in `units` (bit per index) with the zeroed table
/// page `table`. Any unit that fails leaves remapping off everywhere it was not yet
/// turned on, and the error names it.
pub fn boot_enable(table: u64, units: u32, ioapic_source: u16) -> Result<(), (usize, unit::VtdError)> {
    TABLE.store(table, Ordering::Relaxed);
    IOAPIC_SOURCE.store(u32::from(ioapic_source), Ordering::Relaxed);
    for index in (0..32).filter(|i| units & (1 << i) != 0) {
        unit::enable_interrupt_remapping(index, intremap::irta(table)).map_err(|e| (index, e))?;
        UNITS.fetch_or(1 << index, Ordering::Relaxed);
    }
    ENABLED.store(units != 0, Ordering::Relaxed);
    Ok(())
}

/// Whether interrupts are remapped (so MSIs can be handed out safely).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Writes IRTE `handle` and invalidates it everywhere; the syscall returns only after
/// every unit dropped its cached copy.
fn write_entry(handle: u8, entry: Irte) {
    let slot = TABLE.load(Ordering::Relaxed) + 16 * u64::from(handle);
    // Hardware reading the entry meanwhile must never find a present, half-written
    // one: an entry becoming present gets its validation half first, an entry going
    // away loses its present bit first.
    let halves = if entry.low & intremap::irte::PRESENT != 0 {
        [(8, entry.high), (0, entry.low)]
    } else {
        [(0, entry.low), (8, entry.high)]
    };
    for (offset, word) in halves {
        kmem::write_words(slot + offset, [word]);
        compiler_fence(Ordering::SeqCst);
    }
    unit::sync_for_device(slot, 16);
    let units = UNITS.load(Ordering::Relaxed);
    for index in (0..32).filter(|i| units & (1 << i) != 0) {
        unit::invalidate_interrupt_entry(index, u16::from(handle));
    }
}

/// Removes IRTE `handle`: interrupts naming it are blocked from now on.
pub fn clear(handle: u8) {
    write_entry(handle, Irte::default());
}

/// Suspends IRTE `handle` (present bit clear, fault processing disabled, source kept):
/// requests naming it are dropped without filling the fault records.
pub fn suspend(handle: u8) {
    let slot = TABLE.load(Ordering::Relaxed) + 16 * u64::from(handle);
    let high = kmem::read_words::<2>(slot)[1];
    write_entry(handle, Irte { low: intremap::irte::FAULT_PROCESSING_DISABLE, high });
}

/// Sets up the IRTE for an I/O APIC line on `vector` and returns the remappable
/// redirection entry (masked) that names it.
pub fn route_line(vector: u8, level: bool, active_low: bool, apic_id: u32) -> u64 {
    let source = IOAPIC_SOURCE.load(Ordering::Relaxed) as u16;
    write_entry(vector, intremap::remapped_entry(vector, apic_id as u8, level, source));
    intremap::ioapic_entry(u16::from(vector), vector, level, active_low, true)
}

/// Sets up the IRTE for an MSI on `vector` that only function `requester_id` (and the
/// rest of its DMA alias group, whose MSIs carry the same requester id) may raise;
/// returns the MSI address and data the device must be programmed with.
pub fn route_msi(vector: u8, requester_id: u16, apic_id: u32) -> (u64, u32) {
    let source = crate::iommu::iospace::msi_source(requester_id);
    write_entry(vector, intremap::msi_entry(vector, apic_id as u8, source));
    (intremap::msi_address(u16::from(vector)), intremap::MSI_DATA)
}
