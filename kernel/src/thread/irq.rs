//! Interrupts: the LAPIC timer and device lines delivered as notifications.
//!
//! Interrupts: the LAPIC timer drives round robin; device lines (I/O APIC GSIs) are
//! delivered to user level as notification signals. A line is masked when it fires
//! and unmasked by the handler's Ack, so a device cannot flood the kernel. With
//! interrupt remapping on, lines are routed through IRTEs, and MSI vectors are handed
//! out per PciDevice (see `intremap`); MSIs are edge-triggered and need no unmasking.
//! The VT-d fault event has its own vector (rate-limited in `iommu::unit`).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::apic::{
    self, IRQ_VECTOR_BASE, MAX_GSI, MSI_VECTORS, MSI_VECTOR_BASE, SPURIOUS_VECTOR, TIMER_VECTOR, VTD_FAULT_VECTOR,
};
use crate::arch::trap::TrapFrame;
use crate::object::kcell::{KernelCell, KernelRef};
use crate::object::msi::{Delivery, MsiVectors, MSI_SLOTS};
use crate::platform::msix_table::MsixTable;
use crate::thread::{ipc, tcb_state};

const _: () = assert!(MSI_VECTORS as usize <= MSI_SLOTS);

/// MSIs one vector may deliver within one timer tick; beyond that its IRTE is marked
/// not present until the next tick, so a device cannot keep the CPU in interrupt entry.
pub const MSI_PER_TICK: u16 = 64;

/// Timer period in LAPIC ticks (bus clock / 16): 10 ms at QEMU's 1 GHz APIC clock.
pub const TIMESLICE_TICKS: u32 = 625_000;

struct Irqs {
    /// Notification and badge signalled per GSI.
    handlers: [Option<(u64, u64)>; MAX_GSI as usize],
    /// GSIs with an IRQHandler cap in existence.
    issued: u32,
    /// Per MSI vector (index: vector - MSI_VECTOR_BASE): allocation, requester,
    /// notification, count and throttling.
    msi: MsiVectors,
    /// Trigger mode and polarity per ISA IRQ (from the MADT).
    isa: [(u8, bool, bool); 16],
    lines: u8,
    apic_id: u32,
    ticks: u64,
}

/// The interrupt state. Interrupts reach the kernel only at the idle loop's `hlt` or
/// from user mode, never while other kernel code holds a borrow of it.
static IRQS: KernelCell<Irqs> = KernelCell::new(Irqs {
    handlers: [None; MAX_GSI as usize],
    issued: 0,
    msi: MsiVectors::new(),
    isa: [(0, false, false); 16],
    lines: 0,
    apic_id: 0,
    ticks: 0,
});

#[inline(always)]
fn irqs() -> KernelRef<'static, Irqs> {
    IRQS.borrow_mut()
}

/// Starts the LAPIC timer and takes over the I/O APIC (all lines masked).
pub fn init(lapic: u64, ioapic: u64, isa: [(u8, bool, bool); 16]) {
    let mut s = irqs();
    s.isa = isa;
    s.apic_id = apic::init_lapic(lapic, TIMESLICE_TICKS);
    s.lines = if ioapic != 0 { apic::init_ioapic(ioapic) } else { 0 };
    crate::iommu::unit::enable_fault_interrupts(s.apic_id, VTD_FAULT_VECTOR);
    crate::info!("irq: LAPIC timer every {TIMESLICE_TICKS} ticks/16, I/O APIC with {} lines", s.lines);
}

/// Timer ticks so far.
pub fn ticks() -> u64 {
    irqs().ticks
}

/// Translates an IRQ number (ISA 0..15 through the overrides, else a GSI) to a GSI with
/// its trigger mode; `None` if the line does not exist.
pub fn resolve(irq: u64) -> Option<(u8, bool, bool)> {
    let s = irqs();
    let entry = if irq < 16 { s.isa[irq as usize] } else { (u8::try_from(irq).ok()?, true, true) };
    (entry.0 < s.lines).then_some(entry)
}

/// Marks `gsi` as having a handler cap; false if it already has one.
pub fn issue(gsi: u8, level: bool, active_low: bool) -> bool {
    let mut s = irqs();
    if s.issued & (1 << gsi) != 0 {
        return false;
    }
    s.issued |= 1 << gsi;
    if crate::iommu::remap_table::enabled() {
        let entry = crate::iommu::remap_table::route_line(IRQ_VECTOR_BASE + gsi, level, active_low, s.apic_id);
        apic::route_entry(gsi, entry);
    } else {
        apic::route(gsi, level, active_low, s.apic_id, true);
    }
    true
}

/// Allocates an MSI vector that only `requester_id` may raise; returns the vector and
/// the MSI address and data to program. `None` when every MSI vector is taken.
pub fn issue_msi(requester_id: u16) -> Option<(u8, u64, u32)> {
    let mut s = irqs();
    let index = s.msi.allocate(requester_id, usize::from(MSI_VECTORS))?;
    let vector = MSI_VECTOR_BASE + index as u8;
    let (address, data) = crate::iommu::remap_table::route_msi(vector, requester_id, s.apic_id);
    Some((vector, address, data))
}

/// Allocates a vector for MSI-X entry `entry` of the function whose table is `table`
/// (an IRTE only that function may raise) and writes the entry, masked, with the
/// remappable-format address and data. `Err(true)` if the entry already has a vector,
/// `Err(false)` when every vector is taken.
pub fn issue_msix(table: &MsixTable, entry: u16) -> Result<u8, bool> {
    let mut s = irqs();
    let index = s.msi.allocate_msix(table.requester_id, entry, usize::from(MSI_VECTORS)).map_err(|e| e.is_some())?;
    let vector = MSI_VECTOR_BASE + index as u8;
    let (address, data) = crate::iommu::remap_table::route_msi(vector, table.requester_id, s.apic_id);
    table.program(entry, address, data);
    Ok(vector)
}

/// Whether MSI-X entry `entry` of `requester_id` has a handler cap.
pub fn msix_owned(requester_id: u16, entry: u16) -> bool {
    irqs().msi.msix_vector(requester_id, entry).is_some()
}

/// The function and table entry of MSI-X `vector`, if it is one.
pub fn msix_entry(vector: u8) -> Option<(u16, u16)> {
    irqs().msi.msix_entry(usize::from(vector - MSI_VECTOR_BASE))
}

/// The last cap for MSI `vector` is gone: an MSI-X entry is masked and cleared, its
/// IRTE is removed (the device's MSIs are blocked from then on) and the vector freed
/// with all its state (count, throttling, binding, requester, entry), so an MSI still
/// pending for it changes nothing.
pub fn release_msi(vector: u8) {
    if let Some((requester_id, entry)) = msix_entry(vector) {
        if let Some(table) = crate::platform::msix_table::lookup(requester_id) {
            table.clear(entry);
        }
    }
    crate::iommu::remap_table::clear(vector);
    irqs().msi.release(usize::from(vector - MSI_VECTOR_BASE));
}

/// Counts one delivery of MSI `vector` and says what to do with it; past
/// [`MSI_PER_TICK`] in this tick the vector's IRTE is suspended (the device's further
/// MSIs are dropped) until the next tick. A released vector is not counted.
fn count_msi(vector: u8) -> Delivery {
    let (delivery, throttle) = irqs().msi.deliver(usize::from(vector - MSI_VECTOR_BASE), MSI_PER_TICK);
    if throttle {
        crate::iommu::remap_table::suspend(vector);
        crate::warn!(
            "irq: MSI vector {vector:#x} raised more than {MSI_PER_TICK} times in one tick; masked until the next tick"
        );
    }
    delivery
}

/// Timer tick: per-tick MSI counts restart and throttled vectors that are still
/// allocated get their IRTEs back (a released vector's IRTE stays non-present).
fn msi_tick() {
    let mut s = irqs();
    let apic_id = s.apic_id;
    for (index, requester) in s.msi.tick() {
        let _ = crate::iommu::remap_table::route_msi(MSI_VECTOR_BASE + index as u8, requester, apic_id);
    }
}

/// The notification at `ntfn` is being destroyed: every line bound to it is unbound and
/// masked, every MSI unbound, so no interrupt signals memory that may be reused.
pub fn forget_notification(ntfn: u64) {
    let mut s = irqs();
    for gsi in 0..MAX_GSI {
        if matches!(s.handlers[usize::from(gsi)], Some((n, _)) if n == ntfn) {
            s.handlers[usize::from(gsi)] = None;
            apic::set_masked(gsi, true);
        }
    }
    s.msi.forget_notification(ntfn);
}

/// Binds MSI `vector` to a notification (`None` unbinds).
pub fn set_msi_notification(vector: u8, target: Option<(u64, u64)>) {
    irqs().msi.bind(usize::from(vector - MSI_VECTOR_BASE), target);
}

/// The last handler cap for `gsi` is gone: mask it and forget it.
pub fn release(gsi: u8) {
    let mut s = irqs();
    s.issued &= !(1 << gsi);
    s.handlers[usize::from(gsi)] = None;
    apic::set_masked(gsi, true);
}

/// Binds `gsi` to a notification (and unmasks it).
pub fn set_notification(gsi: u8, ntfn: u64, badge: u64) {
    irqs().handlers[usize::from(gsi)] = Some((ntfn, badge));
    apic::set_masked(gsi, false);
}

/// Unmasks `gsi` after its handler dealt with one interrupt.
pub fn ack(gsi: u8) {
    if irqs().handlers[usize::from(gsi)].is_some() {
        apic::set_masked(gsi, false);
    }
}

/// Masks `gsi` and unbinds its notification.
pub fn clear(gsi: u8) {
    irqs().handlers[usize::from(gsi)] = None;
    apic::set_masked(gsi, true);
}

/// Whether any device line could wake a thread.
pub fn any_bound() -> bool {
    let s = irqs();
    s.handlers.iter().any(Option::is_some) || s.msi.any_bound()
}

/// Vectors no source of this kernel's raises that were in service at the LAPIC.
static STRAY_VECTORS: AtomicU64 = AtomicU64::new(0);

/// A vector nothing here allocated (or the spurious vector): if the LAPIC has it in
/// service (a device wrote it to the MSI window, where it is not remapped), it gets its
/// EOI, else it would block every vector of its priority class and below (for 0xff: the
/// timer and every MSI) for good. A real spurious interrupt is not in service and must
/// not be acknowledged: that EOI would end some other vector. Logged the first 8 times,
/// then at every power of two.
fn stray_vector(vector: u8) {
    if !apic::in_service(vector) {
        return;
    }
    apic::eoi();
    let n = STRAY_VECTORS.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= 8 || n.is_power_of_two() {
        let what = if vector == SPURIOUS_VECTOR { " (not a spurious interrupt)" } else { "" };
        crate::warn!(
            "irq: vector {vector:#x} in service{what}: ended with an EOI ({n} so far; a device writing to the MSI window?)"
        );
    }
}

/// Handles vector >= 32. From user mode it ends by scheduling; from the idle loop it
/// only records what happened.
pub fn interrupt(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    match vector {
        TIMER_VECTOR => {
            apic::eoi();
            irqs().ticks += 1;
            crate::iommu::unit::timer_tick();
            msi_tick();
            crate::arch::trap::log_nmis();
            if frame.from_user() {
                tcb_state::yield_current();
            }
        }
        VTD_FAULT_VECTOR => {
            apic::eoi();
            crate::iommu::unit::fault_interrupt();
        }
        v if (IRQ_VECTOR_BASE..IRQ_VECTOR_BASE + MAX_GSI).contains(&v) => {
            let gsi = v - IRQ_VECTOR_BASE;
            apic::set_masked(gsi, true);
            apic::eoi();
            let handler = irqs().handlers[usize::from(gsi)];
            match handler {
                Some((ntfn, badge)) => ipc::signal(ntfn, badge),
                None => crate::warn!("irq: GSI {gsi} fired with no handler; left masked"),
            }
        }
        v if (MSI_VECTOR_BASE..MSI_VECTOR_BASE + MSI_VECTORS).contains(&v) => {
            apic::eoi();
            match count_msi(v) {
                Delivery::Signal(ntfn, badge) => ipc::signal(ntfn, badge),
                Delivery::Unbound => crate::warn!("irq: MSI vector {v:#x} fired with no notification bound"),
                Delivery::Released => crate::warn!("irq: MSI vector {v:#x} fired after its release; ignored"),
            }
        }
        // Taken once at boot by `cfi_probe` when the unit passed its message, or when
        // its control through an IRTE arrived.
        apic::CFI_PROBE_VECTOR | apic::CFI_CONTROL_VECTOR => apic::eoi(),
        other => stray_vector(other),
    }
    if frame.from_user() {
        tcb_state::schedule();
    }
}
