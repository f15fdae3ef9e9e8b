//! Attack PoC partition: sends frames as fast as its rings take them, forever.
//!
//! `netclient-flood` sits on a bridge port (or a copier) like any user partition and
//! keeps every transmit buffer it has in flight with well-formed frames from its own
//! station address (the bridge's anti-spoofing passes them). The other partition
//! must still get its frames out: the bridge's link to the NIC is shared.
#![no_std]
#![no_main]

use libcap::println;

libcap::component::entry!(main);

/// Frames between two progress lines.
const REPORT_EVERY: u64 = 100_000;

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    let mut link = match netclient::connect(info) {
        Ok(link) => link,
        Err(e) => {
            println!("flood: FAIL {e}");
            return abi::exit::ExitCode::UserFailure;
        }
    };
    // Broadcast, from its own address, a local experimental EtherType, 1514 bytes.
    let mut frame = [0u8; 1514];
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&link.mac);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    println!("flood: sending from {}", netclient::hex(&link.mac));
    let mut sent = 0u64;
    loop {
        while link.can_send().unwrap_or(false) {
            if link.queue(&frame).is_err() {
                break;
            }
            sent += 1;
            if sent.is_multiple_of(REPORT_EVERY) {
                println!("flood: {sent} frames queued");
            }
        }
        link.flush();
        libcap::ipc::yield_now();
    }
}
