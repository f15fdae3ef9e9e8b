//! Local APIC and I/O APIC as typed register blocks: timer, EOI, line routing.
//!
//! The local APIC runs the timer and takes end-of-interrupt; the I/O APIC routes device
//! interrupt lines to vectors and masks them. Both are `tock-registers` blocks.

use core::sync::atomic::{AtomicU64, Ordering};

use tock_registers::fields::Field;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs, LocalRegisterCopy};

use super::phys_to_virt;

register_structs! {
    /// One 32-bit register of a 16-byte stride (the LAPIC's register layout).
    PaddedRegister {
        (0x0 => value: ReadOnly<u32>),
        (0x4 => _reserved),
        (0x10 => @END),
    },

    /// The local APIC's registers (xAPIC, memory-mapped): 32-bit, one per 16 bytes.
    LocalApicRegisters {
        (0x000 => _reserved0),
        /// Local APIC id (bits 31:24).
        (0x020 => id: ReadOnly<u32, LapicId::Register>),
        (0x024 => _reserved1),
        /// End of interrupt.
        (0x0b0 => eoi: WriteOnly<u32>),
        (0x0b4 => _reserved2),
        /// Spurious-interrupt vector register (with the software enable).
        (0x0f0 => spurious: ReadWrite<u32, SpuriousVector::Register>),
        (0x0f4 => _reserved3),
        /// In-service register: 256 bits, 32 per register.
        (0x100 => in_service: [PaddedRegister; 8]),
        (0x180 => _reserved4),
        /// Interrupt request register: 256 bits, 32 per register.
        (0x200 => requested: [PaddedRegister; 8]),
        (0x280 => _reserved5),
        /// LVT timer entry.
        (0x320 => lvt_timer: ReadWrite<u32, LvtTimer::Register>),
        (0x324 => _reserved6),
        /// Timer initial count.
        (0x380 => timer_initial_count: ReadWrite<u32>),
        (0x384 => _reserved7),
        /// Timer divide configuration.
        (0x3e0 => timer_divide: ReadWrite<u32, TimerDivide::Register>),
        (0x3e4 => _reserved8),
        (0x3f0 => @END),
    },

    /// The I/O APIC's index/data pair: select a register, then read or write the window.
    IoApicRegisters {
        /// IOREGSEL: index of the register the window shows.
        (0x00 => select: ReadWrite<u32>),
        (0x04 => _reserved0),
        /// IOWIN: the selected register.
        (0x10 => window: ReadWrite<u32>),
        (0x14 => @END),
    }
}

register_bitfields![u32,
    LapicId [
        ID OFFSET(24) NUMBITS(8) []
    ],
    SpuriousVector [
        VECTOR OFFSET(0) NUMBITS(8) [],
        /// APIC software enable.
        ENABLE OFFSET(8) NUMBITS(1) []
    ],
    LvtTimer [
        VECTOR OFFSET(0) NUMBITS(8) [],
        MODE OFFSET(17) NUMBITS(2) [
            Periodic = 1
        ]
    ],
    TimerDivide [
        /// Divide value encoding (bits 3, 1:0).
        DIVIDE OFFSET(0) NUMBITS(4) [
            By16 = 0b0011
        ]
    ],
    /// I/O APIC version register.
    IoApicVersion [
        /// Maximum redirection entry (lines - 1).
        MAX_REDIRECTION OFFSET(16) NUMBITS(8) []
    ]
];

register_bitfields![u64,
    /// An I/O APIC redirection entry (compatibility format).
    pub RedirectionEntry [
        /// Vector.
        VECTOR OFFSET(0) NUMBITS(8) [],
        /// Polarity: active low.
        ACTIVE_LOW OFFSET(13) NUMBITS(1) [],
        /// Trigger mode: level.
        LEVEL OFFSET(15) NUMBITS(1) [],
        /// Masked.
        MASKED OFFSET(16) NUMBITS(1) [],
        /// Destination APIC id (physical mode).
        DESTINATION OFFSET(56) NUMBITS(8) []
    ]
];

/// I/O APIC register indices behind the window.
mod ioapic_index {
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
/// Vector (and IRTE handle) of that probe's positive control: the same line in the
/// remappable format, which must arrive for a "blocked" verdict; never handed out.
pub const CFI_CONTROL_VECTOR: u8 = 0xee;
/// Spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Most GSIs routed (one I/O APIC with 24 pins covers QEMU's q35).
pub const MAX_GSI: u8 = 24;

static LAPIC_BASE: AtomicU64 = AtomicU64::new(0);
static IOAPIC_BASE: AtomicU64 = AtomicU64::new(0);

/// The register block of the local APIC recorded by `init_lapic` (0 before).
fn lapic() -> &'static LocalApicRegisters {
    let base = LAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: the LAPIC page (from the MADT, excluded from device untyped) is mapped
    // uncached in the direct map; the block holds only volatile cells.
    unsafe { &*(phys_to_virt(base) as *const LocalApicRegisters) }
}

/// The register block of the I/O APIC recorded by `init_ioapic`.
fn ioapic() -> &'static IoApicRegisters {
    let base = IOAPIC_BASE.load(Ordering::Relaxed);
    // SAFETY: the IOAPIC page (from the MADT, kernel-owned) is mapped uncached; the
    // block holds only volatile cells.
    unsafe { &*(phys_to_virt(base) as *const IoApicRegisters) }
}

/// Writes I/O APIC register `index`: select, then window (the kernel is single-threaded,
/// so no other access comes between).
fn ioapic_write(index: u32, value: u32) {
    let ioapic = ioapic();
    ioapic.select.set(index);
    ioapic.window.set(value);
}

/// Reads I/O APIC register `index`.
fn ioapic_read(index: u32) -> u32 {
    let ioapic = ioapic();
    ioapic.select.set(index);
    ioapic.window.get()
}

/// Enables the local APIC and starts its periodic timer (`initial_count` ticks at the
/// bus clock / 16). Returns the APIC id.
pub fn init_lapic(base: u64, initial_count: u32) -> u32 {
    LAPIC_BASE.store(base, Ordering::Relaxed);
    let lapic = lapic();
    lapic.spurious.write(SpuriousVector::ENABLE::SET + SpuriousVector::VECTOR.val(u32::from(SPURIOUS_VECTOR)));
    lapic.timer_divide.write(TimerDivide::DIVIDE::By16);
    lapic.lvt_timer.write(LvtTimer::MODE::Periodic + LvtTimer::VECTOR.val(u32::from(TIMER_VECTOR)));
    lapic.timer_initial_count.set(initial_count);
    lapic.id.read(LapicId::ID)
}

/// Whether bit `vector` is set in a 256-bit LAPIC register (ISR, IRR). False before
/// the LAPIC is set up.
fn vector_bit(bits: impl FnOnce(&'static LocalApicRegisters) -> &'static [PaddedRegister; 8], vector: u8) -> bool {
    if LAPIC_BASE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let word = bits(lapic())[usize::from(vector / 32)].value.get();
    word & (1 << (vector % 32)) != 0
}

/// Whether `vector` is in service at the local APIC: an interrupt the LAPIC delivered
/// (and not yet EOI'd) has its ISR bit set, a CPU exception never does. False before
/// the LAPIC is set up.
pub fn in_service(vector: u8) -> bool {
    vector_bit(|lapic| &lapic.in_service, vector)
}

/// Signals end of interrupt to the local APIC.
pub fn eoi() {
    lapic().eoi.set(0);
}

/// Records the I/O APIC and masks all its lines; returns the number of lines.
pub fn init_ioapic(base: u64) -> u8 {
    IOAPIC_BASE.store(base, Ordering::Relaxed);
    let version = LocalRegisterCopy::<u32, IoApicVersion::Register>::new(ioapic_read(ioapic_index::VERSION));
    let lines = (version.read(IoApicVersion::MAX_REDIRECTION) + 1).min(u32::from(MAX_GSI)) as u8;
    for gsi in 0..lines {
        let entry = RedirectionEntry::MASKED::SET + RedirectionEntry::VECTOR.val(u64::from(IRQ_VECTOR_BASE + gsi));
        write_redirection(gsi, entry.value);
    }
    lines
}

/// Writes `gsi`'s redirection entry: high half first, so the entry is never live with
/// a stale destination.
fn write_redirection(gsi: u8, entry: u64) {
    let index = ioapic_index::REDIRECTION_BASE + 2 * u32::from(gsi);
    ioapic_write(index + 1, (entry >> 32) as u32);
    ioapic_write(index, entry as u32);
}

/// A compatibility-format redirection entry for `vector` to `apic_id`.
fn entry(vector: u8, apic_id: u32, level: bool, active_low: bool, masked: bool) -> u64 {
    use RedirectionEntry::*;
    let flag = |on: bool, field: Field<u64, RedirectionEntry::Register>| field.val(u64::from(on));
    (VECTOR.val(u64::from(vector))
        + DESTINATION.val(u64::from(apic_id))
        + flag(level, LEVEL)
        + flag(active_low, ACTIVE_LOW)
        + flag(masked, MASKED))
    .value
}

/// Routes `gsi` to its vector on the boot CPU with the given trigger mode and polarity,
/// masked or not.
pub fn route(gsi: u8, level: bool, active_low: bool, apic_id: u32, masked: bool) {
    write_redirection(gsi, entry(IRQ_VECTOR_BASE + gsi, apic_id, level, active_low, masked));
}

/// Writes `gsi`'s redirection entry as given (the remappable format built by
/// `crate::iommu::intremap::ioapic_entry`).
pub fn route_entry(gsi: u8, entry: u64) {
    write_redirection(gsi, entry);
}

/// Masks or unmasks `gsi`, keeping its routing.
pub fn set_masked(gsi: u8, masked: bool) {
    let index = ioapic_index::REDIRECTION_BASE + 2 * u32::from(gsi);
    let bit = RedirectionEntry::MASKED::SET.value as u32; // in the low half
    let low = ioapic_read(index);
    let low = if masked { low | bit } else { low & !bit };
    ioapic_write(index, low);
}

/// Whether `vector` is requested at the local APIC (its IRR bit: accepted from the bus,
/// not yet taken by the CPU). False before the LAPIC is set up.
pub fn requested(vector: u8) -> bool {
    vector_bit(|lapic| &lapic.requested, vector)
}

/// Whether any external interrupt (vector 0x20 and up) waits in the IRR: the kernel
/// polls it between chunks of a long operation, with interrupts off. Seven register
/// reads; false before the LAPIC is set up.
pub fn interrupt_pending() -> bool {
    if LAPIC_BASE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    // Vectors 0..0x20 are exceptions, never requested: word 0 is skipped.
    lapic().requested[1..].iter().any(|r| r.value.get() != 0)
}

/// The boot CPU's local APIC id.
pub fn id() -> u32 {
    lapic().id.read(LapicId::ID)
}

/// Routes `gsi` unmasked and edge-triggered to `vector` on `apic_id` in the
/// compatibility (non-remappable) format: with interrupt remapping on, a unit that
/// enforces CFI clear must block the message it becomes.
pub fn route_compatibility(gsi: u8, vector: u8, active_low: bool, apic_id: u32) {
    write_redirection(gsi, entry(vector, apic_id, false, active_low, false));
}
