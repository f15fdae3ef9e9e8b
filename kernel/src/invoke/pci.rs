//! PciDevice invocations: configuration space of the function the cap names.
//!
//! MSI-X: `MsixInfo` reports the capability and `MsixControl` is the only way to write
//! its message control (a ConfigWrite there is refused like any other register);
//! table entries are written by the kernel only (`invoke::irq`, `msix_table`).
//! `BarInfo` reports a memory BAR's base and size as measured at boot (`platform::bars`).
//!
//! Access is through ECAM. Reads anywhere in its 4 KiB; writes only to the command
//! register (so a driver can enable memory decoding and bus mastering but not move
//! BARs over memory it does not own) and, while interrupt remapping is on, to the MSI capability's
//! control, address and data registers (the IRTE behind an address checks the
//! requester, so no value written there lets the device raise someone else's interrupt).
//! The MSI address must be in the remappable format: a compatibility-format address
//! names a vector directly, bypassing the IRTE.
//!
//! Interrupt Disable (command bit 10) is set on every function at boot and a command
//! write that clears it is refused (`InvalidArgument`): an INTx line is shared by
//! several functions and says nothing about which one raised it, so a driver holding
//! the line's IRQHandler would get other devices' interrupts (invariant 7). PCI devices
//! interrupt only by MSI, remapped and source-validated; I/O APIC lines stay for
//! legacy ISA devices (COM1, the PIT).
//!
//! A DMA write to the MSI window is an interrupt request, not a memory write: without
//! interrupt remapping, or with a unit that passes compatibility-format messages
//! (`cfi_probe`), any bus master raises any vector, so Bus Master Enable is refused then
//! (and cleared at boot where firmware left it set), unless the kernel command line
//! opts out with `iommu=allow-unremapped-dma` (logged).

use core::sync::atomic::{AtomicBool, Ordering};

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::pci::{self, MsixInfo};

use super::args::{fail, Failure, Message};
use crate::platform::msix_table::{self, MsixTable};
use crate::platform::pci_config::{config_read, config_write, function_base, msi_registers, FUNCTION_BYTES};

/// The kernel command line allows bus mastering without interrupt remapping.
static ALLOW_UNREMAPPED_DMA: AtomicBool = AtomicBool::new(false);

/// Allows bus mastering without interrupt remapping (`iommu=allow-unremapped-dma`).
pub fn allow_unremapped_dma() {
    ALLOW_UNREMAPPED_DMA.store(true, Ordering::Relaxed);
}

/// Whether a device may be a bus master: only while its DMA to the MSI window is
/// remapped and the unit was seen at boot to block compatibility-format messages
/// (QEMU 7.2 passes them: any vector, NMI or INIT), or by the explicit opt-out.
pub fn bus_mastering_allowed() -> bool {
    (crate::iommu::remap_table::enabled() && crate::iommu::cfi_probe::compatibility_format_blocked())
        || ALLOW_UNREMAPPED_DMA.load(Ordering::Relaxed)
}

/// A checked PciDevice invocation on the function whose ECAM page is `function_base`.
pub enum PciOp {
    /// ConfigRead of `width` bytes at `offset`.
    ConfigRead { function_base: u64, offset: u64, width: u64 },
    /// ConfigWrite of `value` (`width` bytes) at `offset`: the command register or an
    /// MSI register, checked.
    ConfigWrite { function_base: u64, offset: u64, width: u64, value: u64 },
    /// MsixInfo: the function's MSI-X capability.
    MsixInfo { table: MsixTable },
    /// MsixControl: Enable / Function Mask of the function's MSI-X capability.
    MsixControl { table: MsixTable, value: u64 },
    /// BarInfo: memory BAR `n` as measured at boot.
    BarInfo { requester_id: u16, n: usize },
}

/// Decodes `label` on a PciDevice cap: reads and checks the message and the function's
/// configuration space, changes nothing.
// Out of line, as the whole handler was before the split: inlined into the dispatch,
// it grows the dispatch's frame and slows the hot arms (Retype, Map; `make bench`).
#[inline(never)]
pub fn decode(msg: &Message<'_>, segment: u16, requester_id: u16, label: Invocation) -> Result<PciOp, Failure> {
    let Some(function_base) = function_base(requester_id).filter(|_| segment == 0) else {
        return Err(fail(SyscallError::IllegalOperation, 0));
    };
    match label {
        Invocation::PciDeviceMsixInfo | Invocation::PciDeviceMsixControl => {
            return decode_msix(msg, requester_id, label);
        }
        Invocation::PciDeviceBarInfo => {
            let n = msg.mr(0)?;
            if n > 5 {
                return Err(fail(SyscallError::RangeError, 0));
            }
            return Ok(PciOp::BarInfo { requester_id, n: n as usize });
        }
        _ => {}
    }
    let (offset, width) = (msg.mr(0)?, msg.mr(1)?);
    if !matches!(width, 1 | 2 | 4) {
        return Err(fail(SyscallError::InvalidArgument, 1));
    }
    if offset >= FUNCTION_BYTES || offset % width != 0 {
        return Err(fail(SyscallError::AlignmentError, 0));
    }
    match label {
        Invocation::PciDeviceConfigRead => Ok(PciOp::ConfigRead { function_base, offset, width }),
        Invocation::PciDeviceConfigWrite => {
            let msi = if crate::iommu::remap_table::enabled() { msi_registers(function_base) } else { None };
            let command = offset == pci::COMMAND && width == 2;
            if !(command || msi.is_some_and(|r| r.contains(offset, width))) {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            let value = msg.mr(2)?;
            if value >> (width * 8) != 0 {
                // Wider than the register: refused, not silently cut to its width.
                return Err(fail(SyscallError::RangeError, 2));
            }
            if command && value & pci::COMMAND_INTX_DISABLE == 0 {
                // Legacy INTx stays off: its line is shared with other functions.
                return Err(fail(SyscallError::InvalidArgument, 2));
            }
            if command && value & pci::COMMAND_BUS_MASTER != 0 && !bus_mastering_allowed() {
                // Without interrupt remapping the device could raise any vector.
                return Err(fail(SyscallError::IllegalOperation, 2));
            }
            if msi.is_some_and(|r| r.address_low == (offset, width))
                && crate::iommu::intremap::msi_handle(value & 0xffff_ffff).is_none()
            {
                // Only a remappable-format address in the interrupt window: a
                // compatibility-format one would name a vector, not an IRTE.
                return Err(fail(SyscallError::InvalidArgument, 2));
            }
            Ok(PciOp::ConfigWrite { function_base, offset, width, value })
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}

/// MsixInfo / MsixControl on function `requester_id` (segment 0, checked by the caller).
fn decode_msix(msg: &Message<'_>, requester_id: u16, label: Invocation) -> Result<PciOp, Failure> {
    // Tables the kernel could not take out of device untyped at boot are not offered.
    let table = msix_table::lookup(requester_id).ok_or(fail(SyscallError::FailedLookup, 0))?;
    if label == Invocation::PciDeviceMsixInfo {
        return Ok(PciOp::MsixInfo { table });
    }
    let value = msg.mr(0)?;
    if value & !(pci::MSIX_ENABLE | pci::MSIX_FUNCTION_MASK) != 0 {
        return Err(fail(SyscallError::InvalidArgument, 0));
    }
    if !crate::iommu::remap_table::enabled() {
        // As for MSI: without remapping no vector is handed out, and an enabled table
        // with firmware's entries could name any vector.
        return Err(fail(SyscallError::IllegalOperation, 0));
    }
    if value & pci::MSIX_ENABLE != 0 && !table.memory_decoding() {
        // Masking the unowned entries must reach the device.
        return Err(fail(SyscallError::IllegalOperation, 1));
    }
    Ok(PciOp::MsixControl { table, value })
}

/// Performs a decoded PciDevice invocation.
// Out of line for the same reason as `decode`.
#[inline(never)]
pub fn invoke(op: PciOp) -> [u64; REGISTER_MRS] {
    match op {
        PciOp::ConfigRead { function_base, offset, width } => [config_read(function_base, offset, width), 0, 0, 0],
        PciOp::ConfigWrite { function_base, offset, width, value } => {
            // The command register or an MSI register of the cap's own function
            // (checked by `decode`), written at its own width.
            config_write(function_base, offset, width, value);
            [0; REGISTER_MRS]
        }
        PciOp::MsixInfo { table } => MsixInfo { control: table.control(), ..table.info }.to_words(),
        PciOp::MsixControl { table, value } => {
            table.write_control(value, |entry| crate::thread::irq::msix_owned(table.requester_id, entry));
            [0; REGISTER_MRS]
        }
        PciOp::BarInfo { requester_id, n } => {
            let bar = crate::platform::bars::lookup(requester_id, n);
            [bar.base, bar.size, 0, 0]
        }
    }
}
