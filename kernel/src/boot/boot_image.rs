//! The boot image handed to the root task: read-only mapping and Frame caps.
//!
//! The root task (init) builds components from programs and a system description in
//! the boot image, so it gets the image's pages: mapped read-only at
//! [`ROOT_BOOT_IMAGE_VADDR`] and as read-only, original Frame caps (no untyped covers
//! them, so they can never be retyped; a read-only cap can never map them writable,
//! and Mint only removes rights). The image's pages were kept out of the free memory
//! at boot, so no kernel object or untyped shares them; a module whose outer pages
//! reach the kernel image or the first MiB is refused. The caps are marked device frames
//! so that no IOSpace can map them (MapIO refuses device frames); a CPU mapping of a copy
//! is then uncached, still read-only. The bytes of the outer pages beyond the module
//! are the loader's, not the kernel's: left as they are (docs/boot.md).

use abi::layout::ROOT_BOOT_IMAGE_VADDR;
use abi::rights::CapRights;

use crate::arch::kmem::DirectMemory;
use crate::arch::mmu::BootTables;
use crate::boot::memory::{Range, PAGE};
use crate::object::cap::{Cap, FrameSize, MapKind, Mapping};
use crate::object::mdb;
use crate::object::paging::{self, PageSize, PteFlags};

/// The image's whole pages, checked to be clear of the kernel image and the first MiB.
pub fn pages(module: Range, kernel: Range) -> Result<Range, &'static str> {
    let pages = module.page_outer();
    let overlaps = |r: Range| pages.start < r.end && r.start < pages.end;
    if overlaps(kernel) || overlaps(Range { start: 0, end: 0x10_0000 }) {
        return Err("the boot image's pages overlap the kernel image or the first MiB");
    }
    Ok(pages)
}

/// Maps every page of `pages` read-only and not executable, user-accessible, at
/// [`ROOT_BOOT_IMAGE_VADDR`] in `vspace` (tables from boot memory).
pub fn map(tables: &mut BootTables<'_>, vspace: u64, pages: Range) -> Result<(), &'static str> {
    for (i, paddr) in (pages.start..pages.end).step_by(PAGE as usize).enumerate() {
        let vaddr = ROOT_BOOT_IMAGE_VADDR + i as u64 * PAGE;
        paging::map(tables, vspace, vaddr, paddr, PageSize::Size4K, PteFlags::USER | PteFlags::NO_EXECUTE)
            .map_err(|_| "cannot map the boot image")?;
    }
    Ok(())
}

/// Puts one read-only original Frame cap per page of `pages` into consecutive slots from
/// `first` (slot addresses from `slot`), each recording its mapping in `vspace`.
pub fn insert_caps(slot: impl Fn(u64) -> u64, first: u64, vspace: u64, pages: Range) {
    let mut mem = DirectMemory;
    for (i, paddr) in (pages.start..pages.end).step_by(PAGE as usize).enumerate() {
        let vaddr = ROOT_BOOT_IMAGE_VADDR + i as u64 * PAGE;
        let cap = Cap::Frame {
            paddr,
            size: FrameSize::Small,
            rights: CapRights::READ,
            // A device frame for MapIO and MapBatch, which refuse those: the image (and
            // the loader's bytes around it in its outer pages) never becomes DMA-reachable.
            is_device: true,
            mapping: Some(Mapping { vspace, vaddr, kind: MapKind::Cpu }),
        };
        mdb::insert_root(&mut mem, slot(first + i as u64), cap, false);
    }
}
