//! `netclient-bench`: frames through a driver's rings, in guest instructions.
//!
//! Booted by `make bench` with a NIC driver serving it, under `-icount
//! shift=0,sleep=off`, so
//! the TSC counts guest instructions: the client's ring work, the driver's copies and
//! register writes, the notifications and the scheduling between them; QEMU's device
//! emulation is host code and counts nothing. For each frame size it times batches
//! of [`BATCH`] frames (the first batch warms up and is dropped) and prints one
//! `bench: NIC via rings: ...` line per measure, per frame (the host runner names the
//! driver):
//!
//! - sent: from the first TX_ACTIVE entry to the last buffer back on TX_FREE;
//! - sent and received back, only when the driver says its device loops frames back
//!   (`NIC_LOOPBACK`: `e1000edrv-loopback` puts the 82574 in MAC loopback): from the
//!   first TX_ACTIVE entry to the last frame taken off RX_ACTIVE (its bytes checked).
//!
//! The serve loop holds no iommu-server cap: buffers stay mapped in the driver's pool
//! and nothing is mapped or unmapped per frame. The client checks that: it reads the
//! kernel's IOMMU counters (second-level leaf entries written or cleared, IOTLB
//! invalidations; `DebugConsole::iommu_counters`, all domains) before and after each
//! batch and reports the operations per frame, rounded up (so any work shows).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use libcap::deadline::{now, Deadline};
use libcap::println;

use crate::{Link, BUF, REPLY_TICKS, TX_BUFS};

/// Frames per timed batch (every transmit buffer once).
const BATCH: u32 = TX_BUFS;
/// Timed batches per measure.
const RUNS: usize = 32;
/// A local experimental EtherType, so nothing mistakes the frames for real traffic.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// The frame of `len` bytes to ourselves, numbered `n`.
fn frame(mac: [u8; 6], len: usize, n: u32) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE);
    f[14..18].copy_from_slice(&n.to_le_bytes());
    f
}

/// Prints a `bench:` line (the host runner parses it).
pub(crate) fn report(name: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    println!("bench: {name} min={} median={} runs={}", samples[0], samples[samples.len() / 2], samples.len());
}

/// The kernel's IOMMU operations so far (leaf writes + IOTLB invalidations).
fn iommu_ops() -> Result<u64, String> {
    let (leaves, invalidations) =
        libcap::console::DebugConsole::default().iommu_counters().map_err(|e| format!("IOMMU counters: {e:?}"))?;
    Ok(leaves + invalidations)
}

/// Waits until every transmit buffer is back.
fn all_sent(link: &mut Link, deadline: Deadline) -> Result<(), String> {
    while link.tx_idle.len() < link.tx_bufs as usize {
        link.reclaim()?;
        if deadline.passed() {
            return Err(format!("only {} of {} transmit buffers came back", link.tx_idle.len(), link.tx_bufs));
        }
        libcap::ipc::yield_now();
    }
    Ok(())
}

/// Receives `count` frames of `len` bytes, each checked against what was sent.
fn receive(link: &mut Link, mac: [u8; 6], len: usize, first: u32, count: u32) -> Result<(), String> {
    let mut out = [0u8; BUF as usize];
    let deadline = Deadline::after(REPLY_TICKS);
    let mut got = 0;
    while got < count {
        match link.receive(&mut out)? {
            Some(n) if out[..n] == frame(mac, len, first + got)[..] => got += 1,
            Some(n) => return Err(format!("frame {} came back wrong ({n} bytes)", first + got)),
            None if deadline.passed() => return Err(format!("{got} of {count} frames came back")),
            None => {}
        }
    }
    Ok(())
}

/// Offers every receive buffer, then times the measures.
pub fn run(link: &mut Link) -> Result<(), String> {
    link.offer_receive_buffers()?;
    let mac = link.mac;
    let mut n = 0u32;
    // IOMMU operations per frame of each timed batch (rounded up), and in all.
    let (mut iommu, mut ops_total, mut frames_total) = (Vec::new(), 0u64, 0u64);
    for (label, len) in [("64 B", 60usize), ("1500 B", 1514)] {
        let (mut sent, mut looped) = (Vec::new(), Vec::new());
        for run in 0..=RUNS {
            // Sent: every buffer back on TX_FREE (with loopback the frames come back
            // meanwhile; without, they leave and nothing answers them).
            let ops0 = iommu_ops()?;
            let t0 = now();
            for i in 0..BATCH {
                link.send(&frame(mac, len, n + i))?;
            }
            all_sent(link, Deadline::after(REPLY_TICKS))?;
            let t1 = now();
            if link.loopback {
                receive(link, mac, len, n, BATCH)?;
            }
            n += BATCH;
            if run > 0 {
                sent.push((t1 - t0) / u64::from(BATCH));
            }
            let frames = u64::from(BATCH) * if link.loopback { 2 } else { 1 };
            if !link.loopback {
                let ops = iommu_ops()? - ops0;
                if run > 0 {
                    iommu.push(ops.div_ceil(frames));
                    (ops_total, frames_total) = (ops_total + ops, frames_total + frames);
                }
                continue;
            }
            // Sent and received back: the whole round through driver and device.
            let t2 = now();
            for i in 0..BATCH {
                link.send(&frame(mac, len, n + i))?;
            }
            receive(link, mac, len, n, BATCH)?;
            let t3 = now();
            all_sent(link, Deadline::after(REPLY_TICKS))?;
            n += BATCH;
            let ops = iommu_ops()? - ops0;
            if run > 0 {
                looped.push((t3 - t2) / u64::from(BATCH));
                iommu.push(ops.div_ceil(frames));
                (ops_total, frames_total) = (ops_total + ops, frames_total + frames);
            }
        }
        report(&format!("NIC via rings: {label} frame sent (TX entry -> TX_FREE), per frame"), &mut sent);
        if link.loopback {
            report(&format!("NIC via rings: {label} frame sent and received back (loopback), per frame"), &mut looped);
        }
    }
    println!("netclient: IOMMU work in the timed batches: {ops_total} operations for {frames_total} frames");
    report("NIC via rings: IOMMU operations (leaf writes + IOTLB invalidations) per frame, rounded up", &mut iommu);
    Ok(())
}
