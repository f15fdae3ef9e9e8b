//! User-side library: system-call wrappers, console output and the program runtime.
//!
//! A user program is a `#![no_std]`, `#![no_main]` crate that calls [`entry!`] with its
//! `main(&BootInfo) -> ExitCode`; libcap provides `_start`, the panic handler and
//! `println!` through the kernel's debug console.
#![no_std]

pub mod alloc;
pub mod cap;
pub mod check;
pub mod component;
pub mod console;
pub mod deadline;
pub mod device;
pub mod heap;
pub mod iommu;
pub mod ipc;
pub mod runtime;
pub mod space;
pub mod syscall;
pub mod thread;
pub mod vm;

pub use abi;
