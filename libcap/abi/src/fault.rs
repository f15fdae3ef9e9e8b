//! Fault messages: labels and message registers of each fault kind.
//!
//! Fault messages: what a thread's fault handler receives (as the label of an IPC
//! message) when the thread faults, and the message registers of each kind.

crate::abi_enum! {
    /// The label of a fault message.
    pub enum FaultKind: u64 {
        /// A capability lookup failed in an IPC system call. MRs: rip, cptr, lookup error.
        CapFault = 1,
        /// An unknown system call number. MRs: rip, rsp, rflags, syscall number.
        UnknownSyscall = 2,
        /// A CPU exception other than a page fault. MRs: rip, rsp, rflags, vector, error code.
        UserException = 3,
        /// A page fault. MRs: rip, fault address, is-instruction-fetch, error code.
        VmFault = 4,
        /// A DMA fault (IOMMU issue). MRs: requester id, reason, IOVA, is-write.
        DmaFault = 5,
    }
}

/// Message length of each fault kind.
pub const fn fault_length(kind: FaultKind) -> u8 {
    match kind {
        FaultKind::CapFault => 3,
        FaultKind::UnknownSyscall => 4,
        FaultKind::UserException => 5,
        FaultKind::VmFault => 4,
        FaultKind::DmaFault => 4,
    }
}

/// Records the kernel's DMA fault queue holds (all IOSpaces together). A fault drained
/// while the queue is full is counted as lost for its IOSpace.
pub const DMA_FAULT_QUEUE: usize = 256;
/// Records one IOSpace may have queued at once: a domain in a fault storm loses its own
/// faults (counted) but never takes the whole queue from the others.
pub const DMA_FAULTS_PER_DOMAIN: usize = 64;
/// `IoSpaceNextFault` word 0: more records of this IOSpace are queued.
pub const NEXT_FAULT_HAS_MORE: u64 = 1 << 32;
/// `IoSpaceNextFault` word 0: no record, only the count of lost faults (word 2).
pub const NEXT_FAULT_NO_RECORD: u64 = 1 << 33;
/// What `IoSpaceNextFault` returns when nothing is queued and nothing was lost.
pub const NEXT_FAULT_EMPTY: crate::error::SyscallError = crate::error::SyscallError::FailedLookup;

/// One queued DMA fault: what the remapping unit recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaFaultRecord {
    /// Requester id on the wire (bus << 8 | devfn; an alias for a bridged device).
    pub requester: u16,
    /// VT-d fault reason (QEMU: 5 write to a non-present or read-only entry, 6 read).
    pub reason: u8,
    /// A write (else a read).
    pub is_write: bool,
    /// The IOVA the device used.
    pub iova: u64,
}

/// The answer of `IoSpaceNextFault`, as 4 words: `[requester | reason << 16 |
/// is_write << 24 | has_more << 32 (| NO_RECORD), iova, lost, 0]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextFault {
    /// The IOSpace's oldest record, or none (only `lost` to report).
    pub record: Option<DmaFaultRecord>,
    /// More records of this IOSpace are queued.
    pub has_more: bool,
    /// Faults of this IOSpace lost (queue full or over its share) since the last
    /// NextFault (saturates at 65,535).
    pub lost: u64,
}

impl NextFault {
    /// The 4 reply words.
    pub const fn encode(&self) -> [u64; 4] {
        let more = if self.has_more { NEXT_FAULT_HAS_MORE } else { 0 };
        match self.record {
            Some(r) => {
                [r.requester as u64 | (r.reason as u64) << 16 | (r.is_write as u64) << 24 | more, r.iova, self.lost, 0]
            }
            None => [NEXT_FAULT_NO_RECORD | more, 0, self.lost, 0],
        }
    }

    /// Decodes the 4 reply words.
    pub const fn decode(words: [u64; 4]) -> Self {
        let w = words[0];
        let record = if w & NEXT_FAULT_NO_RECORD != 0 {
            None
        } else {
            Some(DmaFaultRecord {
                requester: w as u16,
                reason: (w >> 16) as u8,
                is_write: (w >> 24) & 1 != 0,
                iova: words[1],
            })
        };
        NextFault { record, has_more: w & NEXT_FAULT_HAS_MORE != 0, lost: words[2] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_fault_words_round_trip() {
        let r = DmaFaultRecord { requester: 0x0018, reason: 5, is_write: true, iova: 0x1000_2000 };
        let f = NextFault { record: Some(r), has_more: true, lost: 3 };
        assert_eq!(f.encode(), [0x0018 | 5 << 16 | 1 << 24 | 1 << 32, 0x1000_2000, 3, 0]);
        assert_eq!(NextFault::decode(f.encode()), f);
        let lost_only = NextFault { record: None, has_more: false, lost: 7 };
        assert_eq!(NextFault::decode(lost_only.encode()), lost_only);
        let read = NextFault { record: Some(DmaFaultRecord { is_write: false, ..r }), has_more: false, lost: 0 };
        assert_eq!(NextFault::decode(read.encode()), read);
    }

    #[test]
    fn round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::try_from(k.raw()), Ok(*k));
            assert!(fault_length(*k) <= 4 || *k == FaultKind::UserException);
        }
    }
}
