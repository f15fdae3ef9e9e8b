//! Invocations of interrupt and I/O-port capabilities: IRQControl::Get / GetMsi,
//! IRQHandler (line or MSI) SetNotification / Ack / Clear, IOPortControl::Issue,
//! IOPort In/Out.

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;
use x86_64::instructions::port::Port;

use crate::arch::kmem::DirectMemory;
use crate::invoke::{fail, Extra, Failure, Message};
use crate::irq;
use crate::object::cap::Cap;
use crate::object::cnode;
use crate::object::cte::SlotAddr;
use crate::object::mdb;

/// Resolves the destination slot of a cap-creating invocation: MRs `index_mr`,
/// `index_mr + 1` are index and depth in the CNode given as extra cap 0.
fn dest_slot(msg: &Message<'_>, mem: &DirectMemory, extra: Extra<'_>, index_mr: usize) -> Result<SlotAddr, Failure> {
    let (_, root) = extra(0)?;
    let depth =
        u32::try_from(msg.mr(index_mr + 1)?).map_err(|_| fail(SyscallError::RangeError, index_mr as u64 + 1))?;
    let slot = cnode::lookup_slot(mem, &root, msg.mr(index_mr)?, depth).map_err(|e| fail(e.into(), index_mr as u64))?;
    cnode::decode_empty(mem, slot).map_err(|e| fail(e, index_mr as u64))?;
    Ok(slot)
}

/// The notification (and its badge) named by extra cap 0, which must allow signalling.
fn notification(extra: Extra<'_>) -> Result<(u64, u64), Failure> {
    match extra(0)?.1 {
        Cap::Notification { paddr, badge, rights } if rights.contains(CapRights::WRITE) => Ok((paddr, badge)),
        _ => Err(fail(SyscallError::InvalidCapability, 100)),
    }
}

/// Handles an invocation of an IRQ or I/O-port cap.
pub fn invoke(
    msg: &Message<'_>,
    mem: &mut DirectMemory,
    _slot: SlotAddr,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Result<[u64; REGISTER_MRS], Failure> {
    let ok = Ok([0; REGISTER_MRS]);
    match (cap, label) {
        (Cap::IrqControl, Invocation::IrqControlGet) => {
            let line = msg.mr(0)?;
            let (gsi, level, active_low) = irq::resolve(line).ok_or(fail(SyscallError::RangeError, 0))?;
            let dest = dest_slot(msg, mem, extra, 1)?;
            if !irq::issue(gsi, level, active_low) {
                return Err(fail(SyscallError::RevokeFirst, 0));
            }
            mdb::insert_root(mem, dest, Cap::IrqHandler { gsi }, false);
            Ok([u64::from(gsi), 0, 0, 0])
        }
        (Cap::IrqControl, Invocation::IrqControlGetMsi) => {
            let (_, device) = extra(1)?;
            let Cap::PciDevice { requester_id, .. } = device else {
                return Err(fail(SyscallError::InvalidCapability, 101));
            };
            if !crate::intremap::enabled() {
                // Without remapping an MSI could name any vector: none are handed out.
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let dest = dest_slot(msg, mem, extra, 0)?;
            let (vector, address, data) = irq::issue_msi(requester_id).ok_or(fail(SyscallError::NotEnoughMemory, 0))?;
            mdb::insert_root(mem, dest, Cap::MsiHandler { vector, requester_id }, false);
            Ok([u64::from(vector), address, u64::from(data), 0])
        }
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerSetNotification) => {
            let (paddr, badge) = notification(extra)?;
            irq::set_notification(gsi, paddr, badge);
            ok
        }
        (Cap::MsiHandler { vector, .. }, Invocation::IrqHandlerSetNotification) => {
            irq::set_msi_notification(vector, Some(notification(extra)?));
            ok
        }
        // MSIs are edge-triggered messages: nothing to unmask.
        (Cap::MsiHandler { .. }, Invocation::IrqHandlerAck) => ok,
        (Cap::MsiHandler { vector, .. }, Invocation::IrqHandlerClear) => {
            irq::set_msi_notification(vector, None);
            ok
        }
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerAck) => {
            irq::ack(gsi);
            ok
        }
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerClear) => {
            irq::clear(gsi);
            ok
        }
        (Cap::IoPortControl, Invocation::IoPortControlIssue) => {
            let (first, last) = crate::platform::reserved::issue_port_range(msg.mr(0)?, msg.mr(1)?)
                .map_err(|arg| fail(SyscallError::RangeError, arg))?;
            // Never the PICs, PCI configuration, nor anything that reaches memory or raises
            // interrupts outside the IOMMU (ISA DMA, fw_cfg, A20, SMI): abi::reserved and
            // the FADT's SMI command port.
            if crate::platform::reserved::reserved_port_reason(first, last).is_some() {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            let dest = dest_slot(msg, mem, extra, 2)?;
            mdb::insert_root(mem, dest, Cap::IoPort { first, last }, false);
            ok
        }
        (Cap::IoPort { first, last }, _) => {
            let port = msg.mr(0)?;
            let width = match label {
                Invocation::IoPortIn8 | Invocation::IoPortOut8 => 1,
                Invocation::IoPortIn16 | Invocation::IoPortOut16 => 2,
                Invocation::IoPortIn32 | Invocation::IoPortOut32 => 4,
                _ => return Err(fail(SyscallError::IllegalOperation, 0)),
            };
            // Checked: `port + width - 1` near 2^64 would wrap into the cap's range.
            let port = crate::platform::reserved::port_access(first, last, port, width)
                .ok_or(fail(SyscallError::RangeError, 0))?;
            let value = match label {
                Invocation::IoPortIn8 | Invocation::IoPortIn16 | Invocation::IoPortIn32 => port_in(port, width),
                _ => {
                    port_out(port, width, msg.mr(1)?);
                    0
                }
            };
            Ok([value, 0, 0, 0])
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// Reads `width` bytes from `port`, which an IOPort cap granted.
fn port_in(port: u16, width: u64) -> u64 {
    // SAFETY: the invoking cap grants this port; IOPortControl never issues the ports
    // the kernel relies on or that reach memory (abi::reserved::RESERVED_IO_PORTS).
    unsafe {
        match width {
            1 => u64::from(Port::<u8>::new(port).read()),
            2 => u64::from(Port::<u16>::new(port).read()),
            _ => u64::from(Port::<u32>::new(port).read()),
        }
    }
}

/// Writes `width` bytes of `value` to `port`, which an IOPort cap granted.
fn port_out(port: u16, width: u64, value: u64) {
    // SAFETY: as in `port_in`.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value as u32),
        }
    }
}
