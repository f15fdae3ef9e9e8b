//! PciDevice invocations: configuration-space access to the one function the cap names,
//! through ECAM. Reads anywhere in its 4 KiB; writes only to the command register (so a
//! driver can enable memory decoding and bus mastering but not move BARs over memory
//! it does not own) and, while interrupt remapping is on, to the MSI capability's
//! control, address and data registers (the IRTE behind an address checks the
//! requester, so no value written there lets the device raise someone else's interrupt).

use core::sync::atomic::{AtomicU64, Ordering};

use abi::error::SyscallError;
use abi::invocation::Invocation;
use abi::ipc_buffer::REGISTER_MRS;
use abi::pci::{self, MsiRegisters};

use crate::arch::phys_to_virt;
use crate::invoke::{fail, Failure, Message};

/// ECAM base for segment 0, first and last bus (0 = none).
static ECAM: AtomicU64 = AtomicU64::new(0);
static ECAM_BUSES: AtomicU64 = AtomicU64::new(0);

/// Reads `width` bytes at `offset` of the function whose ECAM page is `function_base`.
fn config_read(function_base: u64, offset: u64, width: u64) -> u64 {
    let address = phys_to_virt(function_base + offset);
    // SAFETY: ECAM (from the MCFG, kernel-owned, uncached in the direct map) holds
    // 4 KiB per function; callers keep offset < 4096 and aligned to the width.
    unsafe {
        match width {
            1 => u64::from(core::ptr::read_volatile(address as *const u8)),
            2 => u64::from(core::ptr::read_volatile(address as *const u16)),
            _ => u64::from(core::ptr::read_volatile(address as *const u32)),
        }
    }
}

/// The MSI capability registers a driver may write (see `abi::pci`; the walk checks
/// the device-provided pointers).
fn msi_registers(function_base: u64) -> Option<MsiRegisters> {
    let read = |offset, width| Ok::<u64, ()>(config_read(function_base, offset, width));
    let at = pci::find_capability(read, pci::CAPABILITY_MSI).ok().flatten()?;
    MsiRegisters::at(at, config_read(function_base, at + 2, 2))
}

/// Records where configuration space is (from the MCFG).
pub fn set_ecam(base: u64, bus_start: u8, bus_end: u8) {
    ECAM.store(base, Ordering::Relaxed);
    ECAM_BUSES.store((u64::from(bus_start) << 8) | u64::from(bus_end), Ordering::Relaxed);
}

/// Handles an invocation of a PciDevice cap.
pub fn invoke(
    msg: &Message<'_>,
    segment: u16,
    requester_id: u16,
    label: Invocation,
) -> Result<[u64; REGISTER_MRS], Failure> {
    let base = ECAM.load(Ordering::Relaxed);
    let buses = ECAM_BUSES.load(Ordering::Relaxed);
    let bus = u64::from(requester_id >> 8);
    if base == 0 || segment != 0 || bus < buses >> 8 || bus > buses & 0xff {
        return Err(fail(SyscallError::IllegalOperation, 0));
    }
    let (offset, width) = (msg.mr(0)?, msg.mr(1)?);
    if !matches!(width, 1 | 2 | 4) {
        return Err(fail(SyscallError::InvalidArgument, 1));
    }
    if offset >= 4096 || offset % width != 0 {
        return Err(fail(SyscallError::AlignmentError, 0));
    }
    let function_base = base + ((bus - (buses >> 8)) << 20) + (u64::from(requester_id & 0xff) << 12);
    let address = phys_to_virt(function_base + offset);
    match label {
        Invocation::PciDeviceConfigRead => Ok([config_read(function_base, offset, width), 0, 0, 0]),
        Invocation::PciDeviceConfigWrite => {
            let msi = || {
                crate::intremap::enabled() && msi_registers(function_base).is_some_and(|r| r.contains(offset, width))
            };
            if !((offset == pci::COMMAND && width == 2) || msi()) {
                return Err(fail(SyscallError::InvalidArgument, 0));
            }
            let value = msg.mr(2)?;
            // SAFETY: as in `config_read`; the command register or an MSI register of
            // the cap's own function, written at its own width.
            unsafe {
                match width {
                    2 => core::ptr::write_volatile(address as *mut u16, value as u16),
                    _ => core::ptr::write_volatile(address as *mut u32, value as u32),
                }
            }
            Ok([0; REGISTER_MRS])
        }
        _ => Err(fail(SyscallError::IllegalOperation, 0)),
    }
}
