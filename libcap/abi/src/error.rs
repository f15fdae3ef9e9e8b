//! Error codes returned by system calls (in `rax`), seL4's set.

crate::abi_enum! {
    /// Why a system call or invocation failed. `0` in `rax` means success.
    pub enum SyscallError: u64 {
        /// An argument is invalid; the failing argument index is returned in `rdi`.
        InvalidArgument = 1,
        /// A capability argument is of the wrong type or lacks rights.
        InvalidCapability = 2,
        /// The operation is not allowed on this object in its current state.
        IllegalOperation = 3,
        /// A value is outside its permitted range; the range is returned in `rdi`/`rsi`.
        RangeError = 4,
        /// An address or size is not aligned as required.
        AlignmentError = 5,
        /// A capability lookup failed.
        FailedLookup = 6,
        /// The message is longer than the receiver accepts.
        TruncatedMessage = 7,
        /// The destination slot is occupied.
        DeleteFirst = 8,
        /// The object still has children; revoke them first.
        RevokeFirst = 9,
        /// The untyped has not enough free space.
        NotEnoughMemory = 10,
        /// The system call number is not known.
        UnknownSyscall = 11,
        /// A user pointer does not name mapped, user-accessible memory.
        InvalidUserPointer = 12,
        /// The operation asks for rights the capability does not carry.
        InsufficientRights = 13,
    }
}

impl SyscallError {
    /// Short human-readable name, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            SyscallError::InvalidArgument => "invalid argument",
            SyscallError::InvalidCapability => "invalid capability",
            SyscallError::IllegalOperation => "illegal operation",
            SyscallError::RangeError => "range error",
            SyscallError::AlignmentError => "alignment error",
            SyscallError::FailedLookup => "failed lookup",
            SyscallError::TruncatedMessage => "truncated message",
            SyscallError::DeleteFirst => "delete first",
            SyscallError::RevokeFirst => "revoke first",
            SyscallError::NotEnoughMemory => "not enough memory",
            SyscallError::UnknownSyscall => "unknown syscall",
            SyscallError::InvalidUserPointer => "invalid user pointer",
            SyscallError::InsufficientRights => "insufficient rights",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_zero_is_success() {
        for e in SyscallError::ALL {
            assert_eq!(SyscallError::try_from(e.raw()), Ok(*e));
            assert!(!e.name().is_empty());
        }
        assert!(SyscallError::try_from(0).is_err());
    }
}
