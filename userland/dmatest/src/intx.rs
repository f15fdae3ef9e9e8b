//! Checks that legacy PCI INTx reaches no interrupt line.
//!
//! Legacy INTx of a PCI device must reach no interrupt line: q35 routes every PCI
//! INTx pin to one of GSI 16-23, shared with other functions (edu at 00:10.0 shares
//! GSI 20 with AHCI and SMBus), so a driver holding a line's IRQHandler would get
//! another device's interrupts. The kernel sets Interrupt Disable (command bit 10) at
//! boot and refuses to clear it: PCI devices interrupt only by remapped MSI.

use libcap::abi::error::SyscallError;
use libcap::abi::object::ObjectType;
use libcap::abi::pci;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, IrqControl, IrqHandler, Notification, PciDevice};
use libcap::check::Checker;
use libcap::ipc;
use libcap::println;

use edu_driver::registers::Interrupt;
use tock_registers::interfaces::{Readable, Writeable};

/// The I/O APIC lines q35 routes PCI INTx pins to (PIRQA-H).
const PCI_GSIS: core::ops::Range<u64> = 16..24;

/// Binds GSI 16-23 (badge 1 << (gsi - 16)) to one notification, tries to clear edu's
/// Interrupt Disable, raises edu's interrupt and checks that no line signals. `mmio` is
/// edu's BAR page with memory decoding on and MSI off.
pub fn check(c: &mut Checker, pci_dev: PciDevice, mmio: u64, slots: &SlotAllocator, objects: &mut ObjectAllocator<'_>) {
    let root = CNode(slots::INIT_CNODE);
    let ntfn = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
    let mut handlers = [0u64; 8];
    let mut bound = true;
    for (k, gsi) in PCI_GSIS.enumerate() {
        let badged = slots.alloc().expect("slot");
        let handler = slots.alloc().expect("slot");
        bound &= CNode::mint(root.slot(badged), root.slot(ntfn), CapRights::ALL, 1 << k).is_ok()
            && IrqControl(slots::IRQ_CONTROL).get(gsi, root.slot(handler)).is_ok()
            && IrqHandler(handler).set_notification(Notification(badged)).is_ok();
        handlers[k] = handler;
    }
    c.check("INTx: take GSI 16-23 and bind each to a notification", bound);
    let _ = ipc::poll(ntfn);

    let command = pci_dev.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    let disable = pci::COMMAND_INTX_DISABLE as u16;
    c.check("INTx: the kernel set Interrupt Disable at boot", command & disable != 0);
    let cleared = pci_dev.write_command(command & !disable).map_err(|e| e.code);
    println!("dmatest: clearing Interrupt Disable: {cleared:?}");
    c.check("INTx: clearing Interrupt Disable is refused", cleared == Err(SyscallError::InvalidArgument));
    let after = pci_dev.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    c.check("INTx: Interrupt Disable is still set", after & disable != 0);
    // A value wider than the 16-bit register is an error, not silently cut to 16 bits.
    let wide = pci_dev.config_write(pci::COMMAND, 2, (1 << 16) | u64::from(after)).map_err(|e| e.code);
    c.check("a command value wider than the register is refused -> RangeError", wide == Err(SyscallError::RangeError));

    let regs = crate::edu_at(mmio);
    regs.interrupt_raise.write(Interrupt::FACTORIAL::SET);
    let word = ipc::poll_within(ntfn, 200_000);
    for k in (0..8).filter(|k| word & (1 << k) != 0) {
        println!("dmatest: edu's INTx arrived on GSI {}", PCI_GSIS.start + k);
    }
    c.check("INTx: edu's raised interrupt status is pending", regs.interrupt_status.is_set(Interrupt::FACTORIAL));
    c.check("INTx: edu's interrupt reaches none of GSI 16-23", word == 0);

    // Leave nothing asserted and every line free for whoever comes next.
    regs.interrupt_ack.set(regs.interrupt_status.get());
    for handler in handlers.into_iter().filter(|&h| h != 0) {
        let _ = IrqHandler(handler).clear();
        let _ = CNode::delete(root.slot(handler));
    }
}
