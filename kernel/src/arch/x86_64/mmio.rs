//! Volatile access to device registers through the uncached part of the direct map.

use super::phys_to_virt;

/// Reads a 32-bit register at physical address `paddr`.
///
/// # Safety
/// `paddr` must be a 4-byte aligned device register inside the direct map whose read
/// has no side effect the caller does not intend.
pub unsafe fn read32(paddr: u64) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::read_volatile(phys_to_virt(paddr) as *const u32) }
}

/// Reads a 64-bit register at physical address `paddr`.
///
/// # Safety
/// As for [`read32`], 8-byte aligned.
pub unsafe fn read64(paddr: u64) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::read_volatile(phys_to_virt(paddr) as *const u64) }
}

/// Writes a 32-bit register at physical address `paddr`.
///
/// # Safety
/// `paddr` must be a 4-byte aligned device register inside the direct map that the
/// caller owns and means to write.
pub unsafe fn write32(paddr: u64, value: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::write_volatile(phys_to_virt(paddr) as *mut u32, value) }
}
