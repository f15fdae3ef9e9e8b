//! The kernel's own address space: direct map and kernel image mapping.
//!
//! The kernel's own address space: direct map of physical memory, the kernel image with
//! per-section rights, and access to page-table frames through the direct map.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use super::kmem::DirectMemory;
use super::{phys_to_virt, KERNEL_VMA};
use crate::boot::memory::{BootAllocator, Range, RangeSet, PAGE};
use crate::boot::params::PhysSource;
use crate::object::paging::{self, MapError, PageSize, PteFlags, TableMemory};

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
    static kernel_boot_stack_guard: u8;
    static kernel_trap_stack_guard: u8;
}

fn symbol(sym: *const u8) -> u64 {
    sym as u64
}

/// Bytes of the kernel boot stack (`kernel_boot_stack` in boot.S).
pub const BOOT_STACK_BYTES: usize = 64 * 1024;
/// What boot.S fills the boot stack with before `kernel_entry` runs.
const BOOT_STACK_PAINT: u64 = 0x5354_414b_5354_414b;

/// The deepest the boot stack has been so far, in bytes: the lowest word that no
/// longer holds boot.S's paint marks it.
pub fn boot_stack_peak() -> usize {
    // SAFETY: linker symbol; only its address is used.
    let bottom = (unsafe { symbol(&kernel_boot_stack_guard) } + PAGE) as *const u64;
    let untouched = (0..BOOT_STACK_BYTES / 8)
        // SAFETY: inside the boot stack (mapped kernel .bss, just above its guard page);
        // a word-aligned read.
        .take_while(|&i| unsafe { core::ptr::read_volatile(bottom.add(i)) } == BOOT_STACK_PAINT)
        .count();
    BOOT_STACK_BYTES - untouched * 8
}

/// Physical range of the kernel image (boot segment through bss).
pub fn kernel_image() -> Range {
    // SAFETY: linker symbols; only their addresses are used.
    let (start, end) = unsafe { (symbol(&__kernel_phys_start), symbol(&__kernel_phys_end)) };
    Range { start, end }
}

/// Bytes of the direct map set up at entry (identity of the first 4 GiB).
pub const EARLY_DIRECT_MAP: u64 = 4 << 30;

/// Physical memory seen through the direct map.
pub struct DirectMap {
    /// Exclusive upper bound of what is mapped.
    pub limit: u64,
}

impl PhysSource for DirectMap {
    fn bytes(&self, paddr: u64, len: usize) -> Option<&[u8]> {
        let end = paddr.checked_add(len as u64)?;
        if end > self.limit || len == 0 && paddr > self.limit {
            return None;
        }
        // SAFETY: [paddr, end) lies inside the direct map, which maps every physical
        // address below `limit` for the kernel's whole life; the boot-time callers
        // only read loader structures and firmware tables that nothing writes.
        Some(unsafe { core::slice::from_raw_parts(phys_to_virt(paddr) as *const u8, len) })
    }
}

/// Page-table frames reached through the direct map, new ones from the boot allocator.
pub struct BootTables<'a> {
    /// Where new table frames come from.
    pub alloc: &'a mut BootAllocator,
}

/// Zeroes the frame at `paddr`.
pub fn zero_frame(paddr: u64) {
    // The frame was just handed out by the boot allocator; nothing else refers to it.
    DirectMemory.zero(paddr, PAGE);
}

impl TableMemory for BootTables<'_> {
    // Table frames are reached exactly as after boot: through the direct map.
    fn read(&self, table: u64, index: usize) -> u64 {
        DirectMemory.read(table, index)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        DirectMemory.write(table, index, value)
    }
    fn alloc_table(&mut self) -> Option<u64> {
        let frame = self.alloc.alloc_frame().ok()?;
        zero_frame(frame);
        Some(frame)
    }
}

/// Builds the kernel's final page tables and switches to them: the direct map covers
/// `[0, limit)` with 2 MiB global, non-executable pages (uncached where there is no RAM;
/// 4 KiB pages, read-only, where it aliases kernel text and rodata), and the kernel
/// image is mapped with 4 KiB pages: text RX, rodata R, data RW.
/// The low identity map of the boot code is gone afterwards.
pub fn build_kernel_space(alloc: &mut BootAllocator, ram: &RangeSet, limit: u64) -> Result<u64, MapError> {
    let mut tables = BootTables { alloc };
    let root = tables.alloc_table().ok_or(MapError::OutOfMemory)?;
    let base = PteFlags::WRITABLE | PteFlags::GLOBAL | PteFlags::NO_EXECUTE;
    // SAFETY: linker symbols; only their addresses are used.
    let read_only = unsafe { (symbol(&__text_start) - KERNEL_VMA)..(symbol(&__rodata_end) - KERNEL_VMA) };
    let mut paddr = 0;
    while paddr < limit {
        let chunk = Range::new(paddr, PageSize::Size2M.bytes());
        let cache =
            if ram.overlaps(chunk) { PteFlags::empty() } else { PteFlags::CACHE_DISABLE | PteFlags::WRITE_THROUGH };
        if chunk.start < read_only.end && read_only.start < chunk.end {
            // The direct-map alias of kernel text and rodata is read-only too (it was
            // a writable way around the image's own read-only mapping).
            for page in (chunk.start..chunk.end).step_by(PAGE as usize) {
                let writable = if read_only.contains(&page) { PteFlags::empty() } else { PteFlags::WRITABLE };
                let flags = (base - PteFlags::WRITABLE) | writable | cache;
                paging::map(&mut tables, root, phys_to_virt(page), page, PageSize::Size4K, flags)?;
            }
        } else {
            paging::map(&mut tables, root, phys_to_virt(paddr), paddr, PageSize::Size2M, base | cache)?;
        }
        paddr += PageSize::Size2M.bytes();
    }
    // SAFETY: linker symbols; only their addresses are used.
    let sections = unsafe {
        [
            (symbol(&__text_start), symbol(&__text_end), PteFlags::GLOBAL),
            (symbol(&__rodata_start), symbol(&__rodata_end), PteFlags::GLOBAL | PteFlags::NO_EXECUTE),
            (symbol(&__data_start), symbol(&__data_end), PteFlags::GLOBAL | PteFlags::NO_EXECUTE | PteFlags::WRITABLE),
        ]
    };
    // SAFETY: linker symbols; only their addresses are used.
    let guards = unsafe { [symbol(&kernel_boot_stack_guard), symbol(&kernel_trap_stack_guard)] };
    for (start, end, flags) in sections {
        let mut vaddr = start & !(PAGE - 1);
        while vaddr < end {
            if !guards.contains(&vaddr) {
                paging::map(&mut tables, root, vaddr, vaddr - KERNEL_VMA, PageSize::Size4K, flags)?;
            }
            vaddr += PAGE;
        }
    }
    // SAFETY: the new tables map the running code (text), its stack and data (data/bss)
    // and the direct map at the same virtual addresses as the boot tables.
    unsafe {
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
        Cr3::write(PhysFrame::containing_address(PhysAddr::new(root)), Cr3Flags::empty());
    }
    ACTIVE_ROOT.store(root, Ordering::Relaxed);
    Ok(root)
}

/// The root in CR3, kept beside it so a switch compares without reading CR3.
pub(crate) static ACTIVE_ROOT: AtomicU64 = AtomicU64::new(0);

/// Loads `root` into CR3 unless it is already there (a reload would flush the TLB).
///
/// # Safety
/// As for [`switch_to`].
#[inline]
pub unsafe fn switch_to_if_changed(root: u64) {
    if ACTIVE_ROOT.load(Ordering::Relaxed) != root {
        ACTIVE_ROOT.store(root, Ordering::Relaxed);
        // SAFETY: the caller guarantees `root` maps the kernel half.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
    }
}

/// The VSpace rooted at `root` is being destroyed: if CR3 still holds it (its last
/// thread is gone), load `kernel_root` so a new VSpace made in the same page later is
/// loaded afresh, with no stale TLB entries.
///
/// # Safety
/// `kernel_root` must map the kernel half.
pub unsafe fn forget_root(root: u64, kernel_root: u64) {
    if ACTIVE_ROOT.load(Ordering::Relaxed) == root {
        // SAFETY: the caller guarantees `kernel_root` maps the kernel.
        unsafe { switch_to(kernel_root) };
    }
}

/// Physical address of the active PML4.
pub fn current_root() -> u64 {
    Cr3::read().0.start_address().as_u64()
}

/// Switches to the address space rooted at `root`.
///
/// # Safety
/// `root` must be a PML4 whose upper half is the kernel's.
pub unsafe fn switch_to(root: u64) {
    // SAFETY: the caller guarantees the kernel half is mapped in the new space.
    unsafe { Cr3::write(PhysFrame::containing_address(PhysAddr::new(root)), Cr3Flags::empty()) };
    ACTIVE_ROOT.store(root, Ordering::Relaxed);
}
