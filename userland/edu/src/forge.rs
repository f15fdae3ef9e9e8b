//! Interrupts a device forges by writing to the MSI window.
//!
//! Interrupts a device forges by writing to the MSI window. QEMU 7.2 delivers a
//! compatibility-format message there even with interrupt remapping on (QEMU 8+ blocks
//! it), so the kernel's own defences are what is checked: it refuses a
//! compatibility-format address in the MSI capability, and a CPU-exception vector
//! written to 0xfee00000 by DMA is recognised as an interrupt and dropped (logged)
//! instead of being handled as the exception, from kernel mode (the driver blocked)
//! and from user mode (the driver spinning).

use libcap::abi::error::SyscallError;
use libcap::abi::pci::{self, MsiRegisters};
use libcap::cap::{Msi, PciDevice};
use libcap::check::Checker;
use libcap::println;

use crate::POLLS;
use edu_driver::Edu;

/// The LAPIC's MSI window, as a compatibility-format address (destination APIC 0).
const MSI_WINDOW: u64 = 0xfee0_0000;

/// A compatibility-format address in the MSI capability is refused; the device keeps
/// the remappable one it had.
pub fn compatibility_address_refused(c: &mut Checker, dev: PciDevice, msi: &Msi) {
    let at = dev.find_capability(pci::CAPABILITY_MSI).ok().flatten();
    let regs = at.and_then(|at| MsiRegisters::at(at, dev.config_read(at + 2, 2).unwrap_or(0)));
    let Some(regs) = regs else {
        c.check("the device has an MSI capability", false);
        return;
    };
    let (offset, width) = regs.address_low;
    let refused = dev.config_write(offset, width, MSI_WINDOW).map_err(|e| e.code);
    c.check("a compatibility-format MSI address is refused", refused == Err(SyscallError::InvalidArgument));
    let kept = dev.config_read(offset, width).ok() == Some(msi.address & 0xffff_ffff);
    c.check("the remappable-format address stays programmed", kept);
    if !kept {
        let _ = dev.enable_msi(msi);
    }
}

/// DMA-writes exception vectors to the MSI window (the data word of a fixed-delivery
/// message); the system must carry on. `ram` is the CPU view of the buffer at `iova`.
pub fn exception_vectors_by_dma(c: &mut Checker, edu: &Edu, ram: *mut u64, iova: u64) {
    for (vector, spin) in [(14u32, false), (8, false), (14, true), (8, true), (13, true), (2, true), (18, false)] {
        // SAFETY: `ram` is the driver's mapped 4 KiB DMA buffer.
        unsafe { ram.add(0x180).cast::<u32>().write_volatile(vector) };
        let staged = edu.to_device(iova + 0xc00, 0x300, 4).is_ok();
        let sent = if spin { edu.to_ram_polling(0x300, MSI_WINDOW, 4) } else { edu.to_ram(0x300, MSI_WINDOW, 4) };
        let mode = if spin { "user" } else { "kernel" };
        println!("edu: wrote vector {vector} to {MSI_WINDOW:#x} by DMA while in {mode} mode: {sent:?}");
        let name = alloc::format!("the system survives vector {vector} DMA-written to the MSI window ({mode} mode)");
        c.check(&name, staged && sent.is_ok() && edu.to_device(iova, 0, 8).is_ok());
    }
}

/// Puts `data` (an MSI data word) at offset 0x300 of the device buffer, for a DMA to
/// the MSI window; false if the staging transfer failed.
fn stage(edu: &Edu, ram: *mut u64, iova: u64, data: u32) -> bool {
    // SAFETY: `ram` is the driver's mapped 4 KiB DMA buffer.
    unsafe { ram.add(0x180).cast::<u32>().write_volatile(data) };
    edu.to_device(iova + 0xc00, 0x300, 4).is_ok()
}

/// Vector 0xff, the local APIC's spurious vector, DMA-written to the MSI window sets its
/// in-service bit like any fixed interrupt (a real spurious interrupt sets none): unless
/// the kernel ends it with an EOI, it masks every lower vector (the timer, every MSI)
/// for good. With the driver spinning in user mode, then blocked in the kernel, the
/// timer (`ticking`: another thread gets the CPU while we spin), the transfer's
/// completion MSI and the next transfer's MSI must all still arrive.
pub fn spurious_vector_by_dma(c: &mut Checker, edu: &Edu, ram: *mut u64, iova: u64, ticking: impl FnOnce() -> bool) {
    let staged = stage(edu, ram, iova, 0xff);
    let started = edu.start_to_ram(0x300, MSI_WINDOW, 4).is_ok();
    while started && edu.busy() {
        core::hint::spin_loop();
    }
    println!("edu: wrote vector 255 to {MSI_WINDOW:#x} by DMA while in user mode: {started}");
    c.check(
        "the timer still preempts after vector 255 (spurious) is DMA-written to the MSI window",
        staged && started && ticking(),
    );
    let arrived = edu.poll_interrupt(POLLS) != 0;
    c.check("the completion MSI arrives after the forged vector 255", arrived && edu.finish().is_ok());
    c.check("the next MSI arrives after the forged vector 255", edu.to_device(iova, 0, 8).is_ok());
    let staged = stage(edu, ram, iova, 0xff);
    let sent = edu.to_ram(0x300, MSI_WINDOW, 4);
    println!("edu: wrote vector 255 to {MSI_WINDOW:#x} by DMA while in kernel mode: {sent:?}");
    c.check(
        "the system survives vector 255 DMA-written to the MSI window (kernel mode)",
        staged && sent.is_ok() && edu.to_device(iova, 0, 8).is_ok(),
    );
}

/// Bytes per console write while the NMI is on its way (most of the time is spent in
/// the kernel printing them, holding its console lock).
const CONSOLE_LINE: usize = 1000;

/// A message with delivery mode NMI (data 0x400: the vector field is ignored) DMA-written
/// to the MSI window while the driver keeps the kernel printing on its console: the NMI
/// strikes (almost surely) while the kernel holds its console lock, which the NMI
/// handler must not take. The kernel logs the NMI later, from its timer tick.
pub fn nmi_during_console_output(c: &mut Checker, edu: &Edu, ram: *mut u64, iova: u64) {
    let staged = stage(edu, ram, iova, 0x400 | 0x02);
    let started = edu.start_to_ram(0x300, MSI_WINDOW, 4).is_ok();
    let console = libcap::console::DebugConsole::default();
    let mut line = [b'.'; CONSOLE_LINE];
    line[CONSOLE_LINE - 1] = b'\n';
    let mut writes = 0u32;
    while started && edu.busy() && writes < 100_000 {
        let _ = console.write(&line);
        writes += 1;
    }
    let done = started && edu.complete().is_ok();
    println!("edu: NMI message DMA-written to {MSI_WINDOW:#x} during {writes} console writes: done {done}");
    c.check(
        "the system survives an NMI DMA-written to the MSI window during console output",
        staged && done && writes > 0 && edu.to_device(iova, 0, 8).is_ok(),
    );
}
