//! Bounded virtio-net I/O over the crate's non-blocking `VirtIONetRaw`.
//!
//! `VirtIONet::send` spins until the device has used the buffer, and QEMU's virtio-net
//! holds a transmit buffer for as long as its peer cannot take the frame (on a hub whose
//! other NIC was reset, for ever). [`Net`] uses the raw API instead: `transmit_begin`
//! queues a frame and returns, completions are reclaimed with `poll_transmit` /
//! `transmit_complete`, and the caller sees how long the oldest send has been in flight
//! ([`Net::oldest_send`]) so a stuck device is reported, never spun on. Receive buffers
//! are the driver's own (one per descriptor, posted at set-up and re-posted at once
//! after each frame). Every token and length the device reports is checked before it
//! indexes anything.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::{InterruptStatus, Transport};
use virtio_drivers::{Error, Hal};

/// What went wrong (the device reported something impossible, or the crate refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The crate reported it.
    Crate(Error),
    /// The device completed a descriptor chain the driver did not give it.
    DeviceToken(u16),
    /// The device reported a frame longer than the buffer (or the caller's copy).
    FrameTooLong(usize),
    /// A frame to send longer than a transmit buffer holds.
    SendTooLong(usize),
    /// The device has held a send this long (the caller's clock) and not completed it.
    Stuck(u64),
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::Crate(e) => write!(f, "{e:?}"),
            NetError::DeviceToken(t) => write!(f, "the device completed descriptor {t}, which it was not given"),
            NetError::FrameTooLong(n) => write!(f, "the device reported a {n} byte frame, longer than the buffer"),
            NetError::SendTooLong(n) => write!(f, "a {n} byte frame does not fit a transmit buffer"),
            NetError::Stuck(t) => write!(f, "the device has not completed a send for {t} ticks (stuck)"),
        }
    }
}

impl From<Error> for NetError {
    fn from(e: Error) -> Self {
        NetError::Crate(e)
    }
}

/// One frame the device holds for sending: its buffer, the bytes handed over (header
/// and frame: `transmit_complete` needs the same slice) and when it was queued.
struct InFlight {
    buf: Box<[u8]>,
    len: usize,
    since: u64,
}

/// A virtio-net device with `N` descriptors per queue, driven without blocking.
pub struct Net<H: Hal, T: Transport, const N: usize> {
    raw: VirtIONetRaw<H, T, N>,
    /// Receive buffers the device holds, by token.
    rx: [Option<Box<[u8]>>; N],
    /// Frames the device holds for sending, by token.
    tx: [Option<InFlight>; N],
    /// Transmit buffers free for the next send.
    spare: Vec<Box<[u8]>>,
}

impl<H: Hal, T: Transport, const N: usize> Net<H, T, N> {
    /// Sets the device up (the transport's handshake, both queues, DRIVER_OK) and posts
    /// `N` receive buffers of `buf_len` bytes (header included).
    pub fn new(transport: T, buf_len: usize) -> Result<Self, NetError> {
        let raw = VirtIONetRaw::new(transport)?;
        let mut net = Net {
            raw,
            rx: core::array::from_fn(|_| None),
            tx: core::array::from_fn(|_| None),
            spare: (0..N).map(|_| vec![0u8; buf_len].into_boxed_slice()).collect(),
        };
        for _ in 0..N {
            net.post(vec![0u8; buf_len].into_boxed_slice())?;
        }
        Ok(net)
    }

    /// The station address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Acknowledges the device's interrupt (reads the ISR).
    pub fn ack_interrupt(&mut self) -> InterruptStatus {
        self.raw.ack_interrupt()
    }

    fn post(&mut self, mut buf: Box<[u8]>) -> Result<(), NetError> {
        // SAFETY: the buffer is kept in `self.rx` (heap memory, not moved by moving the
        // box) and not touched until the device hands its token back.
        let token = unsafe { self.raw.receive_begin(&mut buf) }?;
        match self.rx.get_mut(usize::from(token)) {
            Some(slot @ None) => {
                *slot = Some(buf);
                Ok(())
            }
            _ => Err(NetError::DeviceToken(token)),
        }
    }

    /// Takes back every buffer the device has finished sending; returns how many.
    pub fn reclaim(&mut self) -> Result<usize, NetError> {
        let mut done = 0;
        while let Some(token) = self.raw.poll_transmit() {
            // The token comes from the device's used ring: only one we gave it counts.
            let Some(sent) = self.tx.get_mut(usize::from(token)).and_then(Option::take) else {
                return Err(NetError::DeviceToken(token));
            };
            // SAFETY: the same slice as `transmit_begin` was given for this token.
            let result = unsafe { self.raw.transmit_complete(token, &sent.buf[..sent.len]) };
            self.spare.push(sent.buf);
            result?;
            done += 1;
        }
        Ok(done)
    }

    /// Queues `frame` for sending at time `now` (any clock the caller keeps); `Ok(false)`
    /// if every transmit buffer is in flight (reclaim, then try again).
    pub fn send(&mut self, frame: &[u8], now: u64) -> Result<bool, NetError> {
        self.reclaim()?;
        let Some(mut buf) = self.spare.pop() else { return Ok(false) };
        let header = match self.raw.fill_buffer_header(&mut buf) {
            Ok(h) if h + frame.len() <= buf.len() => h,
            other => {
                self.spare.push(buf);
                other?;
                return Err(NetError::SendTooLong(frame.len()));
            }
        };
        let len = header + frame.len();
        buf[header..len].copy_from_slice(frame);
        // SAFETY: the buffer is kept in `self.tx` and not touched until its token comes
        // back from the device (`reclaim`).
        let token = match unsafe { self.raw.transmit_begin(&buf[..len]) } {
            Ok(token) => token,
            Err(Error::QueueFull) => {
                self.spare.push(buf);
                return Ok(false);
            }
            Err(e) => {
                self.spare.push(buf);
                return Err(e.into());
            }
        };
        match self.tx.get_mut(usize::from(token)) {
            Some(slot @ None) => {
                *slot = Some(InFlight { buf, len, since: now });
                Ok(true)
            }
            _ => Err(NetError::DeviceToken(token)),
        }
    }

    /// Frames the device holds for sending.
    pub fn in_flight(&self) -> usize {
        self.tx.iter().flatten().count()
    }

    /// When the oldest frame still in flight was queued, if any.
    pub fn oldest_send(&self) -> Option<u64> {
        self.tx.iter().flatten().map(|f| f.since).min()
    }

    /// Copies the next received frame (without its virtio header) into `out` and gives
    /// its buffer back to the device; `None` if nothing arrived.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, NetError> {
        let Some(token) = self.raw.poll_receive() else { return Ok(None) };
        let Some(mut buf) = self.rx.get_mut(usize::from(token)).and_then(Option::take) else {
            return Err(NetError::DeviceToken(token));
        };
        // SAFETY: the same buffer `receive_begin` was given for this token.
        let (header, len) = unsafe { self.raw.receive_complete(token, &mut buf) }?;
        // The length comes from the device: bounded by the buffer and the caller's copy.
        if header + len > buf.len() || len > out.len() {
            return Err(NetError::FrameTooLong(len));
        }
        out[..len].copy_from_slice(&buf[header..header + len]);
        self.post(buf)?;
        Ok(Some(len))
    }
}
