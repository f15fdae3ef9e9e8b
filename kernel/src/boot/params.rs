//! Boot loader hand-off (PVH or multiboot2), normalised and checked.
//!
//! What the boot loader hands over, normalised: PVH `hvm_start_info` (QEMU `-kernel`)
//! or a multiboot2 information structure (GRUB). Every pointer and length in them comes
//! from outside the kernel and is checked before use.

use core::fmt;

use abi::bootinfo::BootProtocol;

use super::memory::{Range, RangeSet, MAX_RANGES};

/// Reads physical memory during boot (the direct map on hardware, a buffer in tests).
pub trait PhysSource {
    /// The `len` bytes at `paddr`, or `None` if they are not readable.
    fn bytes(&self, paddr: u64, len: usize) -> Option<&[u8]>;
}

/// Most memory-map entries accepted.
pub const MAX_MEMORY_REGIONS: usize = MAX_RANGES;
/// Longest kernel command line accepted.
pub const MAX_CMDLINE: usize = 1024;
/// `hvm_start_info.magic`.
pub const PVH_MAGIC: u32 = 0x336e_c578;
/// Size of `hvm_start_info` (version 1).
pub const PVH_START_INFO_SIZE: usize = 56;
/// Size of one `hvm_memmap_table_entry`.
pub const PVH_MEMMAP_ENTRY_SIZE: usize = 24;
/// Size of one `hvm_modlist_entry`.
pub const PVH_MODLIST_ENTRY_SIZE: usize = 32;
/// Largest multiboot2 information structure accepted.
pub const MB2_MAX_INFO: u32 = 1 << 20;

/// The kind of a memory-map entry (E820 numbering, shared by PVH and multiboot2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Usable RAM.
    Ram,
    /// Reserved by firmware.
    Reserved,
    /// ACPI tables, reclaimable after reading them.
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Defective RAM.
    Unusable,
    /// Any other type number.
    Other(u32),
}

impl MemoryKind {
    fn from_raw(raw: u32) -> Self {
        match raw {
            1 => MemoryKind::Ram,
            2 => MemoryKind::Reserved,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Unusable,
            other => MemoryKind::Other(other),
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryKind::Ram => write!(f, "ram"),
            MemoryKind::Reserved => write!(f, "reserved"),
            MemoryKind::AcpiReclaimable => write!(f, "acpi-reclaimable"),
            MemoryKind::AcpiNvs => write!(f, "acpi-nvs"),
            MemoryKind::Unusable => write!(f, "unusable"),
            MemoryKind::Other(n) => write!(f, "type-{n}"),
        }
    }
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// The bytes it covers.
    pub range: Range,
    /// What they are.
    pub kind: MemoryKind,
}

/// Why the hand-off was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsError {
    /// A structure at `paddr` could not be read.
    Unreadable {
        /// Which structure.
        what: &'static str,
        /// Where it was said to be.
        paddr: u64,
    },
    /// `hvm_start_info.magic` is wrong.
    BadPvhMagic(u32),
    /// The loader gave no memory map.
    NoMemoryMap,
    /// More memory-map entries than the kernel accepts.
    TooManyRegions(usize),
    /// The command line is not UTF-8 or not terminated within [`MAX_CMDLINE`] bytes.
    BadCmdline,
    /// The multiboot2 structure's size or a tag is malformed.
    BadMultiboot2 {
        /// Offset of the problem within the structure.
        offset: u32,
    },
    /// A module's bounds are inverted or wrap.
    BadModule,
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamsError::Unreadable { what, paddr } => write!(f, "cannot read the {what} at {paddr:#x}"),
            ParamsError::BadPvhMagic(m) => write!(f, "PVH start_info magic is {m:#x}, expected {PVH_MAGIC:#x}"),
            ParamsError::NoMemoryMap => write!(f, "the boot loader passed no memory map"),
            ParamsError::TooManyRegions(n) => {
                write!(f, "memory map has {n} entries, at most {MAX_MEMORY_REGIONS} are supported")
            }
            ParamsError::BadCmdline => write!(f, "kernel command line is not UTF-8 or longer than {MAX_CMDLINE} bytes"),
            ParamsError::BadMultiboot2 { offset } => {
                write!(f, "malformed multiboot2 information at offset {offset:#x}")
            }
            ParamsError::BadModule => write!(f, "boot module bounds are invalid"),
        }
    }
}

/// The normalised hand-off.
#[derive(Clone, Debug)]
pub struct BootParams<'a> {
    /// Which loader started the kernel.
    pub protocol: BootProtocol,
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    region_count: usize,
    /// The first boot module (the boot image), if any.
    pub module: Option<Range>,
    /// How many modules the loader passed (only the first is used).
    pub module_count: u32,
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Physical address of an RSDP the loader found or copied, if any.
    pub rsdp: Option<u64>,
    /// Loader structures the kernel must not hand out as free memory.
    pub loader_structures: RangeSet,
}

impl<'a> BootParams<'a> {
    fn empty(protocol: BootProtocol) -> Self {
        BootParams {
            protocol,
            regions: [MemoryRegion { range: Range { start: 0, end: 0 }, kind: MemoryKind::Reserved };
                MAX_MEMORY_REGIONS],
            region_count: 0,
            module: None,
            module_count: 0,
            cmdline: "",
            rsdp: None,
            loader_structures: RangeSet::new(),
        }
    }

    /// The memory map as the loader gave it.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    fn push_region(&mut self, addr: u64, len: u64, kind: u32, total: usize) -> Result<(), ParamsError> {
        if self.region_count == MAX_MEMORY_REGIONS {
            return Err(ParamsError::TooManyRegions(total));
        }
        self.regions[self.region_count] =
            MemoryRegion { range: Range::new(addr, len), kind: MemoryKind::from_raw(kind) };
        self.region_count += 1;
        Ok(())
    }

    fn keep(&mut self, r: Range) {
        // A full set only means more merging failed; the structures are few and small.
        let _ = self.loader_structures.add(r.page_outer());
    }

    /// RAM according to the map, minus everything the map also calls non-RAM.
    pub fn ram(&self) -> RangeSet {
        let mut ram = RangeSet::new();
        for r in self.regions().iter().filter(|r| r.kind == MemoryKind::Ram) {
            let _ = ram.add(r.range);
        }
        for r in self.regions().iter().filter(|r| r.kind != MemoryKind::Ram) {
            let _ = ram.remove(r.range);
        }
        ram
    }

    /// [`Self::ram`] below `limit` (the physical addresses the kernel can map), and
    /// whether the map listed RAM at or above it (ignored: it cannot be reached, and
    /// arithmetic on it would come close to 2^64).
    pub fn ram_below(&self, limit: u64) -> (RangeSet, bool) {
        let mut ram = self.ram();
        let beyond = Range { start: limit, end: u64::MAX };
        let clipped = ram.overlaps(beyond);
        // Cannot fail: cutting off the top never splits a range.
        let _ = ram.remove(beyond);
        (ram, clipped)
    }

    /// The value of `key=value` on the command line, if present.
    pub fn cmdline_value(&self, key: &str) -> Option<&'a str> {
        self.cmdline.split_whitespace().find_map(|word| {
            let (k, v) = word.split_once('=')?;
            (k == key).then_some(v)
        })
    }
}

fn read<'s, S: PhysSource>(src: &'s S, what: &'static str, paddr: u64, len: usize) -> Result<&'s [u8], ParamsError> {
    src.bytes(paddr, len).ok_or(ParamsError::Unreadable { what, paddr })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Reads a NUL-terminated string of at most [`MAX_CMDLINE`] bytes.
fn c_string<S: PhysSource>(src: &S, paddr: u64) -> Result<(&str, u64), ParamsError> {
    let mut len = 0usize;
    loop {
        if len >= MAX_CMDLINE {
            return Err(ParamsError::BadCmdline);
        }
        let at = paddr.checked_add(len as u64).ok_or(ParamsError::Unreadable { what: "command line", paddr })?;
        let byte = read(src, "command line", at, 1)?[0];
        if byte == 0 {
            break;
        }
        len += 1;
    }
    let bytes = read(src, "command line", paddr, len)?;
    let text = core::str::from_utf8(bytes).map_err(|_| ParamsError::BadCmdline)?;
    Ok((text, len as u64 + 1))
}

/// Parses a PVH `hvm_start_info` at `paddr`.
pub fn parse_pvh<S: PhysSource>(src: &S, paddr: u64) -> Result<BootParams<'_>, ParamsError> {
    let info = read(src, "PVH start_info", paddr, PVH_START_INFO_SIZE)?;
    let magic = u32_at(info, 0);
    if magic != PVH_MAGIC {
        return Err(ParamsError::BadPvhMagic(magic));
    }
    let version = u32_at(info, 4);
    let nr_modules = u32_at(info, 12);
    let modlist = u64_at(info, 16);
    let cmdline = u64_at(info, 24);
    let rsdp = u64_at(info, 32);
    let mut params = BootParams::empty(BootProtocol::Pvh);
    params.keep(Range::new(paddr, PVH_START_INFO_SIZE as u64));
    if version < 1 {
        return Err(ParamsError::NoMemoryMap);
    }
    let memmap = u64_at(info, 40);
    let entries = u32_at(info, 48) as usize;
    if memmap == 0 || entries == 0 {
        return Err(ParamsError::NoMemoryMap);
    }
    if entries > MAX_MEMORY_REGIONS {
        return Err(ParamsError::TooManyRegions(entries));
    }
    let table = read(src, "PVH memory map", memmap, entries * PVH_MEMMAP_ENTRY_SIZE)?;
    for i in 0..entries {
        let e = i * PVH_MEMMAP_ENTRY_SIZE;
        params.push_region(u64_at(table, e), u64_at(table, e + 8), u32_at(table, e + 16), entries)?;
    }
    params.keep(Range::new(memmap, table.len() as u64));
    params.module_count = nr_modules;
    if nr_modules > 0 {
        let list = read(src, "PVH module list", modlist, PVH_MODLIST_ENTRY_SIZE)?;
        let (start, size) = (u64_at(list, 0), u64_at(list, 8));
        if start.checked_add(size).is_none() {
            return Err(ParamsError::BadModule);
        }
        params.module = Some(Range::new(start, size));
        params.keep(Range::new(modlist, PVH_MODLIST_ENTRY_SIZE as u64 * u64::from(nr_modules)));
    }
    if cmdline != 0 {
        let (text, len) = c_string(src, cmdline)?;
        params.cmdline = text;
        params.keep(Range::new(cmdline, len));
    }
    params.rsdp = (rsdp != 0).then_some(rsdp);
    Ok(params)
}

/// Multiboot2 tag types the kernel reads.
mod mb2_tag {
    pub const END: u32 = 0;
    pub const CMDLINE: u32 = 1;
    pub const MODULE: u32 = 3;
    pub const MMAP: u32 = 6;
    pub const ACPI_OLD: u32 = 14;
    pub const ACPI_NEW: u32 = 15;
}

/// Parses a multiboot2 information structure at `paddr`.
pub fn parse_multiboot2<S: PhysSource>(src: &S, paddr: u64) -> Result<BootParams<'_>, ParamsError> {
    let head = read(src, "multiboot2 information", paddr, 8)?;
    let total = u32_at(head, 0);
    if !(16..=MB2_MAX_INFO).contains(&total) {
        return Err(ParamsError::BadMultiboot2 { offset: 0 });
    }
    let info = read(src, "multiboot2 information", paddr, total as usize)?;
    let mut params = BootParams::empty(BootProtocol::Multiboot2);
    params.keep(Range::new(paddr, u64::from(total)));
    let mut saw_mmap = false;
    let mut at = 8u32;
    loop {
        if at.checked_add(8).is_none_or(|end| end > total) {
            return Err(ParamsError::BadMultiboot2 { offset: at });
        }
        let kind = u32_at(info, at as usize);
        let size = u32_at(info, at as usize + 4);
        if size < 8 || at.checked_add(size).is_none_or(|end| end > total) {
            return Err(ParamsError::BadMultiboot2 { offset: at });
        }
        let body = &info[at as usize + 8..(at + size) as usize];
        match kind {
            mb2_tag::END => break,
            mb2_tag::CMDLINE => {
                let text = body.split(|&b| b == 0).next().unwrap_or(&[]);
                if text.len() > MAX_CMDLINE {
                    return Err(ParamsError::BadCmdline);
                }
                params.cmdline = core::str::from_utf8(text).map_err(|_| ParamsError::BadCmdline)?;
            }
            mb2_tag::MODULE => {
                let (start, end) = (u64::from(u32_at(body, 0)), u64::from(u32_at(body, 4)));
                if body.len() < 8 || end < start {
                    return Err(ParamsError::BadModule);
                }
                if params.module.is_none() {
                    params.module = Some(Range { start, end });
                }
                params.module_count += 1;
            }
            mb2_tag::MMAP => {
                let entry_size = u32_at(body, 0) as usize;
                if body.len() < 8 || entry_size < 24 {
                    return Err(ParamsError::BadMultiboot2 { offset: at });
                }
                let entries = (body.len() - 8) / entry_size;
                if entries > MAX_MEMORY_REGIONS {
                    return Err(ParamsError::TooManyRegions(entries));
                }
                for i in 0..entries {
                    let e = 8 + i * entry_size;
                    params.push_region(u64_at(body, e), u64_at(body, e + 8), u32_at(body, e + 16), entries)?;
                }
                saw_mmap = entries > 0;
            }
            // The kernel reads a whole RSDP there (36 bytes for ACPI 2.0, 20 before).
            mb2_tag::ACPI_NEW | mb2_tag::ACPI_OLD if body.len() < if kind == mb2_tag::ACPI_NEW { 36 } else { 20 } => {
                return Err(ParamsError::BadMultiboot2 { offset: at });
            }
            mb2_tag::ACPI_NEW => params.rsdp = Some(paddr + u64::from(at) + 8),
            mb2_tag::ACPI_OLD if params.rsdp.is_none() => params.rsdp = Some(paddr + u64::from(at) + 8),
            _ => {}
        }
        at = (at + size + 7) & !7;
    }
    if !saw_mmap {
        return Err(ParamsError::NoMemoryMap);
    }
    Ok(params)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// Fake physical memory: one buffer mapped at `base` (also used by the packed-image
    /// tests).
    pub(crate) struct Buffer {
        pub(crate) base: u64,
        pub(crate) data: Vec<u8>,
    }

    impl PhysSource for Buffer {
        fn bytes(&self, paddr: u64, len: usize) -> Option<&[u8]> {
            let off = usize::try_from(paddr.checked_sub(self.base)?).ok()?;
            self.data.get(off..off.checked_add(len)?)
        }
    }

    fn put(data: &mut [u8], at: usize, bytes: &[u8]) {
        data[at..at + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn ram_near_the_top_of_the_address_space_is_ignored() {
        let mut src = pvh_image(PVH_MAGIC, 4);
        // A fourth entry: RAM in the last 8 KiB below 2^64 (the length runs past it).
        put(&mut src.data, 0x300 + 3 * 24, &(u64::MAX - 0x1fff).to_le_bytes());
        put(&mut src.data, 0x300 + 3 * 24 + 8, &0x4000u64.to_le_bytes());
        put(&mut src.data, 0x300 + 3 * 24 + 16, &1u32.to_le_bytes());
        let p = parse_pvh(&src, 0x1000).unwrap();
        assert_eq!(p.regions()[3].range, Range { start: u64::MAX - 0x1fff, end: u64::MAX });
        let (ram, clipped) = p.ram_below(1 << 46);
        assert!(clipped);
        assert_eq!(ram.total(), 0x9fc00 + 0x7ef0_0000);
        let mut free = ram.clone();
        free.remove(Range { start: 0, end: 0x10_0000 }).unwrap();
        let mut alloc = super::super::memory::BootAllocator::new(&free);
        assert_eq!(alloc.alloc_frame(), Ok(0x10_0000));
        let plain = pvh_image(PVH_MAGIC, 3);
        assert!(!parse_pvh(&plain, 0x1000).unwrap().ram_below(1 << 46).1);
    }

    fn pvh_image(magic: u32, entries: u32) -> Buffer {
        let base = 0x1000u64;
        let mut data = std::vec![0u8; 0x1000];
        put(&mut data, 0, &magic.to_le_bytes());
        put(&mut data, 4, &1u32.to_le_bytes());
        put(&mut data, 12, &1u32.to_le_bytes());
        put(&mut data, 16, &(base + 0x100).to_le_bytes());
        put(&mut data, 24, &(base + 0x200).to_le_bytes());
        put(&mut data, 40, &(base + 0x300).to_le_bytes());
        put(&mut data, 48, &entries.to_le_bytes());
        // module at 16 MiB, 8 KiB
        put(&mut data, 0x100, &0x100_0000u64.to_le_bytes());
        put(&mut data, 0x108, &0x2000u64.to_le_bytes());
        put(&mut data, 0x200, b"init=fault test=panic\0");
        let map: [(u64, u64, u32); 3] = [(0, 0x9fc00, 1), (0x10_0000, 0x7ef0_0000, 1), (0xfeff_c000, 0x4000, 2)];
        for (i, (a, l, t)) in map.iter().enumerate() {
            let e = 0x300 + i * 24;
            put(&mut data, e, &a.to_le_bytes());
            put(&mut data, e + 8, &l.to_le_bytes());
            put(&mut data, e + 16, &t.to_le_bytes());
        }
        Buffer { base, data }
    }

    #[test]
    fn pvh_is_parsed() {
        let src = pvh_image(PVH_MAGIC, 3);
        let p = parse_pvh(&src, 0x1000).unwrap();
        assert_eq!(p.protocol, BootProtocol::Pvh);
        assert_eq!(p.regions().len(), 3);
        assert_eq!(p.module, Some(Range::new(0x100_0000, 0x2000)));
        assert_eq!(p.cmdline_value("init"), Some("fault"));
        assert_eq!(p.cmdline_value("test"), Some("panic"));
        assert_eq!(p.cmdline_value("nothing"), None);
        assert_eq!(p.ram().total(), 0x9fc00 + 0x7ef0_0000);
        assert!(p.loader_structures.overlaps(Range::new(0x1000, 1)));
    }

    #[test]
    fn pvh_rejects_bad_input() {
        assert_eq!(parse_pvh(&pvh_image(0x1234, 3), 0x1000).unwrap_err(), ParamsError::BadPvhMagic(0x1234));
        assert_eq!(parse_pvh(&pvh_image(PVH_MAGIC, 0), 0x1000).unwrap_err(), ParamsError::NoMemoryMap);
        assert_eq!(parse_pvh(&pvh_image(PVH_MAGIC, 1000), 0x1000).unwrap_err(), ParamsError::TooManyRegions(1000));
        assert!(matches!(parse_pvh(&pvh_image(PVH_MAGIC, 3), 0x9000), Err(ParamsError::Unreadable { .. })));
    }

    fn mb2_image(with_mmap: bool, bad_tag: bool) -> Buffer {
        let mut d: Vec<u8> = std::vec![0; 8];
        let tag = |d: &mut Vec<u8>, kind: u32, body: &[u8]| {
            d.extend_from_slice(&kind.to_le_bytes());
            d.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
            d.extend_from_slice(body);
            while !d.len().is_multiple_of(8) {
                d.push(0);
            }
        };
        tag(&mut d, mb2_tag::CMDLINE, b"init=root\0");
        let mut module = Vec::new();
        module.extend_from_slice(&0x80_0000u32.to_le_bytes());
        module.extend_from_slice(&0x80_4000u32.to_le_bytes());
        module.extend_from_slice(b"boot.img\0");
        tag(&mut d, mb2_tag::MODULE, &module);
        if with_mmap {
            let mut mmap = Vec::new();
            mmap.extend_from_slice(&24u32.to_le_bytes());
            mmap.extend_from_slice(&0u32.to_le_bytes());
            for (a, l, t) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x1000_0000, 1)] {
                mmap.extend_from_slice(&a.to_le_bytes());
                mmap.extend_from_slice(&l.to_le_bytes());
                mmap.extend_from_slice(&t.to_le_bytes());
                mmap.extend_from_slice(&0u32.to_le_bytes());
            }
            tag(&mut d, mb2_tag::MMAP, &mmap);
        }
        tag(&mut d, mb2_tag::ACPI_OLD, b"RSD PTR \0\0\0\0\0\0\0\0\0\0\0\0");
        if bad_tag {
            d.extend_from_slice(&7u32.to_le_bytes());
            d.extend_from_slice(&0xffffu32.to_le_bytes());
        }
        tag(&mut d, mb2_tag::END, &[]);
        let total = d.len() as u32;
        d[0..4].copy_from_slice(&total.to_le_bytes());
        Buffer { base: 0x9000, data: d }
    }

    #[test]
    fn multiboot2_is_parsed() {
        let src = mb2_image(true, false);
        let p = parse_multiboot2(&src, 0x9000).unwrap();
        assert_eq!(p.protocol, BootProtocol::Multiboot2);
        assert_eq!(p.cmdline, "init=root");
        assert_eq!(p.module, Some(Range { start: 0x80_0000, end: 0x80_4000 }));
        assert_eq!(p.regions().len(), 2);
        let rsdp = p.rsdp.unwrap();
        assert_eq!(src.bytes(rsdp, 8).unwrap(), b"RSD PTR ");
    }

    /// The specification lets a memory-map entry grow past 24 bytes; the entries are
    /// stepped by `entry_size` (the `multiboot2` crate asserts it is 24: docs/boot.md).
    #[test]
    fn multiboot2_memory_map_entries_may_be_longer() {
        let mut d: Vec<u8> = std::vec![0; 8];
        let mut mmap = Vec::new();
        mmap.extend_from_slice(&32u32.to_le_bytes());
        mmap.extend_from_slice(&0u32.to_le_bytes());
        for (a, l, t) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x1000_0000, 1)] {
            mmap.extend_from_slice(&a.to_le_bytes());
            mmap.extend_from_slice(&l.to_le_bytes());
            mmap.extend_from_slice(&t.to_le_bytes());
            mmap.extend_from_slice(&[0xaa; 12]);
        }
        for (kind, body) in [(mb2_tag::MMAP, &mmap[..]), (mb2_tag::END, &[][..])] {
            d.extend_from_slice(&kind.to_le_bytes());
            d.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
            d.extend_from_slice(body);
        }
        let total = d.len() as u32;
        d[0..4].copy_from_slice(&total.to_le_bytes());
        let src = Buffer { base: 0x9000, data: d };
        let p = parse_multiboot2(&src, 0x9000).unwrap();
        assert_eq!(p.regions().len(), 2);
        assert_eq!(p.regions()[1].range, Range::new(0x10_0000, 0x1000_0000));
        assert_eq!(p.ram().total(), 0x9fc00 + 0x1000_0000);
    }

    #[test]
    fn multiboot2_rejects_bad_input() {
        assert_eq!(parse_multiboot2(&mb2_image(false, false), 0x9000).unwrap_err(), ParamsError::NoMemoryMap);
        assert!(matches!(
            parse_multiboot2(&mb2_image(true, true), 0x9000).unwrap_err(),
            ParamsError::BadMultiboot2 { .. }
        ));
    }
}
