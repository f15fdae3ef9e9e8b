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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::try_from(k.raw()), Ok(*k));
            assert!(fault_length(*k) <= 4 || *k == FaultKind::UserException);
        }
    }
}
