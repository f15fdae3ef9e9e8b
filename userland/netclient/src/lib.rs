//! A NIC driver's client: ARP and DHCP through the driver's rings, hostile too.
//!
//! The description gives it the queue region `nic-queues` and the data region
//! `nic-data` it shares with the driver, and two notification channels: `nic-tx` (it
//! signals the driver) and `nic-rx` (the driver signals it). It never sees an IOVA or
//! the device: it offers receive buffers and queues frames as (offset, length, id)
//! entries of its data region. Before the real traffic it plays a hostile client: one
//! receive buffer and one frame to send lie outside the data region, and it checks that
//! the driver handed both back refused (length 0) instead of following them. Then it
//! resolves the gateway 10.0.2.2 by ARP and asks for a DHCP offer, as the driver's own
//! self-test does, and prints `netclient: done`.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo};
use abi::exit::ExitCode;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capring::layout::net::{self, ClientEnds, NicInfo};
use capring::{BufDesc, DataRegion};
use libcap::deadline::Deadline;
use libcap::println;
use netframe::dhcp::{discover, offer_for};
pub use netframe::hex;
use netframe::{arp_reply_for, arp_request};

mod bench;
mod rxbench;

/// What the program does with the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `netclient`: hostile entries, then ARP and DHCP through the driver.
    Normal,
    /// `netclient-bench`: frames through a driver in MAC loopback, timed ([`bench`]).
    Bench,
    /// `netclient-rxbench`: frames from a peer on a hub received, timed ([`rxbench`]).
    RxBench,
}

/// Bytes of each buffer in the data region.
const BUF: u64 = 2048;
/// Fewest receive buffers offered (ids 0..rx_bufs, at the start of the data region).
const RX_BUFS: u32 = 16;
/// Fewest transmit buffers (ids rx_bufs.., after the receive buffers).
const TX_BUFS: u32 = 8;
/// Most buffers of each kind (a larger data region is not used beyond them).
const MAX_BUFS: u32 = 64;
/// The id of the receive entry that lies outside the data region.
const BOGUS_RX: u32 = 0xbad0;
/// The id of the send entry that lies outside the data region.
const BOGUS_TX: u32 = 0xbad1;
/// This client's address and the gateway of QEMU's user network.
const OUR_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// DHCP transaction id.
const XID: u32 = 0x0c11_e4e7;
/// Time stamp counter ticks: the driver's start, an answer, a resend, one wait.
const START_TICKS: u64 = 20_000_000_000;
const REPLY_TICKS: u64 = 20_000_000_000;
const RESEND_TICKS: u64 = 200_000_000;
const WAIT_TICKS: u64 = 5_000_000;

/// The component's body; `mode` chooses the program.
pub fn main(info: &'static ComponentInfo, mode: Mode) -> ExitCode {
    let result = match mode {
        Mode::Normal => run(info),
        Mode::Bench => connect(info).and_then(|mut link| bench::run(&mut link)),
        Mode::RxBench => connect(info).and_then(|mut link| rxbench::run(&mut link, info)),
    };
    match result {
        Ok(()) => {
            println!("netclient: done");
            ExitCode::Success
        }
        Err(what) => {
            println!("netclient: FAIL {what}");
            ExitCode::UserFailure
        }
    }
}

/// The connection to the driver.
pub struct Link {
    pub ends: ClientEnds,
    pub data: DataRegion,
    /// Signal cap: wake the driver.
    pub to_driver: u64,
    /// Wait cap: the driver queued something.
    pub from_driver: u64,
    pub mac: [u8; 6],
    /// The device loops frames sent back (the driver said so in the info page).
    pub loopback: bool,
    /// The largest frame the driver takes, in bytes.
    pub max_frame: u32,
    /// Transmit buffer ids free for a frame.
    pub tx_idle: Vec<u32>,
    /// Receive buffers (ids 0..rx_bufs): half the data region's buffers, at least
    /// [`RX_BUFS`].
    pub rx_bufs: u32,
    /// Transmit buffers (ids rx_bufs..rx_bufs + tx_bufs): the rest, at least
    /// [`TX_BUFS`]. A larger region gives larger batches per wake-up.
    pub tx_bufs: u32,
    /// Refused entries handed back (ids).
    pub refused: Vec<u32>,
    /// Entries pushed since the last [`Link::flush`] (queued frames, re-offered
    /// buffers) that the driver has not been told of.
    pub unflushed: bool,
}

impl Link {
    /// Publishes what was pushed, waking the driver if it asked to be.
    pub fn kick(&mut self) {
        let wake = self.ends.rx_free.publish() | self.ends.tx_active.publish();
        if wake {
            let _ = libcap::ipc::signal(self.to_driver);
        }
    }

    /// Tells the driver of what was pushed since the last flush, if anything was
    /// (a relay flushes once per round, so a batch costs one signal, not one a frame).
    pub fn flush(&mut self) {
        if core::mem::take(&mut self.unflushed) {
            self.kick();
        }
    }

    /// Queues `frame` in a free transmit buffer and tells the driver.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        self.queue(frame)?;
        self.kick();
        Ok(())
    }

    /// Queues `frame` in a free transmit buffer; the driver hears of it at the next
    /// [`Link::flush`] or kick.
    pub fn queue(&mut self, frame: &[u8]) -> Result<(), String> {
        self.reclaim()?;
        let id = self.tx_idle.pop().ok_or("every transmit buffer is in flight")?;
        let d = BufDesc { offset: u64::from(id) * BUF, len: frame.len() as u32, id };
        let range = d.range(self.data.len()).map_err(|e| format!("own buffer {id}: {e:?}"))?;
        self.data.write(range, frame).map_err(|e| format!("own buffer {id}: {e:?}"))?;
        self.ends.tx_active.push(d).map_err(|e| format!("TX ring: {e:?}"))?;
        self.unflushed = true;
        Ok(())
    }

    /// Takes back sent buffers.
    pub fn reclaim(&mut self) -> Result<(), String> {
        while let Some(d) = self.ends.tx_free.pop().map_err(|e| format!("TX_FREE ring: {e:?}"))? {
            match d.id {
                BOGUS_TX if d.len == 0 => self.refused.push(d.id),
                id if (self.rx_bufs..self.rx_bufs + self.tx_bufs).contains(&id) && !self.tx_idle.contains(&id) => {
                    self.tx_idle.push(id)
                }
                id => return Err(format!("the driver returned a send buffer never queued: id {id:#x}")),
            }
        }
        self.ends.tx_free.release();
        Ok(())
    }

    /// The next received frame copied into `out` (its length), re-offering its buffer;
    /// `None` after a bounded wait.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, String> {
        match self.try_receive(out)? {
            Some(n) => Ok(Some(n)),
            None => {
                self.wait(WAIT_TICKS)?;
                Ok(None)
            }
        }
    }

    /// Waits (at most `ticks`) for the driver to signal, unless frames already wait
    /// (or, with every transmit buffer in flight, one came back).
    pub fn wait(&mut self, ticks: u64) -> Result<(), String> {
        let mut idle = self.ends.rx_active.prepare_wait().map_err(|e| format!("RX ring: {e:?}"))?;
        let blocked = self.tx_idle.is_empty();
        if blocked {
            idle &= self.ends.tx_free.prepare_wait().map_err(|e| format!("TX_FREE ring: {e:?}"))?;
        }
        if idle {
            let _ = libcap::ipc::wait_until(self.from_driver, Deadline::after(ticks));
        }
        self.ends.rx_active.done_waiting();
        if blocked {
            self.ends.tx_free.done_waiting();
        }
        Ok(())
    }

    /// Offers every receive buffer to the driver.
    pub fn offer_receive_buffers(&mut self) -> Result<(), String> {
        for id in 0..self.rx_bufs {
            let d = BufDesc { offset: u64::from(id) * BUF, len: BUF as u32, id };
            self.ends.rx_free.push(d).map_err(|e| format!("RX_FREE ring: {e:?}"))?;
        }
        self.kick();
        Ok(())
    }

    /// Whether a transmit buffer is free (after taking back what the driver sent).
    pub fn can_send(&mut self) -> Result<bool, String> {
        self.reclaim()?;
        Ok(!self.tx_idle.is_empty())
    }

    /// The next received frame copied into `out` (its length), re-offering its buffer
    /// and telling the driver; `None` at once if none is waiting.
    pub fn try_receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, String> {
        let got = self.take(out);
        self.flush();
        got
    }

    /// As [`Link::try_receive`], but the driver hears of the re-offered buffer only at
    /// the next [`Link::flush`].
    pub fn take(&mut self, out: &mut [u8]) -> Result<Option<usize>, String> {
        loop {
            let Some(d) = self.ends.rx_active.pop().map_err(|e| format!("RX ring: {e:?}"))? else {
                return Ok(None);
            };
            self.ends.rx_active.release();
            if d.id == BOGUS_RX {
                if d.len != 0 {
                    return Err(format!("the driver filled the entry outside the region ({} bytes)", d.len));
                }
                self.refused.push(d.id);
                continue;
            }
            if d.id >= self.rx_bufs || d.offset != u64::from(d.id) * BUF {
                return Err(format!("the driver returned a receive buffer never offered: {d:?}"));
            }
            let n = if d.len == 0 {
                0
            } else {
                let range = d.range(self.data.len()).map_err(|e| format!("receive entry {d:?}: {e:?}"))?;
                self.data.read(range, out).map_err(|e| format!("receive entry {d:?}: {e:?}"))?
            };
            self.ends.rx_free.push(BufDesc { len: BUF as u32, ..d }).map_err(|e| format!("RX_FREE ring: {e:?}"))?;
            self.unflushed = true;
            if n > 0 {
                return Ok(Some(n));
            }
        }
    }

    /// Sends `request` (again every [`RESEND_TICKS`]) until a frame `answer` accepts.
    pub fn exchange<T>(&mut self, request: &[u8], answer: impl Fn(&[u8]) -> Option<T>) -> Result<T, String> {
        let mut frame = [0u8; BUF as usize];
        let deadline = Deadline::after(REPLY_TICKS);
        let mut resend = Deadline::after(0);
        let mut others = 0u32;
        while !deadline.passed() {
            if resend.passed() {
                self.send(request)?;
                resend = Deadline::after(RESEND_TICKS);
            }
            if let Some(n) = self.receive(&mut frame)? {
                match answer(&frame[..n]) {
                    Some(found) => return Ok(found),
                    None => others += 1,
                }
            }
        }
        Err(format!("no answer to a {} byte request through the driver ({others} other frames)", request.len()))
    }
}

/// The connection the description gives: `nic-queues`, `nic-data`, `nic-tx` and
/// `nic-rx`, or else the one named by its first `<prefix>-queues` region (a port of
/// the bridge, say `web-queues`).
pub fn connect(info: &'static ComponentInfo) -> Result<Link, String> {
    if info.cap_of("nic-queues", CapKind::Region).is_some() {
        return connect_named(info, "nic");
    }
    let queues = info.caps().iter().find(|c| c.kind() == Some(CapKind::Region) && c.name().ends_with("-queues"));
    let prefix = queues.map(|c| c.name().trim_end_matches("-queues")).ok_or("no '<name>-queues' region")?;
    connect_named(info, prefix)
}

/// The connection named `<prefix>-queues`, `<prefix>-data`, `<prefix>-tx` (this side
/// signals) and `<prefix>-rx` (this side waits).
pub fn connect_named(info: &'static ComponentInfo, prefix: &str) -> Result<Link, String> {
    let region = |suffix: &str| {
        let name = format!("{prefix}{suffix}");
        info.cap_of(&name, CapKind::Region).ok_or(format!("no region '{name}'"))
    };
    let (queues, data) = (region("-queues")?, region("-data")?);
    let ntfn = |suffix: &str| {
        let name = format!("{prefix}{suffix}");
        info.cap_of(&name, CapKind::Notification).map(|c| c.slot).ok_or(format!("no channel '{name}'"))
    };
    let (to_driver, from_driver) = (ntfn("-tx")?, ntfn("-rx")?);
    let need = (net::PAGES * capring::layout::RING_BYTES) as u64;
    if queues.size < need || data.size < u64::from(RX_BUFS + TX_BUFS) * BUF {
        return Err(format!("regions too small: queues {:#x} (need {need:#x}), data {:#x}", queues.size, data.size));
    }
    let base = queues.vaddr as *mut u8;
    // SAFETY: init mapped both regions writable at these addresses for this component's
    // life, shared with the one driver the description names.
    let (ends, data) = unsafe {
        (
            net::client(base).map_err(|e| format!("queue region: {e:?}"))?,
            DataRegion::new(data.vaddr as *mut u8, data.size as usize),
        )
    };
    let started = Deadline::after(START_TICKS);
    let info: NicInfo = loop {
        // SAFETY: as above.
        if let Some(info) = unsafe { net::read_info(base) } {
            break info;
        }
        if started.passed() {
            return Err("the driver never published its link information".into());
        }
        libcap::ipc::yield_now();
    };
    println!("netclient: driver ready: MAC {}, frames up to {} bytes", hex(&info.mac), info.max_frame);
    let bufs = (data.len() as u64 / BUF) as u32;
    let rx_bufs = (bufs / 2).clamp(RX_BUFS, MAX_BUFS);
    let tx_bufs = (bufs - rx_bufs).min(MAX_BUFS);
    let tx_idle = (rx_bufs..rx_bufs + tx_bufs).collect();
    let loopback = info.flags & net::NIC_LOOPBACK != 0;
    Ok(Link {
        ends,
        data,
        to_driver,
        from_driver,
        mac: info.mac,
        loopback,
        max_frame: info.max_frame,
        tx_idle,
        rx_bufs,
        tx_bufs,
        refused: Vec::new(),
        unflushed: false,
    })
}

fn run(info: &'static ComponentInfo) -> Result<(), String> {
    let mut link = connect(info)?;
    // Hostile entries first: a receive buffer past the region's end and a frame whose
    // offset wraps. The driver must hand both back with length 0.
    let region_len = link.data.len() as u64;
    link.ends
        .rx_free
        .push(BufDesc { offset: region_len, len: BUF as u32, id: BOGUS_RX })
        .map_err(|e| format!("{e:?}"))?;
    for id in 0..link.rx_bufs {
        link.ends
            .rx_free
            .push(BufDesc { offset: u64::from(id) * BUF, len: BUF as u32, id })
            .map_err(|e| format!("{e:?}"))?;
    }
    link.ends.tx_active.push(BufDesc { offset: u64::MAX - 15, len: 60, id: BOGUS_TX }).map_err(|e| format!("{e:?}"))?;
    link.kick();
    println!("netclient: offered {} receive buffers and 2 entries outside the {region_len} byte region", link.rx_bufs);
    let mac = link.mac;
    let (gw_mac, _) =
        link.exchange(&arp_request(mac, OUR_IP, GATEWAY), |f| arp_reply_for(f, mac).filter(|r| r.1 == GATEWAY))?;
    println!("netclient: ARP reply through the driver: 10.0.2.2 is at {}", hex(&gw_mac));
    let offer = link.exchange(&discover(mac, XID), |f| offer_for(f, mac, XID))?;
    let ip = offer.your_ip;
    println!("netclient: DHCP offer through the driver: {}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
    link.reclaim()?;
    link.refused.sort_unstable();
    if link.refused != [BOGUS_RX, BOGUS_TX] {
        return Err(format!("refused entries handed back: {:x?}, expected both hostile ones", link.refused));
    }
    println!("netclient: both entries outside the region came back refused (length 0)");
    Ok(())
}
