//! VT-d remapping units at run time: root table installed, caches invalidated,
//! translation enabled with every context entry absent (so every DMA is blocked until
//! an IOSpace assigns a device), and the fault-recording registers drained into the
//! kernel log. Register offsets come from `platform::vtd::VtdRegisters`.

use core::mem::offset_of;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{kmem, phys_to_virt};
use crate::platform::vtd::{CapabilityDecode, ExtendedCapabilityDecode, VtdRegisters};

/// GCMD/GSTS bits.
mod bits {
    pub const TE: u32 = 1 << 31;
    pub const SRTP: u32 = 1 << 30;
    /// Status bits that must be written back unchanged when issuing a command (the
    /// rest are one-shot commands).
    pub const PRESERVED: u32 = 0x96ff_ffff;
    pub const CCMD_ICC: u64 = 1 << 63;
    pub const CCMD_GLOBAL: u64 = 1 << 61;
    pub const IOTLB_IVT: u64 = 1 << 63;
    pub const IOTLB_GLOBAL: u64 = 1 << 60;
    pub const FSTS_PFO: u32 = 1 << 0;
    pub const FSTS_PPF: u32 = 1 << 1;
    pub const FAULT_F: u64 = 1 << 63;
    pub const FAULT_READ: u64 = 1 << 62;
    pub const QIE: u32 = 1 << 26;
}

/// Queued-invalidation descriptors (128-bit: low, high).
mod descriptor {
    /// Context-cache invalidation, global.
    pub const CONTEXT_GLOBAL: u64 = 0x1 | (1 << 4);
    /// IOTLB invalidation, global, draining reads and writes.
    pub const IOTLB_GLOBAL: u64 = 0x2 | (1 << 4) | (1 << 6) | (1 << 7);
    /// Invalidation wait with status write (no interrupt: QEMU 7.2 aborts on both).
    pub const WAIT_STATUS_WRITE: u64 = 0x5 | (1 << 5);
    /// Entries in the queue (QS = 0).
    pub const QUEUE_ENTRIES: u64 = 256;
}

/// Most units driven.
const MAX_UNITS: usize = 8;
/// Polls before a hardware handshake is declared stuck.
const SPIN_LIMIT: u32 = 1_000_000;
/// Faults logged per poll at most (a storm is summarised, never allowed to starve the CPU).
const FAULTS_PER_POLL: u32 = 8;

static UNITS: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
static FAULT_RECORDS: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
static UNIT_COUNT: AtomicUsize = AtomicUsize::new(0);
static FAULTS_SEEN: AtomicU64 = AtomicU64::new(0);
static IOTLB_REG: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
/// Invalidation queue page per unit (0: register-based invalidation).
static QUEUE: [AtomicU64; MAX_UNITS] = [const { AtomicU64::new(0) }; MAX_UNITS];
/// CAP.SLLPS per unit.
static SUPERPAGES: [core::sync::atomic::AtomicU8; MAX_UNITS] =
    [const { core::sync::atomic::AtomicU8::new(0) }; MAX_UNITS];
/// Units in caching mode (they may cache non-present entries: maps need invalidation too).
static CACHING_MODE: [core::sync::atomic::AtomicBool; MAX_UNITS] =
    [const { core::sync::atomic::AtomicBool::new(false) }; MAX_UNITS];
/// Where wait descriptors write their completion value.
static mut WAIT_STATUS: u32 = 0;
static WAIT_SEQUENCE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Submits `descriptor` followed by a wait descriptor and spins until the hardware
/// has written the wait's status: everything before it has completed.
fn queue_and_wait(index: usize, descriptor: u64) -> bool {
    let base = UNITS[index].load(Ordering::Relaxed);
    let queue = QUEUE[index].load(Ordering::Relaxed);
    let tail_reg = offset_of!(VtdRegisters, invalidation_queue_tail);
    let mut tail = read64(base, tail_reg) >> 4;
    let sequence = WAIT_SEQUENCE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    let status_virt = core::ptr::addr_of_mut!(WAIT_STATUS);
    let status_phys = status_virt as u64 - super::KERNEL_VMA;
    // SAFETY: WAIT_STATUS is a kernel static; the hardware writes it by DMA, we read it volatile.
    unsafe { status_virt.write_volatile(0) };
    for (low, high) in [(descriptor, 0), (descriptor::WAIT_STATUS_WRITE | (u64::from(sequence) << 32), status_phys)] {
        let slot = queue + 16 * tail;
        kmem::write_words(slot, [low, high]);
        tail = (tail + 1) % descriptor::QUEUE_ENTRIES;
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

/// Installs `root_table` (a zeroed page: no context entries, all DMA blocked),
/// invalidates the context cache and IOTLB, and enables translation.
pub fn enable(index: usize, base: u64, cap: u64, ecap: u64, root_table: u64, queue: u64) -> Result<(), VtdError> {
    write64(base, offset_of!(VtdRegisters, root_table_address), root_table);
    if !command(base, bits::SRTP) {
        return Err(VtdError::Stuck("set root table pointer"));
    }
    if !register_invalidate_context(base) {
        return Err(VtdError::Stuck("context-cache invalidation"));
    }
    let iotlb = ExtendedCapabilityDecode::from_raw(ecap).iotlb_register_offset as usize + 8;
    if !register_invalidate_iotlb(base, iotlb) {
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
        IOTLB_REG[index].store(iotlb as u64, Ordering::Relaxed);
    }
    Ok(())
}

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
        _ => "other",
    }
}

/// Drains every unit's fault-recording registers into the log. Called on each timer
/// tick; a storm is cut to FAULTS_PER_POLL lines per unit per tick.
pub fn poll_faults() {
    for index in 0..UNIT_COUNT.load(Ordering::Relaxed) {
        let base = UNITS[index].load(Ordering::Relaxed);
        if base == 0 {
            continue;
        }
        let status = read32(base, offset_of!(VtdRegisters, fault_status));
        if status & (bits::FSTS_PPF | bits::FSTS_PFO) == 0 {
            continue;
        }
        let records = FAULT_RECORDS[index].load(Ordering::Relaxed);
        let (offset, count) = ((records >> 16) as usize, (records & 0xffff) as usize);
        let mut logged = 0;
        for r in 0..count {
            let at = offset + 16 * r;
            let high = read64(base, at + 8);
            if high & bits::FAULT_F == 0 {
                continue;
            }
            let low = read64(base, at);
            let sid = (high & 0xffff) as u16;
            let reason = ((high >> 32) & 0xff) as u8;
            FAULTS_SEEN.fetch_add(1, Ordering::Relaxed);
            let is_write = high & bits::FAULT_READ == 0;
            let told = logged < FAULTS_PER_POLL && crate::iospace::report_fault(sid, reason, low & !0xfff, is_write);
            if logged < FAULTS_PER_POLL {
                crate::warn!(
                    "iommu{index}: DMA fault: requester {:02x}:{:02x}.{} reason {reason:#x} ({}) iova {:#x} {}",
                    sid >> 8,
                    (sid >> 3) & 0x1f,
                    sid & 7,
                    reason_name(reason),
                    low & !0xfff,
                    if high & bits::FAULT_READ != 0 { "read" } else { "write" }
                );
                if told {
                    crate::debug!("iommu{index}: fault reported to the IOSpace's handler");
                }
                logged += 1;
            }
            // Writing F back clears the record.
            write64(base, at + 8, bits::FAULT_F);
        }
        if status & bits::FSTS_PFO != 0 {
            crate::warn!("iommu{index}: fault records overflowed; some DMA faults were not recorded");
        }
        write32(base, offset_of!(VtdRegisters, fault_status), bits::FSTS_PFO);
    }
}

/// Invalidates unit `index`'s whole context cache and waits for completion.
pub fn invalidate_context(index: usize) {
    if QUEUE[index].load(Ordering::Relaxed) != 0 {
        if !queue_and_wait(index, descriptor::CONTEXT_GLOBAL) {
            panic!("iommu{index}: queued context-cache invalidation never completed");
        }
        return;
    }
    if !register_invalidate_context(UNITS[index].load(Ordering::Relaxed)) {
        panic!("iommu{index}: context-cache invalidation never completed");
    }
}

/// Global context-cache invalidation through CCMD (only while QI is off); waits.
fn register_invalidate_context(base: u64) -> bool {
    write64(base, offset_of!(VtdRegisters, context_command), bits::CCMD_ICC | bits::CCMD_GLOBAL);
    spin(|| read64(base, offset_of!(VtdRegisters, context_command)) & bits::CCMD_ICC == 0)
}

/// Global IOTLB invalidation through the IOTLB register at `iotlb` (only while QI is off); waits.
fn register_invalidate_iotlb(base: u64, iotlb: usize) -> bool {
    write64(base, iotlb, bits::IOTLB_IVT | bits::IOTLB_GLOBAL);
    spin(|| read64(base, iotlb) & bits::IOTLB_IVT == 0)
}

/// Invalidates unit `index`'s IOTLB and waits until the hardware reports completion: no
/// stale translation survives the return.
pub fn invalidate_iotlb(index: usize) {
    if QUEUE[index].load(Ordering::Relaxed) != 0 {
        if !queue_and_wait(index, descriptor::IOTLB_GLOBAL) {
            panic!("iommu{index}: queued IOTLB invalidation never completed");
        }
        return;
    }
    let base = UNITS[index].load(Ordering::Relaxed);
    if !register_invalidate_iotlb(base, IOTLB_REG[index].load(Ordering::Relaxed) as usize) {
        panic!("iommu{index}: IOTLB invalidation never completed");
    }
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
    use crate::platform::intremap::{command as ir, iec};
    let base = UNITS[index].load(Ordering::Relaxed);
    write64(base, offset_of!(VtdRegisters, interrupt_remapping_table_address), irta);
    if !command(base, ir::SIRTP) {
        return Err(VtdError::Stuck("interrupt-remapping table pointer"));
    }
    if !queue_and_wait(index, iec::GLOBAL) {
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
    read32(base, offset_of!(VtdRegisters, global_status)) & crate::platform::intremap::command::IRE != 0
}

/// Drops unit `index`'s cached copy of IRTE `handle` and waits until that completed.
pub fn invalidate_interrupt_entry(index: usize, handle: u16) {
    if !queue_and_wait(index, crate::platform::intremap::iec::index(handle)) {
        panic!("iommu{index}: interrupt entry cache invalidation never completed");
    }
}
