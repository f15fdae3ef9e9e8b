//! Submission and completion queue entries, the rings' index and phase logic.
//!
//! The driver keeps one command outstanding per queue pair, so a completion must name
//! exactly that command; anything else the device writes is an error, never an index.

use crate::NvmeError;

/// Admin opcodes.
pub mod admin {
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
}

/// NVM command set opcodes.
pub mod nvm {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
}

/// A 64-byte submission queue entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// Opcode (7:0), fused/PSDT (15:8, 0: PRPs), command id (31:16).
    pub cdw0: u32,
    /// Namespace id.
    pub nsid: u32,
    /// Reserved.
    pub cdw2: u32,
    /// Reserved.
    pub cdw3: u32,
    /// Metadata pointer (unused).
    pub mptr: u64,
    /// PRP entry 1.
    pub prp1: u64,
    /// PRP entry 2 (second page or PRP list).
    pub prp2: u64,
    /// Command dwords 10..=15.
    pub cdw: [u32; 6],
}

const _: () = assert!(core::mem::size_of::<Command>() == 64);
const _: () = assert!(core::mem::size_of::<Completion>() == 16);

impl Command {
    fn new(opcode: u8, nsid: u32) -> Self {
        Command { cdw0: u32::from(opcode), nsid, ..Default::default() }
    }
    /// Identify with CNS `cns` (0 namespace, 1 controller) into the page at `prp1`.
    pub fn identify(cns: u8, nsid: u32, prp1: u64) -> Self {
        let mut c = Command::new(admin::IDENTIFY, nsid);
        c.prp1 = prp1;
        c.cdw[0] = u32::from(cns);
        c
    }
    /// Create I/O Completion Queue `qid` of `entries` at `iova` (physically contiguous),
    /// interrupting on MSI-X entry `vector` if given.
    pub fn create_cq(qid: u16, entries: u16, iova: u64, vector: Option<u16>) -> Self {
        let mut c = Command::new(admin::CREATE_CQ, 0);
        c.prp1 = iova;
        c.cdw[0] = u32::from(qid) | u32::from(entries - 1) << 16;
        c.cdw[1] = 1 | vector.map_or(0, |v| 2 | u32::from(v) << 16);
        c
    }
    /// Create I/O Submission Queue `qid` of `entries` at `iova`, completing on `cqid`.
    pub fn create_sq(qid: u16, entries: u16, iova: u64, cqid: u16) -> Self {
        let mut c = Command::new(admin::CREATE_SQ, 0);
        c.prp1 = iova;
        c.cdw[0] = u32::from(qid) | u32::from(entries - 1) << 16;
        c.cdw[1] = 1 | u32::from(cqid) << 16;
        c
    }
    /// Read (`write` false) or Write `blocks` (1..=65536) logical blocks at `lba`.
    pub fn rw(write: bool, nsid: u32, lba: u64, blocks: u32, prp1: u64, prp2: u64) -> Self {
        let mut c = Command::new(if write { nvm::WRITE } else { nvm::READ }, nsid);
        c.prp1 = prp1;
        c.prp2 = prp2;
        c.cdw[0] = lba as u32;
        c.cdw[1] = (lba >> 32) as u32;
        c.cdw[2] = blocks - 1;
        c
    }
    /// Flush the namespace's volatile write cache.
    pub fn flush(nsid: u32) -> Self {
        Command::new(nvm::FLUSH, nsid)
    }
    /// Sets the command id.
    pub fn with_cid(mut self, cid: u16) -> Self {
        self.cdw0 = (self.cdw0 & 0xffff) | u32::from(cid) << 16;
        self
    }
}

/// A 16-byte completion queue entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Command specific result.
    pub dw0: u32,
    /// Reserved.
    pub dw1: u32,
    /// SQ head (15:0), SQ id (31:16).
    pub dw2: u32,
    /// Command id (15:0), phase (16), status (31:17).
    pub dw3: u32,
}

impl Completion {
    /// The phase tag.
    pub fn phase(&self) -> bool {
        self.dw3 & 1 << 16 != 0
    }
    /// The command id.
    pub fn cid(&self) -> u16 {
        self.dw3 as u16
    }
    /// Status: SCT << 8 | SC (0: success); DNR and More dropped.
    pub fn status(&self) -> u16 {
        ((self.dw3 >> 17) & 0x7ff) as u16
    }
    /// Checks the entry against the one command outstanding on submission queue `sqid`
    /// of `entries` slots: its id, queue and head are bounded, and its status is success.
    pub fn check(&self, sqid: u16, cid: u16, entries: u16) -> Result<(), NvmeError> {
        if self.cid() != cid {
            return Err(NvmeError::BadCommandId(self.cid()));
        }
        if (self.dw2 >> 16) as u16 != sqid {
            return Err(NvmeError::BadQueueId((self.dw2 >> 16) as u16));
        }
        if self.dw2 as u16 >= entries {
            return Err(NvmeError::BadQueueHead(self.dw2 as u16));
        }
        match self.status() {
            0 => Ok(()),
            status => Err(NvmeError::Status { cid, status }),
        }
    }
}

/// Ring indices of one queue pair: the submission tail, the completion head and the
/// phase a new completion carries (it starts 1 and flips at each wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rings {
    /// Slots per queue (2..=64).
    pub entries: u16,
    /// Next submission slot.
    pub sq_tail: u16,
    /// Next completion slot.
    pub cq_head: u16,
    /// Phase of a new completion.
    pub phase: bool,
    /// Next command id.
    next_cid: u16,
}

impl Rings {
    /// Empty rings of `entries` slots.
    pub fn new(entries: u16) -> Self {
        Rings { entries, sq_tail: 0, cq_head: 0, phase: true, next_cid: 0 }
    }
    /// Takes a submission slot: (slot, command id, new tail to ring the doorbell with).
    pub fn submit(&mut self) -> (u16, u16, u16) {
        let slot = self.sq_tail;
        self.sq_tail = (self.sq_tail + 1) % self.entries;
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        (slot, cid, self.sq_tail)
    }
    /// Whether `entry` (at slot `cq_head`) is new; if so advances the head (returned:
    /// the value for the completion doorbell) and flips the phase at the wrap.
    pub fn complete(&mut self, entry: &Completion) -> Option<u16> {
        if entry.phase() != self.phase {
            return None;
        }
        self.cq_head += 1;
        if self.cq_head == self.entries {
            self.cq_head = 0;
            self.phase = !self.phase;
        }
        Some(self.cq_head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(cid: u16, phase: bool, sqid: u16, head: u16, status: u16) -> Completion {
        Completion {
            dw0: 0,
            dw1: 0,
            dw2: u32::from(head) | u32::from(sqid) << 16,
            dw3: u32::from(cid) | u32::from(phase) << 16 | u32::from(status) << 17,
        }
    }

    #[test]
    fn commands_encode() {
        let c = Command::rw(true, 1, 0x1_0000_0008, 32, 0x10_0000, 0x10_5000).with_cid(7);
        assert_eq!((c.cdw0, c.nsid, c.cdw[0], c.cdw[1], c.cdw[2]), (0x0007_0001, 1, 8, 1, 31));
        assert_eq!((c.prp1, c.prp2), (0x10_0000, 0x10_5000));
        let q = Command::create_cq(1, 64, 0x20_0000, Some(3));
        assert_eq!((q.cdw0 & 0xff, q.cdw[0], q.cdw[1]), (5, 0x003f_0001, 0x0003_0003));
        assert_eq!(Command::create_cq(1, 64, 0, None).cdw[1], 1, "polled: no IEN");
        let s = Command::create_sq(1, 16, 0x30_0000, 1);
        assert_eq!((s.cdw0 & 0xff, s.cdw[0], s.cdw[1]), (1, 0x000f_0001, 0x0001_0001));
        assert_eq!(Command::identify(1, 0, 0x4000).cdw[0], 1);
    }

    #[test]
    fn rings_wrap_and_flip_the_phase() {
        let mut r = Rings::new(2);
        assert_eq!(r.submit(), (0, 0, 1));
        assert_eq!(r.complete(&done(0, false, 0, 1, 0)), None, "stale phase: nothing new");
        assert_eq!(r.complete(&done(0, true, 0, 1, 0)), Some(1));
        assert_eq!(r.submit(), (1, 1, 0));
        assert_eq!(r.complete(&done(1, true, 0, 0, 0)), Some(0));
        assert!(!r.phase, "wrapped: the next completion carries phase 0");
        assert_eq!(r.complete(&done(0, true, 0, 1, 0)), None, "the old entry at slot 0 is not new");
    }

    #[test]
    fn completions_are_checked() {
        assert_eq!(done(4, true, 1, 3, 0).check(1, 4, 64), Ok(()));
        assert_eq!(done(5, true, 1, 3, 0).check(1, 4, 64), Err(NvmeError::BadCommandId(5)));
        assert_eq!(done(4, true, 2, 3, 0).check(1, 4, 64), Err(NvmeError::BadQueueId(2)));
        assert_eq!(done(4, true, 1, 64, 0).check(1, 4, 64), Err(NvmeError::BadQueueHead(64)));
        assert_eq!(done(4, true, 1, 3, 0x280).check(1, 4, 64), Err(NvmeError::Status { cid: 4, status: 0x280 }));
    }
}
