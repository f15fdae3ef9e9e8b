//! Init's plan: devices matched, memory counted, refusals found up front.
//!
//! The plan is made from the packed description and bootinfo alone and creates no
//! object: each device is matched against bootinfo's PCI list (missing device, two
//! described devices in one alias group), each component's ELF is parsed and every
//! object init will create for it is counted against its budget, and the budgets plus
//! the shared regions against the RAM the kernel handed over. Any refusal is one
//! clear message and nothing starts.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use libcap::abi::bootimage::BootImage;
use libcap::abi::bootinfo::BootInfo;
use libcap::abi::component::{COMPONENT_HEAP_VADDR, COMPONENT_MAP_VADDR, COMPONENT_STACK_TOP};
use libcap::abi::layout::{is_user_range, PAGE_SIZE};
use libcap::abi::object::{ObjectType, TCB_SIZE_BITS};
use libcap::abi::system::{Component, Device, DeviceMatch, SystemDesc, NONE};

/// One loadable page of a program: where, and with which rights.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// First byte in the address space.
    pub vaddr: u64,
    /// Bytes in memory.
    pub mem: u64,
    /// Offset of the file bytes in the ELF.
    pub offset: u64,
    /// Bytes present in the file.
    pub file: u64,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

/// What init builds for one component.
pub struct ComponentPlan<'a> {
    /// Index in the description.
    pub index: u16,
    /// Name.
    pub name: &'a str,
    /// The record.
    pub rec: Component,
    /// Its program's ELF bytes.
    pub elf: &'a [u8],
    /// Entry point.
    pub entry: u64,
    /// PT_LOAD segments.
    pub segments: Vec<Segment>,
    /// Budget pieces (log2 sizes, largest first) it is carved into.
    pub pieces: Vec<u8>,
    /// Bytes the build takes from the budget.
    pub need: u64,
    /// Where each region map of this component goes: (map index, vaddr).
    pub region_vaddrs: Vec<(usize, u64)>,
    /// The BAR pages of the devices it drives: (device plan index, BAR number, vaddr).
    pub bar_vaddrs: Vec<(usize, u8, u64)>,
}

/// A described device found on the machine.
#[derive(Clone, Debug)]
pub struct DevicePlan {
    /// Index in the description.
    pub index: u16,
    /// Index in bootinfo's PCI list.
    pub pci: usize,
    /// The record.
    pub rec: Device,
    /// Its memory BARs (sizes as the kernel measured them at boot): the driver gets
    /// each whole (up to [`MAX_BAR_MAP`]) except the MSI-X table and PBA pages.
    pub bars: Vec<BarPlan>,
}

/// Most bytes of one BAR mapped for a driver (a bigger BAR: its first this many).
pub const MAX_BAR_MAP: u64 = 256 * 1024;

/// One memory BAR of a described device.
#[derive(Clone, Debug)]
pub struct BarPlan {
    /// BAR number (0..=5).
    pub bar: u8,
    /// Physical base (page aligned).
    pub base: u64,
    /// Bytes mapped for the driver: the BAR's size (at least a page), at most [`MAX_BAR_MAP`].
    pub size: u64,
    /// Page offsets in the BAR left unmapped: the MSI-X table and PBA (in no untyped).
    pub holes: Vec<u64>,
}

impl BarPlan {
    /// Offsets of the pages mapped for the driver.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.size).step_by(PAGE_SIZE as usize).filter(|o| !self.holes.contains(o))
    }
}

/// The whole plan.
pub struct Plan<'a> {
    /// The description.
    pub desc: SystemDesc<'a>,
    /// Per component, in description order.
    pub components: Vec<ComponentPlan<'a>>,
    /// Per device, in description order.
    pub devices: Vec<DevicePlan>,
}

/// log2 of the DMA pool untyped for `bytes` (rounded up to a power of two).
pub fn pool_bits(bytes: u64) -> u32 {
    bytes.max(PAGE_SIZE).next_power_of_two().trailing_zeros()
}

/// "00:03.0" for a PCI function.
pub fn bdf(bus: u8, devfn: u8) -> String {
    format!("{:02x}:{:02x}.{}", bus, devfn >> 3, devfn & 7)
}

/// How a device record matches, for messages.
pub fn match_text(d: &Device) -> String {
    match DeviceMatch::try_from(d.match_kind) {
        Ok(DeviceMatch::PciAddress) => format!("{:04x}:{}", d.segment, bdf(d.bus, d.devfn)),
        Ok(DeviceMatch::VendorDevice) => format!("{:04x}:{:04x}", d.vendor, d.device),
        _ => format!("class {:02x}:{:02x}", d.class, d.subclass),
    }
}

fn find_device(bi: &BootInfo, d: &Device) -> Option<usize> {
    bi.pci_devices().iter().position(|p| match DeviceMatch::try_from(d.match_kind) {
        Ok(DeviceMatch::PciAddress) => p.segment == d.segment && p.bus == d.bus && p.devfn == d.devfn,
        Ok(DeviceMatch::VendorDevice) => p.vendor_id == d.vendor && p.device_id == d.device,
        Ok(DeviceMatch::Class) => p.class == d.class && p.subclass == d.subclass,
        Err(_) => false,
    })
}

/// Memory BARs of PCI function `pci` (base and size from the kernel's boot-time
/// measurement), minus the pages of its MSI-X table and PBA.
fn memory_bars(bi: &BootInfo, pci: usize) -> Vec<BarPlan> {
    let dev = libcap::cap::PciDevice(bi.pci_device_caps.start + pci as u64);
    let msix = dev.msix_info().ok();
    let mut bars = Vec::new();
    for n in 0..6u8 {
        let Ok((base, size)) = dev.bar_info(u64::from(n)) else { continue };
        if size == 0 || base == 0 || base % PAGE_SIZE != 0 {
            continue;
        }
        let mapped = size.clamp(PAGE_SIZE, MAX_BAR_MAP) & !(PAGE_SIZE - 1);
        let mut holes = Vec::new();
        if let Some(m) = msix {
            let table = (m.table_bar, m.table_offset, m.table_size * libcap::abi::pci::MSIX_ENTRY_BYTES);
            for (bar, offset, bytes) in [table, (m.pba_bar, m.pba_offset, m.pba_bytes())] {
                if bar == n {
                    let first = offset & !(PAGE_SIZE - 1);
                    holes.extend((first..offset + bytes).step_by(PAGE_SIZE as usize));
                }
            }
        }
        bars.push(BarPlan { bar: n, base, size: mapped, holes });
    }
    bars
}

fn parse_elf(name: &str, program: &str, bytes: &[u8]) -> Result<(u64, Vec<Segment>), String> {
    let bad = |what: &str| format!("component '{name}': program '{program}': {what}");
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|_| bad("not an ELF file"))?;
    let headers = file.segments().ok_or_else(|| bad("no program headers"))?;
    let mut segments = Vec::new();
    for ph in headers.iter().filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0) {
        let in_file = ph.p_offset.checked_add(ph.p_filesz).is_some_and(|e| e <= bytes.len() as u64);
        if !in_file || ph.p_filesz > ph.p_memsz || !is_user_range(ph.p_vaddr, ph.p_memsz) {
            return Err(bad("a load segment lies outside the file or user space"));
        }
        if ph.p_vaddr.saturating_add(ph.p_memsz) > COMPONENT_MAP_VADDR {
            return Err(bad("a load segment overlaps the component map area"));
        }
        segments.push(Segment {
            vaddr: ph.p_vaddr,
            mem: ph.p_memsz,
            offset: ph.p_offset,
            file: ph.p_filesz,
            write: ph.p_flags & PF_W != 0,
            exec: ph.p_flags & PF_X != 0,
        });
    }
    if segments.is_empty() {
        return Err(bad("no load segments"));
    }
    Ok((file.ehdr.e_entry, segments))
}

/// Page addresses of a segment list.
pub fn segment_pages(segments: &[Segment]) -> Vec<u64> {
    let mut pages = Vec::new();
    for s in segments {
        let mut p = s.vaddr & !(PAGE_SIZE - 1);
        while p < s.vaddr + s.mem {
            pages.push(p);
            p += PAGE_SIZE;
        }
    }
    pages.sort_unstable();
    pages.dedup();
    pages
}

/// Page-table objects (PDPT, PD, PT) needed to map `pages` in an empty VSpace.
pub fn table_count(pages: &[u64]) -> u64 {
    let mut total = 0;
    for shift in [39u32, 30, 21] {
        let mut v: Vec<u64> = pages.iter().map(|p| p >> shift).collect();
        v.dedup();
        v.sort_unstable();
        v.dedup();
        total += v.len() as u64;
    }
    total
}

fn pages_of(vaddr: u64, bytes: u64) -> impl Iterator<Item = u64> {
    (0..bytes.div_ceil(PAGE_SIZE)).map(move |i| vaddr + i * PAGE_SIZE)
}

/// Power-of-two pieces (log2, largest first) summing to `bytes` (a page multiple).
pub fn pieces_of(bytes: u64) -> Vec<u8> {
    (12..64u8).rev().filter(|b| bytes & (1u64 << b) != 0).collect()
}

/// Makes the plan, or the one message saying why nothing can start.
pub fn make<'a>(bi: &BootInfo, image: &BootImage<'a>, desc: SystemDesc<'a>) -> Result<Plan<'a>, String> {
    // Devices: present, and no two in one alias group.
    let mut devices: Vec<DevicePlan> = Vec::new();
    for (i, d) in desc.devices().iter().enumerate() {
        let name = desc.str(d.name);
        let pci = find_device(bi, &d).ok_or_else(|| format!("device '{name}' ({}) not found", match_text(&d)))?;
        let group = bi.pci_devices()[pci].alias_group;
        if let Some(other) = devices.iter().find(|o| bi.pci_devices()[o.pci].alias_group == group) {
            let p = bi.pci_devices()[pci];
            return Err(format!(
                "devices '{}' and '{name}' are in one alias group ({}): a group is assigned whole",
                desc.str(other.rec.name),
                bdf(p.bus, p.devfn)
            ));
        }
        let bars = memory_bars(bi, pci);
        devices.push(DevicePlan { index: i as u16, pci, rec: d, bars });
    }
    let mut components = Vec::new();
    for (i, c) in desc.components().iter().enumerate() {
        let name = desc.str(c.name);
        let program = desc.str(c.program);
        let elf = image
            .files()
            .find(|f| f.name == program)
            .map(|f| f.data)
            .ok_or_else(|| format!("component '{name}': program '{program}' is not in the boot image"))?;
        let (entry, segments) = parse_elf(name, program, elf)?;
        // Every page init maps for it: image, stack, IPC buffer, info page, heap.
        let mut pages = segment_pages(&segments);
        let stack = u64::from(c.stack_bytes).max(PAGE_SIZE);
        pages.extend(pages_of(COMPONENT_STACK_TOP - stack, stack));
        let frames = pages.len() as u64 + 1; // + IPC buffer (info page: below)
        pages.push(libcap::abi::component::COMPONENT_IPC_BUFFER_VADDR);
        pages.push(libcap::abi::component::COMPONENT_INFO_VADDR);
        pages.extend(pages_of(COMPONENT_HEAP_VADDR, u64::from(c.heap_bytes)));
        // Regions and their addresses (0: the next free place in the map area).
        let mut next = COMPONENT_MAP_VADDR;
        let mut region_vaddrs = Vec::new();
        for (m, map) in desc.region_maps().iter().enumerate().filter(|(_, m)| m.component == i as u16) {
            let size = desc.regions().get(usize::from(map.region)).map_or(0, |r| r.size_bytes);
            let vaddr = if map.vaddr != 0 { map.vaddr } else { next };
            if map.vaddr == 0 {
                next += size + PAGE_SIZE;
            }
            pages.extend(pages_of(vaddr, size));
            region_vaddrs.push((m, vaddr));
        }
        let mut bar_vaddrs = Vec::new();
        for (k, d) in devices.iter().enumerate().filter(|(_, d)| d.rec.driver == i as u16) {
            for b in &d.bars {
                pages.extend(b.pages().map(|o| next + o));
                bar_vaddrs.push((k, b.bar, next));
                next += b.size + PAGE_SIZE;
            }
        }
        pages.sort_unstable();
        let tables = table_count(&pages);
        let heap = u64::from(c.heap_bytes).div_ceil(PAGE_SIZE);
        let cnode = ObjectType::CNode.size_bits(u32::from(c.cnode_radix)).map_or(u64::MAX, |b| 1u64 << b);
        let pools: u64 =
            devices.iter().filter(|d| d.rec.driver == i as u16).map(|d| 1u64 << pool_bits(d.rec.dma_pool_bytes)).sum();
        // frames + info page + heap + PML4 + tables, CNode, TCB, DMA pools.
        let need = (frames + 1 + heap + 1 + tables) * PAGE_SIZE + cnode + (1u64 << TCB_SIZE_BITS) + pools;
        if need > c.budget_bytes {
            return Err(format!(
                "component '{name}' needs {} KiB for its program, stack, heap, tables and pools, its budget is {} KiB",
                need.div_ceil(1024),
                c.budget_bytes / 1024
            ));
        }
        if c.fault_handler != NONE && usize::from(c.fault_handler) >= desc.components().len() {
            return Err(format!("component '{name}': fault handler out of range"));
        }
        let pieces = pieces_of(c.budget_bytes & !(PAGE_SIZE - 1));
        components.push(ComponentPlan {
            index: i as u16,
            name,
            rec: c,
            elf,
            entry,
            segments,
            pieces,
            need,
            region_vaddrs,
            bar_vaddrs,
        });
    }
    // RAM: budgets and regions against what the kernel handed over (init keeps 1 MiB).
    let ram: u64 = bi.untyped().iter().filter(|u| u.is_device == 0).map(|u| 1u64 << u.size_bits).sum();
    let regions: u64 = desc.regions().iter().map(|r| r.size_bytes).sum();
    let budgets: u64 = components.iter().map(|c| c.rec.budget_bytes).sum();
    let needed = budgets + regions + (1 << 20);
    if needed > ram {
        return Err(format!(
            "not enough RAM: budgets and regions need {} KiB, {} KiB of RAM untyped available",
            needed / 1024,
            ram / 1024
        ));
    }
    Ok(Plan { desc, components, devices })
}
