//! The NIC's PCI config space as the driver sees it: checked, BARs emulated.
//!
//! The driver reads config space through its iommu-server (IDs, command/status, the
//! capability pointer and the capability area; never the BARs) into a snapshot. The
//! BAR registers are answered from the driver's own mappings of its BARs, at synthetic
//! addresses [`bar_address`], so `virtio-drivers`' BAR sizing (write all ones, read
//! back, restore) never reaches the device, and the addresses it computes lead back to
//! [`BarWindow`]s through [`window_of`]. Before the crate follows anything, [`ConfigView::new`]
//! walks the capability list itself (bounded, no loops) and checks every virtio
//! capability against the BAR it names: a device is untrusted input.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// Config-space bytes the driver looks at (the capability area ends at 0x100).
pub const CONFIG_BYTES: usize = 0x100;
/// The offsets (4-byte words) read through the iommu-server: IDs, command/status, the
/// capability pointer and the capability area. Everything else reads as zero.
pub fn readable_words() -> impl Iterator<Item = u8> {
    [0x00u8, 0x04, 0x34].into_iter().chain((0x40..=0xfcu8).step_by(4))
}
/// Capabilities walked at most: 0x40..0x100 holds at most 48 of 4 bytes.
const MAX_CAPS: usize = 48;
/// Config offset of BAR 0.
const BAR0: u8 = 0x10;
/// The PCI vendor-specific capability id (virtio's structures).
const CAP_VENDOR: u8 = 0x09;

/// One of the device's memory BARs as mapped in the driver (uncached, whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarWindow {
    /// Where the BAR is mapped in the driver's address space.
    pub vaddr: u64,
    /// Its size in bytes: a power of two, at most [`BAR_SPACING`].
    pub size: u64,
}

/// Distance between synthetic BAR addresses (and the largest BAR accepted).
pub const BAR_SPACING: u64 = 1 << 28;

/// The synthetic bus address the view reports for BAR `bar` (0..6).
pub const fn bar_address(bar: usize) -> u64 {
    (bar as u64 + 1) * BAR_SPACING
}

/// The driver address of `size` bytes at synthetic address `paddr`, if they lie inside
/// one of `bars`.
pub fn window_of(bars: &[Option<BarWindow>; 6], paddr: u64, size: u64) -> Option<u64> {
    let bar = usize::try_from(paddr / BAR_SPACING).ok()?.checked_sub(1)?;
    let window = (*bars.get(bar)?)?;
    let offset = paddr - bar_address(bar);
    (offset.checked_add(size)? <= window.size).then(|| window.vaddr + offset)
}

/// Why the device's config space was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The iommu-server refused a read of this offset.
    Unreadable(u8),
    /// Not a modern virtio-net function (vendor, device).
    NotVirtioNet(u16, u16),
    /// A BAR window that is not a power of two or too large.
    BadBar(usize),
    /// The capability list points outside 0x40..0x100, is misaligned, or loops.
    BadCapabilityList(u8),
    /// A virtio capability at this offset runs past the capability area.
    CapabilityTooLong(u8),
    /// A virtio capability names a BAR the driver has no mapping of.
    MissingBar { cap: u8, bar: u8 },
    /// A virtio structure (offset, length) reaches outside its BAR.
    OutsideBar { cap: u8, bar: u8, offset: u32, length: u32 },
    /// A structure virtio-net needs is missing (its cfg_type).
    Missing(u8),
}

/// The checked snapshot, served to `virtio-drivers` as its [`ConfigurationAccess`].
#[derive(Debug)]
pub struct ConfigView {
    words: [u32; CONFIG_BYTES / 4],
    bars: [Option<BarWindow>; 6],
    sizing: [bool; 6],
}

impl ConfigView {
    /// Reads the snapshot with `read(offset)` (for each of [`readable_words`]) and checks
    /// it against the driver's BAR mappings `bars`.
    pub fn new(mut read: impl FnMut(u8) -> Option<u32>, bars: [Option<BarWindow>; 6]) -> Result<Self, ConfigError> {
        let mut words = [0u32; CONFIG_BYTES / 4];
        for offset in readable_words() {
            words[usize::from(offset) / 4] = read(offset).ok_or(ConfigError::Unreadable(offset))?;
        }
        let (vendor, device) = (words[0] as u16, (words[0] >> 16) as u16);
        if vendor != crate::VIRTIO_VENDOR || device != crate::VIRTIO_NET_MODERN {
            return Err(ConfigError::NotVirtioNet(vendor, device));
        }
        for (i, b) in bars.iter().enumerate() {
            if b.is_some_and(|w| !w.size.is_power_of_two() || w.size > BAR_SPACING || w.size < 16) {
                return Err(ConfigError::BadBar(i));
            }
        }
        let view = ConfigView { words, bars, sizing: [false; 6] };
        view.check_capabilities()?;
        Ok(view)
    }

    fn byte(&self, offset: usize) -> u8 {
        self.words[offset / 4].to_le_bytes()[offset % 4]
    }

    fn word(&self, offset: usize) -> u32 {
        self.words[offset / 4]
    }

    /// Walks the list as `virtio-drivers` will, refusing what it would trip over.
    fn check_capabilities(&self) -> Result<(), ConfigError> {
        const STATUS_CAP_LIST: u32 = 1 << 20;
        let mut found = [false; 5];
        if self.word(0x04) & STATUS_CAP_LIST == 0 {
            return Err(ConfigError::Missing(1));
        }
        let mut at = self.byte(0x34) & 0xfc;
        let mut seen = 0u64; // one bit per 4-byte slot of 0x40..0x100
        while at != 0 {
            let bit = 1u64 << (usize::from(at) / 4).saturating_sub(0x10).min(MAX_CAPS);
            if at < 0x40 || seen & bit != 0 {
                return Err(ConfigError::BadCapabilityList(at));
            }
            seen |= bit;
            let a = usize::from(at);
            let (id, next, len, cfg_type) = (self.byte(a), self.byte(a + 1), self.byte(a + 2), self.byte(a + 3));
            if id == CAP_VENDOR && len >= 16 {
                // The crate reads the notify multiplier at +16 (u8 arithmetic on offsets).
                let needed = if cfg_type == 2 { 20 } else { 16 };
                if a + needed.max(usize::from(len)) > CONFIG_BYTES {
                    return Err(ConfigError::CapabilityTooLong(at));
                }
                self.check_structure(at, cfg_type)?;
                if let Some(f) = found.get_mut(usize::from(cfg_type)) {
                    *f = true;
                }
            }
            if next != 0 && (next < 0x40 || next & 3 != 0) {
                return Err(ConfigError::BadCapabilityList(next));
            }
            at = next;
        }
        // Common, notify, ISR and device configuration.
        match (1..=4u8).find(|&t| !found[usize::from(t)]) {
            Some(t) => Err(ConfigError::Missing(t)),
            None => Ok(()),
        }
    }

    fn check_structure(&self, at: u8, cfg_type: u8) -> Result<(), ConfigError> {
        if !(1..=4).contains(&cfg_type) {
            return Ok(()); // PCI config access and shared memory: not followed
        }
        let a = usize::from(at);
        let bar = self.byte(a + 4);
        let (offset, length) = (self.word(a + 8), self.word(a + 12));
        let window =
            self.bars.get(usize::from(bar)).copied().flatten().ok_or(ConfigError::MissingBar { cap: at, bar })?;
        let end = u64::from(offset) + u64::from(length);
        if length == 0 || end > window.size {
            return Err(ConfigError::OutsideBar { cap: at, bar, offset, length });
        }
        Ok(())
    }

    /// Where the common configuration structure (cfg_type 1) is mapped in the driver:
    /// its BAR window's address plus its offset, checked inside the window and long
    /// enough for [`crate::transport::CommonCfg`].
    pub fn common_cfg(&self) -> Option<u64> {
        let needed = core::mem::size_of::<crate::transport::CommonCfg>() as u64;
        self.structure(1).filter(|&(_, length, _)| length >= needed).map(|(vaddr, _, _)| vaddr)
    }

    /// The notification structure (cfg_type 2): where it is mapped, its length and
    /// `notify_off_multiplier`.
    pub fn notify_cfg(&self) -> Option<(u64, u64, u32)> {
        let (vaddr, length, cap) = self.structure(2)?;
        Some((vaddr, length, self.word(cap + 16)))
    }

    /// The first virtio structure of `cfg_type`: its address in the driver (window +
    /// offset), its length (checked inside the window) and its capability's offset.
    fn structure(&self, cfg_type: u8) -> Option<(u64, u64, usize)> {
        let mut at = self.byte(0x34) & 0xfc;
        for _ in 0..MAX_CAPS {
            if at < 0x40 {
                return None;
            }
            let a = usize::from(at);
            if self.byte(a) == CAP_VENDOR && self.byte(a + 2) >= 16 && self.byte(a + 3) == cfg_type {
                let window = self.bars.get(usize::from(self.byte(a + 4))).copied().flatten()?;
                let (offset, length) = (u64::from(self.word(a + 8)), u64::from(self.word(a + 12)));
                return (offset + length <= window.size).then_some((window.vaddr + offset, length, a));
            }
            at = self.byte(a + 1) & 0xfc;
        }
        None
    }

    /// The BAR windows the view was built with.
    pub fn bars(&self) -> [Option<BarWindow>; 6] {
        self.bars
    }

    /// The BAR register word `bar` as the crate sees it.
    fn bar_word(&self, bar: usize) -> u32 {
        match self.bars[bar] {
            None => 0,
            Some(w) if self.sizing[bar] => !(w.size as u32 - 1),
            Some(_) => bar_address(bar) as u32,
        }
    }
}

impl ConfigurationAccess for ConfigView {
    fn read_word(&self, _: DeviceFunction, offset: u8) -> u32 {
        let offset = usize::from(offset & 0xfc);
        match offset {
            0x10..=0x24 => self.bar_word((offset - usize::from(BAR0)) / 4),
            _ => self.word(offset),
        }
    }

    /// BAR sizing is emulated; command-register writes (decoding off and on around the
    /// sizing) and everything else are dropped: the driver set the command register.
    fn write_word(&mut self, _: DeviceFunction, offset: u8, data: u32) {
        if (0x10..=0x24).contains(&offset) && offset.is_multiple_of(4) {
            self.sizing[usize::from(offset - BAR0) / 4] = data == u32::MAX;
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        ConfigView { words: self.words, bars: self.bars, sizing: self.sizing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like QEMU's virtio-net-pci (modern): four virtio caps naming BAR 4 (16 KiB), then MSI-X.
    pub(crate) fn qemu_like() -> [u32; 64] {
        let mut w = [0u32; 64];
        w[0] = 0x1041_1af4;
        w[1] = 0x0010_0000;
        w[0x34 / 4] = 0x84;
        let mut cap = |at: usize, next: u8, len: u8, ty: u8, bar: u8, off: u32, length: u32| {
            w[at / 4] = 0x09 | u32::from(next) << 8 | u32::from(len) << 16 | u32::from(ty) << 24;
            w[at / 4 + 1] = u32::from(bar);
            w[at / 4 + 2] = off;
            w[at / 4 + 3] = length;
        };
        cap(0x84, 0x70, 16, 1, 4, 0, 0x1000);
        cap(0x70, 0x60, 16, 3, 4, 0x1000, 0x1000);
        cap(0x60, 0x48, 16, 4, 4, 0x2000, 0x1000);
        cap(0x48, 0x40, 20, 2, 4, 0x3000, 0x1000);
        w[0x40 / 4] = 0x11; // MSI-X, end of list
        w[0x48 / 4 + 4] = 4; // notify_off_multiplier
        w
    }

    fn bars() -> [Option<BarWindow>; 6] {
        let mut b = [None; 6];
        b[4] = Some(BarWindow { vaddr: 0x5000_0000_0000, size: 0x4000 });
        b
    }

    fn view(w: [u32; 64]) -> Result<ConfigView, ConfigError> {
        ConfigView::new(|o| Some(w[usize::from(o) / 4]), bars())
    }

    #[test]
    fn qemu_layout_is_accepted_and_bars_are_emulated() {
        let mut v = view(qemu_like()).unwrap();
        let f = DeviceFunction { bus: 0, device: 3, function: 0 };
        assert_eq!(v.read_word(f, 0x20), bar_address(4) as u32);
        v.write_word(f, 0x20, u32::MAX);
        assert_eq!(v.read_word(f, 0x20), !0x3fff);
        v.write_word(f, 0x20, bar_address(4) as u32);
        assert_eq!(v.read_word(f, 0x20), bar_address(4) as u32);
        assert_eq!(v.read_word(f, 0x10), 0, "an unmapped BAR reads as unallocated");
        assert_eq!(window_of(&v.bars(), bar_address(4) + 0x3000, 0x1000), Some(0x5000_0000_3000));
        assert_eq!(window_of(&v.bars(), bar_address(4) + 0x3000, 0x1001), None);
        assert_eq!(window_of(&v.bars(), bar_address(1), 4), None);
        assert_eq!(window_of(&v.bars(), 0, 4), None);
    }

    #[test]
    fn common_cfg_is_found_in_its_bar_window() {
        assert_eq!(view(qemu_like()).unwrap().common_cfg(), Some(0x5000_0000_0000));
        // Moved to 0x800 of the BAR: the address follows.
        let mut w = qemu_like();
        w[0x84 / 4 + 2] = 0x800;
        assert_eq!(view(w).unwrap().common_cfg(), Some(0x5000_0000_0800));
        // Too short for the queue registers: not offered (the driver polls instead).
        let mut w = qemu_like();
        w[0x84 / 4 + 3] = 0x20;
        assert_eq!(view(w).unwrap().common_cfg(), None);
        // The notification structure: address, length and multiplier (4).
        assert_eq!(view(qemu_like()).unwrap().notify_cfg(), Some((0x5000_0000_3000, 0x1000, 4)));
    }

    #[test]
    fn hostile_capabilities_are_refused() {
        let mut w = qemu_like();
        w[0x70 / 4 + 3] = 0x3001; // ISR length past the BAR's end
        assert!(matches!(view(w), Err(ConfigError::OutsideBar { cap: 0x70, .. })));
        let mut w = qemu_like();
        w[0x70 / 4 + 2] = u32::MAX; // offset + length would wrap a u32
        assert!(matches!(view(w), Err(ConfigError::OutsideBar { .. })));
        let mut w = qemu_like();
        w[0x84 / 4 + 1] = 2; // a BAR the driver has no mapping of
        assert_eq!(view(w).unwrap_err(), ConfigError::MissingBar { cap: 0x84, bar: 2 });
        let mut w = qemu_like();
        w[0x84 / 4 + 1] = 200; // a BAR index that does not exist
        assert_eq!(view(w).unwrap_err(), ConfigError::MissingBar { cap: 0x84, bar: 200 });
        let mut w = qemu_like();
        w[0x40 / 4] = 0x8411; // the list loops back to its head
        assert_eq!(view(w).unwrap_err(), ConfigError::BadCapabilityList(0x84));
        let mut w = qemu_like();
        w[0x40 / 4] = 0x2011; // points into the header
        assert_eq!(view(w).unwrap_err(), ConfigError::BadCapabilityList(0x20));
        let mut w = qemu_like();
        w[0x34 / 4] = 0xfc;
        w[0xfc / 4] = 0x0210_0009; // a virtio cap in the last word: runs past 0x100
        assert_eq!(view(w).unwrap_err(), ConfigError::CapabilityTooLong(0xfc));
        let mut w = qemu_like();
        w[0x60 / 4] = 0x0010_4809; // device cfg replaced by a non-virtio cap
        assert_eq!(view(w).unwrap_err(), ConfigError::Missing(4));
        let mut w = qemu_like();
        w[0] = 0x1000_1af4; // transitional virtio-net
        assert_eq!(view(w).unwrap_err(), ConfigError::NotVirtioNet(0x1af4, 0x1000));
        assert_eq!(ConfigView::new(|o| (o != 0x40).then_some(0), bars()).unwrap_err(), ConfigError::Unreadable(0x40));
        let mut b = bars();
        b[4] = Some(BarWindow { vaddr: 0, size: 0x3000 });
        assert_eq!(ConfigView::new(|o| Some(qemu_like()[usize::from(o) / 4]), b).unwrap_err(), ConfigError::BadBar(4));
    }
}
