//! System call numbers and the register convention of the `syscall` instruction.
//!
//! Convention (x86_64): `rax` = syscall number, `rdi` = capability pointer or first
//! argument, `rsi` = message info or second argument, `rdx`, `r10`, `r8`, `r9` = further
//! arguments / message registers 0..3. On return `rax` holds an [`crate::error::SyscallError`]
//! raw value (0 = success) and the other argument registers hold results. `rcx` and `r11`
//! are clobbered by the instruction itself.

crate::abi_enum! {
    /// A system call number, passed in `rax`.
    pub enum Syscall: u64 {
        /// Blocking send on an endpoint.
        Send = 1,
        /// Non-blocking send on an endpoint.
        NbSend = 2,
        /// Send and wait for the reply.
        Call = 3,
        /// Blocking receive.
        Recv = 4,
        /// Non-blocking receive.
        NbRecv = 5,
        /// Reply to the last caller.
        Reply = 6,
        /// Reply, then receive.
        ReplyRecv = 7,
        /// Give up the rest of the timeslice.
        Yield = 8,
    }
}

// Printing and halting are no system calls of their own (anyone could call those): they
// are invocations of the debug-console cap (`Invocation::DebugPutChar` and on).

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in Syscall::ALL {
            assert_eq!(Syscall::try_from(s.raw()), Ok(*s));
        }
        assert_eq!(Syscall::try_from(0), Err(0));
        // The former debug system calls are unknown numbers now.
        for n in 0x100..=0x103 {
            assert_eq!(Syscall::try_from(n), Err(n));
        }
    }
}
