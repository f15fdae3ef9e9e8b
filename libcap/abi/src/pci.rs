//! PCI configuration-space layout shared by libcap and the kernel.
//!
//! PCI configuration-space layout both sides rely on: libcap programs a function's MSI
//! capability through its PciDevice cap, and the kernel accepts writes to exactly those
//! registers. The capability walk is written once here, over a read function, because
//! its pointers come from the device and must be checked the same way on both sides.

/// Offset of the command register (memory decoding, bus mastering).
pub const COMMAND: u64 = 0x04;
/// Command bit: memory space decoding.
pub const COMMAND_MEMORY: u64 = 1 << 1;
/// Command bit: Bus Master Enable (the function may issue DMA, including writes to the
/// MSI window; the kernel refuses it while interrupt remapping is off).
pub const COMMAND_BUS_MASTER: u64 = 1 << 2;
/// Command bit: Interrupt Disable (no legacy INTx). The kernel sets it on every function
/// at boot and refuses to clear it: INTx lines are shared between devices and carry no
/// source id, so PCI devices interrupt only by remapped MSI.
pub const COMMAND_INTX_DISABLE: u64 = 1 << 10;
/// Offset of the status register.
pub const STATUS: u64 = 0x06;
/// Status bit: the function has a capability list.
pub const STATUS_CAPABILITIES: u64 = 1 << 4;
/// Offset of the first capability pointer.
pub const CAPABILITY_POINTER: u64 = 0x34;
/// Capability id of MSI.
pub const CAPABILITY_MSI: u8 = 0x05;
/// Capability id of MSI-X.
pub const CAPABILITY_MSIX: u8 = 0x11;
/// MSI-X message control: MSI-X Enable.
pub const MSIX_ENABLE: u64 = 1 << 15;
/// MSI-X message control: Function Mask (every vector masked, whatever its own bit).
pub const MSIX_FUNCTION_MASK: u64 = 1 << 14;
/// Bytes of one MSI-X table entry (address low, address high, data, vector control).
pub const MSIX_ENTRY_BYTES: u64 = 16;
/// Links of a capability list followed at most: a looping list ends there.
pub const MAX_CAPABILITIES: usize = 48;
/// The standard header's capability area: capabilities live in `0x40..0x100`.
const CAPABILITY_AREA: core::ops::Range<u64> = 0x40..0x100;
/// MSI message control: 64-bit address capable.
const MSI_64BIT: u64 = 1 << 7;

/// The offset of capability `id`, walking the list with `read(offset, width)`. Each
/// pointer is dword-aligned and must stay in the capability area; at most
/// [`MAX_CAPABILITIES`] links are followed. `Ok(None)` if the function has none.
pub fn find_capability<E>(mut read: impl FnMut(u64, u64) -> Result<u64, E>, id: u8) -> Result<Option<u64>, E> {
    if read(STATUS, 2)? & STATUS_CAPABILITIES == 0 {
        return Ok(None);
    }
    let mut at = read(CAPABILITY_POINTER, 1)? & !3;
    for _ in 0..MAX_CAPABILITIES {
        if !CAPABILITY_AREA.contains(&at) {
            return Ok(None);
        }
        let header = read(at, 2)?;
        if header & 0xff == u64::from(id) {
            return Ok(Some(at));
        }
        at = (header >> 8) & !3;
    }
    Ok(None)
}

/// The registers of an MSI capability a driver writes: (offset, width) of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRegisters {
    /// Message control (enable, multiple-message enable).
    pub control: (u64, u64),
    /// Message address, low 32 bits.
    pub address_low: (u64, u64),
    /// Message address, high 32 bits (64-bit capable functions only).
    pub address_high: Option<(u64, u64)>,
    /// Message data.
    pub data: (u64, u64),
}

impl MsiRegisters {
    /// The layout of the MSI capability at `at` whose message control reads `control`;
    /// `None` if its registers would leave the capability area.
    pub fn at(at: u64, control: u64) -> Option<Self> {
        let wide = control & MSI_64BIT != 0;
        let end = if wide { at + 14 } else { at + 10 };
        if !CAPABILITY_AREA.contains(&at) || end > CAPABILITY_AREA.end {
            return None;
        }
        Some(MsiRegisters {
            control: (at + 2, 2),
            address_low: (at + 4, 4),
            address_high: wide.then_some((at + 8, 4)),
            data: if wide { (at + 12, 2) } else { (at + 8, 2) },
        })
    }

    /// Whether a `width`-byte write at `offset` hits exactly one of these registers.
    pub fn contains(&self, offset: u64, width: u64) -> bool {
        [Some(self.control), Some(self.address_low), self.address_high, Some(self.data)]
            .contains(&Some((offset, width)))
    }
}

/// A function's MSI-X capability as the kernel reports it (`PciDeviceMsixInfo`): where
/// the table and the Pending Bit Array lie (a BAR, by its index, and an offset in it).
/// The pages they lie in never become device untyped: only the kernel writes entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixInfo {
    /// Offset of the capability in configuration space.
    pub at: u64,
    /// Entries in the table (1..=2048).
    pub table_size: u64,
    /// BAR index (0..=5) holding the table.
    pub table_bar: u8,
    /// Offset of the table in that BAR (8-byte aligned).
    pub table_offset: u64,
    /// BAR index (0..=5) holding the Pending Bit Array.
    pub pba_bar: u8,
    /// Offset of the PBA in that BAR (8-byte aligned).
    pub pba_offset: u64,
    /// The message control register when it was read (enable, function mask).
    pub control: u64,
}

impl MsixInfo {
    /// Parses the capability at `at` from its message control, table and PBA dwords;
    /// `None` if a BAR index is not 0..=5.
    pub fn parse(at: u64, control: u64, table: u64, pba: u64) -> Option<Self> {
        let (table_bar, pba_bar) = ((table & 7) as u8, (pba & 7) as u8);
        if table_bar > 5 || pba_bar > 5 {
            return None;
        }
        Some(MsixInfo {
            at,
            table_size: (control & 0x7ff) + 1,
            table_bar,
            table_offset: table & 0xffff_fff8,
            pba_bar,
            pba_offset: pba & 0xffff_fff8,
            control: control & 0xffff,
        })
    }

    /// Bytes of the Pending Bit Array (one bit per entry, in whole qwords).
    pub fn pba_bytes(&self) -> u64 {
        self.table_size.div_ceil(64) * 8
    }

    /// The reply words of `PciDeviceMsixInfo`.
    pub fn to_words(&self) -> [u64; 4] {
        [
            self.at | (self.control << 16) | (self.table_size << 32),
            u64::from(self.table_bar) | (self.table_offset << 8),
            u64::from(self.pba_bar) | (self.pba_offset << 8),
            0,
        ]
    }

    /// Back from [`MsixInfo::to_words`].
    pub fn from_words(w: [u64; 4]) -> Self {
        MsixInfo {
            at: w[0] & 0xffff,
            control: (w[0] >> 16) & 0xffff,
            table_size: w[0] >> 32,
            table_bar: w[1] as u8,
            table_offset: w[1] >> 8,
            pba_bar: w[2] as u8,
            pba_offset: w[2] >> 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration space of 256 bytes read little-endian.
    fn reader(space: &[u8; 256]) -> impl FnMut(u64, u64) -> Result<u64, ()> + '_ {
        |offset, width| Ok((0..width).fold(0, |v, i| v | (u64::from(space[(offset + i) as usize]) << (8 * i))))
    }

    fn with_list(links: &[(u8, u8, u8)]) -> [u8; 256] {
        let mut space = [0u8; 256];
        space[STATUS as usize] = STATUS_CAPABILITIES as u8;
        space[CAPABILITY_POINTER as usize] = links.first().map_or(0, |l| l.0);
        for &(at, id, next) in links {
            space[at as usize] = id;
            space[at as usize + 1] = next;
        }
        space
    }

    #[test]
    fn finds_a_capability_down_the_list() {
        let space = with_list(&[(0x40, 0x01, 0x50), (0x50, 0x11, 0x60), (0x60, CAPABILITY_MSI, 0)]);
        assert_eq!(find_capability(reader(&space), CAPABILITY_MSI), Ok(Some(0x60)));
        assert_eq!(find_capability(reader(&space), 0x10), Ok(None), "the list ends at pointer 0");
        let mut none = space;
        none[STATUS as usize] = 0;
        assert_eq!(find_capability(reader(&none), CAPABILITY_MSI), Ok(None), "no list");
    }

    #[test]
    fn device_controlled_pointers_are_bounded() {
        let looping = with_list(&[(0x40, 0x01, 0x44), (0x44, 0x01, 0x40)]);
        assert_eq!(find_capability(reader(&looping), CAPABILITY_MSI), Ok(None));
        let low = with_list(&[(0x40, 0x01, 0x10)]);
        assert_eq!(find_capability(reader(&low), CAPABILITY_MSI), Ok(None), "into the header");
        let unaligned = with_list(&[(0x40, 0x01, 0x53), (0x50, CAPABILITY_MSI, 0)]);
        assert_eq!(find_capability(reader(&unaligned), CAPABILITY_MSI), Ok(Some(0x50)), "low bits ignored");
    }

    #[test]
    fn msi_layouts() {
        let wide = MsiRegisters::at(0x50, MSI_64BIT).unwrap();
        assert_eq!((wide.address_high, wide.data), (Some((0x58, 4)), (0x5c, 2)));
        assert!(wide.contains(0x52, 2) && wide.contains(0x54, 4) && !wide.contains(0x54, 2) && !wide.contains(0x50, 2));
        let narrow = MsiRegisters::at(0x50, 0).unwrap();
        assert_eq!((narrow.address_high, narrow.data), (None, (0x58, 2)));
        assert!(!narrow.contains(0x5c, 2));
        assert_eq!(MsiRegisters::at(0xf4, MSI_64BIT), None, "would run past 0x100");
        assert!(MsiRegisters::at(0xf4, 0).is_some(), "a 32-bit one fits");
    }

    #[test]
    fn msix_capability_parses_and_round_trips() {
        // QEMU's virtio-pci: 3 vectors, table at BAR 1 + 0, PBA at BAR 1 + 0x800.
        let info = MsixInfo::parse(0x98, 0x8002, 0x1, 0x801).unwrap();
        assert_eq!((info.table_size, info.table_bar, info.table_offset), (3, 1, 0));
        assert_eq!((info.pba_bar, info.pba_offset, info.pba_bytes()), (1, 0x800, 8));
        assert_eq!(info.control, 0x8002);
        assert_eq!(MsixInfo::from_words(info.to_words()), info);
        let big = MsixInfo::parse(0x40, 0x7ff, 0xffff_fff8 | 4, 0x2000 | 5).unwrap();
        assert_eq!((big.table_size, big.pba_bytes()), (2048, 256));
        assert_eq!(MsixInfo::from_words(big.to_words()), big);
        assert_eq!(MsixInfo::parse(0x40, 0, 6, 0), None, "BAR index 6 does not exist");
        assert_eq!(MsixInfo::parse(0x40, 0, 0, 7), None);
    }
}
