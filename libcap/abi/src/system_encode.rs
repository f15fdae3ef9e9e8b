//! Packing a system description (host side, `alloc` feature): [`encode`].
//!
//! The caller interns names in a [`StringTable`], fills the records with the
//! [`StrRef`]s it returns, and [`encode`] lays out header, arrays and strings.

use alloc::vec::Vec;

use super::*;

/// The string table being built; equal strings are stored once.
#[derive(Clone, Debug, Default)]
pub struct StringTable {
    bytes: Vec<u8>,
}

impl StringTable {
    /// Adds `s` (or finds it) and returns its reference.
    pub fn add(&mut self, s: &str) -> StrRef {
        let len = s.len() as u32;
        if let Some(at) = self.bytes.windows(s.len().max(1)).position(|w| w == s.as_bytes()) {
            if !s.is_empty() {
                return StrRef { offset: at as u32, len };
            }
        }
        let offset = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        StrRef { offset, len }
    }

    /// The table's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Everything [`encode`] packs: records whose names point into `strings`.
#[derive(Clone, Debug, Default)]
pub struct SystemParts {
    /// The system's name.
    pub name: StrRef,
    /// [`SystemHeader::min_ram_bytes`].
    pub min_ram_bytes: u64,
    /// [`SystemHeader::supervisor`].
    pub supervisor: u16,
    /// [`SystemHeader::iommu_server`].
    pub iommu_server: u16,
    /// Components.
    pub components: Vec<Component>,
    /// Channels.
    pub channels: Vec<Channel>,
    /// Regions.
    pub regions: Vec<Region>,
    /// Region maps.
    pub region_maps: Vec<RegionMap>,
    /// Devices.
    pub devices: Vec<Device>,
    /// Port ranges.
    pub port_ranges: Vec<PortRange>,
    /// Filter rules.
    pub filter_rules: Vec<FilterRule>,
    /// ISA devices.
    pub isa_devices: Vec<IsaDevice>,
    /// Names.
    pub strings: StringTable,
}

/// Appends `items` as raw little-endian records at an 8-byte boundary.
fn put<T: Record>(out: &mut Vec<u8>, items: &[T]) -> ArrayRef {
    let offset = out.len() as u32;
    // SAFETY: `T: Record` is `#[repr(C)]` integers without padding bytes (sizes asserted),
    // so viewing the slice as bytes reads only initialised memory.
    let bytes = unsafe { core::slice::from_raw_parts(items.as_ptr().cast::<u8>(), core::mem::size_of_val(items)) };
    out.extend_from_slice(bytes);
    out.resize(out.len().next_multiple_of(8), 0);
    ArrayRef { offset: if items.is_empty() { 0 } else { offset }, count: items.len() as u32 }
}

/// Packs `parts` (no checks: [`SystemDesc::parse`] the result to check it).
pub fn encode(parts: &SystemParts) -> Vec<u8> {
    let mut out = alloc::vec![0u8; core::mem::size_of::<SystemHeader>()];
    let components = put(&mut out, &parts.components);
    let channels = put(&mut out, &parts.channels);
    let regions = put(&mut out, &parts.regions);
    let region_maps = put(&mut out, &parts.region_maps);
    let devices = put(&mut out, &parts.devices);
    let port_ranges = put(&mut out, &parts.port_ranges);
    let filter_rules = put(&mut out, &parts.filter_rules);
    let isa_devices = put(&mut out, &parts.isa_devices);
    let strings_at = out.len() as u32;
    out.extend_from_slice(parts.strings.bytes());
    out.resize(out.len().next_multiple_of(8), 0);
    let strings = ArrayRef { offset: strings_at, count: parts.strings.bytes().len() as u32 };
    let header = SystemHeader {
        magic: SYSTEM_MAGIC,
        version: SYSTEM_VERSION,
        total_size: out.len() as u32,
        min_ram_bytes: parts.min_ram_bytes,
        supervisor: parts.supervisor,
        iommu_server: parts.iommu_server,
        _pad: 0,
        name: parts.name,
        components,
        channels,
        regions,
        region_maps,
        devices,
        port_ranges,
        filter_rules,
        strings,
        isa_devices,
    };
    // SAFETY: as in `put`: the header is plain integers without padding bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts((&header as *const SystemHeader).cast::<u8>(), core::mem::size_of::<SystemHeader>())
    };
    out[..bytes.len()].copy_from_slice(bytes);
    out
}
