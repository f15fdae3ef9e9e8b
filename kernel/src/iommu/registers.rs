//! The VT-d register block (offsets asserted), CAP/ECAP decoders, fault records.

use core::fmt;

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
mod tests {
    use super::*;
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

    #[test]
    fn fault_event_message() {
        assert_eq!(fault_event_msi(0, 0xf0), Some((0xf0, 0xfee0_0000, 0)));
        assert_eq!(fault_event_msi(3, 0xf0), Some((0xf0, 0xfee0_3000, 0)));
        assert_eq!(fault_event_msi(300, 0xf0), None, "x2APIC ids do not fit");
    }

    #[test]
    fn fault_records_decode() {
        let high = fault_event::RECORD_F | (5 << 32) | 0x18;
        let r = FaultRecord::decode(0x1000_2abc, high).unwrap();
        assert_eq!(r, FaultRecord { source: 0x18, reason: 5, iova: 0x1000_2000, write: true, interrupt_index: None });
        let read = FaultRecord::decode(0x3000, high | fault_event::RECORD_READ).unwrap();
        assert!(!read.write);
        assert_eq!(FaultRecord::decode(0x3000, high & !fault_event::RECORD_F), None);
        // Interrupt-remapping faults carry the interrupt index in FI bits 63:48, no address.
        let sid_mismatch = fault_event::RECORD_F | (0x26 << 32) | 0x20;
        let ir = FaultRecord::decode(0x0081_0000_0000_0000, sid_mismatch).unwrap();
        assert_eq!((ir.source, ir.reason, ir.iova, ir.interrupt_index), (0x20, 0x26, 0, Some(0x81)));
    }

    #[test]
    fn fault_storm_masks_until_the_next_tick() {
        let mut s = FaultStorm::new();
        assert!(!s.tick(), "a quiet tick unmasks nothing");
        assert_eq!([0; 3].map(|_| s.interrupt(3)), [false; 3]);
        assert!(s.interrupt(3), "the 4th interrupt in a tick starts the storm");
        assert!(!s.interrupt(3), "masking happens once");
        assert!(s.masked);
        assert!(s.tick(), "the tick unmasks");
        assert!(!s.tick());
        assert_eq!([0; 3].map(|_| s.interrupt(3)), [false; 3], "the count restarted");
        assert_eq!([0; 3].map(|_| s.may_log(2)), [true, true, false], "two lines per tick");
        s.tick();
        assert!(s.may_log(2), "the log budget restarted");
    }
}
