//! A NIC driver serving one client through capring rings (the sDDF data plane).
//!
//! The description gives a driver and its client a queue region (`nic-queues`, the
//! rings and information page of `capring::layout::net`), a data region (`nic-data`)
//! and a notification channel each way (`nic-tx`: client to driver, `nic-rx`: driver
//! to client). The client offers empty buffers and queues frames to send as (offset,
//! length, id) entries; [`serve`] copies each frame between the data region and the
//! driver's own DMA buffers (through the [`Nic`] the driver implements), so the client
//! never sees an IOVA and the device never sees the client's memory. An entry outside
//! the data region is refused, never followed: it goes back with length 0 (TX_FREE
//! for a send, RX_ACTIVE for a receive buffer) and the driver logs it. With an
//! interrupt the idle driver blocks in one wait for the client and the device.
#![no_std]

extern crate alloc;

use abi::component::{CapKind, ComponentInfo, CNODE};
use abi::rights::CapRights;
use capring::layout::net;
use capring::mark::{MarkCounter, MarkRegion};
use capring::{BufDesc, DataRegion, RingError};
use libcap::cap::{CNode, IrqHandler, Notification};
use libcap::println;

/// The largest frame (without the FCS the NIC appends) a client may send.
pub const MAX_FRAME: u32 = 1514;
/// Bytes of the driver's frame copy buffer.
const FRAME_BUF: usize = 2048;
/// Without an interrupt, one idle wait lasts at most this many TSC ticks before the
/// device is polled again.
const POLL_TICKS: u64 = 5_000_000;

/// What the serve loop needs of a NIC driver.
pub trait Nic {
    /// The device's errors (a bad value it reported).
    type Error: core::fmt::Display;
    /// The station address frames go out with.
    fn mac(&self) -> [u8; 6];
    /// Queues `frame` (at most [`MAX_FRAME`] bytes) for sending; `Ok(false)`: the
    /// device's own ring is full, try again.
    fn try_send(&mut self, frame: &[u8]) -> Result<bool, Self::Error>;
    /// Whether it can take a frame to send now. A relay whose own link upward is
    /// full says no, so the client's frames wait in its ring (backpressure) instead of
    /// being taken and lost; a device driver can always take one (it waits for room).
    fn can_take(&mut self) -> bool {
        true
    }
    /// Copies the next received frame into `out` and returns its length, or `None`.
    fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, Self::Error>;
    /// Clears the device's pending interrupt causes (before the rings are looked at,
    /// so an event after this raises a new interrupt).
    fn clear_interrupt(&mut self) {}
    /// Whether the device loops frames sent back to its receive ring (told to the
    /// client in the information page).
    fn loopback(&self) -> bool {
        false
    }
}

/// The named caps of one client connection.
pub struct Connection {
    queues: u64,
    data: (u64, u64),
    /// Signal cap: the client has something to do.
    to_client: u64,
    /// Wait cap: the client queued something.
    from_client: u64,
    /// A benchmark's `bench-mark` region (benchmark systems only), if given.
    mark: Option<u64>,
}

impl Connection {
    /// The connection the description gives under the names `nic-queues`,
    /// `nic-data`, `nic-tx` and `nic-rx`, if it gives one.
    pub fn find(info: &'static ComponentInfo) -> Option<Self> {
        Self::find_named(info, "nic")
    }

    /// The connection named `<prefix>-queues`, `<prefix>-data` (regions, writable),
    /// `<prefix>-tx` (the client signals) and `<prefix>-rx` (it waits), if given.
    pub fn find_named(info: &'static ComponentInfo, prefix: &str) -> Option<Self> {
        let named = |suffix: &str| {
            let mut name = alloc::string::String::from(prefix);
            name.push_str(suffix);
            name
        };
        let region = |name: &str| info.cap_of(name, CapKind::Region).filter(|c| c.rights & CapRights::WRITE.raw() != 0);
        let queues = region(&named("-queues"))?;
        let data = region(&named("-data"))?;
        let to_client = info.cap_of(&named("-rx"), CapKind::Notification)?.slot;
        let from_client = info.cap_of(&named("-tx"), CapKind::Notification)?.slot;
        let pages = net::PAGES as u64 * capring::layout::RING_BYTES as u64;
        let mark = info.cap_of("bench-mark", CapKind::Region).filter(|r| r.size >= 64).map(|r| r.vaddr);
        (queues.size >= pages).then_some(Connection {
            queues: queues.vaddr,
            data: (data.vaddr, data.size),
            to_client,
            from_client,
            mark,
        })
    }
}

/// What went wrong while serving.
pub enum ServeError<E> {
    /// The client corrupted a ring.
    Ring(RingError),
    /// The device misbehaved.
    Device(E),
}

impl<E: core::fmt::Display> core::fmt::Display for ServeError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServeError::Ring(e) => write!(f, "the client's rings: {e:?}"),
            ServeError::Device(e) => write!(f, "the device: {e}"),
        }
    }
}

impl<E> From<RingError> for ServeError<E> {
    fn from(e: RingError) -> Self {
        ServeError::Ring(e)
    }
}

/// The badge the device's MSI signals the client channel's notification with.
const MSI_BADGE: u64 = 2;

/// Binds the MSI to a badged copy (in `spare`) of the notification the client signals,
/// so one blocking wait hears both; `None` without an MSI or if that fails.
fn one_wait(name: &str, irq: Option<IrqHandler>, c: &Connection, spare: u64) -> Option<IrqHandler> {
    let handler = irq?;
    let root = CNode(CNODE);
    CNode::mint(root.slot(spare), root.slot(c.from_client), CapRights::WRITE, MSI_BADGE).ok()?;
    match handler.set_notification(Notification(spare)) {
        Ok(()) => Some(handler),
        Err(e) => {
            println!("{name}: cannot bind the MSI to the client's notification ({e:?}): polling");
            None
        }
    }
}

/// One client's side of the data plane: its rings and data region, and counters.
pub struct Port {
    name: &'static str,
    ends: net::DriverEnds,
    region: DataRegion,
    to_client: u64,
    from_client: u64,
    frame: [u8; FRAME_BUF],
    /// Frames sent for the client, received for it, dropped (no buffer offered, or
    /// too small), and entries refused (outside the data region, too long).
    pub counts: [u64; 4],
    /// A benchmark's mark and the frames counted against it.
    mark: Option<(MarkRegion, MarkCounter)>,
}

impl Port {
    /// Opens the client connection `c` and tells the client `info` (its information
    /// page); `name` prefixes the log lines.
    pub fn open(name: &'static str, c: &Connection, info: net::NicInfo) -> Result<Self, RingError> {
        // SAFETY: init mapped both regions writable at these addresses for this
        // component's life, shared with the one client the description names.
        let (ends, region) =
            unsafe { (net::driver(c.queues as *mut u8)?, DataRegion::new(c.data.0 as *mut u8, c.data.1 as usize)) };
        // SAFETY: as above; the INFO page is part of the queue region.
        unsafe { net::publish_info(c.queues as *mut u8, info) };
        println!(
            "{name}: serving a client: data region {} KiB, {} entries per ring",
            region.len() / 1024,
            ends.rx_free.capacity()
        );
        Ok(Port {
            name,
            ends,
            region,
            to_client: c.to_client,
            from_client: c.from_client,
            frame: [0; FRAME_BUF],
            counts: [0; 4],
            // SAFETY: init mapped the region (at least 64 bytes, page aligned) at this
            // address for this component's life; it is only read, as a mark region.
            mark: c.mark.map(|at| (unsafe { MarkRegion::new(at as *mut u8) }, MarkCounter::default())),
        })
    }

    /// Moves what can move: the client's queued frames to `nic.try_send`, frames
    /// `nic.receive` gives into the client's offered buffers; signals the client if it
    /// asked. Returns whether anything moved.
    pub fn step<N: Nic>(&mut self, nic: &mut N) -> Result<bool, ServeError<N::Error>> {
        let (name, region) = (self.name, &self.region);
        let ends = &mut self.ends;
        let frame = &mut self.frame;
        let [sent, received, dropped, refused] = &mut self.counts;
        let mut progress = false;
        // Signal the client only for entries it has not seen: a wake-up with nothing
        // new would make two idle peers wake each other for nothing.
        let (mut freed, mut filled) = (false, false);
        // Only take what can be handed back: a client that never drains TX_FREE stalls
        // its own sending.
        while ends.tx_free.free()? > 0 && nic.can_take() {
            let Some(d) = ends.tx_active.pop()? else { break };
            progress = true;
            let range = match d.range(region.len()) {
                Ok(range) if range.len <= MAX_FRAME as usize => range,
                Ok(_) => {
                    log_refused(name, *refused, "send", &d, "longer than a frame");
                    *refused += 1;
                    ends.tx_free.push(BufDesc { len: 0, ..d })?;
                    freed = true;
                    continue;
                }
                Err(_) => {
                    log_refused(name, *refused, "send", &d, "outside the data region");
                    *refused += 1;
                    ends.tx_free.push(BufDesc { len: 0, ..d })?;
                    freed = true;
                    continue;
                }
            };
            let n = region.read(range, frame)?;
            // The device's own ring full: let it work, then again.
            while !nic.try_send(&frame[..n]).map_err(ServeError::Device)? {
                libcap::ipc::yield_now();
            }
            *sent += 1;
            freed = true;
            if let Some((region, counter)) = &mut self.mark {
                if counter.frame(region, libcap::deadline::now()) {
                    report_mark(name, counter);
                }
            }
            ends.tx_free.push(d)?;
        }
        ends.tx_active.release();
        let mut wake = freed && ends.tx_free.publish();
        while let Some(n) = nic.receive(frame).map_err(ServeError::Device)? {
            progress = true;
            // A client that stops taking frames loses frames, never the driver.
            let d = if ends.rx_active.free()? == 0 { None } else { ends.rx_free.pop()? };
            let Some(d) = d else {
                *dropped += 1;
                continue;
            };
            // Every offered buffer goes back, filled or with length 0 (too small, or
            // outside the region: refused, never written).
            let len = match d.range(region.len()) {
                Ok(range) if range.len >= n => {
                    region.write(range, &frame[..n])?;
                    *received += 1;
                    n as u32
                }
                Ok(_) => {
                    *dropped += 1;
                    0
                }
                Err(_) => {
                    log_refused(name, *refused, "receive", &d, "outside the data region");
                    *refused += 1;
                    0
                }
            };
            ends.rx_active.push(BufDesc { len, ..d })?;
            filled = true;
        }
        ends.rx_free.release();
        wake |= filled && ends.rx_active.publish();
        if wake {
            let _ = libcap::ipc::signal(self.to_client);
        }
        Ok(progress)
    }

    /// Raises the waiting flag on TX_ACTIVE: `true` if the client has queued nothing
    /// since (then wait; it signals when it queues), `false` if work came in.
    pub fn prepare_wait(&mut self) -> Result<bool, RingError> {
        self.ends.tx_active.prepare_wait()
    }

    /// Lowers the waiting flag after a wait.
    pub fn done_waiting(&mut self) {
        self.ends.tx_active.done_waiting();
    }

    /// The notification the client signals (wait on it).
    pub fn from_client(&self) -> u64 {
        self.from_client
    }
}

/// Serves the client until a ring or the device fails. `name` prefixes the log lines;
/// `irq` is the device's interrupt handler if it has one (then the idle driver blocks);
/// `spare` is a free CNode slot.
pub fn serve<N: Nic>(
    name: &'static str,
    nic: &mut N,
    irq: Option<IrqHandler>,
    c: &Connection,
    spare: u64,
) -> Result<(), ServeError<N::Error>> {
    let flags = if nic.loopback() { net::NIC_LOOPBACK } else { 0 };
    let mut port = Port::open(name, c, net::NicInfo { mac: nic.mac(), flags, max_frame: MAX_FRAME })?;
    let irq = one_wait(name, irq, c, spare);
    if irq.is_some() {
        println!("{name}: one blocking wait for the client (badge 1) and the device (MSI, badge {MSI_BADGE})");
    }
    let mut interrupts = 0u64;
    loop {
        if let Some(handler) = irq {
            // Clear the causes before looking at the rings: a frame that lands after
            // this raises a new MSI, which ends the wait below (no lost wake-up).
            nic.clear_interrupt();
            let _ = handler.ack();
        }
        if port.step(nic)? {
            let [sent, received, dropped, refused] = port.counts;
            if (sent + received) % 16 == 0 {
                println!(
                    "{name}: client frames: {sent} sent, {received} received, {dropped} dropped, {refused} refused; {interrupts} interrupts"
                );
            }
            continue;
        }
        // Nothing to do: wait for the client or the device. With the MSI bound this
        // blocks (the CPU goes to others); without it the wait is bounded and the NIC
        // polled.
        if port.prepare_wait()? {
            if irq.is_some() {
                if let Ok(word) = libcap::ipc::wait(c.from_client) {
                    if word & MSI_BADGE != 0 {
                        interrupts += 1;
                        if interrupts == 1 {
                            println!("{name}: first MSI through the shared notification");
                        }
                    }
                }
            } else {
                let deadline = libcap::deadline::Deadline::after(POLL_TICKS);
                let _ = libcap::ipc::wait_until(c.from_client, deadline);
            }
            port.done_waiting();
        }
    }
}

/// Prints a benchmark's result (`bench:` line, parsed by `make bench`).
fn report_mark(name: &str, counter: &MarkCounter) {
    let samples = &mut alloc::vec::Vec::from(&counter.samples[..counter.taken]);
    samples.sort_unstable();
    if let (Some(min), Some(median)) = (samples.first(), samples.get(samples.len() / 2)) {
        println!(
            "bench: {name}: marked batch from the far end to the device, per frame min={min} median={median} runs={}",
            samples.len()
        );
    }
}

/// Whether every notification in `others` is the object `primary` names, so one
/// blocking wait on `primary` hears them all (the description's `shares`). Each is
/// tested by signalling a badged copy (made in the first free slot of the CNode, then
/// deleted) and polling `primary` for the badge. Without that, a component must poll
/// its rings between bounded waits, and a bounded wait spins (the kernel has no
/// timeouts): it never blocks, so lower priorities never run.
pub fn one_object(info: &ComponentInfo, primary: u64, others: &[u64]) -> bool {
    const PROBE: u64 = 1 << 62;
    let root = CNode(CNODE);
    let spare = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(abi::component::FIRST_NAMED) + 1;
    others.iter().all(|&other| {
        if other == primary {
            return true;
        }
        if CNode::mint(root.slot(spare), root.slot(other), CapRights::WRITE, PROBE).is_err() {
            return false;
        }
        let _ = libcap::ipc::signal(spare);
        let _ = CNode::delete(root.slot(spare));
        // Other bits collected here are not lost: the caller looks at its rings
        // before it first waits.
        libcap::ipc::poll(primary).is_ok_and(|word| word & PROBE != 0)
    })
}

/// Refusals logged one by one; after that a hostile client's flood is only counted
/// (the periodic `client frames` line shows the total), so it cannot flood the console.
const LOGGED_REFUSALS: u64 = 16;

fn log_refused(name: &str, refused_before: u64, what: &str, d: &BufDesc, why: &str) {
    if refused_before < LOGGED_REFUSALS {
        println!("{name}: refused a client {what} entry {why} (offset {:#x}, len {}, id {})", d.offset, d.len, d.id);
    } else if refused_before == LOGGED_REFUSALS {
        println!("{name}: more refused client entries: counted, not logged");
    }
}
