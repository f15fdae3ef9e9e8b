//! VT-d remapping units at run time: root table installed, caches invalidated,
//! translation enabled with every context entry absent (so every DMA is blocked until
//! an IOSpace assigns a device), selective context-cache and IOTLB invalidations
//! (queued or register-based, always waited for), and the fault-recording registers
//! drained by the fault-event interrupt (rate-limited; a timer-tick poll only for units
//! whose interrupt is masked or could not be programmed). Register offsets come from
//! `super::registers::VtdRegisters`, descriptor and register encodings from `super::invalidation`.

use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use super::invalidation::{inv_reg, qi, wait_descriptor, ContextInvalidation, IotlbInvalidation};
use super::registers::{
    fault_event, fault_event_msi, CapabilityDecode, ExtendedCapabilityDecode, FaultRecord, FaultStorm, VtdRegisters,
};
use crate::arch::{kmem, phys_to_virt};

/// GCMD/GSTS bits.
mod bits {
    pub const TE: u32 = 1 << 31;
    pub const SRTP: u32 = 1 << 30;
    /// Status bits that must be written back unchanged when issuing a command (the
    /// rest are one-shot commands).
    pub const PRESERVED: u32 = 0x96ff_ffff;
    pub const QIE: u32 = 1 << 26;
}

/// Most units driven.
const MAX_UNITS: usize = 8;
/// Polls before a hardware handshake is declared stuck.
const SPIN_LIMIT: u32 = 1_000_000;
/// Faults reported (and logged) per unit per fault interrupt at most; the rest are
/// cleared and counted as suppressed.
const FAULTS_PER_INTERRUPT: u32 = 8;
/// Fault interrupts per unit within one timer tick before the unit's fault event is
/// masked until the next tick (a storm must never starve threads).
const INTERRUPTS_PER_TICK: u32 = 16;
/// Faults reported per unit per timer-tick poll at most.
const FAULTS_PER_POLL: u32 = 8;
/// Fault lines logged per unit per timer tick at most (serial output is slow).
const LOG_LINES_PER_TICK: u32 = 8;
/// Passes over the fault records per drain (a record may fill behind the scan).
const DRAIN_PASSES: u32 = 4;

static UNITS: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
static FAULT_RECORDS: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
static UNIT_COUNT: AtomicUsize = AtomicUsize::new(0);
static FAULTS_SEEN: AtomicU64 = AtomicU64::new(0);
static FAULTS_SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static FAULT_INTERRUPTS: AtomicU64 = AtomicU64::new(0);
static IOTLB_REG: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
/// Invalidation queue page per unit (0: register-based invalidation).
static QUEUE: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
/// CAP.SLLPS per unit.
static SUPERPAGES: [AtomicU8; MAX_UNITS] = [const { AtomicU8::new(0) }; MAX_UNITS];
/// CAP.MAMV + 1 per unit with page-selective IOTLB invalidation (CAP.PSI), else 0.
static PSI_MAX_MASK: [AtomicU8; MAX_UNITS] = [const { AtomicU8::new(0) }; MAX_UNITS];
/// Units in caching mode (they may cache non-present entries: maps need invalidation too).
static CACHING_MODE: [AtomicBool; MAX_UNITS] = [const { AtomicBool::new(false) }; MAX_UNITS];
/// Units whose fault event is programmed: their faults arrive by interrupt.
static FAULT_IRQ: [AtomicBool; MAX_UNITS] = [const { AtomicBool::new(false) }; MAX_UNITS];
/// Fault-interrupt rate limit per unit.
static STORM: spin::Mutex<[FaultStorm; MAX_UNITS]> = spin::Mutex::new([FaultStorm::new(); MAX_UNITS]);
/// Per unit: invalidation kinds already announced in the log (one line each, so the
/// boot scenarios can see which kinds the hardware accepted).
static ANNOUNCED: [AtomicU8; MAX_UNITS] = [const { AtomicU8::new(0) }; MAX_UNITS];
/// Where wait descriptors write their completion value.
static mut WAIT_STATUS: u32 = 0;
static WAIT_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Submits `descriptors` followed by a wait descriptor and spins until the hardware
/// has written the wait's status: everything before it has completed. The queue is
/// empty on entry (every submission is waited for), so it cannot overflow.
fn queue_and_wait(index: usize, descriptors: &[[u64; 2]]) -> bool {
    let base = UNITS[index].load(Ordering::Relaxed);
    let queue = QUEUE[index].load(Ordering::Relaxed);
    let tail_reg = offset_of!(VtdRegisters, invalidation_queue_tail);
    let mut tail = read64(base, tail_reg) >> 4;
    let sequence = WAIT_SEQUENCE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let status_virt = core::ptr::addr_of_mut!(WAIT_STATUS);
    let status_phys = status_virt as u64 - crate::arch::KERNEL_VMA;
    // SAFETY: WAIT_STATUS is a kernel static; the hardware writes it by DMA, we read it volatile.
    unsafe { status_virt.write_volatile(0) };
    let wait = wait_descriptor(sequence, status_phys);
    for words in descriptors.iter().chain(core::iter::once(&wait)) {
        kmem::write_words(queue + 16 * tail, *words);
        tail = (tail + 1) % qi::QUEUE_ENTRIES;
    }
    write64(base, tail_reg, tail << 4);
    // SAFETY: as above.
    spin(|| unsafe { status_virt.read_volatile() } == sequence)
}

fn reg32(base: u64, offset: usize) -> *mut u32 {
    phys_to_virt(base + offset as u64) as *mut u32
}

fn reg64(base: u64, offset: usize) -> *mut u64 {
    phys_to_virt(base + offset as u64) as *mut u64
}

fn read32(base: u64, offset: usize) -> u32 {
    // SAFETY: `base` is a DRHD register page from the DMAR (checked page-aligned, inside
    // the uncached direct map, kept from user level); offsets are architected registers.
    unsafe { core::ptr::read_volatile(reg32(base, offset)) }
}

fn write32(base: u64, offset: usize, value: u32) {
    // SAFETY: as in `read32`.
    unsafe { core::ptr::write_volatile(reg32(base, offset), value) }
}

fn read64(base: u64, offset: usize) -> u64 {
    // SAFETY: as in `read32`; 64-bit registers are 8-byte aligned.
    unsafe { core::ptr::read_volatile(reg64(base, offset)) }
}

fn write64(base: u64, offset: usize, value: u64) {
    // SAFETY: as in `read64`.
    unsafe { core::ptr::write_volatile(reg64(base, offset), value) }
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
fn command(base: u64, bit: u32) -> bool {
    let status = read32(base, offset_of!(VtdRegisters, global_status)) & bits::PRESERVED;
    write32(base, offset_of!(VtdRegisters, global_command), status | bit);
    spin(|| read32(base, offset_of!(VtdRegisters, global_status)) & bit != 0)
}

/// Why a unit could not be brought up.
#[derive(Clone, Copy, Debug)]
pub enum VtdError {
    /// A command's status bit never appeared.
    Stuck(&'static str),
}

/// Installs `root_table` (a zeroed page: no context entries, all DMA blocked, except
/// boot-time RMRR identity domains), invalidates the context cache and IOTLB globally,
/// and enables translation. `queue` 0 keeps register-based invalidation.
pub fn enable(index: usize, base: u64, cap: u64, ecap: u64, root_table: u64, queue: u64) -> Result<(), VtdError> {
    let iotlb = ExtendedCapabilityDecode::from_raw(ecap).iotlb_register_offset as usize + IOTLB_AFTER_IVA;
    if !ExtendedCapabilityDecode::from_raw(ecap).coherent {
        // This unit reads tables from memory without snooping: write back everything
        // boot wrote (root, context and RMRR tables); later writes use sync_for_device.
        NONCOHERENT.store(true, Ordering::Relaxed);
        // SAFETY: wbinvd only writes back and invalidates caches; ring 0, boot, one CPU.
        unsafe { core::arch::asm!("wbinvd", options(nostack, preserves_flags)) };
    }
    write64(base, offset_of!(VtdRegisters, root_table_address), root_table);
    if !command(base, bits::SRTP) {
        return Err(VtdError::Stuck("set root table pointer"));
    }
    if !register_invalidate_context(base, ContextInvalidation::Global) {
        return Err(VtdError::Stuck("context-cache invalidation"));
    }
    if !register_invalidate_iotlb(base, iotlb, IotlbInvalidation::Global) {
        return Err(VtdError::Stuck("IOTLB invalidation"));
    }
    if !command(base, bits::TE) {
        return Err(VtdError::Stuck("translation enable"));
    }
    // Queued invalidation from here on when the unit has it (register-based
    // invalidation stops working once QI is on).
    if queue != 0 && ExtendedCapabilityDecode::from_raw(ecap).queued_invalidation && index < MAX_UNITS {
        write64(base, offset_of!(VtdRegisters, invalidation_queue_tail), 0);
        write64(base, offset_of!(VtdRegisters, invalidation_queue_address), queue); // QS=0: 256 entries
        if !command(base, bits::QIE) {
            return Err(VtdError::Stuck("queued invalidation enable"));
        }
        QUEUE[index].store(queue, Ordering::Relaxed);
    }
    if index < MAX_UNITS {
        UNITS[index].store(base, Ordering::Relaxed);
        let decode = CapabilityDecode::from_raw(cap);
        FAULT_RECORDS[index]
            .store((decode.fault_record_offset << 16) | u64::from(decode.fault_records), Ordering::Relaxed);
        UNIT_COUNT.fetch_max(index + 1, Ordering::Relaxed);
        CACHING_MODE[index].store(decode.caching_mode, Ordering::Relaxed);
        SUPERPAGES[index].store(decode.sllps, Ordering::Relaxed);
        PSI_MAX_MASK[index].store(if decode.psi { decode.mamv + 1 } else { 0 }, Ordering::Relaxed);
        IOTLB_REG[index].store(iotlb as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Byte offset of the IOTLB register after the IVA register (at ECAP.IRO).
const IOTLB_AFTER_IVA: usize = inv_reg::IOTLB_AFTER_IVA as usize;

/// Whether translation is on (read back from GSTS).
pub fn translation_enabled(base: u64) -> bool {
    read32(base, offset_of!(VtdRegisters, global_status)) & bits::TE != 0
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
        let base = UNITS[index].load(Ordering::Relaxed);
        if base == 0 {
            continue;
        }
        write32(base, offset_of!(VtdRegisters, fault_event_data), data);
        write32(base, offset_of!(VtdRegisters, fault_event_address), address);
        write32(base, offset_of!(VtdRegisters, fault_event_upper_address), upper);
        FAULT_IRQ[index].store(true, Ordering::Relaxed);
        // Unmasking delivers a fault that became pending while masked.
        write32(base, offset_of!(VtdRegisters, fault_event_control), 0);
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
        if !FAULT_IRQ[index].load(Ordering::Relaxed) || !fault_pending(index) {
            // Units share the vector: only the ones with records count toward a storm.
            continue;
        }
        let storm = STORM.lock()[index].interrupt(INTERRUPTS_PER_TICK);
        drain_faults(index, FAULTS_PER_INTERRUPT, "interrupt");
        if storm {
            let base = UNITS[index].load(Ordering::Relaxed);
            write32(base, offset_of!(VtdRegisters, fault_event_control), fault_event::IM);
            crate::warn!(
                "iommu{index}: fault storm: more than {INTERRUPTS_PER_TICK} fault interrupts in one tick; interrupt masked, further faults suppressed until the next tick"
            );
        }
    }
}

/// Whether unit `index` holds unreported faults (FSTS.PPF or PFO).
fn fault_pending(index: usize) -> bool {
    let base = UNITS[index].load(Ordering::Relaxed);
    base != 0
        && read32(base, offset_of!(VtdRegisters, fault_status)) & (fault_event::FSTS_PPF | fault_event::FSTS_PFO) != 0
}

/// Timer tick: ends a fault storm (the unit's pending records are drained, then its
/// interrupt unmasked) and polls the units whose fault event is not programmed. For the
/// others one status read: a fault recorded while the last drain was finishing raised
/// no new event (the unit signals only when PPF becomes set), so it is drained here
/// rather than left to block every later fault.
pub fn timer_tick() {
    for index in 0..unit_count() {
        let was_masked = STORM.lock()[index].tick();
        if !FAULT_IRQ[index].load(Ordering::Relaxed) {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
            continue;
        }
        if !was_masked && fault_pending(index) {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
        }
        if was_masked {
            drain_faults(index, FAULTS_PER_POLL, "timer poll");
            let base = UNITS[index].load(Ordering::Relaxed);
            write32(base, offset_of!(VtdRegisters, fault_event_control), 0);
        }
    }
}

/// Drains unit `index`'s fault-recording registers: each fault is cleared, and up to
/// `limit` are logged and sent to the IOSpace's handler; the rest only counted. Clears
/// PFO last so the unit records (and signals) new faults again.
fn drain_faults(index: usize, limit: u32, via: &str) {
    let base = UNITS[index].load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    let records = FAULT_RECORDS[index].load(Ordering::Relaxed);
    let (offset, count) = ((records >> 16) as usize, (records & 0xffff) as usize);
    let (mut reported, mut overflowed) = (0, false);
    for _ in 0..DRAIN_PASSES {
        let status = read32(base, offset_of!(VtdRegisters, fault_status));
        if status & (fault_event::FSTS_PPF | fault_event::FSTS_PFO) == 0 {
            break;
        }
        overflowed |= status & fault_event::FSTS_PFO != 0;
        for r in 0..count {
            let at = offset + fault_event::RECORD_BYTES * r;
            let Some(fault) = FaultRecord::decode(read64(base, at), read64(base, at + 8)) else { continue };
            // Writing F back clears the record, so the slot can take the next fault.
            write64(base, at + 8, fault_event::RECORD_F);
            FAULTS_SEEN.fetch_add(1, Ordering::Relaxed);
            if reported < limit {
                report(index, fault, via);
                reported += 1;
            } else {
                FAULTS_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
            }
        }
        write32(base, offset_of!(VtdRegisters, fault_status), fault_event::FSTS_PFO);
    }
    if overflowed {
        crate::warn!("iommu{index}: fault records overflowed; some DMA faults were not recorded");
    }
}

/// Logs one fault (LOG_LINES_PER_TICK per unit at most) and tells the IOSpace the
/// requester is in, if it has a handler.
fn report(index: usize, fault: FaultRecord, via: &str) {
    if let Some(handle) = fault.interrupt_index {
        // A blocked interrupt request, not a DMA: nothing for the IOSpace's handler.
        if STORM.lock()[index].may_log(LOG_LINES_PER_TICK) {
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
    let told = crate::iommu::iospace::report_fault(fault.source, fault.reason, fault.iova, fault.write);
    if !STORM.lock()[index].may_log(LOG_LINES_PER_TICK) {
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
fn announce(index: usize, kind: u8, what: &dyn core::fmt::Debug) {
    if ANNOUNCED[index].fetch_or(1 << kind, Ordering::Relaxed) & (1 << kind) == 0 {
        let how = if uses_queue(index) { "queued" } else { "register-based" };
        crate::info!("iommu{index}: first {how} invalidation of this kind completed: {what:?}");
    }
}

/// Invalidates the context-cache entries `what` names on unit `index` and waits for
/// completion.
pub fn invalidate_context(index: usize, what: ContextInvalidation) {
    let done = if uses_queue(index) {
        queue_and_wait(index, &[what.descriptor()])
    } else {
        register_invalidate_context(UNITS[index].load(Ordering::Relaxed), what)
    };
    if !done {
        panic!("iommu{index}: context-cache invalidation {what:?} never completed");
    }
    announce(index, 0, &what);
}

/// Context-cache invalidation through CCMD (only while QI is off); waits.
fn register_invalidate_context(base: u64, what: ContextInvalidation) -> bool {
    let ccmd = offset_of!(VtdRegisters, context_command);
    write64(base, ccmd, what.register());
    spin(|| read64(base, ccmd) & inv_reg::CCMD_ICC == 0)
}

/// IOTLB invalidation through the IVA and IOTLB registers (only while QI is off); waits.
fn register_invalidate_iotlb(base: u64, iotlb: usize, what: IotlbInvalidation) -> bool {
    let (iva, command) = what.registers();
    if matches!(what, IotlbInvalidation::Pages { .. }) {
        write64(base, iotlb - IOTLB_AFTER_IVA, iva);
    }
    write64(base, iotlb, command);
    spin(|| read64(base, iotlb) & inv_reg::IOTLB_IVT == 0)
}

/// Invalidates unit `index`'s IOTLB (and paging-structure caches) for `domain`: the
/// IOVAs `range` (start, end) with one page-selective request when CAP.PSI and MAMV
/// allow, else (or with no range) the whole domain. Waits until the hardware reports
/// completion: no stale translation survives the return.
pub fn invalidate_iotlb(index: usize, domain: u16, range: Option<(u64, u64)>) {
    let max_mask = PSI_MAX_MASK[index].load(Ordering::Relaxed).checked_sub(1);
    let what = match range {
        Some((start, end)) => IotlbInvalidation::for_range(domain, start, end, max_mask),
        None => IotlbInvalidation::Domain(domain),
    };
    let done = if uses_queue(index) {
        queue_and_wait(index, &[what.descriptor()])
    } else {
        let base = UNITS[index].load(Ordering::Relaxed);
        register_invalidate_iotlb(base, IOTLB_REG[index].load(Ordering::Relaxed) as usize, what)
    };
    if !done {
        panic!("iommu{index}: IOTLB invalidation {what:?} never completed");
    }
    announce(index, if matches!(what, IotlbInvalidation::Pages { .. }) { 1 } else { 2 }, &what);
}

/// Whether every unit supports 2 MiB second-level leaves (CAP.SLLPS bit 0).
pub fn all_support_2m() -> bool {
    (0..unit_count()).all(|i| SUPERPAGES[i].load(Ordering::Relaxed) & 1 != 0)
}

/// Whether unit `index` is in caching mode.
pub fn caching_mode(index: usize) -> bool {
    CACHING_MODE[index].load(Ordering::Relaxed)
}

/// Whether unit `index` uses queued invalidation.
pub fn uses_queue(index: usize) -> bool {
    QUEUE[index].load(Ordering::Relaxed) != 0
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

/// DMA faults cleared without being reported (rate limit) since boot.
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
    use crate::iommu::intremap::{command as ir, iec};
    let base = UNITS[index].load(Ordering::Relaxed);
    write64(base, offset_of!(VtdRegisters, interrupt_remapping_table_address), irta);
    if !command(base, ir::SIRTP) {
        return Err(VtdError::Stuck("interrupt-remapping table pointer"));
    }
    if !queue_and_wait(index, &[[iec::GLOBAL, 0]]) {
        return Err(VtdError::Stuck("interrupt entry cache invalidation"));
    }
    if !command(base, ir::IRE) {
        return Err(VtdError::Stuck("interrupt remapping enable"));
    }
    Ok(())
}

/// Whether unit `index` has interrupt remapping on.
pub fn interrupt_remapping_enabled(index: usize) -> bool {
    let base = UNITS[index].load(Ordering::Relaxed);
    read32(base, offset_of!(VtdRegisters, global_status)) & crate::iommu::intremap::command::IRE != 0
}

/// Drops unit `index`'s cached copy of IRTE `handle` and waits until that completed.
pub fn invalidate_interrupt_entry(index: usize, handle: u16) {
    if !queue_and_wait(index, &[[crate::iommu::intremap::iec::index(handle), 0]]) {
        panic!("iommu{index}: interrupt entry cache invalidation never completed");
    }
}
