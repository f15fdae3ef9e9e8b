//! NVMe controller registers (BAR 0, NVMe 1.4 3.1), typed with tock-registers.

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::NvmeError;

register_bitfields! [u64,
    /// Controller Capabilities.
    pub Cap [
        /// Maximum Queue Entries Supported, 0-based.
        MQES OFFSET(0) NUMBITS(16) [],
        /// Contiguous Queues Required.
        CQR OFFSET(16) NUMBITS(1) [],
        /// Timeout: worst-case time to ready, in 500 ms units.
        TO OFFSET(24) NUMBITS(8) [],
        /// Doorbell Stride: doorbells are 4 << DSTRD bytes apart.
        DSTRD OFFSET(32) NUMBITS(4) [],
        /// Command Sets Supported (bit 0: NVM).
        CSS OFFSET(37) NUMBITS(8) [],
        /// Memory Page Size Minimum: 2 ^ (12 + MPSMIN).
        MPSMIN OFFSET(48) NUMBITS(4) [],
        /// Memory Page Size Maximum.
        MPSMAX OFFSET(52) NUMBITS(4) []
    ],
    /// A 64-bit queue base address (ASQ, ACQ): page aligned.
    pub QueueBase [
        /// Bits 63:12 of the address.
        ADDRESS OFFSET(12) NUMBITS(52) []
    ]
];

register_bitfields! [u32,
    /// Controller Configuration.
    pub Cc [
        /// Enable.
        EN OFFSET(0) NUMBITS(1) [],
        /// I/O Command Set Selected (0: NVM).
        CSS OFFSET(4) NUMBITS(3) [],
        /// Memory Page Size: 2 ^ (12 + MPS).
        MPS OFFSET(7) NUMBITS(4) [],
        /// Arbitration Mechanism Selected (0: round robin).
        AMS OFFSET(11) NUMBITS(3) [],
        /// Shutdown Notification (1: normal).
        SHN OFFSET(14) NUMBITS(2) [],
        /// I/O Submission Queue Entry Size: 2 ^ n bytes (6: 64).
        IOSQES OFFSET(16) NUMBITS(4) [],
        /// I/O Completion Queue Entry Size: 2 ^ n bytes (4: 16).
        IOCQES OFFSET(20) NUMBITS(4) []
    ],
    /// Controller Status.
    pub Csts [
        /// Ready.
        RDY OFFSET(0) NUMBITS(1) [],
        /// Controller Fatal Status.
        CFS OFFSET(1) NUMBITS(1) [],
        /// Shutdown Status (2: complete).
        SHST OFFSET(2) NUMBITS(2) []
    ],
    /// Admin Queue Attributes (sizes 0-based).
    pub Aqa [
        /// Admin Submission Queue Size.
        ASQS OFFSET(0) NUMBITS(12) [],
        /// Admin Completion Queue Size.
        ACQS OFFSET(16) NUMBITS(12) []
    ]
];

register_structs! {
    /// The controller registers at the start of BAR 0 (doorbells follow at 0x1000,
    /// spaced by CAP.DSTRD: see [`Limits::doorbell`]).
    pub NvmeRegisters {
        /// Controller Capabilities.
        (0x00 => pub cap: ReadOnly<u64, Cap::Register>),
        /// Version (major << 16 | minor << 8 | tertiary).
        (0x08 => pub vs: ReadOnly<u32>),
        /// Interrupt Mask Set (pin/MSI only; unused with MSI-X).
        (0x0c => pub intms: WriteOnly<u32>),
        /// Interrupt Mask Clear.
        (0x10 => pub intmc: WriteOnly<u32>),
        /// Controller Configuration.
        (0x14 => pub cc: ReadWrite<u32, Cc::Register>),
        (0x18 => _reserved0),
        /// Controller Status.
        (0x1c => pub csts: ReadOnly<u32, Csts::Register>),
        (0x20 => _reserved1),
        /// Admin Queue Attributes.
        (0x24 => pub aqa: ReadWrite<u32, Aqa::Register>),
        /// Admin Submission Queue base.
        (0x28 => pub asq: ReadWrite<u64, QueueBase::Register>),
        /// Admin Completion Queue base.
        (0x30 => pub acq: ReadWrite<u64, QueueBase::Register>),
        (0x38 => @END),
    }
}

/// Byte offset of the first doorbell in BAR 0.
pub const DOORBELL_BASE: u64 = 0x1000;
/// Most entries per queue the driver uses (one page of 64-byte commands).
pub const MAX_QUEUE_ENTRIES: u16 = 64;
/// Longest the driver waits for CSTS.RDY, in 500 ms units (CAP.TO is capped to this).
pub const MAX_TIMEOUT_UNITS: u8 = 30;

/// CAP, decoded and checked: what the driver will use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Entries per queue the driver uses: min(CAP.MQES + 1, [`MAX_QUEUE_ENTRIES`]).
    pub queue_entries: u16,
    /// Doorbell stride in bytes (4 << DSTRD).
    pub doorbell_stride: u64,
    /// CAP.TO, capped to [`MAX_TIMEOUT_UNITS`].
    pub timeout_units: u8,
}

impl Limits {
    /// Checks CAP (`raw`) for what the driver needs: 4 KiB pages, the NVM command set,
    /// queues of at least 2 entries; and that the doorbells of queue pairs `0..=max_qid`
    /// lie inside the first `bar_bytes` of BAR 0.
    pub fn from_cap(raw: u64, bar_bytes: u64, max_qid: u16) -> Result<Limits, NvmeError> {
        let field = |shift: u32, bits: u32| (raw >> shift) & ((1 << bits) - 1);
        let mpsmin = field(48, 4) as u8;
        if mpsmin != 0 {
            return Err(NvmeError::PageSizeUnsupported(mpsmin));
        }
        if field(37, 8) & 1 == 0 {
            return Err(NvmeError::NoNvmCommandSet);
        }
        let entries = field(0, 16) as u32 + 1;
        if entries < 2 {
            return Err(NvmeError::QueueTooSmall(entries));
        }
        let limits = Limits {
            queue_entries: entries.min(u32::from(MAX_QUEUE_ENTRIES)) as u16,
            doorbell_stride: 4 << field(32, 4),
            timeout_units: (field(24, 8) as u8).clamp(1, MAX_TIMEOUT_UNITS),
        };
        let last = limits.doorbell(max_qid, true);
        if last + 4 > bar_bytes {
            return Err(NvmeError::DoorbellOutsideBar { qid: max_qid, offset: last });
        }
        Ok(limits)
    }

    /// Byte offset in BAR 0 of queue `qid`'s submission tail (`completion` false) or
    /// completion head doorbell.
    pub fn doorbell(&self, qid: u16, completion: bool) -> u64 {
        DOORBELL_BASE + (2 * u64::from(qid) + u64::from(completion)) * self.doorbell_stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2's CAP: MQES 0x7ff, CQR, TO 0xf, DSTRD 0, CSS NVM + admin only (bit 7), MPSMAX 4.
    const QEMU_CAP: u64 = 0x0040_1020_0f01_07ff;

    #[test]
    fn qemu_cap_decodes() {
        let l = Limits::from_cap(QEMU_CAP, 0x2000, 1).unwrap();
        assert_eq!(l, Limits { queue_entries: 64, doorbell_stride: 4, timeout_units: 15 });
        assert_eq!(
            (l.doorbell(0, false), l.doorbell(0, true), l.doorbell(1, false), l.doorbell(1, true)),
            (0x1000, 0x1004, 0x1008, 0x100c)
        );
    }

    #[test]
    fn bad_caps_are_refused() {
        assert_eq!(Limits::from_cap(QEMU_CAP | 1 << 48, 0x2000, 1), Err(NvmeError::PageSizeUnsupported(1)));
        assert_eq!(Limits::from_cap(QEMU_CAP & !(1 << 37), 0x2000, 1), Err(NvmeError::NoNvmCommandSet));
        assert_eq!(Limits::from_cap(QEMU_CAP & !0xffff, 0x2000, 1), Err(NvmeError::QueueTooSmall(1)));
        // DSTRD 15: queue 1's completion doorbell at 0x1000 + 3 * 128 KiB, past an 8 KiB BAR.
        let wide = QEMU_CAP | 0xf << 32;
        assert_eq!(
            Limits::from_cap(wide, 0x2000, 1),
            Err(NvmeError::DoorbellOutsideBar { qid: 1, offset: 0x1000 + 3 * (4 << 15) })
        );
        let small = Limits::from_cap(QEMU_CAP & !0xffff | 3, 0x2000, 1).unwrap();
        assert_eq!(small.queue_entries, 4);
        assert_eq!(Limits::from_cap(QEMU_CAP & !(0xff << 24), 0x2000, 1).unwrap().timeout_units, 1);
        assert_eq!(Limits::from_cap(QEMU_CAP | 0xff << 24, 0x2000, 1).unwrap().timeout_units, MAX_TIMEOUT_UNITS);
    }
}
