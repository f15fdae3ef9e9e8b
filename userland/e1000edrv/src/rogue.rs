//! Fault scenarios: DMA outside the pool, a crash mid-transfer, a stale IOVA.
//!
//! `e1000edrv-rogue` (`systems/test-e1000e-rogue.toml`) plays a part per generation:
//!
//! - 1: queues a frame the NIC must read from [`OUTSIDE_IOVA`], outside its pool: the
//!   domain blocks the read and the iommu-server reports it, with the device's and the
//!   driver's names, to management (policy `log`). Then it queues [`BURST`] ARP
//!   requests and crashes while they are out: the replies arrive for buffers of a dead
//!   instance. Init restarts it (component policy `restart`).
//! - 2 and later: the device works again (the self-test); then generation 2 programs
//!   the NIC to read [`STALE_IOVA`], a transmit buffer of generation 1: dead since that
//!   instance ended, so it is blocked and reported like any IOVA outside the pool.

use e1000e_driver::nic::{RX_BUF, RX_DESCS};
use e1000e_driver::{E1000e, PAGE};
use libcap::deadline::Deadline;
use libcap::println;
use netframe::arp_request;

use crate::{Waiter, GATEWAY, OUR_IP};

/// An IOVA the device's domain does not map (the pool starts at 0x100000).
const OUTSIDE_IOVA: u64 = 0x800_0000;
/// Generation 1's first transmit buffer (its region starts at the pool's first IOVA,
/// 0x100000: two ring pages, then the receive buffers).
const STALE_IOVA: u64 = 0x10_0000 + 2 * PAGE + RX_DESCS as u64 * RX_BUF as u64;
/// Frames generation 1 leaves in flight when it crashes.
const BURST: usize = 8;
/// The address generation 1 reads to crash (unmapped).
const CRASH_ADDRESS: u64 = 0xdead_0000;
/// TSC ticks to let the device work through a queued descriptor.
const SETTLE_TICKS: u64 = 500_000_000;

/// Lets the device take what was queued (transmit ring idle, or a bounded time).
fn settle(nic: &E1000e, waiter: &mut Waiter) {
    let deadline = Deadline::after(SETTLE_TICKS);
    while !nic.tx_idle().unwrap_or(true) && !deadline.passed() {
        waiter.pause(nic);
    }
}

/// Generation 1's part (before the self-test): DMA outside the pool, then a crash with
/// frames in flight. Later generations return at once.
pub fn before_self_test(
    nic: &mut E1000e,
    waiter: &mut Waiter,
    generation: u32,
    region_iova: u64,
) -> Result<(), alloc::string::String> {
    use alloc::format;
    if generation != 1 {
        return Ok(());
    }
    if region_iova + 2 * PAGE + RX_DESCS as u64 * RX_BUF as u64 != STALE_IOVA {
        return Err(format!("generation 1's region is at {region_iova:#x}, not where STALE_IOVA assumes"));
    }
    println!("e1000e: rogue: programming the NIC to read iova {OUTSIDE_IOVA:#x} (outside the pool)");
    nic.send_from_iova(OUTSIDE_IOVA, 60).map_err(|e| format!("queue: {e}"))?;
    settle(nic, waiter);
    let request = arp_request(nic.mac(), OUR_IP, GATEWAY);
    for _ in 0..BURST {
        nic.send(&request).map_err(|e| format!("queue: {e}"))?;
    }
    println!("e1000e: rogue: {BURST} ARP requests queued; crashing with receive buffers at iova {region_iova:#x}");
    // SAFETY: deliberately a read of an unmapped address: the CPU fault goes to init,
    // which applies the component's policy (restart).
    let v = unsafe { core::ptr::read_volatile(CRASH_ADDRESS as *const u64) };
    Err(format!("read {v:#x} from an unmapped address"))
}

/// Generation 2's part (after a working self-test): a stale IOVA of generation 1.
pub fn after_self_test(nic: &mut E1000e, waiter: &mut Waiter, generation: u32) -> Result<(), alloc::string::String> {
    if generation != 2 {
        return Ok(());
    }
    println!("e1000e: rogue: programming the NIC to read the stale iova {STALE_IOVA:#x} of generation 1");
    nic.send_from_iova(STALE_IOVA, 60).map_err(|e| alloc::format!("queue: {e}"))?;
    settle(nic, waiter);
    Ok(())
}
