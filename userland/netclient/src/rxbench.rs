//! `netclient-rxbench`: frames received through a driver, in guest instructions.
//!
//! Booted by `make bench` under `-icount shift=0,sleep=off` behind the driver under
//! test, whose NIC shares a QEMU hub with a sender (`e1000edrv-blast`, at a lower
//! priority than this client and its driver). The sender stamps each batch of
//! `BATCH` frames with its TSC just before the doorbell write inside which QEMU
//! completes their reception on the other NIC (`netframe::rxbench`); this client takes
//! the TSC when it has popped the batch's last frame off RX_ACTIVE and checked it. Per
//! frame: (that TSC - the stamp) / `BATCH`: the device's interrupt, the driver's
//! wake-up, its copies into the client's buffers, the ring entries, the notification,
//! the client's wake-up and its reading of the entries. It says when it is ready for
//! the next batch through the shared region `rx-go` (a counter the sender polls).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use libcap::deadline::{now, Deadline};
use netframe::rxbench::{parse, size_of_batch, BATCH, RUNS, SIZES};

use crate::{Link, BUF, REPLY_TICKS};

/// Receives every batch and prints one `bench:` row per frame size.
pub fn run(link: &mut Link, info: &'static abi::component::ComponentInfo) -> Result<(), String> {
    let go = info
        .cap_of("rx-go", abi::component::CapKind::Region)
        .filter(|c| c.rights & abi::rights::CapRights::WRITE.raw() != 0)
        .ok_or("no writable region rx-go")?
        .vaddr as *mut u64;
    let ready = |n: u64| {
        // SAFETY: init maps rx-go writable here for the component's life; the sender
        // only reads it.
        unsafe { go.write_volatile(n) };
    };
    link.offer_receive_buffers()?;
    let mut out = [0u8; BUF as usize];
    let mut samples: Vec<Vec<u64>> = SIZES.iter().map(|_| Vec::new()).collect();
    for batch in 0..RUNS * SIZES.len() as u32 {
        ready(u64::from(batch) + 1);
        let deadline = Deadline::after(REPLY_TICKS);
        let mut got = 0;
        let mut stamp = 0;
        while got < BATCH {
            let Some(n) = link.try_receive(&mut out)? else {
                if deadline.passed() {
                    return Err(format!("{got} of {BATCH} frames of batch {batch} arrived"));
                }
                // Block (not a bounded spin): the sender, below this client in priority,
                // runs only while the client and the driver are both blocked.
                if link.ends.rx_active.prepare_wait().map_err(|e| format!("RX ring: {e:?}"))? {
                    let _ = libcap::ipc::wait(link.from_driver);
                    link.ends.rx_active.done_waiting();
                }
                continue;
            };
            match parse(&out[..n]) {
                Some((b, i, s)) if b == batch && i == got && n == size_of_batch(batch) => {
                    stamp = s;
                    got += 1;
                }
                found => return Err(format!("batch {batch} frame {got}: got {found:?} ({n} bytes)")),
            }
        }
        let t = now();
        if batch % RUNS != 0 {
            samples[(batch / RUNS) as usize].push(t.saturating_sub(stamp) / u64::from(BATCH));
        }
    }
    for (size, s) in SIZES.iter().zip(&mut samples) {
        let label = if *size == 60 { "64 B" } else { "1500 B" };
        crate::bench::report(
            &format!("NIC via rings: {label} frame received (device completion -> RX_ACTIVE taken, peer on a hub), per frame"),
            s,
        );
    }
    Ok(())
}
