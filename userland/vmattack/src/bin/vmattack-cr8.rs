//! A guest's CR8 write while an injected interrupt waits (`init=vmattack-cr8`).
//!
//! The kernel asks for the guest's interrupt window with a virtual interrupt request
//! (V_IRQ) when the VMM injects a vector the guest cannot take yet. A guest that then
//! writes CR8 made QEMU 7.2's TCG re-evaluate the virtual interrupt and call
//! `cpu_interrupt` without its I/O thread lock: QEMU aborted (`tcg_handle_interrupt:
//! assertion failed`), taking every partition with it. The kernel now intercepts CR8
//! writes while the window is requested; the guest spins until the host timer stops
//! it, which is what this checks.
#![no_std]
#![no_main]

// The main program's modules, of which this one uses a part.
#[allow(dead_code)]
#[path = "../snippets.rs"]
mod snippets;
#[allow(dead_code)]
#[path = "../vm.rs"]
mod vm;

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::abi::vcpu::VmExitKind;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::check::Checker;
use libcap::println;

libcap::entry!(main);

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("vmattack-cr8");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let Ok(vm) = vm::Vm::new(&mut objects, &slots, 0x0000_4000_0000_0000) else {
        c.check("build a VM", false);
        return c.finish();
    };
    c.check("every guest snippet fits its slot", snippets::intact());
    // Interrupts off with a vector pending: the kernel requests the window (V_IRQ).
    let pending = vm.load(snippets::Snippet::CliSpin, &[]).is_ok() && vm.vcpu.inject_irq(0x40).is_ok();
    let stopped = vm.run().is_ok_and(|e| e.kind == Some(VmExitKind::Interrupt));
    c.check("a guest with interrupts off and a vector pending runs until a host interrupt", pending && stopped);
    // Now the guest writes CR8 with the request still pending.
    println!("vmattack-cr8: the guest writes CR8 while its interrupt window is requested");
    let loaded = vm.load(snippets::Snippet::Cr8Spin, &[]).is_ok();
    let mut stops = 0;
    for _ in 0..3 {
        match vm.run() {
            Ok(e) if e.kind == Some(VmExitKind::Interrupt) => stops += 1,
            // The vector may be delivered (no IDT: a shutdown) once the guest's STI runs.
            Ok(e) if e.kind == Some(VmExitKind::Shutdown) => break,
            _ => {}
        }
    }
    println!("vmattack-cr8: the platform survived the guest's CR8 write ({stops} host interrupts)");
    c.check("the platform survives a guest's CR8 write with an interrupt pending", loaded);
    c.finish()
}
