//! The kernel log: leveled messages to the console.
//!
//! The kernel log: leveled messages to the console. Info lines are printed bare (they
//! are the boot log tests read); warnings and errors carry a prefix; debug lines only
//! appear with `loglevel=debug` on the command line.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// Severity of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something is broken.
    Error = 0,
    /// Something is off but boot goes on.
    Warn = 1,
    /// The normal boot log.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
}

impl Level {
    /// Parses `error`, `warn`, `info` or `debug`.
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most verbose level printed.
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Whether a counter of rate-limited events that went from `before` to `now` since it
/// was last logged is worth a line: if it passed a value up to 8 or a power of two.
pub fn worth_logging(before: u64, now: u64) -> bool {
    now > before && (before < 8 || now.ilog2() > before.ilog2())
}

/// Prints one message (used by the macros).
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let prefix = match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info => "",
        Level::Debug => "debug: ",
    };
    sink(format_args!("{prefix}{args}\n"));
}

#[cfg(target_os = "none")]
fn sink(args: fmt::Arguments<'_>) {
    crate::arch::serial::write_fmt(args);
}

#[cfg(all(not(target_os = "none"), test))]
fn sink(args: fmt::Arguments<'_>) {
    extern crate std;
    std::print!("{args}");
}

#[cfg(all(not(target_os = "none"), not(test)))]
fn sink(_args: fmt::Arguments<'_>) {}

/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) };
}
/// Logs at warning level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*)) };
}
/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) };
}
/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::worth_logging;

    #[test]
    fn rate_limit_logs_the_first_eight_then_powers_of_two() {
        let logged: std::vec::Vec<u64> = (1..=100).filter(|&n| worth_logging(n - 1, n)).collect();
        assert_eq!(logged, [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64]);
        assert!(worth_logging(0, 1000) && worth_logging(9, 16) && worth_logging(20, 40));
        assert!(!worth_logging(9, 15) && !worth_logging(33, 63) && !worth_logging(5, 5));
    }
}
