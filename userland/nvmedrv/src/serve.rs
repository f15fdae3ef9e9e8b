//! Serving one block client through rings: requests bounced through the pool.
//!
//! The description gives the driver and its client a queue region (`blk-queues`, the
//! rings and information page of `capring::layout::block`), a data region (`blk-data`)
//! and a notification channel each way (`blk-req`: client to driver, `blk-done`:
//! driver to client). Each request names blocks and a buffer by offset in the data
//! region; the driver checks it (operation, region, size, disk end), copies between the
//! data region and its own DMA bounce buffer, runs the command and answers on the
//! completion ring with a status. The client never sees an IOVA and the controller
//! never sees the client's memory; a request outside the region is refused
//! (`STATUS_OUT_OF_REGION`), never followed.

use abi::component::{CapKind, ComponentInfo};
use abi::rights::CapRights;
use capring::layout::block::{self, BlockInfo};
use capring::{BlockOp, BlockRequest, DataRegion, RegionRange, RingError};
use libcap::{ipc, println};
use nvme_driver::{Controller, DmaRegion};

/// The named caps of one client connection.
pub struct Connection {
    queues: u64,
    data: (u64, u64),
    /// Signal cap: completions are ready.
    to_client: u64,
    /// Wait cap: the client queued requests.
    from_client: u64,
}

impl Connection {
    /// The connection the description gives, if it gives one.
    pub fn find(info: &'static ComponentInfo) -> Option<Self> {
        let region = |name| info.cap_of(name, CapKind::Region).filter(|c| c.rights & CapRights::WRITE.raw() != 0);
        let (queues, data) = (region("blk-queues")?, region("blk-data")?);
        let to_client = info.cap_of("blk-done", CapKind::Notification)?.slot;
        let from_client = info.cap_of("blk-req", CapKind::Notification)?.slot;
        let pages = (block::PAGES * capring::layout::RING_BYTES) as u64;
        (queues.size >= pages).then_some(Connection {
            queues: queues.vaddr,
            data: (data.vaddr, data.size),
            to_client,
            from_client,
        })
    }
}

/// The disk as the loop sees it: namespace geometry and the bounce buffer.
pub struct Disk {
    /// Logical blocks and bytes per block of namespace 1.
    pub blocks: u64,
    pub block_size: u32,
    /// The driver's DMA bounce buffer (at most this many bytes move per request).
    pub bounce: DmaRegion,
    /// A page for PRP lists.
    pub list: DmaRegion,
}

/// What one request comes to: a status for the completion.
fn handle(
    c: &mut Controller,
    disk: &Disk,
    region: &DataRegion,
    r: &BlockRequest,
    pause: &mut dyn FnMut() -> bool,
) -> u32 {
    let op = match BlockOp::from_raw(r.op) {
        Ok(op) => op,
        Err(_) => return block::STATUS_BAD_OP,
    };
    if op == BlockOp::Flush {
        return if c.flush(pause).is_ok() { block::STATUS_OK } else { block::STATUS_DEVICE };
    }
    let range: RegionRange = match r.range(disk.block_size, region.len()) {
        Ok(range) => range,
        Err(_) => {
            println!(
                "nvmedrv: refused a client request outside the data region (offset {:#x}, {} blocks, id {})",
                r.offset, r.count, r.id
            );
            return block::STATUS_OUT_OF_REGION;
        }
    };
    if range.len as u64 > disk.bounce.bytes {
        return block::STATUS_TOO_LARGE;
    }
    if r.lba.checked_add(u64::from(r.count)).is_none_or(|end| end > disk.blocks) {
        return block::STATUS_OUT_OF_DISK;
    }
    // SAFETY: the bounce buffer is this driver's DMA memory, mapped read-write at its
    // vaddr for `bytes` >= range.len bytes, and no command uses it now.
    let bounce = unsafe { core::slice::from_raw_parts_mut(disk.bounce.vaddr as *mut u8, range.len) };
    let write = op == BlockOp::Write;
    if write && region.read(range, bounce).is_err() {
        return block::STATUS_OUT_OF_REGION;
    }
    if c.transfer(write, r.lba, r.count, disk.bounce, disk.list, pause).is_err() {
        return block::STATUS_DEVICE;
    }
    if !write && region.write(range, bounce).is_err() {
        return block::STATUS_OUT_OF_REGION;
    }
    block::STATUS_OK
}

/// Serves the client until its rings fail.
pub fn serve(
    c: &mut Controller,
    disk: &Disk,
    conn: &Connection,
    pause: &mut dyn FnMut() -> bool,
) -> Result<(), RingError> {
    // SAFETY: init mapped both regions writable at these addresses for this component's
    // life, shared with the one client the description names.
    let (mut ends, region) = unsafe {
        (block::driver(conn.queues as *mut u8)?, DataRegion::new(conn.data.0 as *mut u8, conn.data.1 as usize))
    };
    let max_blocks = (disk.bounce.bytes / u64::from(disk.block_size)) as u32;
    let info = BlockInfo { blocks: disk.blocks, block_size: disk.block_size, max_blocks };
    // SAFETY: as above; the INFO page is part of the queue region.
    unsafe { block::publish_info(conn.queues as *mut u8, info) };
    println!(
        "nvmedrv: serving a client: data region {} KiB, {} blocks of {} bytes, at most {max_blocks} per request",
        region.len() / 1024,
        disk.blocks,
        disk.block_size
    );
    let (mut done, mut refused, mut logged) = (0u64, 0u64, (0u64, 0u64));
    loop {
        // Only take what can be answered: a client that never drains its completions
        // stalls itself.
        while ends.completion.free()? > 0 {
            let Some(r) = ends.request.pop()? else { break };
            let status = handle(c, disk, &region, &r, pause);
            if status == block::STATUS_OK {
                done += 1;
            } else {
                refused += 1;
            }
            ends.completion.push(BlockRequest { status, ..r })?;
            if ends.completion.publish() {
                let _ = ipc::signal(conn.to_client);
            }
        }
        ends.request.release();
        if ends.request.prepare_wait()? {
            if (done, refused) != logged {
                println!("nvmedrv: client requests: {done} done, {refused} refused");
                logged = (done, refused);
            }
            let _ = ipc::wait(conn.from_client);
            ends.request.done_waiting();
        }
    }
}
