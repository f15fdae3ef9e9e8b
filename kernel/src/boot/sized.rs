//! Boot: tables sized from what discovery found, in boot memory.
//!
//! Each table is counted first, then allocated from the boot allocator (never freed),
//! then filled: the PCI function list (after a scan that only counts), domain records
//! from CAP.ND, requester-id and context-table records from the PCI functions and
//! their DMA aliases. A count that would need more memory than exists is a boot
//! error, never an overflow.

use crate::arch::{mmu, phys_to_virt};
use crate::boot::init::boot_error;
use crate::boot::memory::{BootAllocator, PAGE};
use crate::info;
use crate::iommu::iospace;
use crate::platform;
use crate::platform::pci::{dma_aliases, wire_id};

/// Zeroed, page-aligned boot memory for `count` records of `T` (at least one page);
/// `what` names them in the boot error when they cannot fit.
pub fn zeroed_records<T>(alloc: &mut BootAllocator, count: usize, what: &str) -> (*mut T, u64) {
    let bytes = count
        .checked_mul(core::mem::size_of::<T>())
        .and_then(|b| u64::try_from(b).ok())
        .unwrap_or_else(|| boot_error(format_args!("{count} {what} need more memory than exists")));
    let frames = bytes.div_ceil(PAGE).max(1);
    let base = alloc
        .alloc_contiguous(frames, PAGE)
        .unwrap_or_else(|_| boot_error(format_args!("no memory for {count} {what} ({bytes} bytes)")));
    for f in 0..frames {
        mmu::zero_frame(base + f * PAGE);
    }
    (phys_to_virt(base) as *mut T, bytes)
}

/// `count` default values of `T` in boot memory, for the kernel's life; `what` names
/// them in the boot error when they cannot fit.
pub fn boot_slice<T: Copy + Default>(alloc: &mut BootAllocator, count: usize, what: &str) -> &'static mut [T] {
    let (base, _) = zeroed_records::<T>(alloc, count, what);
    for i in 0..count {
        // SAFETY: `base` has room for `count` `T`s (page-aligned, so aligned for `T`).
        unsafe { base.add(i).write(T::default()) };
    }
    // SAFETY: initialised above; boot memory is never freed or handed out again, and
    // this is its only reference.
    unsafe { core::slice::from_raw_parts_mut(base, count) }
}

/// The per-domain records: one per id every unit supports (`supported`: the smallest
/// CAP.ND), in boot memory.
pub fn domain_records(alloc: &mut BootAllocator, supported: usize) {
    let count = iospace::domain_count(supported);
    let (records, bytes) = zeroed_records::<iospace::Domain>(alloc, count, "VT-d domain records");
    let index_slots = crate::iommu::root_index::slots_for(count);
    let (slots, index_bytes) = zeroed_records::<u16>(alloc, index_slots, "VT-d root index");
    // SAFETY: boot memory just allocated and zeroed for these records and the index,
    // page-aligned, never freed or used for anything else.
    unsafe { iospace::boot_domains(records, count, slots) };
    info!("iommu: {count} domain ids ({} KiB of records, {} KiB root index)", bytes / 1024, index_bytes / 1024);
}

/// Context tables for every bus with functions or alias ids on a unit, and a record
/// per requester id (every function's own id first, then the DMA alias ids of its
/// group: context entries are written for all of them when the group is assigned).
/// The records are sized by counting those ids first.
pub fn context_tables(alloc: &mut BootAllocator, platform: &platform::Platform, root_tables: &[u64]) {
    let covered = || platform.pci.as_slice().iter().filter(|d| usize::from(d.desc.drhd_index) < root_tables.len());
    // Every function once plus each of its alias ids: an upper bound (duplicates are
    // recorded once); each id adds at most one context table.
    let ids = covered().map(|d| 1 + dma_aliases(d, &platform.pci).0).fold(0usize, usize::saturating_add);
    let (id_records, id_bytes) = zeroed_records::<iospace::Rid>(alloc, ids, "requester-id records");
    let tables = ids.min(root_tables.len() * 256);
    let (table_records, table_bytes) = zeroed_records::<iospace::ContextTable>(alloc, tables, "context-table records");
    // SAFETY: boot memory just allocated and zeroed for these records, page-aligned,
    // never freed or used for anything else.
    unsafe { iospace::boot_id_records(id_records, ids, table_records, tables) };
    info!(
        "iommu: room for {ids} requester ids and {tables} context tables ({} KiB of records)",
        (id_bytes + table_bytes).div_ceil(1024)
    );
    for aliases in [false, true] {
        for dev in covered() {
            let (unit, group) = (usize::from(dev.desc.drhd_index), dev.desc.alias_group);
            let (count, alias_ids) = dma_aliases(dev, &platform.pci);
            let ids: &[u16] = if aliases { &alias_ids[..count] } else { &[dev.requester_id()] };
            let wire = (!aliases).then(|| wire_id(dev, &platform.pci));
            for &requester in ids {
                let mut table = 0;
                if !iospace::has_context_table(unit as u8, (requester >> 8) as u8) {
                    table = alloc
                        .alloc_frame()
                        .unwrap_or_else(|_| boot_error(format_args!("no memory for VT-d context tables")));
                    mmu::zero_frame(table);
                }
                iospace::boot_add_device(
                    &mut crate::iommu::access::Vtd,
                    requester,
                    unit as u8,
                    group,
                    wire,
                    root_tables[unit],
                    table,
                );
            }
        }
    }
}
