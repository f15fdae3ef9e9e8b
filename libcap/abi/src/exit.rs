//! Exit codes written to QEMU's `isa-debug-exit` port, and how QEMU reports them.
//!
//! A value `v` written to the port makes QEMU exit with status `(v << 1) | 1`, so an odd
//! status always means "the guest chose to exit"; status 0 means QEMU stopped for another
//! reason. [`qemu_status_to_code`] undoes the encoding on the host.

/// I/O port of the `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

crate::abi_enum! {
    /// Why the system stopped.
    pub enum ExitCode: u32 {
        /// The root task reported success.
        Success = 0,
        /// The root task reported a failure of its own.
        UserFailure = 1,
        /// The kernel panicked.
        KernelPanic = 0x70,
        /// The kernel took an unexpected CPU exception.
        KernelException = 0x71,
        /// Boot input (boot tables, boot module, manifest, ELF) was rejected.
        BadBootInput = 0x72,
        /// The root task faulted with nobody to handle it and nothing else can run.
        RootTaskFault = 0x73,
        /// Every thread is blocked and no interrupt source could wake one.
        Deadlock = 0x74,
    }
}

/// The process exit status QEMU reports for a guest exit with `code`.
pub const fn qemu_status(code: u32) -> i32 {
    ((code << 1) | 1) as i32
}

/// Decodes a QEMU exit status into the guest's exit code, if the guest chose to exit.
pub const fn qemu_status_to_code(status: i32) -> Option<u32> {
    if status & 1 == 1 {
        Some((status as u32) >> 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for c in ExitCode::ALL {
            assert_eq!(ExitCode::try_from(c.raw()), Ok(*c));
            assert_eq!(qemu_status_to_code(qemu_status(c.raw())), Some(c.raw()));
        }
        assert_eq!(qemu_status_to_code(0), None);
    }
}
