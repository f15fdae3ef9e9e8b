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

use crate::arch::phys_to_virt;
use crate::invoke::{fail, Failure, Message};

/// ECAM base for segment 0, first and last bus (0 = none).
static ECAM: AtomicU64 = AtomicU64::new(0);
static ECAM_BUSES: AtomicU64 = AtomicU64::new(0);

/// Offset of the command register.
const COMMAND: u64 = 0x04;
/// Offset of the status register and its capabilities-list bit.
const STATUS: u64 = 0x06;
const STATUS_CAPABILITIES: u64 = 1 << 4;
/// Offset of the first capability pointer.
const CAPABILITY_POINTER: u64 = 0x34;
/// Capability id of MSI, and its message-control bit for a 64-bit address.
const CAPABILITY_MSI: u64 = 0x05;
const MSI_64BIT: u64 = 1 << 7;
/// Most capabilities followed: a malformed (looping) list from the device ends there.
const MAX_CAPABILITIES: usize = 48;

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

/// The (offset, width) pairs of the MSI capability a driver may write: message
/// control, address (low and, for 64-bit capable functions, high) and data. Found by
/// walking the device's capability list, whose pointers come from the device and are
/// checked (dword aligned, inside the standard header's capability area, bounded).
fn msi_registers(function_base: u64) -> Option<[(u64, u64); 4]> {
    if config_read(function_base, STATUS, 2) & STATUS_CAPABILITIES == 0 {
        return None;
    }
    let mut at = config_read(function_base, CAPABILITY_POINTER, 1) & !3;
    for _ in 0..MAX_CAPABILITIES {
        if !(0x40..0x100).contains(&at) {
            return None;
        }
        let header = config_read(function_base, at, 2);
        if header & 0xff == CAPABILITY_MSI {
            let control = config_read(function_base, at + 2, 2);
            // The registers must lie inside the standard header's capability area.
            let length = if control & MSI_64BIT != 0 { 14 } else { 10 };
            if at + length > 0x100 {
                return None;
            }
            return Some(if control & MSI_64BIT != 0 {
                [(at + 2, 2), (at + 4, 4), (at + 8, 4), (at + 12, 2)]
            } else {
                [(at + 2, 2), (at + 4, 4), (at + 8, 2), (at + 8, 2)]
            });
        }
        at = (header >> 8) & !3;
    }
    None
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
                crate::intremap::enabled() && msi_registers(function_base).is_some_and(|r| r.contains(&(offset, width)))
            };
            if !((offset == COMMAND && width == 2) || msi()) {
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
