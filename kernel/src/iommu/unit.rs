//! The VT-d remapping-unit driver: enable, invalidate, drain faults.
//!
//! Each unit gets its root table installed, caches invalidated and translation enabled
//! with every context entry absent (so every DMA is blocked until an IOSpace assigns a
//! device); then selective context-cache and IOTLB invalidations (queued or
//! register-based, always waited for), and the fault-recording registers drained by the
//! fault-event interrupt (rate-limited; a timer-tick poll only for units whose interrupt
//! is masked or could not be programmed). Register blocks are the typed ones of
//! `super::registers`, descriptor and register encodings come from `super::invalidation`.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{Readable, Writeable};

use super::invalidation::{qi, wait_descriptor, ContextInvalidation, IotlbInvalidation};
use super::register_set::{self, LayoutError};
use super::registers::{
    fault_event_msi, one_shot_commands, CapabilityDecode, ContextCommand, ExtendedCapabilityDecode, FaultEventControl,
    FaultRecord, FaultRecordHigh, FaultRecordingRegister, FaultStatus, FaultStorm, GlobalCommand, IotlbCommand,
    IotlbRegisters, VtdRegisters,
};
use crate::arch::{kmem, phys_to_virt, KERNEL_VMA};
use crate::object::cap::FrameSize;
use crate::object::kcell::KernelCell;

/// Most units driven (as many as the boot info describes).
const MAX_UNITS: usize = abi::bootinfo::MAX_IOMMUS;
/// Polls before a hardware handshake is declared stuck.
const SPIN_LIMIT: u32 = 1_000_000;
/// Faults logged per unit per fault interrupt at most; the rest are counted as
/// suppressed (every one is still queued for its IOSpace).
const FAULTS_PER_INTERRUPT: u32 = 8;
/// Fault interrupts per unit within one timer tick before the unit's fault event is
/// masked until the next tick (a storm must never starve threads).
const INTERRUPTS_PER_TICK: u32 = 16;
/// Faults logged per unit per timer-tick poll at most (all are queued).
const FAULTS_PER_POLL: u32 = 8;
/// Fault lines logged per unit per timer tick at most (serial output is slow).
const LOG_LINES_PER_TICK: u32 = 8;
/// Passes over the fault records per drain (a record may fill behind the scan).
const DRAIN_PASSES: u32 = 4;

/// A remapping unit: its register blocks and what the driver keeps about it.
struct Unit {
    /// The unit's register blocks (`None`: not enabled).
    blocks: Option<Blocks>,
    /// The invalidation queue while queued invalidation is on (`None`: register-based).
    queue: Option<InvalidationQueue>,
    /// CAP.SLLPS.
    superpages: u8,
    /// CAP.MAMV with page-selective IOTLB invalidation (CAP.PSI), else `None`.
    psi_max_mask: Option<u8>,
    /// Caching mode: the unit may cache non-present entries (maps need invalidation too).
    caching_mode: bool,
    /// The fault event is programmed: faults arrive by interrupt.
    fault_irq: bool,
    /// Fault-interrupt rate limit.
    storm: FaultStorm,
    /// Invalidation kinds already announced in the log (one line each, so the boot
    /// scenarios can see which kinds the hardware accepted).
    announced: u8,
}

impl Unit {
    /// A unit that is not enabled.
    const ABSENT: Unit = Unit {
        blocks: None,
        queue: None,
        superpages: 0,
        psi_max_mask: None,
        caching_mode: false,
        fault_irq: false,
        storm: FaultStorm::new(),
        announced: 0,
    };
}

/// A unit's register blocks.
#[derive(Clone, Copy)]
struct Blocks {
    /// The architected register block at the unit's base.
    registers: &'static VtdRegisters,
    /// The IVA and IOTLB registers (at ECAP.IRO).
    iotlb: &'static IotlbRegisters,
    /// The fault-recording registers (CAP.NFR + 1 at CAP.FRO).
    fault_records: &'static [FaultRecordingRegister],
}

/// A unit's invalidation queue.
#[derive(Clone, Copy)]
struct InvalidationQueue {
    /// The queue page (QS = 0: 256 descriptors).
    page: u64,
    /// The unit's registers (the queue tail).
    registers: &'static VtdRegisters,
}

// SAFETY: `Unit` holds references to MMIO register blocks, which are not `Sync` because
// their cells may be written through a shared reference. The kernel runs on one CPU
// with interrupts off, so a `Unit` is never reached from two flows of control at once:
// the `Send` that `KernelCell` asks for moves it nowhere.
unsafe impl Send for Unit {}

/// Every unit's state, in the kernel's one cell type (debug builds check no access
/// nests inside another).
static UNITS: KernelCell<[Unit; MAX_UNITS]> = KernelCell::new([Unit::ABSENT; MAX_UNITS]);
static UNIT_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Whether some unit is in caching mode (maps need invalidating too): one load on the
/// map paths instead of a scan of the units.
static ANY_CACHING_MODE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static FAULTS_SEEN: AtomicU64 = AtomicU64::new(0);
static FAULTS_SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static FAULT_INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// Where wait descriptors write their completion value (by DMA: read volatile). One
/// word for all units: one CPU waits for one submission at a time, and a fixed address
/// keeps the MapIO/UnmapIO path as short as before (the benchmark counts instructions).
static WAIT_STATUS: AtomicU32 = AtomicU32::new(0);
/// The value the last wait descriptor writes.
static WAIT_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Runs `f` on unit `index`; `None` if there is no such unit.
fn with_unit<R>(index: usize, f: impl FnOnce(&mut Unit) -> R) -> Option<R> {
    UNITS.with(|units| units.get_mut(index).map(f))
}

/// Unit `index`'s register block and fault-recording registers, if it is enabled
/// (they are `'static`, so callers use them without holding the table).
fn blocks(index: usize) -> Option<(&'static VtdRegisters, &'static [FaultRecordingRegister])> {
    with_unit(index, |u| u.blocks.map(|b| (b.registers, b.fault_records))).flatten()
}

/// The register blocks of the unit whose register set (`set_bytes` from `base`) is
/// at `base`; an error if ECAP.IRO or CAP.FRO/NFR put a block outside it.
fn map_blocks(
    base: u64,
    set_bytes: u64,
    cap: &CapabilityDecode,
    ecap: &ExtendedCapabilityDecode,
) -> Result<(&'static VtdRegisters, &'static IotlbRegisters, &'static [FaultRecordingRegister]), LayoutError> {
    register_set::check(cap, ecap, set_bytes)?;
    let at = |offset: u64| phys_to_virt(base + offset);
    // SAFETY: `base` is a DRHD register set from the DMAR (checked page-aligned, inside
    // the uncached direct map as far as the blocks reach, kept from user level); the
    // IOTLB block at ECAP.IRO and the CAP.NFR + 1 fault-recording registers at CAP.FRO
    // were just checked to lie inside its `set_bytes`. The blocks hold only volatile
    // cells, so shared `'static` references to them are sound.
    unsafe {
        Ok((
            &*(at(0) as *const VtdRegisters),
            &*(at(ecap.iotlb_register_offset) as *const IotlbRegisters),
            core::slice::from_raw_parts(
                at(cap.fault_record_offset) as *const FaultRecordingRegister,
                usize::from(cap.fault_records),
            ),
        ))
    }
}

/// Submits `descriptors` followed by a wait descriptor and spins until the hardware
/// has written the wait's status: everything before it has completed. The queue is
/// empty on entry (every submission is waited for), so it cannot overflow.
fn queue_and_wait(queue: InvalidationQueue, descriptors: &[[u64; 2]]) -> bool {
    let registers = queue.registers;
    let mut tail = registers.invalidation_queue_tail.get() >> 4;
    let sequence = WAIT_SEQUENCE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let status_virt = WAIT_STATUS.as_ptr();
    let status_phys = status_virt as u64 - KERNEL_VMA;
    // SAFETY: the status word is in a kernel static; the hardware writes it by DMA, so
    // it is written and read volatile.
    unsafe { status_virt.write_volatile(0) };
    for words in descriptors {
        kmem::write_words(queue.page + 16 * tail, *words);
        tail = (tail + 1) % qi::QUEUE_ENTRIES;
    }
    kmem::write_words(queue.page + 16 * tail, wait_descriptor(sequence, status_phys));
    tail = (tail + 1) % qi::QUEUE_ENTRIES;
    registers.invalidation_queue_tail.set(tail << 4);
    // SAFETY: as above.
    spin(|| unsafe { status_virt.read_volatile() } == sequence)
}

/// Waits until `done(status)`; false if the hardware never answers.
fn spin(mut done: impl FnMut() -> bool) -> bool {
    (0..SPIN_LIMIT).any(|_| {
        let d = done();
        core::hint::spin_loop();
        d
    })
}

/// Issues a GCMD command and waits for its status bit.
fn command(registers: &VtdRegisters, bit: FieldValue<u32, GlobalCommand::Register>) -> bool {
    let status = registers.global_status.get() & !one_shot_commands();
    registers.global_command.set(status | bit.value);
    spin(|| registers.global_status.matches_all(bit))
}

/// Why a unit could not be brought up.
#[derive(Clone, Copy, Debug)]
pub enum VtdError {
    /// A command's status bit never appeared.
    Stuck(&'static str),
    /// More units than the driver keeps state for.
    TooManyUnits,
    /// CAP/ECAP put a register block outside the unit's register set.
    RegisterLayout(LayoutError),
}

/// Installs `root_table` (a zeroed page: no context entries, all DMA blocked, except
/// boot-time RMRR identity domains), invalidates the context cache and IOTLB globally,
/// and enables translation. `queue` 0 keeps register-based invalidation. `set_bytes`:
/// the register set's size from the DRHD (`register_set::register_set_bytes`).
pub fn enable(
    index: usize,
    (base, set_bytes): (u64, u64),
    cap: u64,
    ecap: u64,
    root_table: u64,
    queue: u64,
) -> Result<(), VtdError> {
    if index >= MAX_UNITS {
        return Err(VtdError::TooManyUnits);
    }
    let (cap, ecap) = (CapabilityDecode::from_raw(cap), ExtendedCapabilityDecode::from_raw(ecap));
    let (registers, iotlb, fault_records) =
        map_blocks(base, set_bytes, &cap, &ecap).map_err(VtdError::RegisterLayout)?;
    if !ecap.coherent {
        // This unit reads tables from memory without snooping: write back everything
        // boot wrote (root, context and RMRR tables); later writes use sync_for_device.
        NONCOHERENT.store(true, Ordering::Relaxed);
        // SAFETY: wbinvd only writes back and invalidates caches; ring 0, boot, one CPU.
        unsafe { core::arch::asm!("wbinvd", options(nostack, preserves_flags)) };
    }
    registers.root_table_address.set(root_table);
    if !command(registers, GlobalCommand::SRTP::SET) {
        return Err(VtdError::Stuck("set root table pointer"));
    }
    if !register_invalidate_context(registers, ContextInvalidation::Global) {
        return Err(VtdError::Stuck("context-cache invalidation"));
    }
    if !register_invalidate_iotlb(iotlb, IotlbInvalidation::Global) {
        return Err(VtdError::Stuck("IOTLB invalidation"));
    }
    if !command(registers, GlobalCommand::TE::SET) {
        return Err(VtdError::Stuck("translation enable"));
    }
    // Queued invalidation from here on when the unit has it (register-based
    // invalidation stops working once QI is on).
    let queue = if queue != 0 && ecap.queued_invalidation {
        registers.invalidation_queue_tail.set(0);
        registers.invalidation_queue_address.set(queue); // QS=0: 256 entries
        if !command(registers, GlobalCommand::QIE::SET) {
            return Err(VtdError::Stuck("queued invalidation enable"));
        }
        Some(InvalidationQueue { page: queue, registers })
    } else {
        None
    };
    let unit = Unit {
        blocks: Some(Blocks { registers, iotlb, fault_records }),
        queue,
        superpages: cap.sllps,
        psi_max_mask: cap.psi.then_some(cap.mamv),
        caching_mode: cap.caching_mode,
        fault_irq: false,
        storm: FaultStorm::new(),
        announced: 0,
    };
    UNITS.with(|units| units[index] = unit);
    UNIT_COUNT.fetch_max(index + 1, Ordering::Relaxed);
    if cap.caching_mode {
        ANY_CACHING_MODE.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Whether unit `index` has translation on (read back from GSTS).
pub fn translation_enabled(index: usize) -> bool {
    blocks(index).is_some_and(|(registers, _)| registers.global_status.is_set(GlobalCommand::TE))
}

/// Human name of a fault reason code.
pub fn reason_name(reason: u8) -> &'static str {
    match reason {
        0x1 => "root entry not present",
        0x2 => "context entry not present",
        0x3 => "invalid context entry",
        0x4 => "address beyond the guest address width",
        0x5 => "write without write permission (read-only or not mapped)",
        0x6 => "read without read permission (not mapped)",
        0x7 => "invalid page-table entry",
        0x20 => "reserved bits in an interrupt request",
        0x21 => "interrupt index beyond the table",
        0x22 => "interrupt-remapping entry not present",
        0x23 => "interrupt-remapping table unreadable",
        0x24 => "reserved bits in an interrupt-remapping entry",
        0x25 => "compatibility-format interrupt blocked",
        0x26 => "source id does not match the interrupt-remapping entry",
        _ => "other",
    }
}

/// Programs every unit's fault event as a compatibility-format MSI with `vector` to the
/// LAPIC `apic_id` and unmasks it (FECTL.IM clear): faults arrive by interrupt from now
/// on. A unit whose message cannot be built stays masked and is polled on timer ticks.
pub fn enable_fault_interrupts(apic_id: u32, vector: u8) {
    let Some((data, address, upper)) = fault_event_msi(apic_id, vector) else {
        crate::warn!("iommu: LAPIC id {apic_id} does not fit a compatibility MSI; DMA faults are polled");
        return;
    };
    for index in 0..unit_count() {
        let Some(Some(registers)) = with_unit(index, |u| {
            u.fault_irq = u.blocks.is_some();
            u.blocks.map(|b| b.registers)
        }) else {
            continue;
        };
        registers.fault_event_data.set(data);
        registers.fault_event_address.set(address);
        registers.fault_event_upper_address.set(upper);
        // Unmasking delivers a fault that became pending while masked.
        registers.fault_event_control.set(0);
        crate::info!("iommu{index}: fault events interrupt on vector {vector:#x} (LAPIC {apic_id})");
    }
}

/// The fault-event vector fired: drains the records of every unit driven by interrupt
/// (they share the vector), at most FAULTS_PER_INTERRUPT reported per unit. A unit
/// interrupting more than INTERRUPTS_PER_TICK times within one timer tick is masked
/// until the next tick.
pub fn fault_interrupt() {
    FAULT_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    for index in 0..unit_count() {
        if !with_unit(index, |u| u.fault_irq).unwrap_or(false) || !fault_pending(index) {
            // Units share the vector: only the ones with records count toward a storm.
            continue;
        }
        let storm = with_unit(index, |u| u.storm.interrupt(INTERRUPTS_PER_TICK)).unwrap_or(false);
        drain_faults(index, FAULTS_PER_INTERRUPT, "interrupt");
        if let (true, Some((registers, _))) = (storm, blocks(index)) {
            registers.fault_event_control.write(FaultEventControl::IM::SET);
            crate::warn!(
                "iommu{index}: fault storm: more than {INTERRUPTS_PER_TICK} fault interrupts in one tick; interrupt masked, further faults suppressed until the next tick"
            );
        }
    }
}

/// Whether unit `index` holds unreported faults (FSTS.PPF or PFO).
fn fault_pending(index: usize) -> bool {
    blocks(index).is_some_and(|(registers, _)| {
        let status = registers.fault_status.extract();
        status.is_set(FaultStatus::PPF) || status.is_set(FaultStatus::PFO)
    })
}

/// Timer tick: ends a fault storm (the unit's pending records are drained, then its
/// interrupt unmasked) and polls the units whose fault event is not programmed. For the
/// others one status read: a fault recorded while the last drain was finishing raised
/// no new event (the unit signals only when PPF becomes set), so it is drained here
/// rather than left to block every later fault.
pub fn timer_tick() {
    for index in 0..unit_count() {
        let Some((was_masked, fault_irq)) = with_unit(index, |u| (u.storm.tick(), u.fault_irq)) else {
            continue;
        };
        if !fault_irq {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
            continue;
        }
        if !was_masked && fault_pending(index) {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
        }
        if was_masked {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
            if let Some((registers, _)) = blocks(index) {
                registers.fault_event_control.set(0);
            }
        }
    }
}

/// Drains unit `index`'s fault-recording registers: each fault is cleared and queued
/// for its IOSpace (`iospace::report_fault`, which tells the handler; a fault is lost
/// only if the queue or the domain's share is full, and then counted there); up to
/// `limit` are logged, the rest counted as suppressed. Clears PFO last so the unit
/// records (and signals) new faults again.
fn drain_faults(index: usize, limit: u32, via: &str) {
    let Some((registers, records)) = blocks(index) else { return };
    let (mut reported, mut overflowed) = (0, false);
    for _ in 0..DRAIN_PASSES {
        let status = registers.fault_status.extract();
        if !status.is_set(FaultStatus::PPF) && !status.is_set(FaultStatus::PFO) {
            break;
        }
        overflowed |= status.is_set(FaultStatus::PFO);
        for record in records {
            let Some(fault) = FaultRecord::decode(record.low.get(), record.high.get()) else { continue };
            // Writing F back clears the record, so the slot can take the next fault.
            record.high.write(FaultRecordHigh::F::SET);
            FAULTS_SEEN.fetch_add(1, Ordering::Relaxed);
            let log = reported < limit;
            report(index, fault, via, log);
            if log {
                reported += 1;
            } else {
                FAULTS_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
            }
        }
        registers.fault_status.write(FaultStatus::PFO::SET);
    }
    if overflowed {
        crate::warn!("iommu{index}: fault records overflowed; some DMA faults were not recorded");
    }
}

/// Whether one more fault line of unit `index` may be logged this tick.
fn may_log(index: usize) -> bool {
    with_unit(index, |u| u.storm.may_log(LOG_LINES_PER_TICK)).unwrap_or(false)
}

/// Queues one fault for the IOSpace the requester is in (telling its handler) and, if
/// `log`, logs it (LOG_LINES_PER_TICK per unit at most).
fn report(index: usize, fault: FaultRecord, via: &str, log: bool) {
    if let Some(handle) = fault.interrupt_index {
        // A blocked interrupt request, not a DMA: nothing for the IOSpace's handler.
        if log && may_log(index) {
            let sid = fault.source;
            crate::warn!(
                "iommu{index}: interrupt blocked via {via}: requester {:02x}:{:02x}.{} reason {:#x} ({}) interrupt index {handle:#x}",
                sid >> 8,
                (sid >> 3) & 0x1f,
                sid & 7,
                fault.reason,
                reason_name(fault.reason),
            );
        }
        return;
    }
    let told = super::iospace::report_fault(&super::access::Vtd, fault.source, fault.reason, fault.iova, fault.write);
    if !log || !may_log(index) {
        return;
    }
    let sid = fault.source;
    crate::warn!(
        "iommu{index}: DMA fault via {via}: requester {:02x}:{:02x}.{} reason {:#x} ({}) iova {:#x} {}",
        sid >> 8,
        (sid >> 3) & 0x1f,
        sid & 7,
        fault.reason,
        reason_name(fault.reason),
        fault.iova,
        if fault.write { "write" } else { "read" }
    );
    if told {
        crate::debug!("iommu{index}: fault reported to the IOSpace's handler");
    } else {
        crate::debug!("iommu{index}: requester {sid:#06x} has no fault handler; fault only logged");
    }
}

/// Logs the first use of each invalidation kind on a unit (bit `kind`), once.
#[inline(always)]
fn announce(index: usize, unit: &mut Unit, kind: u8, what: impl core::fmt::Debug) {
    // `what` by value: it reaches memory only on the cold path.
    if unit.announced & (1 << kind) == 0 {
        announce_first(index, unit, kind, &what);
    }
}

/// The log line of [`announce`], once per kind.
#[cold]
#[inline(never)]
fn announce_first(index: usize, unit: &mut Unit, kind: u8, what: &dyn core::fmt::Debug) {
    unit.announced |= 1 << kind;
    let how = if unit.queue.is_some() { "queued" } else { "register-based" };
    crate::info!("iommu{index}: first {how} invalidation of this kind completed: {what:?}");
}

/// Runs `f` on unit `index`, which must be enabled (callers name units they enabled).
fn enabled_unit<R>(index: usize, f: impl FnOnce(&mut Unit) -> R) -> R {
    with_unit(index, f).unwrap_or_else(|| panic!("iommu{index}: no such unit"))
}

/// Invalidates the context-cache entries `what` names on unit `index` and waits for
/// completion.
pub fn invalidate_context(index: usize, what: ContextInvalidation) {
    enabled_unit(index, |unit| {
        let done = match (unit.queue, unit.blocks) {
            (Some(queue), _) => queue_and_wait(queue, &[what.descriptor()]),
            (None, Some(blocks)) => register_invalidate_context(blocks.registers, what),
            (None, None) => false,
        };
        if !done {
            panic!("iommu{index}: context-cache invalidation {what:?} never completed");
        }
        announce(index, unit, 0, what);
    })
}

/// Context-cache invalidation through CCMD (only while QI is off); waits.
fn register_invalidate_context(registers: &VtdRegisters, what: ContextInvalidation) -> bool {
    registers.context_command.set(what.register());
    spin(|| !registers.context_command.is_set(ContextCommand::ICC))
}

/// IOTLB invalidation through the IVA and IOTLB registers (only while QI is off); waits.
fn register_invalidate_iotlb(iotlb: &IotlbRegisters, what: IotlbInvalidation) -> bool {
    let (iva, command) = what.registers();
    if matches!(what, IotlbInvalidation::Pages { .. }) {
        iotlb.invalidate_address.set(iva);
    }
    iotlb.invalidate.set(command);
    spin(|| !iotlb.invalidate.is_set(IotlbCommand::IVT))
}

/// Invalidates unit `index`'s IOTLB (and paging-structure caches) for `domain`: the
/// IOVAs `range` (start, end) with one page-selective request when CAP.PSI and MAMV
/// allow, else (or with no range) the whole domain. Waits until the hardware reports
/// completion: no stale translation survives the return.
pub fn invalidate_iotlb(index: usize, domain: u16, range: Option<(u64, u64)>) {
    enabled_unit(index, |unit| {
        let what = match range {
            Some((start, end)) => IotlbInvalidation::for_range(domain, start, end, unit.psi_max_mask),
            None => IotlbInvalidation::Domain(domain),
        };
        complete_iotlb(index, unit, what);
    })
}

/// The IOTLB invalidation of the 4 KiB page at `iova` (aligned) of `domain` on every
/// unit, each waited for: the request [`invalidate_iotlb`] makes for that range
/// (page-selective with mask 0 where CAP.PSI, else the domain), without its range
/// arithmetic, for UnmapIO's short path (inlined there: its only caller).
#[inline(always)]
pub fn invalidate_page(domain: u16, iova: u64) {
    for index in 0..unit_count() {
        let mut units = UNITS.borrow_mut();
        let Some(unit) = units.get_mut(index) else { continue };
        let page = IotlbInvalidation::Pages { domain, iova, mask: 0 };
        match unit.queue {
            // The usual case: queued, page-selective, its first one logged already.
            Some(queue) if unit.psi_max_mask.is_some() && unit.announced & (1 << 1) != 0 => {
                if !queue_and_wait(queue, &[page.descriptor()]) {
                    iotlb_stuck(index, page);
                }
                super::counters::iotlb_invalidated();
            }
            _ => invalidate_page_otherwise(index, unit, domain, iova),
        }
    }
}

/// [`invalidate_page`] on a unit without a queue or CAP.PSI, or its first one: the
/// request `invalidate_iotlb` makes for the page.
#[cold]
#[inline(never)]
fn invalidate_page_otherwise(index: usize, unit: &mut Unit, domain: u16, iova: u64) {
    complete_iotlb(index, unit, IotlbInvalidation::for_range(domain, iova, iova + 4096, unit.psi_max_mask));
}

/// Issues `what` on `unit` (queued or through its registers), waits for it, counts it
/// and logs the first of its kind.
#[inline(always)]
fn complete_iotlb(index: usize, unit: &mut Unit, what: IotlbInvalidation) {
    let done = match unit.queue {
        Some(queue) => queue_and_wait(queue, &[what.descriptor()]),
        None => register_iotlb(unit, what),
    };
    if !done {
        iotlb_stuck(index, what);
    }
    super::counters::iotlb_invalidated();
    announce(index, unit, if matches!(what, IotlbInvalidation::Pages { .. }) { 1 } else { 2 }, what);
}

/// [`complete_iotlb`] without a queue (out of line: QEMU and recent hardware queue).
#[cold]
#[inline(never)]
fn register_iotlb(unit: &Unit, what: IotlbInvalidation) -> bool {
    unit.blocks.is_some_and(|blocks| register_invalidate_iotlb(blocks.iotlb, what))
}

/// The hardware never reported an IOTLB invalidation complete.
#[cold]
#[inline(never)]
fn iotlb_stuck(index: usize, what: IotlbInvalidation) -> ! {
    panic!("iommu{index}: IOTLB invalidation {what:?} never completed");
}

/// Whether every unit supports second-level leaves of `size` (CAP.SLLPS bit 0 for
/// 2 MiB, bit 1 for 1 GiB).
pub fn all_support_superpage(size: FrameSize) -> bool {
    let bit = match size {
        FrameSize::Small => return true,
        FrameSize::Large => 1,
        FrameSize::Huge => 2,
    };
    (0..unit_count()).all(|i| with_unit(i, |u| u.superpages & bit != 0).unwrap_or(false))
}

/// Whether some unit is in caching mode.
#[inline(always)]
pub fn any_caching_mode() -> bool {
    ANY_CACHING_MODE.load(Ordering::Relaxed)
}

/// Whether unit `index` is in caching mode.
pub fn caching_mode(index: usize) -> bool {
    with_unit(index, |u| u.caching_mode).unwrap_or(false)
}

/// Whether unit `index` uses queued invalidation.
pub fn uses_queue(index: usize) -> bool {
    with_unit(index, |u| u.queue.is_some()).unwrap_or(false)
}

/// Number of units enabled.
pub fn unit_count() -> usize {
    UNIT_COUNT.load(Ordering::Relaxed)
}

/// DMA faults seen since boot.
pub fn faults_seen() -> u64 {
    FAULTS_SEEN.load(Ordering::Relaxed)
}

/// Fault interrupts taken since boot.
pub fn fault_interrupts() -> u64 {
    FAULT_INTERRUPTS.load(Ordering::Relaxed)
}

/// DMA faults cleared without being logged (rate limit) since boot; each was still
/// queued for its IOSpace.
pub fn faults_suppressed() -> u64 {
    FAULTS_SUPPRESSED.load(Ordering::Relaxed)
}

/// Whether some unit walks its tables without snooping CPU caches (ECAP.C clear).
static NONCOHERENT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Makes `len` bytes at `paddr` (table entries, context entries, IRTEs the CPU just
/// wrote) visible to remapping hardware that does not snoop caches: the lines are
/// written back (clflush) and the flushes ordered before what follows (mfence). A no-op
/// when every unit is coherent.
pub fn sync_for_device(paddr: u64, len: u64) {
    if !NONCOHERENT.load(Ordering::Relaxed) {
        return;
    }
    let mut line = paddr & !63;
    while line < paddr + len {
        write_back_line(line);
        line += 64;
    }
    sync_fence();
}

/// Writes back the cache line holding `paddr` if some unit does not snoop (callers
/// writing many entries flush each line once, then call [`sync_fence`]).
pub fn write_back_line(paddr: u64) {
    if NONCOHERENT.load(Ordering::Relaxed) {
        // SAFETY: clflush of a direct-map address of RAM the kernel just wrote; it
        // changes no memory contents.
        unsafe {
            core::arch::asm!("clflush [{}]", in(reg) phys_to_virt(paddr & !63), options(nostack, preserves_flags))
        };
    }
}

/// Orders earlier write-backs before what follows (the invalidation that makes the
/// hardware look), if some unit does not snoop.
pub fn sync_fence() {
    if NONCOHERENT.load(Ordering::Relaxed) {
        // SAFETY: a fence, no memory access.
        unsafe { core::arch::asm!("mfence", options(nostack, preserves_flags)) };
    }
}

/// Whether unit `index` can remap interrupts: ECAP.IR, and queued invalidation running
/// (the interrupt entry cache is invalidated only through the queue).
pub fn can_remap_interrupts(index: usize, ecap: u64) -> bool {
    ExtendedCapabilityDecode::from_raw(ecap).interrupt_remapping && uses_queue(index)
}

/// Points unit `index` at the interrupt-remapping table `irta` (an IRTA value), flushes
/// its interrupt entry cache and turns remapping on with compatibility-format
/// interrupts blocked (CFI clear): from now on a device raises only interrupts whose
/// IRTE names it.
pub fn enable_interrupt_remapping(index: usize, irta: u64) -> Result<(), VtdError> {
    use crate::iommu::intremap::iec;
    enabled_unit(index, |unit| {
        let Some(queue) = unit.queue else {
            return Err(VtdError::Stuck("interrupt entry cache invalidation (no queue)"));
        };
        let registers = queue.registers;
        registers.interrupt_remapping_table_address.set(irta);
        if !command(registers, GlobalCommand::SIRTP::SET) {
            return Err(VtdError::Stuck("interrupt-remapping table pointer"));
        }
        if !queue_and_wait(queue, &[[iec::GLOBAL, 0]]) {
            return Err(VtdError::Stuck("interrupt entry cache invalidation"));
        }
        if !command(registers, GlobalCommand::IRE::SET) {
            return Err(VtdError::Stuck("interrupt remapping enable"));
        }
        Ok(())
    })
}

/// Whether unit `index` has interrupt remapping on.
pub fn interrupt_remapping_enabled(index: usize) -> bool {
    blocks(index).is_some_and(|(registers, _)| registers.global_status.is_set(GlobalCommand::IRE))
}

/// Drops unit `index`'s cached copy of IRTE `handle` and waits until that completed.
pub fn invalidate_interrupt_entry(index: usize, handle: u16) {
    let handle = [crate::iommu::intremap::iec::index(handle), 0];
    let done = enabled_unit(index, |unit| unit.queue.is_some_and(|queue| queue_and_wait(queue, &[handle])));
    if !done {
        panic!("iommu{index}: interrupt entry cache invalidation never completed");
    }
}
