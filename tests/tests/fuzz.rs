//! Robustness scenario: random system calls from a sandboxed thread.
//!
//! Robustness scenario: a sandboxed thread issues random system calls and invocations,
//! half of them aimed at its IOMMU, MSI, I/O port, device-frame and PciDevice caps; the
//! kernel must answer all of them and keep working. Runs several seeds (printed), each
//! patched into the fuzz program of its own boot image.
//!
//! `FUZZ_FRESH_SEED=<n>` sets the third seed (else the clock picks it);
//! `FUZZ_SEED=<n>` runs that one seed only (`make fuzz-qemu SEED=<n>`), `FUZZ_CALLS=<n>` sets
//! the calls per seed and `FUZZ_TIMEOUT=<seconds>` the limit (`make soak`).

use std::time::Duration;

use abi::bootimage::BootImage;
use abi::exit::ExitCode;
use scenarios::{build_dir, make_image, scenario_dir, Scenario};

/// Seeds every run uses, so a regression reproduces in CI.
const FIXED_SEEDS: [u64; 2] = [0x9e37_79b9_7f4a_7c15, 0x0123_4567_89ab_cdef];
/// Calls per seed in `make test`.
const DEFAULT_CALLS: u64 = 20000;
/// What `fuzz` keeps in front of its parameters (userland/fuzz's `PARAMS`).
const MARKER: &[u8; 8] = b"FUZZPRM1";

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let parsed = match text.trim().strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.trim().parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number (decimal or 0x hex)")))
}

/// The default boot image with `fuzz`'s seed and call count patched in.
fn image_for(seed: u64, calls: u64) -> std::path::PathBuf {
    let bytes = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = BootImage::parse(&bytes).expect("build/boot.img parses");
    let mut program = image.find("fuzz").expect("the boot image holds fuzz").data.to_vec();
    let at = program.windows(8).position(|w| w == MARKER).expect("fuzz has its FUZZPRM1 parameter block");
    assert_eq!(program.windows(8).filter(|w| w == MARKER).count(), 1, "FUZZPRM1 appears once in fuzz");
    program[at + 8..at + 16].copy_from_slice(&seed.to_le_bytes());
    program[at + 16..at + 24].copy_from_slice(&calls.to_le_bytes());
    let files: Vec<(&str, &[u8])> =
        image.files().map(|f| (f.name, if f.name == "fuzz" { &program[..] } else { f.data })).collect();
    let out = scenario_dir().join(format!("fuzz-{seed:016x}.img"));
    make_image(&out, &files);
    out
}

fn run_seed(name: &str, seed: u64) {
    let calls = env_u64("FUZZ_CALLS").unwrap_or(DEFAULT_CALLS);
    // Under TCG on a loaded 2-core machine a call takes well under a millisecond.
    let timeout = env_u64("FUZZ_TIMEOUT").unwrap_or(90 + calls / 500);
    println!("{name}: seed {seed:#x}, {calls} calls; reproduce: make fuzz-qemu SEED={seed:#x}");
    let mut scenario = Scenario::new(name).append("init=fuzz").initrd(Some(image_for(seed, calls)));
    scenario.timeout = Duration::from_secs(timeout);
    scenario
        .run()
        .expect_serial_not_contains("fuzz: FAIL")
        .expect_serial_not_contains("KERNEL")
        .expect_serial_contains(&format!("fuzz: seed {seed:#x}, {calls} calls"))
        .expect_serial_contains(&format!("fuzz: {calls} random calls"))
        .expect_serial_contains("fuzz: ok give the sandbox IOMMU and interrupt caps")
        .expect_serial_contains("fuzz: ok give the sandbox an I/O port range, an MSI handler and a device frame")
        .expect_serial_contains("fuzz: ok some focused invocations got past every check")
        .expect_serial_contains("fuzz: ok the sandbox without a debug cap could not print or halt")
        .expect_serial_contains("fuzz: all checks passed")
        .expect_exit(ExitCode::Success);
}

#[test]
fn random_system_calls_never_hurt_the_kernel() {
    match env_u64("FUZZ_SEED") {
        Some(seed) => run_seed("fuzz", seed),
        None => run_seed("fuzz", FIXED_SEEDS[0]),
    }
}

#[test]
fn random_system_calls_second_fixed_seed() {
    if std::env::var_os("FUZZ_SEED").is_none() {
        run_seed("fuzz_seed2", FIXED_SEEDS[1]);
    }
}

/// A fresh seed each run: `FUZZ_FRESH_SEED` (`make test` picks and prints one) or the
/// clock; the log and any failure print the command that replays it.
#[test]
fn random_system_calls_fresh_seed() {
    if std::env::var_os("FUZZ_SEED").is_none() {
        let seed = env_u64("FUZZ_FRESH_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        run_seed("fuzz_fresh", seed);
    }
}
