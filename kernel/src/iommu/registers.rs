//! The VT-d register block (typed, offsets asserted), CAP/ECAP, fault records.
//!
//! The blocks are `tock-registers` structs: each register has its width, access and
//! bitfield type, and `register_structs!` checks every offset and the block's size
//! (`@END`) at compile time. `unit` creates them from a unit's base address; the
//! bitfields also decode plain values (`LocalRegisterCopy`), which the host tests use.

use core::fmt;

use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs, LocalRegisterCopy};

register_bitfields![u32,
    /// GCMD (commands) and GSTS (their status): the two share one layout.
    pub GlobalCommand [
        /// Translation enable / enabled.
        TE OFFSET(31) NUMBITS(1) [],
        /// Set root table pointer (one-shot) / pointer latched.
        SRTP OFFSET(30) NUMBITS(1) [],
        /// Set fault log (one-shot).
        SFL OFFSET(29) NUMBITS(1) [],
        /// Advanced fault logging enable.
        EAFL OFFSET(28) NUMBITS(1) [],
        /// Write buffer flush (one-shot).
        WBF OFFSET(27) NUMBITS(1) [],
        /// Queued invalidation enable / enabled.
        QIE OFFSET(26) NUMBITS(1) [],
        /// Interrupt remapping enable / enabled.
        IRE OFFSET(25) NUMBITS(1) [],
        /// Set interrupt-remapping table pointer (one-shot) / pointer latched.
        SIRTP OFFSET(24) NUMBITS(1) [],
        /// Compatibility-format interrupts pass through (kept clear: they are blocked).
        CFI OFFSET(23) NUMBITS(1) []
    ],
    /// FSTS: fault status.
    pub FaultStatus [
        /// Primary fault overflow (write 1 to clear).
        PFO OFFSET(0) NUMBITS(1) [],
        /// Primary pending fault: some fault-recording register holds a fault.
        PPF OFFSET(1) NUMBITS(1) [],
        /// Index of the first fault-recording register holding a fault.
        FRI OFFSET(8) NUMBITS(8) []
    ],
    /// FECTL: fault event control.
    pub FaultEventControl [
        /// Interrupt mask.
        IM OFFSET(31) NUMBITS(1) [],
        /// Interrupt pending (read-only).
        IP OFFSET(30) NUMBITS(1) []
    ],
    /// FEADDR: fault event message address (compatibility format).
    pub FaultEventAddress [
        /// Bits 31:20 of the MSI window's base (0xfee).
        WINDOW OFFSET(20) NUMBITS(12) [],
        /// Destination xAPIC id.
        DESTINATION OFFSET(12) NUMBITS(8) []
    ]
];

register_bitfields![u64,
    /// CAP: capabilities.
    pub Capability [
        /// Domain ids supported: 2^(4 + 2*ND).
        ND OFFSET(0) NUMBITS(3) [],
        /// Required write-buffer flushing.
        RWBF OFFSET(4) NUMBITS(1) [],
        /// Protected low memory region.
        PLMR OFFSET(5) NUMBITS(1) [],
        /// Protected high memory region.
        PHMR OFFSET(6) NUMBITS(1) [],
        /// Caching mode.
        CM OFFSET(7) NUMBITS(1) [],
        /// Supported adjusted guest address widths.
        SAGAW OFFSET(8) NUMBITS(5) [],
        /// Maximum guest address width, minus one.
        MGAW OFFSET(16) NUMBITS(6) [],
        /// Zero-length reads.
        ZLR OFFSET(22) NUMBITS(1) [],
        /// Fault-recording register offset, in 16-byte units.
        FRO OFFSET(24) NUMBITS(10) [],
        /// Second-level large page support.
        SLLPS OFFSET(34) NUMBITS(4) [],
        /// Page-selective invalidation.
        PSI OFFSET(39) NUMBITS(1) [],
        /// Number of fault-recording registers, minus one.
        NFR OFFSET(40) NUMBITS(8) [],
        /// Maximum address mask value.
        MAMV OFFSET(48) NUMBITS(6) [],
        /// Write draining.
        DWD OFFSET(54) NUMBITS(1) [],
        /// Read draining.
        DRD OFFSET(55) NUMBITS(1) []
    ],
    /// ECAP: extended capabilities.
    pub ExtendedCapability [
        /// Page walks are coherent (snoop CPU caches).
        C OFFSET(0) NUMBITS(1) [],
        /// Queued invalidation.
        QI OFFSET(1) NUMBITS(1) [],
        /// Device TLBs.
        DT OFFSET(2) NUMBITS(1) [],
        /// Interrupt remapping.
        IR OFFSET(3) NUMBITS(1) [],
        /// Extended interrupt mode.
        EIM OFFSET(4) NUMBITS(1) [],
        /// Pass-through.
        PT OFFSET(6) NUMBITS(1) [],
        /// Snoop control.
        SC OFFSET(7) NUMBITS(1) [],
        /// IOTLB register offset, in 16-byte units.
        IRO OFFSET(8) NUMBITS(10) [],
        /// Maximum handle mask value.
        MHMV OFFSET(20) NUMBITS(4) [],
        /// Scalable-mode translation.
        SMTS OFFSET(43) NUMBITS(1) []
    ],
    /// CCMD: register-based context-cache invalidation.
    pub ContextCommand [
        /// Invalidate context cache: set to start, the unit clears it when done.
        ICC OFFSET(63) NUMBITS(1) [],
        /// Requested granularity.
        CIRG OFFSET(61) NUMBITS(2) [],
        /// Function mask.
        FM OFFSET(32) NUMBITS(2) [],
        /// Source id.
        SID OFFSET(16) NUMBITS(16) [],
        /// Domain id.
        DID OFFSET(0) NUMBITS(16) []
    ],
    /// The IOTLB invalidate register.
    pub IotlbCommand [
        /// Invalidate IOTLB: set to start, the unit clears it when done.
        IVT OFFSET(63) NUMBITS(1) [],
        /// Requested granularity.
        IIRG OFFSET(60) NUMBITS(2) [],
        /// Drain reads.
        DR OFFSET(49) NUMBITS(1) [],
        /// Drain writes.
        DW OFFSET(48) NUMBITS(1) [],
        /// Domain id.
        DID OFFSET(32) NUMBITS(16) []
    ],
    /// The high word of a fault-recording register.
    pub FaultRecordHigh [
        /// Fault (write 1 to clear).
        F OFFSET(63) NUMBITS(1) [],
        /// Type: 1 = read request (else write).
        T OFFSET(62) NUMBITS(1) [],
        /// Fault reason.
        FR OFFSET(32) NUMBITS(8) [],
        /// Source (requester) id.
        SID OFFSET(0) NUMBITS(16) []
    ],
    /// The low word of a fault-recording register.
    pub FaultRecordLow [
        /// Fault information: the faulting page, or for interrupt-remapping faults the
        /// interrupt index in bits 63:48.
        FI OFFSET(12) NUMBITS(52) [],
        /// Interrupt index of an interrupt-remapping fault.
        INTERRUPT_INDEX OFFSET(48) NUMBITS(16) []
    ]
];

register_structs! {
    /// The architected registers at the start of a remapping unit's MMIO page.
    pub VtdRegisters {
        /// Architecture version (major 7:4, minor 3:0).
        (0x00 => pub version: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// Capabilities.
        (0x08 => pub cap: ReadOnly<u64, Capability::Register>),
        /// Extended capabilities.
        (0x10 => pub ecap: ReadOnly<u64, ExtendedCapability::Register>),
        /// Global command.
        (0x18 => pub global_command: WriteOnly<u32, GlobalCommand::Register>),
        /// Global status.
        (0x1c => pub global_status: ReadOnly<u32, GlobalCommand::Register>),
        /// Root table address.
        (0x20 => pub root_table_address: ReadWrite<u64>),
        /// Context command (register-based context-cache invalidation).
        (0x28 => pub context_command: ReadWrite<u64, ContextCommand::Register>),
        (0x30 => _reserved1),
        /// Fault status.
        (0x34 => pub fault_status: ReadWrite<u32, FaultStatus::Register>),
        /// Fault event control.
        (0x38 => pub fault_event_control: ReadWrite<u32, FaultEventControl::Register>),
        /// Fault event data.
        (0x3c => pub fault_event_data: ReadWrite<u32>),
        /// Fault event address.
        (0x40 => pub fault_event_address: ReadWrite<u32, FaultEventAddress::Register>),
        /// Fault event upper address.
        (0x44 => pub fault_event_upper_address: ReadWrite<u32>),
        (0x48 => _reserved2),
        /// Advanced fault log.
        (0x58 => pub advanced_fault_log: ReadWrite<u64>),
        (0x60 => _reserved3),
        /// Protected memory enable.
        (0x64 => pub protected_memory_enable: ReadWrite<u32>),
        /// Protected low-memory base.
        (0x68 => pub protected_low_base: ReadWrite<u32>),
        /// Protected low-memory limit.
        (0x6c => pub protected_low_limit: ReadWrite<u32>),
        /// Protected high-memory base.
        (0x70 => pub protected_high_base: ReadWrite<u64>),
        /// Protected high-memory limit.
        (0x78 => pub protected_high_limit: ReadWrite<u64>),
        /// Invalidation queue head.
        (0x80 => pub invalidation_queue_head: ReadOnly<u64>),
        /// Invalidation queue tail (byte offset of the next free 16-byte descriptor).
        (0x88 => pub invalidation_queue_tail: ReadWrite<u64>),
        /// Invalidation queue address (queue size QS in bits 2:0; 0 = one page).
        (0x90 => pub invalidation_queue_address: ReadWrite<u64>),
        (0x98 => _reserved4),
        /// Invalidation completion status.
        (0x9c => pub invalidation_completion_status: ReadWrite<u32>),
        /// Invalidation event control.
        (0xa0 => pub invalidation_event_control: ReadWrite<u32>),
        /// Invalidation event data.
        (0xa4 => pub invalidation_event_data: ReadWrite<u32>),
        /// Invalidation event address.
        (0xa8 => pub invalidation_event_address: ReadWrite<u32>),
        /// Invalidation event upper address.
        (0xac => pub invalidation_event_upper_address: ReadWrite<u32>),
        (0xb0 => _reserved5),
        /// Interrupt remapping table address.
        (0xb8 => pub interrupt_remapping_table_address: ReadWrite<u64>),
        (0xc0 => @END),
    },

    /// The IOTLB registers, at ECAP.IRO * 16 from the unit's base.
    pub IotlbRegisters {
        /// Invalidate address (IVA): page address | AM, for page-selective requests.
        (0x00 => pub invalidate_address: WriteOnly<u64>),
        /// The IOTLB invalidate register: writing it starts the invalidation.
        (0x08 => pub invalidate: ReadWrite<u64, IotlbCommand::Register>),
        (0x10 => @END),
    },

    /// One fault-recording register (CAP.NFR + 1 of them from CAP.FRO * 16).
    pub FaultRecordingRegister {
        /// Fault information (the faulting page).
        (0x00 => pub low: ReadOnly<u64, FaultRecordLow::Register>),
        /// Fault, type, reason and source id.
        (0x08 => pub high: ReadWrite<u64, FaultRecordHigh::Register>),
        (0x10 => @END),
    }
}

/// GCMD bits that are one-shot commands; the others report state that each command
/// write must repeat unchanged (VT-d 11.4.4.1).
pub fn one_shot_commands() -> u32 {
    (GlobalCommand::SRTP::SET + GlobalCommand::SFL::SET + GlobalCommand::WBF::SET + GlobalCommand::SIRTP::SET).value
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
        use Capability::*;
        let cap = LocalRegisterCopy::<u64, Capability::Register>::new(cap);
        CapabilityDecode {
            domains: 1u32 << (4 + 2 * cap.read(ND) as u32).min(31),
            rwbf: cap.is_set(RWBF),
            plmr: cap.is_set(PLMR),
            phmr: cap.is_set(PHMR),
            caching_mode: cap.is_set(CM),
            sagaw: cap.read(SAGAW) as u8,
            mgaw: cap.read(MGAW) as u8 + 1,
            zlr: cap.is_set(ZLR),
            fault_record_offset: cap.read(FRO) * 16,
            sllps: cap.read(SLLPS) as u8,
            psi: cap.is_set(PSI),
            fault_records: cap.read(NFR) as u16 + 1,
            mamv: cap.read(MAMV) as u8,
            dwd: cap.is_set(DWD),
            drd: cap.is_set(DRD),
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
        use ExtendedCapability::*;
        let ecap = LocalRegisterCopy::<u64, ExtendedCapability::Register>::new(ecap);
        ExtendedCapabilityDecode {
            coherent: ecap.is_set(C),
            queued_invalidation: ecap.is_set(QI),
            device_tlb: ecap.is_set(DT),
            interrupt_remapping: ecap.is_set(IR),
            extended_interrupt_mode: ecap.is_set(EIM),
            pass_through: ecap.is_set(PT),
            snoop_control: ecap.is_set(SC),
            iotlb_register_offset: ecap.read(IRO) * 16,
            mhmv: ecap.read(MHMV) as u8,
            scalable_mode: ecap.is_set(SMTS),
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

/// (FEDATA, FEADDR, FEUADDR) for a compatibility-format MSI carrying `vector` to the
/// LAPIC with xAPIC id `apic_id` (fixed delivery, physical destination, edge);
/// `None` if the id does not fit the 8-bit destination field.
pub fn fault_event_msi(apic_id: u32, vector: u8) -> Option<(u32, u32, u32)> {
    let id = u8::try_from(apic_id).ok()?;
    let window = (abi::reserved::MSI_WINDOW.0 >> 20) as u32;
    let address = FaultEventAddress::WINDOW.val(window) + FaultEventAddress::DESTINATION.val(u32::from(id));
    Some((u32::from(vector), address.value, 0))
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
        let low = LocalRegisterCopy::<u64, FaultRecordLow::Register>::new(low);
        let high = LocalRegisterCopy::<u64, FaultRecordHigh::Register>::new(high);
        if !high.is_set(FaultRecordHigh::F) {
            return None;
        }
        let reason = high.read(FaultRecordHigh::FR) as u8;
        let interrupt_index =
            INTERRUPT_FAULT_REASONS.contains(&reason).then_some(low.read(FaultRecordLow::INTERRUPT_INDEX) as u16);
        Some(FaultRecord {
            source: high.read(FaultRecordHigh::SID) as u16,
            reason,
            iova: if interrupt_index.is_some() { 0 } else { low.read(FaultRecordLow::FI) << 12 },
            write: !high.is_set(FaultRecordHigh::T),
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
        let (f, read) = (FaultRecordHigh::F::SET.value, FaultRecordHigh::T::SET.value);
        assert_eq!((f, read), (1 << 63, 1 << 62));
        let high = f | (5 << 32) | 0x18;
        let r = FaultRecord::decode(0x1000_2abc, high).unwrap();
        assert_eq!(r, FaultRecord { source: 0x18, reason: 5, iova: 0x1000_2000, write: true, interrupt_index: None });
        let read = FaultRecord::decode(0x3000, high | read).unwrap();
        assert!(!read.write);
        assert_eq!(FaultRecord::decode(0x3000, high & !f), None);
        // Interrupt-remapping faults carry the interrupt index in FI bits 63:48, no address.
        let sid_mismatch = f | (0x26 << 32) | 0x20;
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
