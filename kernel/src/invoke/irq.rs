//! Interrupt cap invocations: IRQControl Get/GetMsi, IRQHandler (line or MSI).
//!
//! IRQHandler SetNotification / Ack / Clear, for I/O APIC lines and remapped MSIs.

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{dest_slot, fail, Extra, Failure, Message, Reply};
use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::mdb;
use crate::thread::irq;

/// The notification (and its badge) named by extra cap 0, which must allow signalling.
fn notification(extra: Extra<'_>) -> Result<(u64, u64), Failure> {
    match extra(0)?.1 {
        Cap::Notification { paddr, badge, rights } if rights.contains(CapRights::WRITE) => Ok((paddr, badge)),
        _ => Err(fail(SyscallError::InvalidCapability, 100)),
    }
}

/// Handles an invocation of an IRQControl, IRQHandler or MSI handler cap.
pub fn invoke(msg: &Message<'_>, mem: &mut DirectMemory, cap: Cap, label: Invocation, extra: Extra<'_>) -> Reply {
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
            if !crate::iommu::remap_table::enabled() {
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
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}
