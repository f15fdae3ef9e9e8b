//! The parser-fuzz targets, one per parser of boot input.
//!
//! The fuzz targets: each feeds bytes to one parser and asserts what the parser
//! promises its caller. A panic here is a finding (in the parser or in its promise).

use abi::bootimage::BootImage;
use kernel::boot::memory::{split_power_of_two, BootAllocator, Range, RangeSet, MAX_RANGES, PAGE};
use kernel::boot::params::{self, BootParams, MemoryKind, PhysSource, MAX_CMDLINE, MAX_MEMORY_REGIONS};
use kernel::boot::untyped;
use kernel::platform::dmar::parse_dmar;
use kernel::platform::pci::{self, AliasIds, PciDevice, PciDeviceList};
use kernel::platform::{reserved, rmrr};
use pci_types::{ConfigRegionAccess, PciAddress};

/// Physical memory for the loader-structure parsers: `data` placed at `base`.
pub struct Memory<'a> {
    /// Physical address of `data[0]`.
    pub base: u64,
    /// The bytes.
    pub data: &'a [u8],
}

impl PhysSource for Memory<'_> {
    fn bytes(&self, paddr: u64, len: usize) -> Option<&[u8]> {
        let off = usize::try_from(paddr.checked_sub(self.base)?).ok()?;
        self.data.get(off..off.checked_add(len)?)
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// Splits a loader input: bytes 0..8 the base address of the memory, 8..16 the
/// structure's address, the rest the memory. The base is clamped so the memory ends
/// inside the 64-bit address space (as physical memory does).
pub fn loader_input(input: &[u8]) -> (Memory<'_>, u64) {
    let data = input.get(16..).unwrap_or(&[]);
    let base = u64_at(input, 0).min(u64::MAX - data.len() as u64);
    (Memory { base, data }, u64_at(input, 8))
}

/// What both loader parsers promise on success.
fn check_params(p: &BootParams<'_>) {
    assert!(p.regions().len() <= MAX_MEMORY_REGIONS);
    assert!(p.cmdline.len() <= MAX_CMDLINE, "command line of {} bytes", p.cmdline.len());
    if let Some(m) = p.module {
        assert!(m.start <= m.end, "module {m}");
    }
    for r in p.loader_structures.as_slice() {
        assert!(
            r.start.is_multiple_of(PAGE) && (r.end.is_multiple_of(PAGE) || r.end == u64::MAX) && r.start < r.end,
            "kept {r}"
        );
    }
    let ram = p.ram();
    let mut union: Vec<(u64, u64)> = Vec::new();
    for g in p.regions().iter().filter(|g| g.kind == MemoryKind::Ram) {
        union = model_apply(&union, (g.range.start, g.range.end), true);
    }
    for r in ram.as_slice() {
        let inside = union.iter().any(|&(s, e)| s <= r.start && r.end <= e);
        assert!(inside, "RAM {r} is in no RAM region");
        let clash = p.regions().iter().find(|g| {
            g.kind != MemoryKind::Ram && !g.range.is_empty() && g.range.start < r.end && r.start < g.range.end
        });
        assert!(clash.is_none(), "RAM {r} overlaps non-RAM {clash:?}");
    }
    let limit = 1u64 << 46;
    let (below, clipped) = p.ram_below(limit);
    assert!(below.as_slice().iter().all(|r| r.end <= limit));
    assert_eq!(clipped, ram.as_slice().iter().any(|r| r.end > limit));
    let _ = p.cmdline_value("init");
}

/// PVH `hvm_start_info` (QEMU `-kernel`).
pub fn pvh(input: &[u8]) {
    let (mem, at) = loader_input(input);
    if let Ok(p) = params::parse_pvh(&mem, at) {
        check_params(&p);
        assert!(p.loader_structures.overlaps(Range::new(at, 1)), "start_info not kept");
    }
}

/// Bytes of an ACPI 1.0 RSDP.
const RSDP_V1_LEN: u64 = 20;

/// A multiboot2 information structure (GRUB).
pub fn multiboot2(input: &[u8]) {
    let (mem, at) = loader_input(input);
    if let Ok(p) = params::parse_multiboot2(&mem, at) {
        check_params(&p);
        let total = u64::from(u32::from_le_bytes(mem.bytes(at, 4).unwrap().try_into().unwrap()));
        if let Some(rsdp) = p.rsdp {
            // The kernel reads a whole RSDP there (20 bytes, 36 for ACPI 2.0): the tag
            // must hold it, or the kernel reads past the loader's structure.
            assert!(at < rsdp && rsdp + RSDP_V1_LEN <= at + total, "RSDP {rsdp:#x} not inside the structure");
        }
        assert!(p.loader_structures.contains(Range::new(at, total)), "structure not kept");
    }
}

/// The ACPI DMAR table, then the RMRR checks the kernel runs on what it returns. Run
/// as given and with the checksum fixed (a mutant almost never sums to zero, and the
/// structures behind the check are what firmware gets wrong).
pub fn dmar(input: &[u8]) {
    dmar_checked(input);
    if input.len() >= 10 {
        let mut fixed = input.to_vec();
        let length = usize::try_from(u32::from_le_bytes([input[4], input[5], input[6], input[7]])).unwrap_or(0);
        fixed[9] = 0;
        let sum = fixed[..length.clamp(10, fixed.len())].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        fixed[9] = 0u8.wrapping_sub(sum);
        dmar_checked(&fixed);
    }
}

fn dmar_checked(input: &[u8]) {
    let Ok(info) = parse_dmar(input) else { return };
    for unit in info.drhds() {
        for s in info.scopes(unit.scopes) {
            let _ = s.source_id();
            let _ = rmrr::scope_requester(s);
            let _ = format!("{s}");
        }
    }
    for r in info.rmrrs() {
        let ram = [(0x10_0000u64, 0x800_0000u64)];
        if let Ok((start, end)) = rmrr::check_rmrr(r.base, r.limit, 3, (0x10_0000, 0x20_0000), ram) {
            assert!(
                start <= end && start.is_multiple_of(PAGE) && end.is_multiple_of(PAGE),
                "accepted RMRR {start:#x}..{end:#x}"
            );
            assert!(end <= 0x10_0000 || start >= 0x800_0000, "accepted RMRR over RAM");
            let mut covered = 0u64;
            for (address, level) in rmrr::identity_leaves(start, end, true) {
                assert!((start..end).contains(&address), "leaf {address:#x} outside the RMRR");
                covered += 1u64 << (12 + 9 * u32::from(level - 1));
            }
            assert_eq!(covered, end - start, "leaves do not cover the RMRR exactly");
            let _ = rmrr::tables_needed(start, end, 3, true);
        }
        for s in info.scopes(r.scopes) {
            let _ = rmrr::scope_requester(s);
        }
    }
}

/// The ACPI HPET table.
pub fn hpet(input: &[u8]) {
    if let Ok(base) = reserved::parse_hpet(input) {
        assert!(input.len() >= 52, "HPET base {base:#x} from a {}-byte table", input.len());
    }
}

/// Range arithmetic and the boot allocator, against a model: the input is a list of
/// 17-byte operations (kind, start, length).
pub fn memory(input: &[u8]) {
    let mut set = RangeSet::new();
    let mut model: Vec<(u64, u64)> = Vec::new();
    for op in input.chunks_exact(17).take(256) {
        let (start, len) = (u64_at(op, 1), u64_at(op, 9));
        let r = Range::new(start, len);
        let result = if op[0] & 1 == 0 { set.add(r) } else { set.remove(r) };
        if result.is_ok() {
            model = model_apply(&model, (r.start, r.end), op[0] & 1 == 0);
            let got: Vec<(u64, u64)> = set.as_slice().iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(got, model, "after {} {r}", if op[0] & 1 == 0 { "add" } else { "remove" });
        } else {
            assert!(model_apply(&model, (r.start, r.end), op[0] & 1 == 0).len() > MAX_RANGES);
        }
        assert_eq!(set.total(), model.iter().map(|(s, e)| e - s).sum::<u64>());
    }
    let mut alloc = BootAllocator::new(&set);
    let mut taken: Vec<Range> = Vec::new();
    for op in input.chunks_exact(17).take(64) {
        let count = 1 + u64::from(op[1] % 8);
        let align = PAGE << (op[2] % 10);
        let Ok(at) = alloc.alloc_contiguous(count, align) else { continue };
        let got = Range::new(at, count * PAGE);
        assert_eq!(at % align, 0, "unaligned allocation {got}");
        assert!(set.contains(got), "allocation {got} outside free memory");
        assert!(taken.iter().all(|t| !(t.start < got.end && got.start < t.end)), "allocation {got} reused");
        assert!(!alloc.free().overlaps(got), "allocation {got} still free");
        taken.push(got);
    }
    // Splitting a huge range into 2^47-byte blocks takes ~2^17 steps: keep runs fast.
    for r in set.as_slice().iter().filter(|r| r.len() <= 1 << 50) {
        let mut next = None::<u64>;
        split_power_of_two(*r, 12, 47, |b| {
            assert!(b.paddr.trailing_zeros() >= u32::from(b.size_bits) || b.paddr == 0, "unaligned block");
            assert!((12..=47).contains(&b.size_bits));
            assert!(r.start <= b.paddr && b.paddr + ((1u64 << b.size_bits) - 1) < r.end, "block outside {r}");
            assert!(next.is_none_or(|n| n <= b.paddr), "blocks overlap");
            next = Some(b.paddr + (1u64 << b.size_bits));
        });
    }
    let window = Range::new(u64_at(input, 0) & 0xffff_ffff_f000, 1 << 32);
    let list = untyped::build(alloc.free(), &set, window);
    for u in list.as_slice() {
        let r = Range::new(u.paddr, 1u64 << u.size_bits);
        if u.is_device == 0 {
            assert!(alloc.free().contains(r), "RAM untyped {r} not free");
        } else {
            assert!(!set.overlaps(r) && window.start <= r.start && r.end <= window.end, "device untyped {r}");
        }
    }
}

/// `set` with `(start, end)` added or removed, computed the slow, obvious way.
fn model_apply(set: &[(u64, u64)], r: (u64, u64), add: bool) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    if r.0 >= r.1 {
        return set.to_vec();
    }
    if add {
        let mut all: Vec<(u64, u64)> = set.to_vec();
        all.push(r);
        all.sort();
        for (s, e) in all {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
    } else {
        for &(s, e) in set {
            if s < r.0.min(e) {
                out.push((s, e.min(r.0)));
            }
            if s.max(r.1) < e {
                out.push((s.max(r.1), e));
            }
        }
    }
    out
}

/// The boot image and its manifest.
pub fn bootimage(input: &[u8]) {
    let Ok(image) = BootImage::parse(input) else { return };
    let span = input.as_ptr_range();
    let mut files = 0;
    for f in image.files() {
        let inner = f.data.as_ptr_range();
        assert!(span.start <= inner.start && inner.end <= span.end, "file {} outside the image", f.name);
        assert_eq!(f.offset as usize, inner.start as usize - span.start as usize);
        files += 1;
    }
    assert_eq!(files, image.len(), "parse accepted an entry files() skips");
    if let Ok(m) = image.manifest() {
        assert!(image.find(m.root()).is_some(), "manifest root {} missing", m.root());
        for p in m.programs() {
            assert!(image.find(p).is_some(), "manifest program {p} missing");
        }
    }
}

/// A packed system description: an accepted one keeps every promise of `parse`.
pub fn system(input: &[u8]) {
    use abi::system::{SystemDesc, NONE};
    let Ok(d) = SystemDesc::parse(input) else { return };
    let n = d.components().len();
    assert!(n > 0 && !d.name().is_empty());
    for c in d.components().iter() {
        assert!(!d.str(c.name).is_empty() && !d.str(c.program).is_empty(), "{c:?}");
        assert!(c.priority <= c.mcp && (c.fault_handler == NONE || (c.fault_handler as usize) < n));
    }
    for ch in d.channels().iter() {
        assert!((ch.client as usize) < n && (ch.server as usize) < n && ch.client != ch.server);
    }
    for m in d.region_maps().iter() {
        assert!((m.region as usize) < d.regions().len() && (m.component as usize) < n);
        assert!(!(m.writable == 1 && m.readonly == 1), "writable map of a read-only region");
    }
    for dev in d.devices().iter() {
        assert!((dev.driver as usize) < n && (12..=64).contains(&dev.dma_mask_bits));
        let ports = d.port_ranges(dev.ports);
        assert_eq!(ports.len(), dev.ports.count as usize);
        assert!(ports.iter().all(|p| p.first <= p.last));
    }
    for isa in d.isa_devices().iter() {
        assert!((isa.component as usize) < n && (isa.irq < abi::system::ISA_IRQS || isa.irq == abi::system::NO_IRQ));
        let ports = d.port_ranges(isa.ports);
        assert!(!ports.is_empty() && ports.len() == isa.ports.count as usize);
        assert!(ports.iter().all(|p| abi::reserved::reserved_port_overlap(p.first, p.last).is_none()));
    }
}

/// A user program's ELF image.
pub fn elf(input: &[u8]) {
    let Ok(plan) = kernel::boot::elf_loader::plan(input) else { return };
    let mut pages = 0;
    for s in plan.segments() {
        assert!(s.file_offset.checked_add(s.file_size).is_some_and(|e| e <= input.len() as u64), "segment {s:?}");
        assert!(s.file_size <= s.mem_size);
        let (start, end) = s.page_span();
        assert!(start < end && start.is_multiple_of(PAGE) && end.is_multiple_of(PAGE));
        assert!(end <= abi::layout::USER_END, "segment {s:?} beyond user space");
        pages += (end - start) / PAGE;
    }
    assert_eq!(plan.pages(), pages);
}

/// Configuration space from bytes: each 8-byte record places one function's header.
struct FakeConfig {
    functions: std::collections::HashMap<(u8, u8, u8), [u32; 64]>,
}

impl ConfigRegionAccess for FakeConfig {
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        let (bus, device, function) = (address.bus(), address.device(), address.function());
        assert!(device < 32 && function < 8 && offset.is_multiple_of(4) && offset < 4096, "config read {offset:#x}");
        self.functions
            .get(&(bus, device, function))
            .map_or(u32::MAX, |h| h.get(usize::from(offset / 4)).copied().unwrap_or(0))
    }

    unsafe fn write(&self, _address: PciAddress, offset: u16, _value: u32) {
        panic!("enumeration wrote configuration space at {offset:#x}");
    }
}

/// PCI enumeration, DMA aliases, alias groups and the DRHD rule over a fake
/// configuration space: records of (bus, devfn, class/header byte, bridge buses, PCIe
/// type, capability pointer) and then a DMAR table.
pub fn pci(input: &[u8]) {
    let count = usize::from(input.first().copied().unwrap_or(0) % 96);
    let records = input.get(1..).unwrap_or(&[]);
    let mut cfg = FakeConfig { functions: Default::default() };
    for r in records.chunks_exact(8).take(count) {
        let mut h = [0u32; 64];
        h[0] = 0x1234_8086 ^ u32::from(r[7]);
        h[1] = u32::from(r[5] & 0x10) << 16;
        h[2] = match r[2] % 4 {
            0 => 0x0604_0000,
            1 => 0x0200_0000,
            2 => 0x0600_0000,
            _ => u32::from_le_bytes([r[7], r[6], r[5], r[4]]),
        };
        h[3] = (u32::from(r[2] & 0x80) | u32::from(r[2] % 4 == 0)) << 16;
        h[6] = u32::from(r[0]) | (u32::from(r[3]) << 8) | (u32::from(r[4]) << 16);
        h[13] = u32::from(r[5] & 0xfc);
        let cap = usize::from(r[5] & 0xfc) / 4;
        if cap < 64 {
            h[cap] = 0x10 | (u32::from(r[6] & 0x0f) << 20) | (u32::from(r[6]) << 8);
        }
        cfg.functions.insert((r[0], r[1] >> 3, r[1] & 7), h);
    }
    // As the kernel does: count, then allocate, then fill.
    let mut counted = PciDeviceList::new(&mut []);
    pci::enumerate(&cfg, 0, 0, 255, &mut counted);
    let mut storage = vec![PciDevice::default(); counted.overflowed()];
    let mut list = PciDeviceList::new(&mut storage);
    pci::enumerate(&cfg, 0, 0, 255, &mut list);
    assert_eq!((list.as_slice().len(), list.overflowed()), (counted.overflowed(), 0));
    let (mut sets, mut groups) = (vec![AliasIds::default(); list.as_slice().len()], vec![0u16; list.as_slice().len()]);
    pci::alias_groups(&list, &mut sets, &mut groups);
    for (i, d) in list.as_slice().iter().enumerate() {
        assert!(d.device() < 32 && d.function() < 8);
        let (n, ids) = pci::dma_aliases(d, &list);
        assert!(!ids[..n].contains(&d.requester_id()), "a device is its own alias");
        let g = usize::from(groups[i]);
        assert!(g <= i && groups[g] == groups[i], "group {g} of {i} is not a first member");
        let _ = pci::wire_id(d, &list);
    }
    let table = records.get(count * 8..).unwrap_or(&[]);
    if let Ok(info) = parse_dmar(table) {
        for d in list.as_slice() {
            if let Some(unit) = pci::covering_drhd(&info, d, &list) {
                assert!(unit < info.drhds().len());
            }
        }
    }
}
