//! PCI configuration space through ECAM: the kernel's one access path to it.
//!
//! [`Ecam`] serves `pci_types` (enumeration reads whole dwords); the width-exact
//! [`config_read`] / [`config_write`] serve the PciDevice invocations and the boot-time
//! command-register fixes. Command writes stay 16 bits wide on purpose: `pci_types`'
//! `update_command` writes the whole dword, and the status register above the command
//! register has write-one-to-clear bits a read-modify-write would clear.
//!
//! Mechanism only: when bus mastering is allowed is the PciDevice invocation's policy
//! (`invoke::pci`, from the interrupt-remapping state in `iommu/`), kept there so that
//! `platform/` and `iommu/` do not import each other.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::pci::{self, MsiRegisters};
use pci_types::{ConfigRegionAccess, PciAddress};

use crate::arch::{mmio, phys_to_virt};

/// Bytes of one function's configuration space in ECAM.
pub const FUNCTION_BYTES: u64 = 4096;

/// PCI configuration space of one segment through ECAM in the direct map.
pub struct Ecam {
    /// Physical base (the MCFG's, for `bus_start`).
    pub base: u64,
    /// First bus it covers.
    pub bus_start: u8,
    /// Last bus it covers.
    pub bus_end: u8,
}

impl Ecam {
    /// The physical address of dword `offset` of `address`, if the ECAM covers it.
    fn dword(&self, address: PciAddress, offset: u16) -> Option<u64> {
        let (bus, device, function) = (address.bus(), address.device(), address.function());
        if bus < self.bus_start || bus > self.bus_end || device > 31 || function > 7 || offset > 0xffc {
            return None;
        }
        Some(
            self.base
                + (u64::from(bus - self.bus_start) << 20)
                + (u64::from(device) << 15)
                + (u64::from(function) << 12)
                + u64::from(offset & !3),
        )
    }
}

impl ConfigRegionAccess for Ecam {
    /// All ones outside the ECAM (as for an absent function).
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        let Some(paddr) = self.dword(address, offset) else { return u32::MAX };
        // SAFETY: ECAM was checked at discovery to lie in the (uncached) direct map and
        // `dword` keeps the address inside it; config reads have no side effects.
        unsafe { mmio::read32(paddr) }
    }

    /// Enumeration never writes through this path: writes go through [`config_write`],
    /// width-exact, so a write is dropped here rather than widened.
    unsafe fn write(&self, _address: PciAddress, _offset: u16, _value: u32) {}
}

/// ECAM base for segment 0, first and last bus (0 = none).
static ECAM: AtomicU64 = AtomicU64::new(0);
static ECAM_BUSES: AtomicU64 = AtomicU64::new(0);

/// Records where configuration space is (from the MCFG).
pub fn set_ecam(base: u64, bus_start: u8, bus_end: u8) {
    ECAM.store(base, Ordering::Relaxed);
    ECAM_BUSES.store((u64::from(bus_start) << 8) | u64::from(bus_end), Ordering::Relaxed);
}

/// ECAM page of `requester_id` on segment 0, if the MCFG covers its bus.
pub fn function_base(requester_id: u16) -> Option<u64> {
    let base = ECAM.load(Ordering::Relaxed);
    let buses = ECAM_BUSES.load(Ordering::Relaxed);
    let bus = u64::from(requester_id >> 8);
    if base == 0 || bus < buses >> 8 || bus > buses & 0xff {
        return None;
    }
    Some(base + ((bus - (buses >> 8)) << 20) + (u64::from(requester_id & 0xff) << 12))
}

/// Reads `width` bytes at `offset` of the function whose ECAM page is `function_base`
/// (from [`function_base`]); `offset` < [`FUNCTION_BYTES`], aligned to `width`.
pub fn config_read(function_base: u64, offset: u64, width: u64) -> u64 {
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

/// Writes the low `width` (2 or 4) bytes of `value` at `offset` of the function whose
/// ECAM page is `function_base`, at exactly that width. Callers decide which registers
/// may be written; `offset` < [`FUNCTION_BYTES`], aligned to `width`.
pub fn config_write(function_base: u64, offset: u64, width: u64, value: u64) {
    let address = phys_to_virt(function_base + offset);
    // SAFETY: as in `config_read`; the register is one the caller checked may be
    // written, at its own width.
    unsafe {
        match width {
            2 => core::ptr::write_volatile(address as *mut u16, value as u16),
            _ => core::ptr::write_volatile(address as *mut u32, value as u32),
        }
    }
}

/// The MSI capability registers a driver may write (see `abi::pci`; the walk checks
/// the device-provided pointers).
pub fn msi_registers(function_base: u64) -> Option<MsiRegisters> {
    let read = |offset, width| Ok::<u64, ()>(config_read(function_base, offset, width));
    let at = pci::find_capability(read, pci::CAPABILITY_MSI).ok().flatten()?;
    MsiRegisters::at(at, config_read(function_base, at + 2, 2))
}

/// At boot, while bus mastering is not allowed: clears Bus Master Enable on function
/// `requester_id` (segment 0) if firmware left it set. Returns whether it was set.
pub fn boot_clear_bus_master(requester_id: u16) -> bool {
    let Some(function_base) = function_base(requester_id) else { return false };
    let command = config_read(function_base, pci::COMMAND, 2);
    if command & pci::COMMAND_BUS_MASTER == 0 {
        return false;
    }
    config_write(function_base, pci::COMMAND, 2, command & !pci::COMMAND_BUS_MASTER);
    true
}

/// At boot: sets Interrupt Disable on function `requester_id` (segment 0). Legacy INTx
/// lines are shared between functions and carry no requester id, so whoever holds a
/// line's IRQHandler would get other devices' interrupts: PCI functions interrupt only
/// by remapped MSI. Returns false if the function is outside the ECAM.
pub fn boot_disable_intx(requester_id: u16) -> bool {
    let Some(function_base) = function_base(requester_id) else { return false };
    let command = config_read(function_base, pci::COMMAND, 2);
    if command & pci::COMMAND_INTX_DISABLE == 0 {
        config_write(function_base, pci::COMMAND, 2, command | pci::COMMAND_INTX_DISABLE);
    }
    true
}
