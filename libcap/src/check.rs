//! A tiny pass/fail checker for test programs.
//!
//! A tiny checker for test programs: prints `<program>: ok <check>` or
//! `<program>: FAIL <check>` per check and counts failures (the QEMU harness reads
//! these lines).

/// Counts failed checks of one program.
pub struct Checker {
    program: &'static str,
    /// Failed checks so far.
    pub failures: u32,
}

impl Checker {
    /// A checker printing under `program`'s name.
    pub const fn new(program: &'static str) -> Self {
        Checker { program, failures: 0 }
    }

    /// Records one check.
    pub fn check(&mut self, name: &str, ok: bool) {
        if ok {
            crate::println!("{}: ok {name}", self.program);
        } else {
            crate::println!("{}: FAIL {name}", self.program);
            self.failures += 1;
        }
    }

    /// The exit code for the run: success only if nothing failed.
    pub fn finish(&self) -> abi::exit::ExitCode {
        if self.failures > 0 {
            crate::println!("{}: {} checks FAILED", self.program, self.failures);
            abi::exit::ExitCode::UserFailure
        } else {
            crate::println!("{}: all checks passed", self.program);
            abi::exit::ExitCode::Success
        }
    }
}
