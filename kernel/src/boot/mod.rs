//! Boot: hand-off parsing, memory, untyped split, ELF checks, boot sequence.
//!
//! Loader hand-off parsing, physical memory accounting, the untyped split and the
//! user-image loader are tested on the host; `init` (the boot sequence) is bare metal.

pub mod elf_loader;
pub mod memory;
pub mod packed_image;
pub mod params;
pub mod untyped;

#[cfg(target_os = "none")]
pub mod boot_image;
#[cfg(target_os = "none")]
pub mod init;
#[cfg(target_os = "none")]
pub mod sized;
