//! Host-side fuzzer for the parsers of untrusted boot input.
//!
//! Host-side fuzzer for the parsers of untrusted boot input: a mutation loop on stable Rust.
//!
//! Each target is a `fn(&[u8])` that feeds the bytes to one parser and asserts the
//! parser's promises (ranges inside the input, counts inside capacities, errors instead
//! of panics). The engine starts from the corpus in `fuzz/corpus/<target>/`, mutates
//! inputs with a deterministic PRNG (structure-blind byte edits plus "interesting"
//! integers at aligned offsets and splices), runs each inside `catch_unwind` and stops
//! at the first panic or at an input that runs longer than [`HANG_LIMIT`], saving it
//! under `target/fuzz-crashes/<target>/`. There is no coverage feedback: the seeds
//! carry the structure, the mutations stay close to them.

pub mod engine;
pub mod seeds;
pub mod targets;

pub use engine::{fuzz, replay_corpus, FuzzReport, HANG_LIMIT};

/// One fuzz target.
#[derive(Clone, Copy)]
pub struct Target {
    /// Name (corpus directory, `TARGET=` value).
    pub name: &'static str,
    /// What it feeds.
    pub about: &'static str,
    /// Runs one input; panics on a broken promise.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "dmar", about: "ACPI DMAR table (parse_dmar) + RMRR checks", run: targets::dmar },
    Target { name: "hpet", about: "ACPI HPET table (parse_hpet)", run: targets::hpet },
    Target { name: "pvh", about: "PVH hvm_start_info, memory map, modules, cmdline", run: targets::pvh },
    Target { name: "multiboot2", about: "multiboot2 information structure", run: targets::multiboot2 },
    Target { name: "memory", about: "RangeSet, BootAllocator, untyped split", run: targets::memory },
    Target { name: "bootimage", about: "boot image (mkbootimg format) + manifest", run: targets::bootimage },
    Target { name: "elf", about: "user program ELF load plan", run: targets::elf },
    Target { name: "pci", about: "PCI config space enumeration, aliases, DRHD cover", run: targets::pci },
    Target { name: "system", about: "packed system description (abi::system, mksys)", run: targets::system },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The corpus directory of `target` in the repository.
pub fn corpus_dir(target: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// Where crashing inputs are saved.
pub fn crash_dir(target: &str) -> std::path::PathBuf {
    let base = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(d),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"),
    };
    base.join("fuzz-crashes").join(target)
}
