//! x86_64 hardware layer: CPU, port and MMIO access.
//!
//! x86_64 hardware layer: everything that touches the CPU, ports or MMIO lives here.

pub mod apic;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod kmem;
pub mod mmio;
pub mod mmu;
pub mod pit;
pub mod serial;
pub mod svm;
pub mod trap;

/// Offset of the direct map of physical memory (PML4 slot 256).
pub const PHYS_MAP_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Virtual base of the kernel image: physical address + KERNEL_VMA.
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

/// Kernel-virtual address of physical address `paddr` through the direct map.
pub const fn phys_to_virt(paddr: u64) -> u64 {
    PHYS_MAP_BASE + paddr
}
