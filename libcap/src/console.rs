//! `print!`/`println!` for user programs.
//!
//! `print!`/`println!` for user programs, through the kernel's debug console (the
//! debug-console cap at `abi::slots::DEBUG_CONSOLE` of the caller's CSpace) or a
//! user-level console server.

use core::fmt::{self, Write};

use abi::invocation::Invocation;

use crate::cap::{invoke, CPtr, Error, Result};

/// The debug-console capability: print on the kernel console, or end the system.
/// The root task holds it at `abi::slots::DEBUG_CONSOLE` (the [`Default`]); a thread
/// with its own CSpace can do neither unless given a copy (Copy, or Mint with badge 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugConsole(pub CPtr);

impl Default for DebugConsole {
    fn default() -> Self {
        DebugConsole(abi::slots::DEBUG_CONSOLE)
    }
}

impl DebugConsole {
    /// Prints one byte.
    pub fn put_char(self, byte: u8) -> Result<()> {
        invoke(self.0, Invocation::DebugPutChar, &[u64::from(byte)], &[]).map(|_| ())
    }

    /// Prints `bytes` (at most `abi::invocation::DEBUG_WRITE_MAX`).
    pub fn write(self, bytes: &[u8]) -> Result<()> {
        self.write_raw(bytes.as_ptr() as u64, bytes.len() as u64)
    }

    /// Asks the kernel to print `len` bytes at any address: for tests of the kernel's
    /// pointer checks, which must refuse a bad range with an error.
    pub fn write_raw(self, addr: u64, len: u64) -> Result<()> {
        invoke(self.0, Invocation::DebugWrite, &[addr, len], &[]).map(|_| ())
    }

    /// The kernel's IOMMU work counters since boot: (second-level leaf entries written
    /// or cleared, IOTLB invalidations completed), over all domains.
    pub fn iommu_counters(self) -> Result<(u64, u64)> {
        invoke(self.0, Invocation::DebugIommuCounters, &[], &[]).map(|r| (r[0], r[1]))
    }

    /// The longest time the kernel ran with interrupts off since the last call, in
    /// time-stamp ticks (guest instructions under `-icount shift=0`); starts anew.
    pub fn kernel_stretch(self) -> Result<u64> {
        invoke(self.0, Invocation::DebugKernelStretch, &[], &[]).map(|r| r[0])
    }

    /// Ends the system with exit code `code`; returns only with the kernel's refusal.
    pub fn halt(self, code: u64) -> Error {
        match invoke(self.0, Invocation::DebugHalt, &[code], &[]) {
            Err(e) => e,
            // The kernel never returns success from a halt.
            Ok(_) => Error { code: abi::error::SyscallError::IllegalOperation, detail: 0 },
        }
    }
}

/// Line-buffered writer: one system call per line (or per 256 bytes).
pub struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Console {
    /// An empty console buffer.
    pub const fn new() -> Self {
        Console { buf: [0; 256], len: 0 }
    }

    /// Sends what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            write_out(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Formats and prints (used by the macros).
pub fn print(args: fmt::Arguments<'_>) {
    let mut console = Console::new();
    let _ = console.write_fmt(args);
    console.flush();
}

/// Endpoint of the user-level console server (0: print through the kernel).
static SERVER: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Message label of a console write: MR0 = byte count, MR1.. = bytes, 8 per register.
pub const CONSOLE_WRITE: u64 = 1;
/// Most bytes one console message carries.
pub const CONSOLE_CHUNK: usize = 8 * 32;

/// Routes `print!` to the console server listening on `ep` (a cap in this CSpace).
pub fn set_server(ep: u64) {
    SERVER.store(ep, core::sync::atomic::Ordering::SeqCst);
}

/// Sends `bytes` to the console server, or to the kernel console if none is set.
fn write_out(bytes: &[u8]) {
    let server = SERVER.load(core::sync::atomic::Ordering::SeqCst);
    if server == 0 {
        let _ = crate::syscall::debug_write(bytes);
        return;
    }
    for chunk in bytes.chunks(CONSOLE_CHUNK) {
        let mut words = [0u64; 1 + CONSOLE_CHUNK / 8];
        words[0] = chunk.len() as u64;
        for (i, b) in chunk.iter().enumerate() {
            words[1 + i / 8] |= u64::from(*b) << (8 * (i % 8));
        }
        let length = 1 + chunk.len().div_ceil(8);
        for (i, w) in words.iter().enumerate().take(length).skip(4) {
            crate::ipc::set_mr(i, *w);
        }
        let info = abi::msginfo::MessageInfo::new(CONSOLE_WRITE, length as u8);
        if crate::ipc::call(server, info, [words[0], words[1], words[2], words[3]]).is_err() {
            let _ = crate::syscall::debug_write(chunk);
        }
    }
}

/// Prints to the kernel console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the kernel console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
