//! A block driver's client: write, flush, read back through rings; hostile too.
//!
//! The description gives it the queue region `blk-queues` and the data region
//! `blk-data` it shares with the driver, and two notification channels: `blk-req` (it
//! signals the driver) and `blk-done` (the driver signals it). It never sees an IOVA or
//! the device. First the hostile requests: a read into a buffer outside its data
//! region, one of an unknown operation, one past the disk's end, one larger than the
//! driver takes; each must come back with its refusal status and nothing written.
//! Then it writes [`BLOCKS`] blocks of a pattern at [`LBA`], flushes, reads them back
//! into another buffer and compares, and reads LBA 0 (what the host put there).
#![no_std]
#![no_main]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use alloc::format;
use alloc::string::String;
use capring::layout::block::{self, BlockInfo, ClientEnds};
use capring::{BlockOp, BlockRequest, DataRegion, RegionRange};
use libcap::deadline::Deadline;
use libcap::println;

libcap::component::entry!(main);

/// Where the pattern goes (the host test reads the image there).
const LBA: u64 = 512;
/// Blocks written and read back.
const BLOCKS: u32 = 8;
/// Time stamp counter ticks: the driver's start, one completion.
const START_TICKS: u64 = 20_000_000_000;
const DONE_TICKS: u64 = 20_000_000_000;
/// One bounded wait for the driver's signal.
const WAIT_TICKS: u64 = 5_000_000;

/// The byte of the pattern at `i`.
fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(13) ^ 0x5a
}

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => {
            println!("blkclient: done");
            ExitCode::Success
        }
        Err(what) => {
            println!("blkclient: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// The connection to the driver.
struct Link {
    ends: ClientEnds,
    data: DataRegion,
    to_driver: u64,
    from_driver: u64,
    disk: BlockInfo,
    next_id: u32,
}

impl Link {
    /// Sends `r` and waits for its completion; returns its status.
    fn call(&mut self, mut r: BlockRequest) -> Result<u32, String> {
        r.id = self.next_id;
        self.next_id += 1;
        self.ends.request.push(r).map_err(|e| format!("request ring: {e:?}"))?;
        if self.ends.request.publish() {
            let _ = libcap::ipc::signal(self.to_driver);
        }
        let deadline = Deadline::after(DONE_TICKS);
        loop {
            if let Some(c) = self.ends.completion.pop().map_err(|e| format!("completion ring: {e:?}"))? {
                self.ends.completion.release();
                if c.id != r.id {
                    return Err(format!("completion for id {} while waiting for {}", c.id, r.id));
                }
                return Ok(c.status);
            }
            if deadline.passed() {
                return Err(format!("no completion for request {} ({:?})", r.id, r));
            }
            if self.ends.completion.prepare_wait().map_err(|e| format!("completion ring: {e:?}"))? {
                let _ = libcap::ipc::wait_until(self.from_driver, Deadline::after(WAIT_TICKS));
                self.ends.completion.done_waiting();
            }
        }
    }

    fn request(&self, op: u32, offset: u64, lba: u64, count: u32) -> BlockRequest {
        BlockRequest { op, status: 0, offset, lba, count, id: 0 }
    }
}

fn connect(info: &'static ComponentInfo) -> Result<Link, String> {
    let region = |name| info.cap_of(name, CapKind::Region).ok_or(format!("no region '{name}'"));
    let (queues, data) = (region("blk-queues")?, region("blk-data")?);
    let ntfn = |name| info.cap_of(name, CapKind::Notification).map(|c| c.slot).ok_or(format!("no channel '{name}'"));
    let (to_driver, from_driver) = (ntfn("blk-req")?, ntfn("blk-done")?);
    let need = (block::PAGES * capring::layout::RING_BYTES) as u64;
    if queues.size < need || data.size < 16384 {
        return Err(format!("regions too small: queues {:#x} (need {need:#x}), data {:#x}", queues.size, data.size));
    }
    let base = queues.vaddr as *mut u8;
    // SAFETY: init mapped both regions writable at these addresses for this component's
    // life, shared with the one driver the description names.
    let (ends, data) = unsafe {
        let ends = block::client(base).map_err(|e| format!("queue region: {e:?}"))?;
        (ends, DataRegion::new(data.vaddr as *mut u8, data.size as usize))
    };
    let started = Deadline::after(START_TICKS);
    let disk = loop {
        // SAFETY: as above.
        if let Some(disk) = unsafe { block::read_info(base) } {
            break disk;
        }
        if started.passed() {
            return Err("the driver never published the disk's geometry".into());
        }
        libcap::ipc::yield_now();
    };
    println!(
        "blkclient: disk of {} blocks of {} bytes, at most {} blocks per request",
        disk.blocks, disk.block_size, disk.max_blocks
    );
    Ok(Link { ends, data, to_driver, from_driver, disk, next_id: 1 })
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let mut link = connect(info)?;
    let bs = link.disk.block_size as usize;
    let bytes = BLOCKS as usize * bs;
    if bs == 0 || bytes * 2 > link.data.len() || BLOCKS > link.disk.max_blocks {
        return Err(format!("the data region ({} bytes) or the driver's limits do not fit the test", link.data.len()));
    }
    let (read, write, flush) = (BlockOp::Read as u32, BlockOp::Write as u32, BlockOp::Flush as u32);
    let end = link.data.len() as u64;
    // The hostile requests, each with the refusal it must get.
    let hostile = [
        (
            "a read into a buffer past the region",
            link.request(read, end - 512, LBA, BLOCKS),
            block::STATUS_OUT_OF_REGION,
        ),
        ("an unknown operation", link.request(7, 0, LBA, 1), block::STATUS_BAD_OP),
        ("a read past the disk's end", link.request(read, 0, link.disk.blocks - 1, 2), block::STATUS_OUT_OF_DISK),
        (
            "a request larger than the driver takes",
            link.request(read, 0, 0, link.disk.max_blocks + 1),
            block::STATUS_TOO_LARGE,
        ),
    ];
    for (what, r, want) in hostile {
        let got = link.call(r)?;
        if got != want {
            return Err(format!("{what}: status {got}, expected {want}"));
        }
        println!("blkclient: {what}: refused with status {got}");
    }
    // The pattern at offset 0, the read-back buffer after it.
    let pattern_buf: alloc::vec::Vec<u8> = (0..bytes).map(pattern).collect();
    let (first, second) = (RegionRange { offset: 0, len: bytes }, RegionRange { offset: bytes, len: bytes });
    link.data.write(first, &pattern_buf).map_err(|e| format!("own region: {e:?}"))?;
    link.data.write(second, &alloc::vec![0u8; bytes]).map_err(|e| format!("own region: {e:?}"))?;
    for (what, r) in [
        ("write", link.request(write, 0, LBA, BLOCKS)),
        ("flush", link.request(flush, 0, 0, 0)),
        ("read back", link.request(read, bytes as u64, LBA, BLOCKS)),
    ] {
        let status = link.call(r)?;
        if status != block::STATUS_OK {
            return Err(format!("{what}: status {status}"));
        }
    }
    let mut back = alloc::vec![0u8; bytes];
    link.data.read(second, &mut back).map_err(|e| format!("own region: {e:?}"))?;
    if back != pattern_buf {
        let at = back.iter().zip(&pattern_buf).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("the data read back differs at byte {at}"));
    }
    println!("blkclient: wrote {bytes} bytes at LBA {LBA}, flushed, read them back through the driver: match");
    let status = link.call(link.request(read, 0, 0, 1))?;
    let mut head = [0u8; 24];
    link.data.read(RegionRange { offset: 0, len: 24 }, &mut head).map_err(|e| format!("own region: {e:?}"))?;
    let printable = head.iter().take_while(|b| b.is_ascii_graphic() || **b == b' ').count();
    println!("blkclient: LBA 0 (status {status}) reads '{}'", core::str::from_utf8(&head[..printable]).unwrap_or("?"));
    Ok(())
}
