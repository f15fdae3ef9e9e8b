//! The kernel console on COM1 (uart_16550 over port I/O).

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550Tty};

/// COM1's base I/O port.
const COM1: u16 = 0x3f8;

static CONSOLE: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);

/// Initialises COM1; output before this (or if the UART is missing) is dropped.
pub fn init() {
    // SAFETY: COM1 is the PC's first serial port; the kernel is its only user.
    let uart = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    *CONSOLE.lock() = uart.ok();
}

/// Writes formatted text to the console.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut console = CONSOLE.lock();
    if let Some(uart) = console.as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Writes raw bytes (from a user debug write) to the console, replacing anything that
/// is not printable ASCII, tab or newline with '?', so user output cannot forge
/// terminal control sequences.
pub fn write_sanitized(bytes: &[u8]) {
    let mut console = CONSOLE.lock();
    if let Some(uart) = console.as_mut() {
        for &b in bytes {
            let c = match b {
                b'\n' | b'\t' | 0x20..=0x7e => b as char,
                _ => '?',
            };
            let _ = uart.write_char(c);
        }
    }
}

/// Breaks the console lock after a panic so the panic message always gets out.
///
/// # Safety
/// Only the panic path may call this, with interrupts off on the only CPU.
pub unsafe fn force_unlock() {
    // SAFETY: the caller guarantees no other holder can run again.
    unsafe { CONSOLE.force_unlock() };
}
