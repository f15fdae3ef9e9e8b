//! Test component: faults on purpose so init applies its fault policy.
//!
//! `crasher` prints its generation (1 at first, +1 per restart) and then reads an
//! unmapped address: a page fault init receives on its fault endpoint. First it tries
//! to end the system through its debug console, which must be refused (print-only).
#![no_std]
#![no_main]

use libcap::abi::exit::ExitCode;
use libcap::component::ComponentInfo;
use libcap::println;

libcap::component::entry!(main);

/// An address no component has mapped.
const BAD_POINTER: u64 = 0x0000_dead_0000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    // The debug console init gives a component is print-only: Halt must be refused.
    let refused = libcap::console::DebugConsole::default().halt(0);
    println!("crasher: halt refused: {:?}", refused.code);
    println!("crasher: generation {}: reading {BAD_POINTER:#x}", info.generation);
    // SAFETY: deliberately unsound: this read must fault; init handles it.
    let v = unsafe { core::ptr::read_volatile(BAD_POINTER as *const u64) };
    println!("crasher: read {v:#x}: NOT refused");
    ExitCode::UserFailure
}
