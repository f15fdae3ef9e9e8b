//! The VT-d remapping unit's register block, declared once as a type (offsets asserted
//! against the specification), and decoders for its CAP and ECAP registers.

use core::fmt;

use crate::paging::TableMemory;

use static_assertions::const_assert_eq;

/// The architected registers at the start of a remapping unit's MMIO page.
/// Accessed only with volatile reads/writes of single fields.
#[repr(C)]
#[allow(missing_docs)]
pub struct VtdRegisters {
    /// Architecture version (major 7:4, minor 3:0).
    pub version: u32,
    _reserved0: u32,
    /// Capabilities.
    pub cap: u64,
    /// Extended capabilities.
    pub ecap: u64,
    /// Global command.
    pub global_command: u32,
    /// Global status.
    pub global_status: u32,
    /// Root table address.
    pub root_table_address: u64,
    /// Context command (register-based context-cache invalidation).
    pub context_command: u64,
    _reserved1: u32,
    /// Fault status.
    pub fault_status: u32,
    /// Fault event control.
    pub fault_event_control: u32,
    /// Fault event data.
    pub fault_event_data: u32,
    /// Fault event address.
    pub fault_event_address: u32,
    /// Fault event upper address.
    pub fault_event_upper_address: u32,
    _reserved2: [u64; 2],
    /// Advanced fault log.
    pub advanced_fault_log: u64,
    _reserved3: u32,
    /// Protected memory enable.
    pub protected_memory_enable: u32,
    pub protected_low_base: u32,
    pub protected_low_limit: u32,
    pub protected_high_base: u64,
    pub protected_high_limit: u64,
    /// Invalidation queue head.
    pub invalidation_queue_head: u64,
    /// Invalidation queue tail.
    pub invalidation_queue_tail: u64,
    /// Invalidation queue address.
    pub invalidation_queue_address: u64,
    _reserved4: u32,
    /// Invalidation completion status.
    pub invalidation_completion_status: u32,
    pub invalidation_event_control: u32,
    pub invalidation_event_data: u32,
    pub invalidation_event_address: u32,
    pub invalidation_event_upper_address: u32,
    _reserved5: u64,
    /// Interrupt remapping table address.
    pub interrupt_remapping_table_address: u64,
}

const_assert_eq!(core::mem::offset_of!(VtdRegisters, version), 0x00);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, cap), 0x08);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, ecap), 0x10);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, global_command), 0x18);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, global_status), 0x1c);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, root_table_address), 0x20);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, context_command), 0x28);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, fault_status), 0x34);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, fault_event_control), 0x38);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, fault_event_data), 0x3c);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, fault_event_address), 0x40);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, fault_event_upper_address), 0x44);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, advanced_fault_log), 0x58);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, protected_memory_enable), 0x64);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, protected_high_base), 0x70);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, invalidation_queue_head), 0x80);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, invalidation_queue_tail), 0x88);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, invalidation_queue_address), 0x90);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, invalidation_completion_status), 0x9c);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, invalidation_event_control), 0xa0);
const_assert_eq!(core::mem::offset_of!(VtdRegisters, interrupt_remapping_table_address), 0xb8);
const_assert_eq!(core::mem::size_of::<VtdRegisters>(), 0xc0);

fn field(value: u64, low: u32, width: u32) -> u64 {
    (value >> low) & ((1u64 << width) - 1)
}

fn bit(value: u64, n: u32) -> bool {
    value & (1u64 << n) != 0
}

/// The CAP register, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityDecode {
    /// Domain ids supported: 2^(4 + 2*ND).
    pub domains: u32,
    /// Required write-buffer flushing.
    pub rwbf: bool,
    /// Protected low / high memory regions.
    pub plmr: bool,
    /// Protected high memory region.
    pub phmr: bool,
    /// Caching mode: not-present entries may be cached (invalidate on map too).
    pub caching_mode: bool,
    /// Supported adjusted guest address widths (bit 1: 39-bit/3-level, bit 2: 48-bit/4-level, bit 3: 57-bit/5-level).
    pub sagaw: u8,
    /// Maximum guest address width in bits.
    pub mgaw: u8,
    /// Zero-length reads.
    pub zlr: bool,
    /// Byte offset of the fault-recording registers from the register base.
    pub fault_record_offset: u64,
    /// Second-level large pages (bit 0: 2 MiB, bit 1: 1 GiB).
    pub sllps: u8,
    /// Page-selective IOTLB invalidation.
    pub psi: bool,
    /// Number of fault-recording registers.
    pub fault_records: u16,
    /// Maximum address mask value for page-selective invalidation.
    pub mamv: u8,
    /// Write / read draining.
    pub dwd: bool,
    /// Read draining.
    pub drd: bool,
}

impl CapabilityDecode {
    /// Decodes a CAP value.
    pub fn from_raw(cap: u64) -> Self {
        CapabilityDecode {
            domains: 1u32 << (4 + 2 * field(cap, 0, 3) as u32).min(31),
            rwbf: bit(cap, 4),
            plmr: bit(cap, 5),
            phmr: bit(cap, 6),
            caching_mode: bit(cap, 7),
            sagaw: field(cap, 8, 5) as u8,
            mgaw: field(cap, 16, 6) as u8 + 1,
            zlr: bit(cap, 22),
            fault_record_offset: field(cap, 24, 10) * 16,
            sllps: field(cap, 34, 4) as u8,
            psi: bit(cap, 39),
            fault_records: field(cap, 40, 8) as u16 + 1,
            mamv: field(cap, 48, 6) as u8,
            dwd: bit(cap, 54),
            drd: bit(cap, 55),
        }
    }

    /// Whether 3-level (39-bit) second-level tables are supported.
    pub fn supports_3_level(&self) -> bool {
        self.sagaw & 0b0010 != 0
    }

    /// Whether 4-level (48-bit) second-level tables are supported.
    pub fn supports_4_level(&self) -> bool {
        self.sagaw & 0b0100 != 0
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for CapabilityDecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domains={} sagaw=", self.domains)?;
        let mut first = true;
        for (bit, name) in [(1, "3lvl"), (2, "4lvl"), (3, "5lvl")] {
            if self.sagaw & (1 << bit) != 0 {
                write!(f, "{}{name}", if first { "" } else { "," })?;
                first = false;
            }
        }
        if first {
            write!(f, "none")?;
        }
        write!(f, " mgaw={} superpages=", self.mgaw)?;
        match self.sllps & 3 {
            0 => write!(f, "none")?,
            1 => write!(f, "2M")?,
            2 => write!(f, "1G")?,
            _ => write!(f, "2M,1G")?,
        }
        write!(
            f,
            " fault-records={}@{:#x} psi={} caching-mode={} rwbf={}",
            self.fault_records,
            self.fault_record_offset,
            yes(self.psi),
            yes(self.caching_mode),
            yes(self.rwbf)
        )
    }
}

/// The ECAP register, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedCapabilityDecode {
    /// Page walks snoop the CPU caches.
    pub coherent: bool,
    /// Queued invalidation.
    pub queued_invalidation: bool,
    /// Device TLBs (ATS).
    pub device_tlb: bool,
    /// Interrupt remapping.
    pub interrupt_remapping: bool,
    /// Extended interrupt mode (x2APIC ids).
    pub extended_interrupt_mode: bool,
    /// Pass-through translation.
    pub pass_through: bool,
    /// Snoop control.
    pub snoop_control: bool,
    /// Byte offset of the IOTLB registers from the register base.
    pub iotlb_register_offset: u64,
    /// Maximum handle mask value.
    pub mhmv: u8,
    /// Scalable-mode translation.
    pub scalable_mode: bool,
}

impl ExtendedCapabilityDecode {
    /// Decodes an ECAP value.
    pub fn from_raw(ecap: u64) -> Self {
        ExtendedCapabilityDecode {
            coherent: bit(ecap, 0),
            queued_invalidation: bit(ecap, 1),
            device_tlb: bit(ecap, 2),
            interrupt_remapping: bit(ecap, 3),
            extended_interrupt_mode: bit(ecap, 4),
            pass_through: bit(ecap, 6),
            snoop_control: bit(ecap, 7),
            iotlb_register_offset: field(ecap, 8, 10) * 16,
            mhmv: field(ecap, 20, 4) as u8,
            scalable_mode: bit(ecap, 43),
        }
    }
}

impl fmt::Display for ExtendedCapabilityDecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "qi={} ir={} eim={} pt={} sc={} coherent={} dev-tlb={} scalable={} iotlb@{:#x}",
            yes(self.queued_invalidation),
            yes(self.interrupt_remapping),
            yes(self.extended_interrupt_mode),
            yes(self.pass_through),
            yes(self.snoop_control),
            yes(self.coherent),
            yes(self.device_tlb),
            yes(self.scalable_mode),
            self.iotlb_register_offset
        )
    }
}

/// Second-level page-table entry bits.
pub mod sl {
    /// Readable.
    pub const READ: u64 = 1 << 0;
    /// Writable.
    pub const WRITE: u64 = 1 << 1;
    /// A 2 MiB / 1 GiB leaf.
    pub const SUPERPAGE: u64 = 1 << 7;
    /// Address bits.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// A root-table entry (legacy mode) pointing at a bus's context table.
pub const fn root_entry(context_table: u64) -> [u64; 2] {
    [(context_table & sl::ADDR) | 1, 0]
}

/// A present context entry: untranslated requests go through the second-level table at
/// `sl_root` (`levels` deep: 3 = 39-bit, 4 = 48-bit) tagged with `domain`.
pub const fn context_entry(sl_root: u64, levels: u8, domain: u16) -> [u64; 2] {
    let address_width = (levels as u64).saturating_sub(2); // 1: 39-bit, 2: 48-bit
    [(sl_root & sl::ADDR) | 1, address_width | ((domain as u64) << 8)]
}

/// Domain id of a context entry, if present.
pub const fn context_domain(entry: [u64; 2]) -> Option<u16> {
    if entry[0] & 1 == 0 {
        None
    } else {
        Some((entry[1] >> 8) as u16)
    }
}

/// A second-level leaf (or, with READ|WRITE, a table pointer).
pub const fn sl_entry(paddr: u64, read: bool, write: bool, superpage: bool) -> u64 {
    (paddr & sl::ADDR)
        | if read { sl::READ } else { 0 }
        | if write { sl::WRITE } else { 0 }
        | if superpage { sl::SUPERPAGE } else { 0 }
}

/// IOVAs the IOMMU must never translate: the MSI window (interrupt messages).
pub use abi::reserved::MSI_WINDOW;

/// Checks an IOVA range for a `levels`-deep IOSpace: aligned to `size`, inside the
/// address width, and clear of the MSI window.
pub fn check_iova(iova: u64, size: u64, levels: u8) -> Result<(), &'static str> {
    if !iova.is_multiple_of(size) {
        return Err("misaligned");
    }
    let limit = 1u64 << (12 + 9 * u32::from(levels));
    if iova.checked_add(size).is_none_or(|end| end > limit) {
        return Err("beyond the address width");
    }
    if iova < MSI_WINDOW.1 && iova + size > MSI_WINDOW.0 {
        return Err("inside the MSI window");
    }
    Ok(())
}

/// Index of `iova`'s entry in a table holding level-`level` entries (1 = 4 KiB leaves).
pub const fn sl_index(iova: u64, level: u8) -> usize {
    ((iova >> (12 + 9 * (level as u32 - 1))) & 0x1ff) as usize
}

/// Walks the second-level tables of a `levels`-deep IOSpace rooted at `root` toward
/// `iova`, stopping at the table that holds level-`level` entries. Returns (table,
/// index), or the level of the first entry on the way that is missing (not present,
/// or a superpage leaf where a table was expected).
pub fn sl_walk(mem: &impl TableMemory, root: u64, levels: u8, iova: u64, level: u8) -> Result<(u64, usize), u8> {
    let mut table = root;
    for l in (level + 1..=levels).rev() {
        let entry = mem.read(table, sl_index(iova, l));
        if entry & (sl::READ | sl::WRITE) == 0 || entry & sl::SUPERPAGE != 0 {
            return Err(l - 1);
        }
        table = entry & sl::ADDR;
    }
    Ok((table, sl_index(iova, level)))
}

/// Queued-invalidation descriptor layouts (legacy 128-bit descriptors, VT-d 6.5.2).
pub mod qi {
    /// Type field (low bits 3:0): context-cache invalidation.
    pub const TYPE_CONTEXT: u64 = 0x1;
    /// Type: IOTLB invalidation.
    pub const TYPE_IOTLB: u64 = 0x2;
    /// Type: invalidation wait.
    pub const TYPE_WAIT: u64 = 0x5;
    /// Granularity field (low bits 5:4).
    pub const GRANULARITY_SHIFT: u32 = 4;
    /// IOTLB: drain writes / drain reads (low bits 6, 7).
    pub const IOTLB_DRAIN_WRITES: u64 = 1 << 6;
    /// See [`IOTLB_DRAIN_WRITES`].
    pub const IOTLB_DRAIN_READS: u64 = 1 << 7;
    /// Domain id (low bits 31:16).
    pub const DID_SHIFT: u32 = 16;
    /// Context: source id (low bits 47:32).
    pub const SID_SHIFT: u32 = 32;
    /// Context: function mask (low bits 49:48).
    pub const FM_SHIFT: u32 = 48;
    /// IOTLB high word: invalidation hint (bit 6: only leaves changed). Never set here.
    pub const IOTLB_IH: u64 = 1 << 6;
    /// IOTLB high word: address mask (bits 5:0).
    pub const IOTLB_AM: u64 = 0x3f;
    /// Wait: write the status data to the status address (bit 5). Never combined with
    /// the interrupt flag (bit 4): QEMU 7.2 aborts on both.
    pub const WAIT_STATUS_WRITE: u64 = 1 << 5;
    /// Wait: status data (low bits 63:32).
    pub const WAIT_DATA_SHIFT: u32 = 32;
    /// Entries in a queue of QS = 0 (one page of 16-byte descriptors).
    pub const QUEUE_ENTRIES: u64 = 256;
}

/// Register-based invalidation layouts: CCMD, the IOTLB register and IVA (VT-d 11.4.4, 11.4.8).
pub mod inv_reg {
    /// CCMD: invalidate context cache (set to start, hardware clears it when done).
    pub const CCMD_ICC: u64 = 1 << 63;
    /// CCMD: requested granularity (bits 62:61).
    pub const CCMD_CIRG_SHIFT: u32 = 61;
    /// CCMD: function mask (bits 33:32).
    pub const CCMD_FM_SHIFT: u32 = 32;
    /// CCMD: source id (bits 31:16).
    pub const CCMD_SID_SHIFT: u32 = 16;
    /// IOTLB register: invalidate (set to start, cleared when done).
    pub const IOTLB_IVT: u64 = 1 << 63;
    /// IOTLB register: requested granularity (bits 61:60).
    pub const IOTLB_IIRG_SHIFT: u32 = 60;
    /// IOTLB register: drain reads / writes (bits 49, 48).
    pub const IOTLB_DR: u64 = 1 << 49;
    /// See [`IOTLB_DR`].
    pub const IOTLB_DW: u64 = 1 << 48;
    /// IOTLB register: domain id (bits 47:32).
    pub const IOTLB_DID_SHIFT: u32 = 32;
    /// Byte offset of the IOTLB register from the IVA register (both at ECAP.IRO).
    pub const IOTLB_AFTER_IVA: u64 = 8;
}

/// Invalidation granularities, as encoded in descriptors and registers.
mod granularity {
    pub const GLOBAL: u64 = 1;
    pub const DOMAIN: u64 = 2;
    /// Context: device-selective; IOTLB: page-selective within a domain.
    pub const DEVICE_OR_PAGE: u64 = 3;
}

/// A context-cache invalidation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextInvalidation {
    /// Every context entry.
    Global,
    /// The entries of one PCI function (function mask 0) tagged with `domain`.
    Device {
        /// Domain id of the entry being changed (0 for not-present entries in caching mode).
        domain: u16,
        /// Requester id (bus << 8 | device << 3 | function).
        source: u16,
    },
}

impl ContextInvalidation {
    fn fields(self) -> (u64, u64, u64) {
        match self {
            ContextInvalidation::Global => (granularity::GLOBAL, 0, 0),
            ContextInvalidation::Device { domain, source } => {
                (granularity::DEVICE_OR_PAGE, u64::from(domain), u64::from(source))
            }
        }
    }

    /// The queued-invalidation descriptor.
    pub fn descriptor(self) -> [u64; 2] {
        let (g, did, sid) = self.fields();
        // Function mask 0: exactly this function.
        [qi::TYPE_CONTEXT | (g << qi::GRANULARITY_SHIFT) | (did << qi::DID_SHIFT) | (sid << qi::SID_SHIFT), 0]
    }

    /// The CCMD register value that starts it.
    pub fn register(self) -> u64 {
        let (g, did, sid) = self.fields();
        inv_reg::CCMD_ICC | (g << inv_reg::CCMD_CIRG_SHIFT) | (sid << inv_reg::CCMD_SID_SHIFT) | did
    }
}

/// An IOTLB (and paging-structure cache) invalidation request. Reads and writes are
/// always drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbInvalidation {
    /// Every domain.
    Global,
    /// Everything tagged with one domain id.
    Domain(u16),
    /// The 2^`mask` pages from `iova` (aligned to that size) of one domain, with the
    /// paging-structure entries above them (invalidation hint clear).
    Pages {
        /// Domain id.
        domain: u16,
        /// First IOVA, aligned to 4 KiB << mask.
        iova: u64,
        /// Address mask (AM): log2 of the page count.
        mask: u8,
    },
}

impl IotlbInvalidation {
    /// The cheapest request covering IOVAs `start..end` of `domain` on a unit whose
    /// CAP.PSI/MAMV allow page-selective requests up to mask `max_mask` (`None`: no PSI):
    /// one page-selective request over the smallest aligned power-of-two block holding
    /// the range, or domain-selective when that block's mask exceeds MAMV.
    pub fn for_range(domain: u16, start: u64, end: u64, max_mask: Option<u8>) -> Self {
        let (iova, mask) = covering_block(start, end);
        match max_mask {
            Some(max) if mask <= max => IotlbInvalidation::Pages { domain, iova, mask },
            _ => IotlbInvalidation::Domain(domain),
        }
    }

    fn fields(self) -> (u64, u64, u64, u64) {
        match self {
            IotlbInvalidation::Global => (granularity::GLOBAL, 0, 0, 0),
            IotlbInvalidation::Domain(d) => (granularity::DOMAIN, u64::from(d), 0, 0),
            IotlbInvalidation::Pages { domain, iova, mask } => {
                (granularity::DEVICE_OR_PAGE, u64::from(domain), iova & sl::ADDR, u64::from(mask) & qi::IOTLB_AM)
            }
        }
    }

    /// The queued-invalidation descriptor.
    pub fn descriptor(self) -> [u64; 2] {
        let (g, did, addr, am) = self.fields();
        let low = qi::TYPE_IOTLB
            | (g << qi::GRANULARITY_SHIFT)
            | qi::IOTLB_DRAIN_WRITES
            | qi::IOTLB_DRAIN_READS
            | (did << qi::DID_SHIFT);
        [low, addr | am]
    }

    /// The (IVA, IOTLB) register values: IVA first (page-selective only), then the IOTLB
    /// register write starts the invalidation.
    pub fn registers(self) -> (u64, u64) {
        let (g, did, addr, am) = self.fields();
        let iotlb = inv_reg::IOTLB_IVT
            | (g << inv_reg::IOTLB_IIRG_SHIFT)
            | inv_reg::IOTLB_DR
            | inv_reg::IOTLB_DW
            | (did << inv_reg::IOTLB_DID_SHIFT);
        (addr | am, iotlb)
    }
}

/// The smallest naturally aligned block of 2^mask 4 KiB pages holding `start..end`
/// (end exclusive, non-empty): (first IOVA, mask).
pub fn covering_block(start: u64, end: u64) -> (u64, u8) {
    let last = end.max(start + 1) - 1;
    let differing = 64 - ((start >> 12) ^ (last >> 12)).leading_zeros();
    let mask = differing as u8;
    let size_mask = (1u64 << (12 + u32::from(mask)).min(63)) - 1;
    (start & !size_mask, mask)
}

/// An invalidation-wait descriptor writing `data` to `status` when everything before it
/// has completed.
pub const fn wait_descriptor(data: u32, status: u64) -> [u64; 2] {
    [qi::TYPE_WAIT | qi::WAIT_STATUS_WRITE | ((data as u64) << qi::WAIT_DATA_SHIFT), status & !3]
}

/// Fault-event registers (FECTL, FEDATA, FEADDR) and fault-recording layouts.
pub mod fault_event {
    /// FECTL: interrupt mask.
    pub const IM: u32 = 1 << 31;
    /// FECTL: interrupt pending (read-only).
    pub const IP: u32 = 1 << 30;
    /// FEADDR in compatibility format: the LAPIC MSI window.
    pub const MSI_ADDRESS: u32 = abi::reserved::MSI_WINDOW.0 as u32;
    /// FEADDR: destination APIC id (bits 19:12).
    pub const DEST_SHIFT: u32 = 12;
    /// FSTS: primary fault overflow.
    pub const FSTS_PFO: u32 = 1 << 0;
    /// FSTS: primary pending fault.
    pub const FSTS_PPF: u32 = 1 << 1;
    /// Fault record high word: fault (write 1 to clear).
    pub const RECORD_F: u64 = 1 << 63;
    /// Fault record high word: type (1 = read request).
    pub const RECORD_READ: u64 = 1 << 62;
    /// Fault record high word: fault reason (bits 39:32).
    pub const RECORD_REASON_SHIFT: u32 = 32;
    /// Bytes per fault-recording register.
    pub const RECORD_BYTES: usize = 16;
}

/// (FEDATA, FEADDR, FEUADDR) for a compatibility-format MSI carrying `vector` to the
/// LAPIC with xAPIC id `apic_id` (fixed delivery, physical destination, edge);
/// `None` if the id does not fit the 8-bit destination field.
pub fn fault_event_msi(apic_id: u32, vector: u8) -> Option<(u32, u32, u32)> {
    let id = u8::try_from(apic_id).ok()?;
    Some((u32::from(vector), fault_event::MSI_ADDRESS | (u32::from(id) << fault_event::DEST_SHIFT), 0))
}

/// A decoded fault-recording register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Requester id.
    pub source: u16,
    /// Fault reason code.
    pub reason: u8,
    /// The faulting IOVA's page.
    pub iova: u64,
    /// A write request (else a read).
    pub write: bool,
    /// For an interrupt-remapping fault (reasons 0x20..=0x26), the interrupt index the
    /// request named (the record's FI field then holds it instead of an address).
    pub interrupt_index: Option<u16>,
}

/// Fault reasons of interrupt-remapping faults (VT-d 7.1.3).
pub const INTERRUPT_FAULT_REASONS: core::ops::RangeInclusive<u8> = 0x20..=0x26;

impl FaultRecord {
    /// Decodes a record's (low, high) words; `None` if its F bit is clear.
    pub fn decode(low: u64, high: u64) -> Option<Self> {
        if high & fault_event::RECORD_F == 0 {
            return None;
        }
        let reason = (high >> fault_event::RECORD_REASON_SHIFT) as u8;
        let interrupt_index = INTERRUPT_FAULT_REASONS.contains(&reason).then_some((low >> 48) as u16);
        Some(FaultRecord {
            source: high as u16,
            reason,
            iova: if interrupt_index.is_some() { 0 } else { low & !0xfff },
            write: high & fault_event::RECORD_READ == 0,
            interrupt_index,
        })
    }
}

/// Per-unit fault-interrupt rate limit: more than `limit` interrupts within one timer
/// tick mask the unit's fault event until the next tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStorm {
    /// Fault interrupts since the last tick.
    pub interrupts: u32,
    /// Whether the fault event is masked for the rest of this tick.
    pub masked: bool,
    /// Fault lines logged since the last tick.
    pub logged: u32,
}

impl FaultStorm {
    /// A quiet unit.
    pub const fn new() -> Self {
        FaultStorm { interrupts: 0, masked: false, logged: 0 }
    }

    /// Whether one more fault line may be logged this tick (at most `limit`; faults
    /// beyond it are still reported to their handlers).
    pub fn may_log(&mut self, limit: u32) -> bool {
        self.logged = self.logged.saturating_add(1);
        self.logged <= limit
    }

    /// One fault interrupt arrived; true if it is the one that starts a storm (mask now).
    pub fn interrupt(&mut self, limit: u32) -> bool {
        self.interrupts = self.interrupts.saturating_add(1);
        if self.interrupts > limit && !self.masked {
            self.masked = true;
            return true;
        }
        false
    }

    /// A timer tick: the count restarts; true if the unit was masked (unmask now).
    pub fn tick(&mut self) -> bool {
        self.interrupts = 0;
        self.logged = 0;
        core::mem::replace(&mut self.masked, false)
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    extern crate std;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Tables(HashMap<(u64, usize), u64>);
    impl TableMemory for Tables {
        fn read(&self, table: u64, index: usize) -> u64 {
            *self.0.get(&(table, index)).unwrap_or(&0)
        }
        fn write(&mut self, table: u64, index: usize, value: u64) {
            self.0.insert((table, index), value);
        }
        fn alloc_table(&mut self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn walks_three_and_four_levels() {
        let iova = (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12);
        assert_eq!([4, 3, 2, 1].map(|l| sl_index(iova, l)), [1, 2, 3, 4]);
        // 4 levels: root 0x1000 -> 0x2000 -> 0x3000 -> leaf table 0x4000.
        let mut t = Tables::default();
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(3), "nothing below the root");
        t.write(0x1000, 1, sl_entry(0x2000, true, true, false));
        t.write(0x2000, 2, sl_entry(0x3000, true, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(1));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 2), Ok((0x3000, 3)), "2 MiB leaves live in level-2 tables");
        t.write(0x3000, 3, sl_entry(0x4000, true, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Ok((0x4000, 4)));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 4), Ok((0x1000, 1)), "the root holds level-4 entries");
        // A superpage where a table was expected stops the walk.
        t.write(0x3000, 3, sl_entry(0x20_0000, true, true, true));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Err(1));
        // A write-only table pointer counts as present; a zero entry does not.
        t.write(0x3000, 3, sl_entry(0x4000, false, true, false));
        assert_eq!(sl_walk(&t, 0x1000, 4, iova, 1), Ok((0x4000, 4)));
        // 3 levels: the root holds level-3 entries, bit 39 of the IOVA is not used.
        let low = iova & ((1 << 39) - 1);
        let mut t = Tables::default();
        t.write(0x1000, 2, sl_entry(0x3000, true, true, false));
        t.write(0x3000, 3, sl_entry(0x4000, true, false, false));
        assert_eq!(sl_walk(&t, 0x1000, 3, low, 1), Ok((0x4000, 4)));
        assert_eq!(sl_walk(&t, 0x1000, 3, low + (1 << 21), 1), Err(1), "the next 2 MiB has no table");
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn entry_encodings() {
        assert_eq!(root_entry(0x5000), [0x5001, 0]);
        let c = context_entry(0x9000, 3, 7);
        assert_eq!(c, [0x9001, 1 | (7 << 8)]);
        assert_eq!(context_domain(c), Some(7));
        assert_eq!(context_domain([0, 0]), None);
        assert_eq!(context_entry(0x9000, 4, 1)[1] & 7, 2);
        assert_eq!(sl_entry(0x20_0000, true, false, true), 0x20_0000 | sl::READ | sl::SUPERPAGE);
    }

    #[test]
    fn iova_checks() {
        assert!(check_iova(0x1000, 0x1000, 3).is_ok());
        assert_eq!(check_iova(0x1800, 0x1000, 3), Err("misaligned"));
        assert_eq!(check_iova(1 << 39, 0x1000, 3), Err("beyond the address width"));
        assert!(check_iova(1 << 39, 0x1000, 4).is_ok());
        assert_eq!(check_iova(0xfee0_0000, 0x1000, 3), Err("inside the MSI window"));
        assert_eq!(check_iova(0xfee0_0000 - 0x20_0000, 0x20_0000, 3), Ok(()));
        // 16 MiB from 0xfe000000 covers the MSI window.
        assert!(check_iova(0xfe00_0000, 0x100_0000, 3).is_err());
    }

    extern crate std;

    /// CAP assembled field by field: ND=2 (256 domains), SAGAW=0b00110 (3 and 4 level),
    /// MGAW=47 (48 bits), FRO=0x22 (0x220), SLLPS=1 (2M), PSI, NFR=0 (1 record), MAMV=0x12.
    fn cap() -> u64 {
        2 | (0b00110 << 8) | (47 << 16) | (0x22 << 24) | (1 << 34) | (1 << 39) | (0x12 << 48)
    }

    #[test]
    fn capability_fields() {
        let d = CapabilityDecode::from_raw(cap());
        assert_eq!(d.domains, 256);
        assert!(d.supports_3_level() && d.supports_4_level());
        assert_eq!(d.mgaw, 48);
        assert_eq!(d.fault_record_offset, 0x220);
        assert_eq!(d.sllps, 1);
        assert!(d.psi && !d.caching_mode && !d.rwbf);
        assert_eq!(d.fault_records, 1);
        assert_eq!(d.mamv, 0x12);
        let text = std::format!("{d}");
        assert!(text.contains("domains=256 sagaw=3lvl,4lvl mgaw=48 superpages=2M fault-records=1@0x220"), "{text}");
        let cm = CapabilityDecode::from_raw(cap() | (1 << 7) | (3 << 40));
        assert!(cm.caching_mode);
        assert_eq!(cm.fault_records, 4);
        assert!(std::format!("{}", CapabilityDecode::from_raw(0)).contains("sagaw=none"));
    }

    #[test]
    fn extended_capability_fields() {
        // QI, IR, EIM, PT, SC, IRO=0x20 (IOTLB at 0x200).
        let ecap = (1 << 1) | (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7) | (0x20 << 8);
        let d = ExtendedCapabilityDecode::from_raw(ecap);
        assert!(d.queued_invalidation && d.interrupt_remapping && d.extended_interrupt_mode);
        assert!(d.pass_through && d.snoop_control && !d.coherent && !d.device_tlb);
        assert_eq!(d.iotlb_register_offset, 0x200);
        assert!(std::format!("{d}").starts_with("qi=yes ir=yes"));
    }
}

#[cfg(test)]
mod invalidation_tests;
