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
//! mastering is treated as without interrupt remapping (`invoke::pci`). MSI remapping
//! itself stays on either way: remappable messages are still source-validated.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::apic::{self, CFI_PROBE_VECTOR};
use crate::arch::pit;

/// PIT input clocks until the probe's interrupt (about 215 us).
const PIT_COUNT: u16 = 0x100;
/// TSC cycles to wait for the PIT's terminal count (well over its 215 us at any TSC
/// rate a machine with VT-d has, and under TCG's).
const PIT_LIMIT: u64 = 200_000_000;
/// TSC cycles the interrupt may take to reach the local APIC after the PIT's OUT
/// rose (QEMU raises it from a timer callback that can lag the pin by many milliseconds
/// on a loaded host). Only a "blocked" verdict waits this long, and that verdict is the
/// one that lets devices master the bus, so it needs strong evidence: roughly a second
/// at the TSC rates of machines with VT-d (a unit that passes the message, like QEMU
/// 7.2's, is seen within microseconds and costs no wait).
const DELIVERY_GRACE: u64 = 2_000_000_000;

/// The probe ran and the unit blocked the compatibility-format interrupt.
static BLOCKED: AtomicBool = AtomicBool::new(false);

/// What the boot probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The PIT fired and its compatibility-format interrupt did not arrive.
    Blocked,
    /// The compatibility-format interrupt arrived: the unit does not enforce CFI clear.
    Passed,
    /// No verdict: ISA IRQ 0 has no I/O APIC line, or the PIT never reached its count.
    Inconclusive,
}

/// Whether the boot probe saw the remapping unit block compatibility-format
/// interrupts (false before the probe, without remapping, and when it was inconclusive).
pub fn compatibility_format_blocked() -> bool {
    BLOCKED.load(Ordering::Relaxed)
}

fn tsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter (CR4.TSD only matters in user mode).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Runs the probe once at boot, with interrupt remapping on (CFI clear), the LAPIC and
/// I/O APIC set up (`irq::init`) and interrupts off. Leaves the line masked in its boot
/// state and no probe vector pending or in service; records the verdict for
/// [`compatibility_format_blocked`].
pub fn boot_probe() -> Probe {
    let Some((gsi, level, active_low)) = crate::thread::irq::resolve(0) else { return Probe::Inconclusive };
    let apic_id = apic::id();
    apic::route_compatibility(gsi, CFI_PROBE_VECTOR, active_low, apic_id);
    pit::start_one_shot(PIT_COUNT);
    let start = tsc();
    let mut rose_at = None;
    let verdict = loop {
        if apic::requested(CFI_PROBE_VECTOR) {
            break Probe::Passed;
        }
        let now = tsc();
        match rose_at {
            None if pit::output_high() => rose_at = Some(now),
            None if now.wrapping_sub(start) > PIT_LIMIT => break Probe::Inconclusive,
            Some(rose) if now.wrapping_sub(rose) > DELIVERY_GRACE => break Probe::Blocked,
            _ => {}
        }
    };
    apic::route(gsi, level, active_low, apic_id, true);
    if apic::requested(CFI_PROBE_VECTOR) {
        // The only way to retire a requested vector is to take it: `irq::interrupt`
        // acknowledges CFI_PROBE_VECTOR (and a pending timer tick is counted as usual).
        // SAFETY: the IDT and the kernel stack are set up; interrupts are on for one
        // instruction only, and every vector that can be pending has a handler.
        unsafe { core::arch::asm!("sti", "nop", "cli") };
    }
    if apic::requested(CFI_PROBE_VECTOR) || apic::in_service(CFI_PROBE_VECTOR) {
        crate::warn!("iommu: the compatibility-format probe's vector {CFI_PROBE_VECTOR:#x} is still pending");
    }
    BLOCKED.store(verdict == Probe::Blocked, Ordering::Relaxed);
    verdict
}
