//! A user partition: smoltcp over its virtual NIC, echoing UDP datagrams on port 7.
//!
//! Like `httpd` it holds only its ring link (no device, IOSpace or IOVA); its address
//! is 10.0.2.16/24 (the gateway 10.0.2.2, QEMU's user network, whose `hostfwd` reaches
//! it from the host). Every datagram to port 7 goes back to its sender unchanged, and
//! is logged with its length. Where the description gives it a `canary-address`
//! region (a test system) it plants a canary page and checks it after every datagram
//! (`canary`): a datagram finding it changed ends the partition with a FAIL line.
#![no_std]
#![no_main]

extern crate alloc;

mod canary;

use abi::component::ComponentInfo;
use abi::exit::ExitCode;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use libcap::println;
use vnic::smoltcp::iface::SocketSet;
use vnic::smoltcp::socket::udp;
use vnic::smoltcp::wire::Ipv4Address;
use vnic::{now, TICKS_PER_US};

libcap::component::entry!(main);

/// The partition's address and gateway on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 16);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The echo port.
const PORT: u16 = 7;
/// Most TSC ticks one idle wait lasts before the stack is polled again.
const IDLE_TICKS: u64 = 20_000_000;

fn main(info: &'static ComponentInfo) -> ExitCode {
    match run(info) {
        Ok(()) => ExitCode::Success,
        Err(what) => {
            println!("udpecho: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let (mut dev, mut iface) = vnic::stack(info, ADDRESS, GATEWAY)?;
    let canary = canary::Canary::plant(info).map_err(|e| format!("canary: {e}"))?;
    if let Some(c) = &canary {
        println!("udpecho: canary page at physical {:#x}, address published in 'canary-address'", c.paddr);
    }
    let mac = dev.link.mac;
    let meta = || vec![udp::PacketMetadata::EMPTY; 8];
    let socket =
        udp::Socket::new(udp::PacketBuffer::new(meta(), vec![0; 8192]), udp::PacketBuffer::new(meta(), vec![0; 8192]));
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(socket);
    sockets.get_mut::<udp::Socket>(handle).bind(PORT).map_err(|e| format!("bind: {e:?}"))?;
    println!("udpecho: echoing on 10.0.2.16:{PORT} (MAC {})", netclient::hex(&mac));
    let mut echoed = 0u64;
    let mut datagram = [0u8; 1500];
    loop {
        vnic::poll(&mut iface, &mut dev, &mut sockets);
        if let Some(e) = dev.error.take() {
            return Err(format!("the virtual NIC: {e}"));
        }
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if let Ok((n, meta)) = socket.recv_slice(&mut datagram) {
            echoed += 1;
            let checked = match &canary {
                Some(c) if !c.intact() => return Err(format!("canary page at {:#x} overwritten", c.paddr)),
                Some(_) => "; canary intact",
                None => "",
            };
            println!("udpecho: datagram {echoed}: {n} bytes from {}{checked}", meta.endpoint);
            let _ = socket.send_slice(&datagram[..n], meta.endpoint);
            continue;
        }
        let delay =
            iface.poll_delay(now(), &sockets).map_or(IDLE_TICKS, |d| (d.total_micros() * TICKS_PER_US).min(IDLE_TICKS));
        if delay > 0 {
            dev.link.wait(delay)?;
        }
    }
}
