//! A user partition's virtual NIC for smoltcp: its `Device` over a ring link.
//!
//! The partition holds only the queue and data regions and the two notification
//! channels it shares with its NIC's server (a NIC driver, or the bridge of the
//! services partition); `netclient::Link` moves frames through them and [`Vnic`] hands
//! them to smoltcp 0.14. It never sees an IOVA or a device.
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use netclient::Link;
use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};

pub use smoltcp;

/// TSC ticks per microsecond assumed for smoltcp's clock (timers only: ARP expiry and
/// TCP retransmission; a factor of two either way changes nothing that matters here).
pub const TICKS_PER_US: u64 = 2_000;

/// The virtual NIC as smoltcp sees it.
pub struct Vnic {
    /// The ring link.
    pub link: Link,
    /// The frame `receive` copied out of the data region (on the heap: a partition's
    /// stack is small).
    frame: Box<[u8; 2048]>,
    /// Where smoltcp builds a frame to send (then copied into the data region).
    outgoing: Box<[u8; 2048]>,
    /// Ring errors (a corrupt peer): reported by the main loop.
    pub error: Option<String>,
}

/// A received frame, handed to smoltcp.
pub struct Rx<'a>(&'a [u8]);
/// Room for one frame to send.
pub struct Tx<'a>(&'a mut Link, &'a mut Option<String>, &'a mut [u8; 2048]);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let frame = &mut self.2[..len.min(2048)];
        frame.fill(0);
        let r = f(frame);
        // The driver hears of it when the poll ends ([`poll`]): one signal a round.
        if let Err(e) = self.0.queue(frame) {
            *self.1 = Some(e);
        }
        r
    }
}

impl Device for Vnic {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        // A transmit buffer must be free too: smoltcp may answer at once (ARP, ACK).
        if !self.link.can_send().unwrap_or(false) {
            return None;
        }
        match self.link.take(&mut self.frame[..]) {
            Ok(Some(n)) => Some((Rx(&self.frame[..n]), Tx(&mut self.link, &mut self.error, &mut self.outgoing))),
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        match self.link.can_send() {
            Ok(true) => Some(Tx(&mut self.link, &mut self.error, &mut self.outgoing)),
            Ok(false) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.link.max_frame as usize;
        caps
    }
}

/// smoltcp's clock.
pub fn now() -> Instant {
    Instant::from_micros((libcap::deadline::now() / TICKS_PER_US) as i64)
}

impl Vnic {
    /// A virtual NIC over `link` (its receive buffers are offered first).
    pub fn new(mut link: Link) -> Result<Self, String> {
        link.offer_receive_buffers()?;
        Ok(Vnic { link, frame: Box::new([0; 2048]), outgoing: Box::new([0; 2048]), error: None })
    }
}

/// One round of the stack: `iface.poll`, then one signal to the NIC's server for
/// everything the round queued or re-offered. Returns whether the sockets changed.
pub fn poll(iface: &mut Interface, dev: &mut Vnic, sockets: &mut smoltcp::iface::SocketSet<'_>) -> bool {
    let changed = iface.poll(now(), dev, sockets) != smoltcp::iface::PollResult::None;
    dev.link.flush();
    changed
}

/// A partition's network: its virtual NIC (the ring link the description gives) and a
/// smoltcp interface on it with `address`/24 and the default route via `gateway`.
pub fn stack(
    info: &'static abi::component::ComponentInfo,
    address: Ipv4Address,
    gateway: Ipv4Address,
) -> Result<(Vnic, Interface), String> {
    let link = netclient::connect(info)?;
    let mac = link.mac;
    let mut dev = Vnic::new(link)?;
    let mut iface = Interface::new(Config::new(EthernetAddress(mac).into()), &mut dev, now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(address.into(), 24));
    });
    iface.routes_mut().add_default_ipv4_route(gateway).map_err(|e| alloc::format!("route: {e:?}"))?;
    Ok((dev, iface))
}
