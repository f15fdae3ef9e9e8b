//! Intel 82574 (QEMU's `e1000e`, 8086:10d3): registers, rings and the driver core.
//!
//! The library knows the device; it gets memory from its caller as [`DmaRegion`]s (a
//! virtual address the driver may touch and the IOVA the device sees for the same
//! bytes), so it never learns where memory really is. Every value the device writes
//! back (ring heads, descriptor lengths) is checked before it is used.
#![no_std]

pub mod desc;
pub mod nic;
pub mod registers;

pub use nic::{E1000e, RX_BUF, RX_DESCS, TX_DESCS};

/// Bytes of a page.
pub const PAGE: u64 = 4096;

/// Memory shared with the device: the driver's view and the device's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    /// Where the driver has it mapped.
    pub vaddr: u64,
    /// The IOVA the device uses for the same bytes.
    pub iova: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why the driver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E1000eError {
    /// CTRL.RST did not clear.
    ResetTimeout,
    /// The EEPROM read (EERD) did not finish.
    EepromTimeout,
    /// The MAC address is all zeros or multicast.
    BadMac([u8; 6]),
    /// The DMA region is too small, unaligned or overlaps itself.
    BadRegion,
    /// The device reported a ring head beyond the ring.
    BadHead {
        /// Which ring (true: transmit).
        tx: bool,
        /// The value read.
        head: u32,
    },
    /// The device reported a received length beyond the buffer.
    BadLength(u16),
    /// A frame to send is empty or larger than a buffer.
    FrameSize(usize),
    /// Every transmit descriptor is still owned by the device.
    TxFull,
}

impl core::fmt::Display for E1000eError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ResetTimeout => write!(f, "CTRL.RST did not clear"),
            Self::EepromTimeout => write!(f, "EERD did not report done"),
            Self::BadMac(m) => write!(f, "bad MAC address {m:02x?}"),
            Self::BadRegion => write!(f, "the DMA region is too small or unaligned"),
            Self::BadHead { tx, head } => {
                write!(f, "the device reported {} head {head} beyond the ring", if *tx { "TDH" } else { "RDH" })
            }
            Self::BadLength(l) => write!(f, "the device reported a {l} byte frame in a {RX_BUF} byte buffer"),
            Self::FrameSize(l) => write!(f, "a {l} byte frame does not fit a transmit buffer"),
            Self::TxFull => write!(f, "no free transmit descriptor"),
        }
    }
}
