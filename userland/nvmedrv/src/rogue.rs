//! Fault scenarios: a read into an IOVA outside the pool, a crash mid-write.
//!
//! `nvmedrv-rogue` (`systems/test-nvme-rogue.toml`) plays a part per generation:
//!
//! - 1: reads LBA 0 into [`OUTSIDE_IOVA`] (its PRP names an IOVA outside the pool): the
//!   domain blocks the controller's write and the iommu-server reports it to management
//!   with the names (QEMU 7.2 still completes the command as a success). Then a 16 KiB
//!   write is submitted and the driver crashes before its completion: init restarts
//!   it by policy.
//! - 2 (after a working self-test): reads LBA 0 into [`STALE_IOVA`], generation 1's
//!   write buffer, dead since generation 1 ended: blocked and reported the same way.

use libcap::iommu::DmaBuffer;
use libcap::println;
use nvme_driver::{Controller, DmaRegion, PAGE};

use crate::{region, TRANSFER, WRITE_LBA};

/// An IOVA the device's domain does not map (the pool starts at 0x100000).
const OUTSIDE_IOVA: u64 = 0x800_0000;
/// Generation 1's write buffer (the third allocation: after 4 queue pages, 2 Identify
/// and PRP-list pages, and the guard page the server leaves between buffers).
const STALE_IOVA: u64 = 0x10_8000;
/// The address generation 1 reads to crash (unmapped).
const CRASH_ADDRESS: u64 = 0xdead_0000;
/// Blocks of [`TRANSFER`] bytes (QEMU's namespaces have 512-byte blocks; another size
/// makes the transfer fail with a clear error).
const BLOCKS: u32 = (TRANSFER / 512) as u32;

/// Generation 1: DMA outside the pool, then a crash with a write in flight.
pub fn generation_one(
    c: &mut Controller,
    [pages, out, back]: [&DmaBuffer; 3],
    pause: &mut dyn FnMut() -> bool,
) -> Result<(), &'static str> {
    if out.iova != STALE_IOVA {
        println!("nvmedrv: rogue: write buffer at {:#x}", out.iova);
        return Err("generation 1's write buffer is not where STALE_IOVA assumes");
    }
    let list = region(pages, 1, 1);
    println!("nvmedrv: rogue: reading LBA 0 into iova {OUTSIDE_IOVA:#x} (outside the pool)");
    let outside = DmaRegion { vaddr: back.vaddr, iova: OUTSIDE_IOVA, bytes: PAGE };
    // QEMU 7.2's controller completes such a read successfully although its DMA was
    // blocked: the fault report, not the status, is what shows the block.
    match c.transfer(false, 0, 1, outside, list, pause) {
        Ok(()) => println!("nvmedrv: rogue: the read outside the pool completed (status success)"),
        Err(e) => println!("nvmedrv: rogue: the read outside the pool completed with an error: {e}"),
    }
    let mut crash = || -> bool {
        println!("nvmedrv: rogue: crashing with the {TRANSFER} byte write at LBA {WRITE_LBA} in flight");
        // SAFETY: deliberately a read of an unmapped address: the CPU fault goes to
        // init, which applies the component's policy (restart).
        let v = unsafe { core::ptr::read_volatile(CRASH_ADDRESS as *const u64) };
        println!("nvmedrv: FAIL read {v:#x} from an unmapped address");
        false
    };
    let _ = c.transfer(true, WRITE_LBA, BLOCKS, region(out, 0, 4), list, &mut crash);
    println!("nvmedrv: rogue: the write completed before the first wait");
    crash();
    Err("survived the crash")
}

/// Generation 2: the controller is made to write into generation 1's buffer.
pub fn stale_read(
    c: &mut Controller,
    [pages, back]: [&DmaBuffer; 2],
    pause: &mut dyn FnMut() -> bool,
) -> Result<(), &'static str> {
    println!("nvmedrv: rogue: reading LBA 0 into the stale iova {STALE_IOVA:#x} of generation 1");
    let stale = DmaRegion { vaddr: back.vaddr, iova: STALE_IOVA, bytes: PAGE };
    // As above: the status may say success; the blocked DMA is reported to management.
    match c.transfer(false, 0, 1, stale, region(pages, 1, 1), pause) {
        Ok(()) => println!("nvmedrv: rogue: the read into the stale iova completed (status success)"),
        Err(e) => println!("nvmedrv: rogue: the read into the stale iova completed with an error: {e}"),
    }
    Ok(())
}
