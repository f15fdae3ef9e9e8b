//! The local APIC (timer, end of interrupt) and the I/O APIC (routing device interrupt
//! lines to vectors, masking them). Register offsets are declared once here.

use core::sync::atomic::{AtomicU64, Ordering};

use super::phys_to_virt;

/// Local APIC register offsets.
mod lapic_reg {
    pub const ID: u64 = 0x20;
    pub const EOI: u64 = 0xb0;
    pub const ISR: u64 = 0x100;
    pub const IRR: u64 = 0x200;
    pub const SPURIOUS: u64 = 0xf0;
    pub const LVT_TIMER: u64 = 0x320;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

/// I/O APIC register offsets and indices.
mod ioapic_reg {
    pub const SELECT: u64 = 0x00;
    pub const WINDOW: u64 = 0x10;
    pub const VERSION: u32 = 0x01;
    pub const REDIRECTION_BASE: u32 = 0x10;
}

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector of GSI 0; GSI n uses `IRQ_VECTOR_BASE + n`.
pub const IRQ_VECTOR_BASE: u8 = 0x30;
/// First MSI vector; MSI IRQHandler caps use `MSI_VECTOR_BASE..MSI_VECTOR_BASE + MSI_VECTORS`.
pub const MSI_VECTOR_BASE: u8 = 0x80;
/// Number of MSI vectors.
pub const MSI_VECTORS: u8 = 64;
/// Vector of the VT-d fault event (compatibility-format MSI from every remapping unit).
/// Above the MSI range 0x80..0xbf handed to devices.
pub const VTD_FAULT_VECTOR: u8 = 0xf0;
/// Vector of the boot-time probe whether the remapping unit blocks compatibility-format
/// interrupts (`crate::iommu::cfi_probe`); never handed out.
pub const CFI_PROBE_VECTOR: u8 = 0xef;
/// Spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Most GSIs routed (one I/O APIC with 24 pins covers QEMU's q35).
pub const MAX_GSI: u8 = 24;

/// LVT timer mode bit: periodic.
const TIMER_PERIODIC: u32 = 1 << 17;
/// Timer divide configuration value for divide-by-16.
const TIMER_DIVIDE_16: u32 = 0b0011;
/// SVR bit: APIC software enable.
const APIC_ENABLE: u32 = 1 << 8;
/// Redirection entry bit: masked.
const REDIRECT_MASKED: u64 = 1 << 16;
/// Redirection entry bit: level triggered.
const REDIRECT_LEVEL: u64 = 1 << 15;
/// Redirection entry bit: active low.
const REDIRECT_ACTIVE_LOW: u64 = 1 << 13;

static LAPIC_BASE: AtomicU64 = AtomicU64::new(0);
static IOAPIC_BASE: AtomicU64 = AtomicU64::new(0);

fn lapic_write(offset: u64, value: u32) {
    let base = LAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: the LAPIC page (from the MADT, excluded from device untyped) is mapped
    // uncached in the direct map; offsets are architected registers.
    unsafe { core::ptr::write_volatile(phys_to_virt(base + offset) as *mut u32, value) };
}

fn lapic_read(offset: u64) -> u32 {
    let base = LAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: as in `lapic_write`.
    unsafe { core::ptr::read_volatile(phys_to_virt(base + offset) as *const u32) }
}

fn ioapic_write(index: u32, value: u32) {
    let base = IOAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: the IOAPIC page (from the MADT, kernel-owned) is mapped uncached; select
    // then window is the architected access sequence; the kernel is single-threaded.
    unsafe {
        core::ptr::write_volatile(phys_to_virt(base + ioapic_reg::SELECT) as *mut u32, index);
        core::ptr::write_volatile(phys_to_virt(base + ioapic_reg::WINDOW) as *mut u32, value);
    }
}

fn ioapic_read(index: u32) -> u32 {
    let base = IOAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: as in `ioapic_write`.
    unsafe {
        core::ptr::write_volatile(phys_to_virt(base + ioapic_reg::SELECT) as *mut u32, index);
        core::ptr::read_volatile(phys_to_virt(base + ioapic_reg::WINDOW) as *const u32)
    }
}

/// Enables the local APIC and starts its periodic timer (`initial_count` ticks at the
/// bus clock / 16). Returns the APIC id.
pub fn init_lapic(base: u64, initial_count: u32) -> u32 {
    LAPIC_BASE.store(base, Ordering::Relaxed);
    lapic_write(lapic_reg::SPURIOUS, APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
    lapic_write(lapic_reg::TIMER_DIVIDE, TIMER_DIVIDE_16);
    lapic_write(lapic_reg::LVT_TIMER, TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    lapic_write(lapic_reg::TIMER_INITIAL, initial_count);
    lapic_read(lapic_reg::ID) >> 24
}

/// Whether `vector` is in service at the local APIC: an interrupt the LAPIC delivered
/// (and not yet EOI'd) has its ISR bit set, a CPU exception never does. False before
/// the LAPIC is set up.
pub fn in_service(vector: u8) -> bool {
    if LAPIC_BASE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let word = lapic_read(lapic_reg::ISR + 0x10 * u64::from(vector / 32));
    word & (1 << (vector % 32)) != 0
}

/// Signals end of interrupt to the local APIC.
pub fn eoi() {
    lapic_write(lapic_reg::EOI, 0);
}

/// Records the I/O APIC and masks all its lines; returns the number of lines.
pub fn init_ioapic(base: u64) -> u8 {
    IOAPIC_BASE.store(base, Ordering::Relaxed);
    let lines = (((ioapic_read(ioapic_reg::VERSION) >> 16) & 0xff) + 1).min(u32::from(MAX_GSI)) as u8;
    for gsi in 0..lines {
        write_redirection(gsi, REDIRECT_MASKED | u64::from(IRQ_VECTOR_BASE + gsi));
    }
    lines
}

fn write_redirection(gsi: u8, entry: u64) {
    let index = ioapic_reg::REDIRECTION_BASE + 2 * u32::from(gsi);
    ioapic_write(index + 1, (entry >> 32) as u32);
    ioapic_write(index, entry as u32);
}

/// Routes `gsi` to its vector on the boot CPU with the given trigger mode and polarity,
/// masked or not.
pub fn route(gsi: u8, level: bool, active_low: bool, apic_id: u32, masked: bool) {
    let mut entry = u64::from(IRQ_VECTOR_BASE + gsi) | (u64::from(apic_id) << 56);
    if level {
        entry |= REDIRECT_LEVEL;
    }
    if active_low {
        entry |= REDIRECT_ACTIVE_LOW;
    }
    if masked {
        entry |= REDIRECT_MASKED;
    }
    write_redirection(gsi, entry);
}

/// Writes `gsi`'s redirection entry as given (the remappable format built by
/// `crate::iommu::intremap::ioapic_entry`).
pub fn route_entry(gsi: u8, entry: u64) {
    write_redirection(gsi, entry);
}

/// Masks or unmasks `gsi`, keeping its routing.
pub fn set_masked(gsi: u8, masked: bool) {
    let index = ioapic_reg::REDIRECTION_BASE + 2 * u32::from(gsi);
    let low = ioapic_read(index);
    let low = if masked { low | REDIRECT_MASKED as u32 } else { low & !(REDIRECT_MASKED as u32) };
    ioapic_write(index, low);
}

/// Whether `vector` is requested at the local APIC (its IRR bit: accepted from the bus,
/// not yet taken by the CPU). False before the LAPIC is set up.
pub fn requested(vector: u8) -> bool {
    if LAPIC_BASE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let word = lapic_read(lapic_reg::IRR + 0x10 * u64::from(vector / 32));
    word & (1 << (vector % 32)) != 0
}

/// The boot CPU's local APIC id.
pub fn id() -> u32 {
    lapic_read(lapic_reg::ID) >> 24
}

/// Routes `gsi` unmasked and edge-triggered to `vector` on `apic_id` in the
/// compatibility (non-remappable) format: with interrupt remapping on, a unit that
/// enforces CFI clear must block the message it becomes.
pub fn route_compatibility(gsi: u8, vector: u8, active_low: bool, apic_id: u32) {
    let mut entry = u64::from(vector) | (u64::from(apic_id) << 56);
    if active_low {
        entry |= REDIRECT_ACTIVE_LOW;
    }
    write_redirection(gsi, entry);
}
