//! Legacy receive and transmit descriptors (82574 datasheet 7.1.4, 7.2.10).

use static_assertions::const_assert_eq;

/// A legacy receive descriptor: the device writes the frame to `addr` and fills in
/// the rest.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxDesc {
    /// Buffer IOVA.
    pub addr: u64,
    /// Bytes the device wrote.
    pub length: u16,
    /// Packet checksum.
    pub checksum: u16,
    /// Status ([`RX_DD`], [`RX_EOP`]).
    pub status: u8,
    /// Receive errors.
    pub errors: u8,
    /// VLAN tag.
    pub special: u16,
}
const_assert_eq!(core::mem::size_of::<RxDesc>(), 16);

/// Descriptor done: the device has written this descriptor back.
pub const RX_DD: u8 = 1 << 0;
/// End of packet: the frame ends in this buffer.
pub const RX_EOP: u8 = 1 << 1;

/// A legacy transmit descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxDesc {
    /// Buffer IOVA.
    pub addr: u64,
    /// Bytes to send from the buffer.
    pub length: u16,
    /// Checksum offset.
    pub cso: u8,
    /// Command ([`TX_EOP`], [`TX_IFCS`], [`TX_RS`]).
    pub cmd: u8,
    /// Status ([`TX_DD`]).
    pub status: u8,
    /// Checksum start.
    pub css: u8,
    /// VLAN tag.
    pub special: u16,
}
const_assert_eq!(core::mem::size_of::<TxDesc>(), 16);

/// End of packet.
pub const TX_EOP: u8 = 1 << 0;
/// Insert the Ethernet FCS.
pub const TX_IFCS: u8 = 1 << 1;
/// Report status: the device sets [`TX_DD`] when done.
pub const TX_RS: u8 = 1 << 3;
/// Descriptor done.
pub const TX_DD: u8 = 1 << 0;

/// Index arithmetic of a ring of `len` descriptors, with the device's head checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Descriptors in the ring.
    pub len: u32,
    /// The next descriptor the driver looks at (receive) or fills (transmit).
    pub next: u32,
}

impl Ring {
    /// A ring of `len` descriptors (a multiple of 8: RDLEN/TDLEN are 128-byte units).
    pub const fn new(len: u32) -> Self {
        Ring { len, next: 0 }
    }

    /// The slot after `i`.
    pub const fn after(&self, i: u32) -> u32 {
        (i + 1) % self.len
    }

    /// A head value read from the device, refused if it names no descriptor.
    pub fn check_head(&self, head: u32, tx: bool) -> Result<u32, crate::E1000eError> {
        if head < self.len {
            Ok(head)
        } else {
            Err(crate::E1000eError::BadHead { tx, head })
        }
    }

    /// Byte length of the ring for RDLEN/TDLEN.
    pub const fn bytes(&self) -> u32 {
        self.len * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_indices_wrap_and_heads_are_checked() {
        let r = Ring::new(16);
        assert_eq!(r.after(15), 0);
        assert_eq!(r.after(3), 4);
        assert_eq!(r.bytes(), 256);
        assert_eq!(r.check_head(15, false), Ok(15));
        assert_eq!(r.check_head(16, true), Err(crate::E1000eError::BadHead { tx: true, head: 16 }));
    }
}
