//! `e1000edrv-blast`: the sender of the receive benchmark (`make bench`).
//!
//! Its 82574 shares a QEMU hub with the NIC under test. It runs below the measured
//! driver and client, so it gets the CPU only when both are idle. For each batch the
//! client says it is ready for (a counter in the shared region `rx-go`), it queues
//! `BATCH` frames (`netframe::rxbench`) with one doorbell write and the TSC written into each just before
//! (`E1000e::send_batch_stamped`): QEMU sends them, through the hub, into the other
//! NIC's receive ring inside that write, and that NIC's interrupt follows at once. The
//! client takes its time stamp when it has the batch's last frame.

use abi::component::{CapKind, ComponentInfo};
use e1000e_driver::E1000e;
use libcap::deadline::{now, Deadline};
use libcap::println;
use netframe::rxbench::{frame, AT_STAMP, BATCH, RUNS, SIZES};

/// How long the client may take to get ready for a batch (TSC ticks).
const READY_TICKS: u64 = 20_000_000_000;

/// Sends every batch; `Err` if the client never gets ready or the NIC refuses.
pub fn run(nic: &mut E1000e, info: &'static ComponentInfo) -> Result<(), alloc::string::String> {
    use alloc::format;
    let go = info.cap_of("rx-go", CapKind::Region).ok_or("no region rx-go")?.vaddr as *const u64;
    let ready = || {
        // SAFETY: init maps rx-go (at least 8 bytes) here for the component's life; the
        // client writes the counter, this side only reads it.
        unsafe { go.read_volatile() }
    };
    let mac = nic.mac();
    let total = RUNS * SIZES.len() as u32;
    for batch in 0..total {
        let deadline = Deadline::after(READY_TICKS);
        while ready() <= u64::from(batch) {
            if deadline.passed() {
                return Err(format!("the client was not ready for batch {batch}"));
            }
            libcap::ipc::yield_now();
        }
        let frames: alloc::vec::Vec<alloc::vec::Vec<u8>> = (0..BATCH).map(|i| frame(mac, batch, i)).collect();
        let refs: alloc::vec::Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        nic.send_batch_stamped(&refs, AT_STAMP, now).map_err(|e| format!("send: {e}"))?;
    }
    println!("e1000e: blast: {total} batches of {BATCH} frames sent");
    Ok(())
}
