//! Does the remapping unit really refuse compatibility-format interrupts?
//!
//! With interrupt remapping on and GCMD.CFI clear, a conforming VT-d unit blocks every
//! interrupt message in the compatibility format (one that names a vector, delivery
//! mode and destination directly instead of an IRTE). QEMU 7.2 does not: it passes
//! them, so a bus master DMA-writing to the MSI window 0xfee00000 raises any vector,
//! NMI, SMI or INIT (a CPU reset) whatever the IRTEs say. The kernel cannot filter
//! INIT after the fact, so it checks at boot: one I/O APIC line (ISA IRQ 0, the PIT)
//! is routed in the compatibility format to [`CFI_PROBE_VECTOR`] and the PIT fires
//! once. I/O APIC messages go through the remapping unit like PCI MSIs; if the vector
//! reaches the local APIC, the unit passes compatibility-format interrupts and bus
//! mastering is treated as without interrupt remapping (`invoke::pci`). If it does not,
//! that alone proves nothing (the PIT may not be wired to that pin, an edge may be
//! lost): the same line is routed in the remappable format through an IRTE the kernel
//! owns to [`CFI_CONTROL_VECTOR`] and the PIT fires again. Only if this control arrives
//! is the verdict "blocked" (see `cfi_verdict`). MSI remapping itself stays on either
//! way: remappable messages are still source-validated.

use core::sync::atomic::{AtomicBool, Ordering};

pub use super::cfi_verdict::{Probe, Unverified};
use crate::arch::apic::{self, CFI_CONTROL_VECTOR, CFI_PROBE_VECTOR};
use crate::arch::pit;

/// PIT input clocks until the probe's interrupt (about 215 us).
const PIT_COUNT: u16 = 0x100;
/// TSC cycles to wait for the PIT's terminal count (well over its 215 us at any TSC
/// rate a machine with VT-d has, and under TCG's).
const PIT_LIMIT: u64 = 200_000_000;
/// TSC cycles the interrupt may take to reach the local APIC after the PIT's OUT
/// rose (QEMU raises it from a timer callback that can lag the pin by many milliseconds
/// on a loaded host). Only a silent compatibility-format attempt waits this long (and
/// then the control, which returns as soon as it arrives): a "blocked" verdict lets
/// devices master the bus, so it needs strong evidence: roughly a second at the TSC
/// rates of machines with VT-d (a unit that passes the message, like QEMU 7.2's, is
/// seen within microseconds and costs no wait).
const DELIVERY_GRACE: u64 = 2_000_000_000;
/// Attempts to retire the probe's vectors by taking them (each opens one interrupt
/// window; one is normally enough).
const RETIRE_ATTEMPTS: u32 = 4;

/// The probe ran and the unit blocked the compatibility-format interrupt.
static BLOCKED: AtomicBool = AtomicBool::new(false);

/// Whether the boot probe saw the remapping unit block compatibility-format
/// interrupts (false before the probe, without remapping, and when it was inconclusive).
pub fn compatibility_format_blocked() -> bool {
    BLOCKED.load(Ordering::Relaxed)
}

fn tsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter (CR4.TSD only matters in user mode).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Starts a PIT one-shot and waits until `vector` is requested at the local APIC or
/// [`DELIVERY_GRACE`] after the PIT's OUT rose. `None`: the PIT never reached its count.
fn fire_pit(vector: u8) -> Option<bool> {
    pit::start_one_shot(PIT_COUNT);
    let start = tsc();
    let mut rose_at = None;
    loop {
        if apic::requested(vector) {
            return Some(true);
        }
        let now = tsc();
        match rose_at {
            None if pit::output_high() => rose_at = Some(now),
            None if now.wrapping_sub(start) > PIT_LIMIT => return None,
            Some(rose) if now.wrapping_sub(rose) > DELIVERY_GRACE => return Some(false),
            _ => {}
        }
    }
}

/// Whether either probe vector is still requested or in service.
fn left_over() -> bool {
    [CFI_PROBE_VECTOR, CFI_CONTROL_VECTOR].into_iter().any(|v| apic::requested(v) || apic::in_service(v))
}

/// Runs the probe once at boot on IRQ `irq` (0, the PIT's, except in tests), with
/// interrupt remapping on (CFI clear), the LAPIC and I/O APIC set up (`irq::init`) and
/// interrupts off. Leaves the line masked in its boot state, the control's IRTE cleared
/// and no probe vector pending or in service; records the verdict for
/// [`compatibility_format_blocked`].
pub fn boot_probe(irq: u64) -> Probe {
    let Some((gsi, level, active_low)) = crate::thread::irq::resolve(irq) else {
        return Probe::Inconclusive(Unverified::NoLine);
    };
    let apic_id = apic::id();
    apic::route_compatibility(gsi, CFI_PROBE_VECTOR, active_low, apic_id);
    let compat = fire_pit(CFI_PROBE_VECTOR);
    let verdict = match compat {
        None => super::cfi_verdict::verdict(false, false, false),
        Some(true) => super::cfi_verdict::verdict(false, true, true),
        Some(false) => {
            // The positive control: the same pin through an IRTE of the kernel's, edge
            // triggered. The pin is high since the PIT's count; restarting the PIT
            // drops it and gives the one rising edge the I/O APIC sends.
            let entry = super::remap_table::route_line(CFI_CONTROL_VECTOR, false, active_low, apic_id);
            apic::route_entry(gsi, entry);
            apic::set_masked(gsi, false);
            let control = fire_pit(CFI_CONTROL_VECTOR);
            // A compatibility-format message delivered late still counts as passed.
            let late = apic::requested(CFI_PROBE_VECTOR);
            super::cfi_verdict::verdict(control == Some(true), late, control.is_some())
        }
    };
    apic::route(gsi, level, active_low, apic_id, true);
    if compat == Some(false) {
        // The entry no longer names the control's IRTE: remove it.
        super::remap_table::clear(CFI_CONTROL_VECTOR);
    }
    for _ in 0..RETIRE_ATTEMPTS {
        if !apic::requested(CFI_PROBE_VECTOR) && !apic::requested(CFI_CONTROL_VECTOR) {
            break;
        }
        // The only way to retire a requested vector is to take it: `irq::interrupt`
        // acknowledges both probe vectors (and a pending timer tick is counted as usual).
        // SAFETY: the IDT and the kernel stack are set up; interrupts are on for one
        // instruction only, and every vector that can be pending has a handler.
        unsafe { core::arch::asm!("sti", "nop", "cli") };
    }
    if left_over() {
        crate::warn!(
            "iommu: a compatibility-format probe vector ({CFI_PROBE_VECTOR:#x} or {CFI_CONTROL_VECTOR:#x}) is still pending"
        );
    }
    BLOCKED.store(verdict == Probe::Blocked, Ordering::Relaxed);
    verdict
}
