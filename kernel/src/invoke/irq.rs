//! Interrupt cap invocations: IRQControl Get/GetMsi/GetMsix and IRQHandler.
//!
//! IRQHandler SetNotification / Ack / Clear, for I/O APIC lines and remapped MSIs;
//! MsixMask for an MSI-X entry (whose table only the kernel writes).

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::rights::CapRights;

use super::args::{dest_slot, fail, Extra, Failure, Message, Reply};
use crate::arch::kmem::DirectMemory;
use crate::object::cap::Cap;
use crate::object::cte::SlotAddr;
use crate::object::mdb;
use crate::platform::msix_table::MsixTable;
use crate::thread::irq;

/// The notification (and its badge) named by extra cap 0, which must allow signalling.
fn notification(extra: Extra<'_>) -> Result<(u64, u64), Failure> {
    match extra(0)?.1 {
        Cap::Notification { paddr, badge, rights } if rights.contains(CapRights::WRITE) => Ok((paddr, badge)),
        _ => Err(fail(SyscallError::InvalidCapability, 100)),
    }
}

/// A checked interrupt cap invocation.
pub enum IrqOp {
    /// IRQControl::Get: a handler cap for line `gsi` into the empty slot `dest`.
    Get { gsi: u8, level: bool, active_low: bool, dest: SlotAddr },
    /// IRQControl::GetMsi: an MSI handler cap for `requester_id` into the empty `dest`.
    GetMsi { requester_id: u16, dest: SlotAddr },
    /// IRQControl::GetMsix: a handler cap for MSI-X entry `entry` of `table` into `dest`.
    GetMsix { table: MsixTable, entry: u16, dest: SlotAddr },
    /// MsixMask on the MSI-X entry `entry` of `table`.
    MsixMask { table: MsixTable, entry: u16, masked: bool },
    /// SetNotification on line `gsi`: signal (`paddr`, `badge`).
    SetNotification { gsi: u8, notification: (u64, u64) },
    /// SetNotification (Some) or Clear (None) on MSI `vector`.
    SetMsiNotification { vector: u8, notification: Option<(u64, u64)> },
    /// Ack of line `gsi`: unmask it.
    Ack { gsi: u8 },
    /// Clear of line `gsi`: no notification any more.
    Clear { gsi: u8 },
    /// Ack of an MSI: MSIs are edge-triggered messages, nothing to unmask.
    Nothing,
}

/// Decodes `label` on an IRQControl, IRQHandler or MSI handler cap: reads and checks
/// everything, changes nothing.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(
    msg: &Message<'_>,
    mem: &DirectMemory,
    cap: Cap,
    label: Invocation,
    extra: Extra<'_>,
) -> Result<IrqOp, Failure> {
    match (cap, label) {
        (Cap::IrqControl, Invocation::IrqControlGet) => {
            let line = msg.mr(0)?;
            let (gsi, level, active_low) = irq::resolve(line).ok_or(fail(SyscallError::RangeError, 0))?;
            let dest = dest_slot(msg, mem, extra, 1)?;
            Ok(IrqOp::Get { gsi, level, active_low, dest })
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
            Ok(IrqOp::GetMsi { requester_id, dest })
        }
        (Cap::IrqControl, Invocation::IrqControlGetMsix) => {
            let (_, device) = extra(1)?;
            let Cap::PciDevice { segment, requester_id } = device else {
                return Err(fail(SyscallError::InvalidCapability, 101));
            };
            if !crate::iommu::remap_table::enabled() {
                return Err(fail(SyscallError::IllegalOperation, 0));
            }
            let entry = msg.mr(2)?;
            let table = msix_table(segment, requester_id)?;
            if entry >= table.info.table_size {
                return Err(fail(SyscallError::RangeError, 2));
            }
            let dest = dest_slot(msg, mem, extra, 0)?;
            Ok(IrqOp::GetMsix { table, entry: entry as u16, dest })
        }
        (Cap::MsiHandler { vector, .. }, Invocation::IrqHandlerMsixMask) => {
            let masked = match msg.mr(0)? {
                0 => false,
                1 => true,
                _ => return Err(fail(SyscallError::InvalidArgument, 0)),
            };
            // An MSI (not MSI-X) handler has no table entry to mask.
            let (requester_id, entry) = irq::msix_entry(vector).ok_or(fail(SyscallError::IllegalOperation, 0))?;
            let table = msix_table(0, requester_id)?;
            Ok(IrqOp::MsixMask { table, entry, masked })
        }
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerSetNotification) => {
            Ok(IrqOp::SetNotification { gsi, notification: notification(extra)? })
        }
        (Cap::MsiHandler { vector, .. }, Invocation::IrqHandlerSetNotification) => {
            Ok(IrqOp::SetMsiNotification { vector, notification: Some(notification(extra)?) })
        }
        (Cap::MsiHandler { .. }, Invocation::IrqHandlerAck) => Ok(IrqOp::Nothing),
        (Cap::MsiHandler { vector, .. }, Invocation::IrqHandlerClear) => {
            Ok(IrqOp::SetMsiNotification { vector, notification: None })
        }
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerAck) => Ok(IrqOp::Ack { gsi }),
        (Cap::IrqHandler { gsi }, Invocation::IrqHandlerClear) => Ok(IrqOp::Clear { gsi }),
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// The recorded MSI-X table of a function, usable now: `FailedLookup` if the function
/// has none the kernel offers, `IllegalOperation` while its memory decoding is off (the
/// kernel's writes to the table would be dropped).
fn msix_table(segment: u16, requester_id: u16) -> Result<MsixTable, Failure> {
    let table = crate::platform::msix_table::lookup(requester_id)
        .filter(|_| segment == 0)
        .ok_or(fail(SyscallError::FailedLookup, 0))?;
    if !table.memory_decoding() {
        return Err(fail(SyscallError::IllegalOperation, 1));
    }
    Ok(table)
}

/// Performs a decoded interrupt cap invocation.
///
/// Get and GetMsi can still fail here, changing nothing: the line already has a
/// handler cap (`RevokeFirst`) or every MSI vector is taken (`NotEnoughMemory`);
/// `irq::issue` / `issue_msi` find that out in the same call that takes the line or
/// vector.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(mem: &mut DirectMemory, op: IrqOp) -> Reply {
    let ok = Ok([0; REGISTER_MRS]);
    match op {
        IrqOp::Get { gsi, level, active_low, dest } => {
            if !irq::issue(gsi, level, active_low) {
                return Err(fail(SyscallError::RevokeFirst, 0));
            }
            mdb::insert_root(mem, dest, Cap::IrqHandler { gsi }, false);
            Ok([u64::from(gsi), 0, 0, 0])
        }
        IrqOp::GetMsi { requester_id, dest } => {
            let (vector, address, data) = irq::issue_msi(requester_id).ok_or(fail(SyscallError::NotEnoughMemory, 0))?;
            mdb::insert_root(mem, dest, Cap::MsiHandler { vector, requester_id }, false);
            Ok([u64::from(vector), address, u64::from(data), 0])
        }
        IrqOp::GetMsix { table, entry, dest } => {
            let vector = irq::issue_msix(&table, entry).map_err(|taken| {
                fail(if taken { SyscallError::RevokeFirst } else { SyscallError::NotEnoughMemory }, 0)
            })?;
            mdb::insert_root(mem, dest, Cap::MsiHandler { vector, requester_id: table.requester_id }, false);
            Ok([u64::from(vector), u64::from(entry), 0, 0])
        }
        IrqOp::MsixMask { table, entry, masked } => {
            let pending = table.pending(entry);
            table.set_masked(entry, masked);
            Ok([u64::from(pending), 0, 0, 0])
        }
        IrqOp::SetNotification { gsi, notification: (paddr, badge) } => {
            irq::set_notification(gsi, paddr, badge);
            ok
        }
        IrqOp::SetMsiNotification { vector, notification } => {
            irq::set_msi_notification(vector, notification);
            ok
        }
        IrqOp::Ack { gsi } => {
            irq::ack(gsi);
            ok
        }
        IrqOp::Clear { gsi } => {
            irq::clear(gsi);
            ok
        }
        IrqOp::Nothing => ok,
    }
}
