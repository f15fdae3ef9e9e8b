//! The boot sequence, from the loader's hand-off to the root task.
//!
//! The boot sequence: from the loader's hand-off to the root task running in user mode,
//! and the fatal paths (bad boot input, kernel exceptions, an unhandled user fault).

use crate::object::roots::{self, RootKind};
use core::fmt;

use abi::bootimage::BootImage;
use abi::bootinfo::{BootInfo, BootProtocol, SlotRegion, UntypedDesc};
use abi::exit::ExitCode;
use abi::layout::{PAGE_SIZE, ROOT_BOOTINFO_VADDR, ROOT_IPC_BUFFER_VADDR, ROOT_STACK_SIZE, ROOT_STACK_TOP};
use abi::rights::CapRights;
use abi::slots;

use crate::arch::kmem::{self, DirectMemory};
use crate::arch::mmu::{self, BootTables, DirectMap, EARLY_DIRECT_MAP};
use crate::arch::trap::{self, TrapFrame};
use crate::arch::{cpu, fpu, gdt, idt, phys_to_virt, serial};
use crate::boot::elf_loader::{self, LoadPlan};
use crate::boot::memory::{BootAllocator, Range, RangeSet, PAGE};
use crate::boot::packed_image;
use crate::boot::params::{self, PhysSource};
use crate::boot::untyped;
use crate::iommu::iospace;
use crate::log::{self, Level};
use crate::object::cap::{Cap, FrameSize, MapKind, Mapping};
use crate::object::cnode;
use crate::object::cte::SlotMemory;
use crate::object::cte::SLOT_BITS;
use crate::object::mdb;
use crate::object::paging::{self, PageSize, PteFlags, TableMemory};
use crate::object::tcb::ThreadState;
use crate::platform;
use crate::thread::tcb_state;
use crate::{info, warn};

/// RAM at or above 2^46 is ignored: the direct map (PML4 slots 256..) must stay clear
/// of the kernel image at -2 GiB, and no boot arithmetic comes near 2^64.
const MAX_RAM_BITS: u32 = 46;

/// Name of the program running as root task, for fault reports.
static ROOT_NAME: spin::Once<([u8; 32], usize)> = spin::Once::new();

/// Reports rejected boot input and stops with [`ExitCode::BadBootInput`].
pub fn boot_error(args: fmt::Arguments<'_>) -> ! {
    serial::write_fmt(format_args!("BOOT ERROR: {args}\n"));
    cpu::exit_qemu(ExitCode::BadBootInput.raw())
}

/// Name of the root task's program.
pub fn root_name() -> &'static str {
    ROOT_NAME.get().and_then(|(b, n)| core::str::from_utf8(&b[..*n]).ok()).unwrap_or("?")
}

/// Entered from boot.S on the boot stack with the loader's info pointer and protocol.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_entry(info_paddr: u32, protocol: u32) -> ! {
    serial::init();
    if let Err((name, why)) = cpu::check_features() {
        boot_error(format_args!("CPU lacks {name} (needed for {why})"));
    }
    gdt::init();
    idt::init();
    cpu::mask_legacy_pic();
    info!("kernel: capability microkernel {} starting", env!("CARGO_PKG_VERSION"));

    let early = DirectMap { limit: EARLY_DIRECT_MAP };
    let parsed = match protocol {
        p if p == BootProtocol::Pvh as u32 => params::parse_pvh(&early, u64::from(info_paddr)),
        p if p == BootProtocol::Multiboot2 as u32 => params::parse_multiboot2(&early, u64::from(info_paddr)),
        other => boot_error(format_args!("unknown boot protocol {other}")),
    };
    let params = parsed.unwrap_or_else(|e| boot_error(format_args!("{e}")));
    if let Some(level) = params.cmdline_value("loglevel") {
        match Level::parse(level) {
            Some(l) => log::set_max_level(l),
            None => warn!("loglevel={level} unknown; use error, warn, info or debug"),
        }
    }
    if params.cmdline_value("latency") == Some("on") {
        crate::thread::latency::enable();
        info!("kernel: measuring the longest interrupts-off stretch (latency=on; DebugConsole KernelStretch)");
    }
    let protocol_name = match params.protocol {
        BootProtocol::Pvh => "PVH",
        BootProtocol::Multiboot2 => "multiboot2",
    };
    info!("boot protocol: {protocol_name}, command line '{}'", params.cmdline);
    for r in params.regions() {
        info!("memory: {} {:>9} KiB {}", r.range, r.range.len() / 1024, r.kind);
    }

    // RAM the kernel cannot map (or that sits near 2^64, where boot arithmetic would
    // wrap) is ignored, not handed out.
    let max_phys = 1u64 << cpu::physical_address_bits().min(MAX_RAM_BITS);
    let (ram, clipped) = params.ram_below(max_phys);
    if clipped {
        warn!("memory: RAM at or above {max_phys:#x} (beyond the physical address width) is ignored");
    }
    let kernel = mmu::kernel_image();
    let (module, source) =
        packed_image::choose(packed_image::descriptor(), params.module, &ram, kernel, EARLY_DIRECT_MAP, &early)
            .unwrap_or_else(|e| boot_error(format_args!("{e}")));
    if params.module_count > u32::from(source == packed_image::Source::Module) {
        warn!("{} boot modules passed; only the {} is used", params.module_count, source.name());
    }
    info!("kernel: image {kernel}, {} {module} ({} bytes)", source.name(), module.len());

    let mut free = ram.clone();
    let reserved = [Range { start: 0, end: 0x10_0000 }, kernel, module.page_outer()];
    for r in reserved.iter().chain(params.loader_structures.as_slice()) {
        if free.remove(*r).is_err() {
            boot_error(format_args!("memory map too fragmented ({} ranges)", free.as_slice().len()));
        }
    }
    let mut alloc = BootAllocator::new(&free);

    let ram_top = ram.as_slice().last().map_or(0, |r| r.end);
    let gib = 1u64 << 30;
    // Cannot overflow: ram_top <= 2^MAX_RAM_BITS.
    let limit = EARLY_DIRECT_MAP.max(ram_top.div_ceil(gib) * gib);
    let kernel_root = mmu::build_kernel_space(&mut alloc, &ram, limit)
        .unwrap_or_else(|e| boot_error(format_args!("cannot build kernel page tables: {e:?}")));
    kmem::set_kernel_root(kernel_root);
    let phys = DirectMap { limit };
    crate::thread::user_mem::init(&ram, limit);
    info!("kernel: direct map of {} MiB, kernel tables at {kernel_root:#x}", limit >> 20);
    let p = cpu::enable_protections();
    let on = |b: bool| if b { "on" } else { "off (not offered by the CPU)" };
    info!(
        "cpu: SMEP {}, SMAP {}, UMIP {}; kernel text and rodata read-only in every mapping",
        on(p.smep),
        on(p.smap),
        on(p.umip)
    );

    crate::arch::svm::init();

    // Live-root bitmaps (see object::roots), one bit per page of RAM and kind.
    let words = roots::words_for(ram_top);
    let frames = (words as u64 * 8).div_ceil(PAGE);
    for kind in [RootKind::VSpace, RootKind::IoSpace] {
        let base = alloc
            .alloc_contiguous(frames, PAGE)
            .unwrap_or_else(|_| boot_error(format_args!("no memory for the live-root bitmaps")));
        for f in 0..frames {
            mmu::zero_frame(base + f * PAGE);
        }
        // SAFETY: boot memory just zeroed, used for nothing else.
        unsafe { roots::init(kind, crate::arch::phys_to_virt(base) as usize, words) };
    }

    // test_rsdp=ADDR (hex) replaces the loader's RSDP address, so a scenario can show
    // that firmware tables outside the direct map are refused as bad boot input.
    let rsdp = match params.cmdline_value("test_rsdp") {
        Some(v) => Some(
            u64::from_str_radix(v.trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| boot_error(format_args!("test_rsdp={v} is not a hexadecimal address"))),
        ),
        None => params.rsdp,
    };
    let test_rmrrs = params.cmdline_value("test_rmrr").into_iter().flat_map(platform::rmrr::parse_test_rmrrs).count();
    let mut platform = platform::discover(&phys, rsdp, &ram, &mut alloc, test_rmrrs)
        .unwrap_or_else(|e| boot_error(format_args!("{e}")));
    add_test_rmrrs(&mut platform, params.cmdline_value("test_rmrr"));
    platform::pci_config::set_ecam(platform.acpi.ecam_paddr, platform.acpi.ecam_bus_start, platform.acpi.ecam_bus_end);
    platform::msix_table::boot(&mut platform.excluded, platform.pci.as_slice(), &ram, phys.limit)
        .unwrap_or_else(|e| boot_error(format_args!("MSI-X tables: {e}")));
    platform::bars::boot(platform.pci.as_slice());
    // Every remapping unit translates from now on, with no device assigned: all DMA is
    // blocked until an IOSpace assigns a device. Context tables for every bus with
    // devices are made now (the kernel allocates nothing after boot).
    let mut root_tables = [0u64; abi::bootinfo::MAX_IOMMUS];
    for (i, _) in platform.dmar.drhds().iter().enumerate().take(root_tables.len()) {
        root_tables[i] =
            alloc.alloc_frame().unwrap_or_else(|_| boot_error(format_args!("no memory for VT-d root tables")));
        mmu::zero_frame(root_tables[i]);
    }
    crate::boot::sized::context_tables(&mut alloc, &platform, &root_tables);
    let first_cap = crate::iommu::registers::CapabilityDecode::from_raw(platform.iommu_regs[0].0);
    let levels = if first_cap.mgaw >= 48 && first_cap.supports_4_level() { 4 } else { 3 };
    iospace::set_levels(levels);
    // Domain ids every unit supports (CAP.ND): ids beyond are never handed out.
    let units = platform.dmar.drhds().len().min(abi::bootinfo::MAX_IOMMUS);
    let domains = (0..units)
        .map(|i| crate::iommu::registers::CapabilityDecode::from_raw(platform.iommu_regs[i].0).domains)
        .min()
        .unwrap_or(0);
    crate::boot::sized::domain_records(&mut alloc, domains as usize);
    boot_rmrr_domain(&mut alloc, &platform, &ram);
    for (i, unit) in platform.dmar.drhds().iter().enumerate().take(root_tables.len()) {
        let (cap, ecap) = platform.iommu_regs[i];
        let root_table = root_tables[i];
        let mut queue =
            alloc.alloc_frame().unwrap_or_else(|_| boot_error(format_args!("no memory for the invalidation queue")));
        mmu::zero_frame(queue);
        if iommu_option(&params, "noqi") {
            queue = 0; // register-based invalidation even where QI exists (tests that path)
        }
        let set = (unit.register_base, crate::iommu::register_set::register_set_bytes(unit.size));
        match crate::iommu::unit::enable(i, set, cap, ecap, root_table, queue) {
            Ok(()) if crate::iommu::unit::translation_enabled(i) => info!(
                "iommu{i}: translation enabled, root table at {root_table:#x}, no device assigned: all DMA blocked; IOSpaces get {levels}-level tables; {} invalidation",
                if crate::iommu::unit::uses_queue(i) { "queued" } else { "register-based" }
            ),
            Ok(()) => boot_error(format_args!("iommu{i}: translation did not turn on")),
            Err(e) => boot_error(format_args!("iommu{i}: cannot enable DMA remapping: {e:?}")),
        }
    }

    enable_interrupt_remapping(&platform, &mut alloc);
    // The LAPIC and I/O APIC now (interrupts stay off until user mode): the
    // compatibility-format probe in `restrict_bus_mastering` needs them.
    crate::thread::irq::init(platform.acpi.lapic_paddr, platform.acpi.ioapic_paddr, platform.isa_irqs);
    restrict_bus_mastering(&params, &platform);
    disable_intx(&platform);

    match params.cmdline_value("test") {
        Some("panic") => panic!("deliberate kernel panic requested by test=panic"),
        // SAFETY: ud2 only raises #UD, which the exception path reports; requested by test=exception.
        Some("exception") => unsafe { core::arch::asm!("ud2") },
        Some("stack-overflow") => {
            info!("kernel: recursing until the boot stack's guard page is hit");
            let _ = overflow_stack(0);
        }
        Some("write-kernel-text") => {
            let alias = phys_to_virt(overflow_stack as *const () as u64 - crate::arch::KERNEL_VMA);
            info!("kernel: writing to kernel text through its direct-map alias {alias:#x}");
            // SAFETY: deliberately writes read-only kernel text: the write must fault
            // (reported as a kernel exception); requested by test=write-kernel-text.
            unsafe { core::ptr::write_volatile(alias as *mut u8, 0xcc) };
            warn!("kernel: the write to kernel text went through");
        }
        Some(other) => warn!("test={other} unknown; ignored"),
        None => {}
    }

    let image_bytes = phys
        .bytes(module.start, module.len() as usize)
        .unwrap_or_else(|| boot_error(format_args!("{} {module} is not readable", source.name())));
    let image = BootImage::parse(image_bytes).unwrap_or_else(|e| boot_error(format_args!("{}: {e}", source.name())));
    let manifest = image.manifest().unwrap_or_else(|e| boot_error(format_args!("{}: {e}", source.name())));
    for file in image.files() {
        info!("image: {:<32} {:>8} bytes", file.name, file.data.len());
    }
    let name = params.cmdline_value("init").unwrap_or(manifest.root());
    let program =
        image.find(name).unwrap_or_else(|| boot_error(format_args!("root task '{name}' is not in the boot image")));
    let plan = elf_loader::plan(program.data)
        .unwrap_or_else(|e| boot_error(format_args!("root task '{name}' is not a loadable program: {e}")));
    ROOT_NAME.call_once(|| {
        let mut b = [0u8; 32];
        let n = name.len().min(32);
        b[..n].copy_from_slice(&name.as_bytes()[..n]);
        (b, n)
    });

    // The root CNode and the bootinfo are sized from what boot found: every untyped the
    // list may hold, every PCI function, every image frame.
    let iommu_descs = platform.iommu_descs(&mut alloc);
    let rmrr_descs = platform.rmrr_descs(&mut alloc);
    let pci_count = platform.pci.as_slice().len();
    // What bootinfo and the root CNode report, from boot memory (before the untyped split).
    let pci_buf = crate::boot::sized::boot_slice(&mut alloc, pci_count, "PCI descriptors");
    for (d, desc) in pci_buf.iter_mut().zip(platform.pci_descs()) {
        *d = desc;
    }
    let image_pages =
        crate::boot::boot_image::pages(module, kernel).unwrap_or_else(|e| boot_error(format_args!("{e}")));
    let boot_caps = (untyped::MAX_UNTYPED + pci_count) as u64 + plan.pages() + image_pages.len() / PAGE;
    let cnode_radix = slots::root_cnode_radix(boot_caps).unwrap_or_else(|| {
        boot_error(format_args!(
            "{boot_caps} boot capabilities do not fit in a root CNode of 2^{} slots",
            abi::object::CNODE_MAX_RADIX
        ))
    });
    let bootinfo_bytes =
        abi::bootinfo::encoded_size(untyped::MAX_UNTYPED, iommu_descs.len(), rmrr_descs.len(), pci_count)
            .unwrap_or(usize::MAX);
    let bootinfo_frames = bootinfo_bytes.div_ceil(PAGE as usize);
    if bootinfo_frames > abi::bootinfo::BOOTINFO_MAX_FRAMES {
        boot_error(format_args!(
            "bootinfo for {pci_count} PCI functions needs {bootinfo_bytes} bytes, more than {} pages",
            abi::bootinfo::BOOTINFO_MAX_FRAMES
        ));
    }
    info!("kernel: {pci_count} PCI functions; root CNode 2^{cnode_radix} slots, bootinfo {bootinfo_frames} pages");
    let root_task = load_root_task(&mut alloc, kernel_root, &plan, program.data, cnode_radix, bootinfo_frames)
        .unwrap_or_else(|e| boot_error(format_args!("cannot build the root task: {e}")));
    roots::mark_live(RootKind::VSpace, root_task.vspace);
    crate::boot::boot_image::map(&mut BootTables { alloc: &mut alloc }, root_task.vspace, image_pages)
        .unwrap_or_else(|e| boot_error(format_args!("cannot build the root task: {e}")));

    // Everything not handed out by now is the root task's untyped memory.
    let mut not_device = RangeSet::new();
    let _ = not_device.add(Range { start: 0, end: 0x10_0000 });
    for r in params.regions() {
        let _ = not_device.add(r.range.page_outer());
    }
    for e in platform.excluded.as_slice() {
        if not_device.add(e.range).is_err() {
            boot_error(format_args!("memory map too fragmented to exclude {} ({})", e.range, e.reason));
        }
    }
    let phys_bits = cpu::physical_address_bits().min(abi::object::UNTYPED_MAX_BITS);
    let window = Range { start: 0x10_0000, end: 1u64 << phys_bits };
    let list = untyped::build(alloc.free(), &not_device, window);
    // The kernel reads user memory only in RAM (user_mem): RAM untyped must be RAM, and
    // device untyped (mappable, never read by the kernel) must hold none. Nothing handed
    // out may overlap a reserved platform range (checked, not assumed).
    for u in list.as_slice() {
        let r = Range::new(u.paddr, 1u64 << u.size_bits);
        let agrees = if u.is_device == 0 { ram.contains(r) } else { !ram.overlaps(r) };
        assert!(agrees, "untyped {r} (device={}) disagrees with the RAM map", u.is_device);
        if let Some(e) = platform.excluded.overlapping(r) {
            boot_error(format_args!("untyped {r} overlaps reserved {} ({})", e.range, e.reason));
        }
    }
    for u in list.as_slice() {
        info!("untyped: {:#014x} 2^{:<2} {}", u.paddr, u.size_bits, if u.is_device == 1 { "device" } else { "ram" });
    }
    info!(
        "untyped: total {} bytes RAM in {} caps, {} bytes device memory in {} caps",
        list.ram_bytes,
        list.ram_count,
        list.device_bytes,
        list.count - list.ram_count
    );
    info!("kernel: {} KiB used by boot structures", alloc.allocated() / 1024);
    if list.dropped > 0 {
        warn!("{} untyped blocks did not fit in bootinfo and stay unused", list.dropped);
    }

    let mut bi = BootInfo::empty();
    bi.boot_protocol = params.protocol as u32;
    bi.init_cnode_radix = cnode_radix;
    bi.ipc_buffer = ROOT_IPC_BUFFER_VADDR;
    bi.acpi = platform.acpi;
    bi.untyped_caps = SlotRegion { start: slots::FIRST_DYNAMIC, end: slots::FIRST_DYNAMIC + list.count as u64 };
    bi.pci_device_caps = SlotRegion { start: bi.untyped_caps.end, end: bi.untyped_caps.end + pci_count as u64 };
    let user_pages: u64 = plan.pages();
    bi.user_image_frames = SlotRegion { start: bi.pci_device_caps.end, end: bi.pci_device_caps.end + user_pages };
    bi.user_image_vaddr = plan.segments().first().map_or(0, |s| s.page_span().0);
    let image_frames = image_pages.len() / PAGE;
    bi.boot_image_frames = SlotRegion { start: bi.user_image_frames.end, end: bi.user_image_frames.end + image_frames };
    bi.boot_image_vaddr = abi::layout::ROOT_BOOT_IMAGE_VADDR;
    bi.boot_image_offset = module.start - image_pages.start;
    bi.boot_image_size = module.len();
    bi.empty = SlotRegion { start: bi.boot_image_frames.end, end: 1 << cnode_radix };
    // SAFETY: the bootinfo frames were allocated for this (zeroed, contiguous, in the
    // direct map, used for nothing else), 8-byte aligned; `bootinfo_frames` pages of words.
    let words = unsafe {
        core::slice::from_raw_parts_mut(
            phys_to_virt(root_task.bootinfo_paddr) as *mut u64,
            bootinfo_frames * PAGE as usize / 8,
        )
    };
    abi::bootinfo::encode(words, &bi, list.as_slice(), iommu_descs, rmrr_descs, &pci_buf[..pci_count])
        .unwrap_or_else(|e| boot_error(format_args!("bootinfo does not fit: {e:?}")));

    populate_root_cnode(&root_task, &plan, list.as_slice(), &pci_buf[..pci_count]);
    let root_slot = |index: u64| root_task.cnode_paddr + (index << SLOT_BITS);
    crate::boot::boot_image::insert_caps(root_slot, bi.boot_image_frames.start, root_task.vspace, image_pages);
    start_root_thread(&root_task, plan.entry);
    trap::init_syscalls();
    fpu::init();
    fpu::write_fs_base(ROOT_IPC_BUFFER_VADDR);
    let peak = mmu::boot_stack_peak();
    info!("kernel: boot stack peak {} of {} KiB", peak.div_ceil(1024), mmu::BOOT_STACK_BYTES / 1024);
    info!("kernel: entering root task '{name}' at {:#x}", plan.entry);
    // SAFETY: the root task's PML4 shares the kernel half with `kernel_root`.
    unsafe { mmu::switch_to(root_task.vspace) };
    trap::enter_user_mode()
}

/// `test_rmrr=BASE-LIMIT@BB:DD.F[+...]`: synthetic RMRRs (QEMU reports none), so the
/// scenarios exercise the RMRR boot path.
fn add_test_rmrrs(platform: &mut platform::Platform, value: Option<&str>) {
    use platform::dmar::{scope_kind, DeviceScope};
    for entry in value.into_iter().flat_map(platform::rmrr::parse_test_rmrrs) {
        let Some((base, limit, rid)) = entry else {
            warn!("test_rmrr: an entry is not BASE-LIMIT@BB:DD.F; ignored");
            continue;
        };
        let scope = DeviceScope::new(
            scope_kind::PCI_ENDPOINT,
            (rid >> 8) as u8,
            &[(((rid >> 3) & 0x1f) as u8, (rid & 7) as u8)],
        );
        if platform.dmar.push_rmrr(base, limit, &[scope]) {
            info!("test_rmrr: RMRR {base:#x}..={limit:#x} for {scope} added");
        }
    }
}

/// RMRR identity maps (see `iospace::boot_rmrr`), with tables from boot memory;
/// superpages only if every unit has them.
fn boot_rmrr_domain(alloc: &mut BootAllocator, platform: &platform::Platform, ram: &RangeSet) {
    if platform.dmar.rmrrs().is_empty() {
        return;
    }
    let units = platform.dmar.drhds().len().min(platform.iommu_regs.len());
    let superpages = platform.iommu_regs[..units]
        .iter()
        .all(|&(cap, _)| crate::iommu::registers::CapabilityDecode::from_raw(cap).sllps & 1 != 0);
    let kernel = mmu::kernel_image();
    let mut ranges = [(0u64, 0u64); 64];
    let n = ram.as_slice().len().min(ranges.len());
    for (slot, r) in ranges.iter_mut().zip(ram.as_slice()) {
        *slot = (r.start, r.end);
    }
    iospace::boot_rmrr(
        &mut crate::iommu::access::Vtd,
        &mut BootTables { alloc },
        &platform.dmar,
        (kernel.start, kernel.end),
        &ranges[..n],
        superpages,
    );
}

/// Turns interrupt remapping on when every unit supports it (ECAP.IR with queued
/// invalidation running): one table for all units, allocated now like the other VT-d
/// structures. Without it the system runs, but MSIs are never handed out.
fn enable_interrupt_remapping(platform: &platform::Platform, alloc: &mut BootAllocator) {
    let units = platform.dmar.drhds().len().min(abi::bootinfo::MAX_IOMMUS);
    let capable = (0..units).filter(|&i| crate::iommu::unit::can_remap_interrupts(i, platform.iommu_regs[i].1));
    let mask = capable.fold(0u32, |m, i| m | (1 << i));
    if units == 0 || mask != (1u32 << units) - 1 {
        info!(
            "iommu: interrupt remapping unavailable ({} of {units} units support it): no MSIs are handed out",
            mask.count_ones()
        );
        return;
    }
    let ioapic = platform
        .dmar
        .drhds()
        .iter()
        .flat_map(|d| platform.dmar.scopes(d.scopes))
        .find(|s| s.kind == platform::dmar::scope_kind::IOAPIC);
    let Some(ioapic_source) = ioapic.and_then(|s| s.source_id()) else {
        // Line IRTEs could not check their source: any device could raise any line.
        info!("iommu: interrupt remapping left off: the DMAR names no I/O APIC source id; no MSIs are handed out");
        return;
    };
    let table =
        alloc.alloc_frame().unwrap_or_else(|_| boot_error(format_args!("no memory for the interrupt-remapping table")));
    mmu::zero_frame(table);
    match crate::iommu::remap_table::boot_enable(table, mask, ioapic_source) {
        Ok(()) if (0..units).all(crate::iommu::unit::interrupt_remapping_enabled) => {
            let s = ioapic_source;
            info!(
                "iommu: interrupt remapping on, table at {table:#x} ({} entries), CFI clear (compatibility-format interrupts refused by the unit; QEMU 7.2 passes them); I/O APIC source {}",
                crate::iommu::intremap::TABLE_ENTRIES,
                "validated"
            );
            info!("iommu: I/O APIC requester id {:02x}:{:02x}.{}", s >> 8, (s >> 3) & 0x1f, s & 7);
        }
        Ok(()) => boot_error(format_args!("iommu: interrupt remapping did not turn on")),
        Err((i, e)) => boot_error(format_args!("iommu{i}: cannot enable interrupt remapping: {e:?}")),
    }
}

/// Whether the `iommu=` option (comma-separated: `iommu=noqi,allow-unremapped-dma`)
/// names `option`.
fn iommu_option(params: &params::BootParams<'_>, option: &str) -> bool {
    params.cmdline_value("iommu").is_some_and(|v| v.split(',').any(|o| o == option))
}

/// Without interrupt remapping a DMA write to the MSI window raises any vector, and so
/// it does with remapping on if the unit passes compatibility-format interrupts
/// (QEMU 7.2; probed here, see `cfi_probe`): then bus mastering is refused (and cleared
/// where firmware left it on) unless the command line opts out with
/// `iommu=allow-unremapped-dma`.
fn restrict_bus_mastering(params: &params::BootParams<'_>, platform: &platform::Platform) {
    let why = if crate::iommu::remap_table::enabled() {
        match crate::iommu::cfi_probe::boot_probe(probe_irq(params)) {
            crate::iommu::cfi_probe::Probe::Blocked => {
                info!("iommu: compatibility-format interrupts blocked by the remapping unit (verified at boot: the same line through an IRTE arrived)");
                return;
            }
            crate::iommu::cfi_probe::Probe::Passed => warn!(
                "iommu: the remapping unit passes compatibility-format interrupts (QEMU < 8): a bus master could raise any vector, NMI or INIT; bus mastering refused unless iommu=allow-unremapped-dma"
            ),
            crate::iommu::cfi_probe::Probe::Inconclusive(why) => warn!(
                "iommu: compatibility-format probe inconclusive: {why}; bus mastering refused unless iommu=allow-unremapped-dma"
            ),
        }
        "although compatibility-format interrupts are not known to be blocked; any bus master can raise any vector, NMI or INIT"
    } else {
        "without interrupt remapping; any bus master can raise any interrupt vector"
    };
    if iommu_option(params, "allow-unremapped-dma") {
        crate::invoke::pci::allow_unremapped_dma();
        warn!("iommu: iommu=allow-unremapped-dma: bus mastering allowed {why}");
        return;
    }
    if !crate::iommu::remap_table::enabled() {
        info!("iommu: interrupt remapping off: bus mastering refused (iommu=allow-unremapped-dma allows it)");
    }
    for dev in platform.pci.as_slice().iter().filter(|d| d.desc.segment == 0) {
        if platform::pci_config::boot_clear_bus_master(dev.requester_id()) {
            info!(
                "pci 0000:{:02x}:{:02x}.{}: bus mastering left on by firmware turned off",
                dev.bus(),
                dev.device(),
                dev.function()
            );
        }
    }
}

/// `test_cfi_probe_irq=N`: the compatibility-format probe uses IRQ N (numbered as for
/// IRQHandler caps) instead of the PIT's ISA IRQ 0, so a scenario can point it at an
/// I/O APIC pin with nothing wired (no interrupt arrives in either format).
fn probe_irq(params: &params::BootParams<'_>) -> u64 {
    let Some(value) = params.cmdline_value("test_cfi_probe_irq") else { return 0 };
    match value.parse::<u64>() {
        Ok(irq) => {
            info!("test_cfi_probe_irq: the compatibility-format probe uses IRQ {irq} instead of the PIT's (IRQ 0)");
            irq
        }
        Err(_) => {
            warn!("test_cfi_probe_irq={value} is not a decimal IRQ number; ignored");
            0
        }
    }
}

/// Legacy INTx lines are shared between PCI functions and carry no requester id, so
/// Interrupt Disable is set on every function (and a PciDevice write cannot clear it):
/// PCI devices interrupt only by remapped MSI.
fn disable_intx(platform: &platform::Platform) {
    let mut left = 0;
    for dev in platform.pci.as_slice() {
        if dev.desc.segment != 0 || !platform::pci_config::boot_disable_intx(dev.requester_id()) {
            left += 1;
        }
    }
    if left == 0 {
        info!("pci: legacy INTx disabled on every function (Interrupt Disable set): PCI devices interrupt only by MSI");
    } else {
        warn!("pci: legacy INTx disabled except on {left} functions outside the ECAM (no PciDevice access to them)");
    }
}

/// Recurses without bound (test=stack-overflow): the guard page must stop it.
#[inline(never)]
#[allow(unconditional_recursion)]
fn overflow_stack(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    overflow_stack(depth + 1) + core::hint::black_box(frame[3])
}

/// Makes the root task's TCB the running thread: its slots get copies of the root
/// CNode, VSpace and IPC buffer caps; it runs at the highest priority.
fn start_root_thread(task: &RootTask, entry: u64) {
    let mut mem = DirectMemory;
    let cnode_slot = |index: u64| task.cnode_paddr + (index << SLOT_BITS);
    let sources = [slots::INIT_CNODE, slots::INIT_VSPACE, slots::INIT_IPC_BUFFER];
    for (i, index) in sources.into_iter().enumerate() {
        let src = cnode_slot(index);
        let cap = match mem.load(src).cap {
            Cap::Frame { paddr, size, rights, is_device, .. } => {
                Cap::Frame { paddr, size, rights, is_device, mapping: None }
            }
            other => other,
        };
        cnode::invoke_copy(&mut mem, src, task.tcb_paddr + ((i as u64) << SLOT_BITS), cap);
    }
    let t = kmem::tcb(task.tcb_paddr);
    t.priority = 255;
    t.mcp = 255;
    t.ipc_buffer = ROOT_IPC_BUFFER_VADDR;
    // The thread pointer starts at the IPC buffer (as Configure sets it for others);
    // loaded into the register after fpu::init.
    t.fs_base = ROOT_IPC_BUFFER_VADDR;
    t.ipc_buffer_paddr = task.ipc_buffer_paddr;
    t.is_root = 1;
    t.set_state(ThreadState::Running);
    t.frame = TrapFrame::new_user(entry, ROOT_STACK_TOP, ROOT_BOOTINFO_VADDR).to_words();
    fpu::init_area(&mut t.fpu);
    tcb_state::set_current(task.tcb_paddr);
}

/// What was built for the root task.
struct RootTask {
    vspace: u64,
    bootinfo_paddr: u64,
    ipc_buffer_paddr: u64,
    cnode_paddr: u64,
    /// log2 of the root CNode's slots.
    cnode_radix: u32,
    tcb_paddr: u64,
}

/// Fills the root CNode: fixed slots, then untyped and PciDevice caps (bootinfo order).
fn populate_root_cnode(
    task: &RootTask,
    plan: &LoadPlan,
    untyped: &[UntypedDesc],
    pci: &[abi::bootinfo::PciDeviceDesc],
) {
    let mut mem = DirectMemory;
    let root_cnode = Cap::CNode {
        paddr: task.cnode_paddr,
        radix: task.cnode_radix as u8,
        guard_bits: (64 - task.cnode_radix) as u8,
        guard: 0,
    };
    let slot = |index: u64| task.cnode_paddr + (index << SLOT_BITS);
    let rw = CapRights::READ.union(CapRights::WRITE);
    let fixed = [
        (slots::INIT_TCB, Cap::Tcb { paddr: task.tcb_paddr }),
        (slots::INIT_CNODE, root_cnode),
        (slots::INIT_VSPACE, Cap::VSpace { paddr: task.vspace }),
        (slots::IRQ_CONTROL, Cap::IrqControl),
        (slots::IOPORT_CONTROL, Cap::IoPortControl),
        (
            slots::BOOTINFO_FRAME,
            Cap::Frame {
                paddr: task.bootinfo_paddr,
                size: FrameSize::Small,
                rights: CapRights::READ,
                is_device: false,
                mapping: Some(Mapping { vspace: task.vspace, vaddr: ROOT_BOOTINFO_VADDR, kind: MapKind::Cpu }),
            },
        ),
        (
            slots::INIT_IPC_BUFFER,
            Cap::Frame {
                paddr: task.ipc_buffer_paddr,
                size: FrameSize::Small,
                rights: rw,
                is_device: false,
                mapping: Some(Mapping { vspace: task.vspace, vaddr: ROOT_IPC_BUFFER_VADDR, kind: MapKind::Cpu }),
            },
        ),
        (slots::DEBUG_CONSOLE, Cap::DebugConsole { rights: CapRights::ALL }),
    ];
    for (index, cap) in fixed {
        mdb::insert_root(&mut mem, slot(index), cap, false);
    }
    for (i, u) in untyped.iter().enumerate() {
        let cap = Cap::Untyped {
            paddr: u.paddr,
            size_bits: u.size_bits,
            is_device: u.is_device != 0,
            free_offset: 0,
            cleared: crate::object::untyped::Cleared::NONE,
        };
        mdb::insert_root(&mut mem, slot(slots::FIRST_DYNAMIC + i as u64), cap, true);
    }
    let pci_start = slots::FIRST_DYNAMIC + untyped.len() as u64;
    for (i, d) in pci.iter().enumerate() {
        let cap = Cap::PciDevice { segment: d.segment, requester_id: d.requester_id() };
        mdb::insert_root(&mut mem, slot(pci_start + i as u64), cap, false);
    }
    // The image's frames, found again through the page tables just built.
    let mut next = pci_start + pci.len() as u64;
    for seg in plan.segments() {
        let (start, end) = seg.page_span();
        for vaddr in (start..end).step_by(PAGE as usize) {
            let Some(t) = paging::translate(&mem, task.vspace, vaddr) else { continue };
            let rights = if seg.writable { rw } else { CapRights::READ };
            let mapping = Some(Mapping { vspace: task.vspace, vaddr, kind: MapKind::Cpu });
            let cap = Cap::Frame { paddr: t.paddr, size: FrameSize::Small, rights, is_device: false, mapping };
            mdb::insert_root(&mut mem, slot(next), cap, false);
            next += 1;
        }
    }
}

/// Builds the root task's address space: program segments, stack, IPC buffer, bootinfo.
fn load_root_task(
    alloc: &mut BootAllocator,
    kernel_root: u64,
    plan: &LoadPlan,
    image: &[u8],
    cnode_radix: u32,
    bootinfo_frames: usize,
) -> Result<RootTask, &'static str> {
    let cnode_bytes = (1u64 << cnode_radix) << SLOT_BITS;
    let mut tables = BootTables { alloc };
    let vspace = tables.alloc_table().ok_or("out of memory for the root PML4")?;
    for i in 256..512 {
        let entry = tables.read(kernel_root, i);
        tables.write(vspace, i, entry);
    }
    let map = |tables: &mut BootTables<'_>, vaddr: u64, flags: PteFlags| -> Result<u64, &'static str> {
        let frame = tables.alloc.alloc_frame().map_err(|_| "out of boot memory")?;
        mmu::zero_frame(frame);
        paging::map(tables, vspace, vaddr, frame, PageSize::Size4K, flags | PteFlags::USER)
            .map_err(|_| "cannot map a root task page")?;
        Ok(frame)
    };
    for seg in plan.segments() {
        let mut flags = PteFlags::empty();
        if seg.writable {
            flags |= PteFlags::WRITABLE;
        }
        if !seg.executable {
            flags |= PteFlags::NO_EXECUTE;
        }
        let (start, end) = seg.page_span();
        let mut page = start;
        while page < end {
            let frame = map(&mut tables, page, flags)?;

            // Copy the part of the file that falls in this page.
            let file_start = seg.vaddr;
            let file_end = seg.vaddr + seg.file_size;
            let lo = page.max(file_start);
            let hi = (page + PAGE).min(file_end);
            if lo < hi {
                let src_off = (seg.file_offset + (lo - seg.vaddr)) as usize;
                let src = &image[src_off..src_off + (hi - lo) as usize];
                // SAFETY: the frame was just allocated and zeroed; the copy stays inside
                // it (lo..hi is within one page) and `src` was bounds-checked by the ELF plan.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        src.as_ptr(),
                        (phys_to_virt(frame) + (lo - page)) as *mut u8,
                        src.len(),
                    )
                };
            }
            page += PAGE;
        }
    }
    let rw = PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
    let mut page = ROOT_STACK_TOP - ROOT_STACK_SIZE;
    while page < ROOT_STACK_TOP {
        map(&mut tables, page, rw)?;
        page += PAGE_SIZE;
    }
    let ipc_buffer_paddr = map(&mut tables, ROOT_IPC_BUFFER_VADDR, rw)?;
    let cnode_paddr = tables
        .alloc
        .alloc_contiguous(cnode_bytes / PAGE, cnode_bytes)
        .map_err(|_| "out of memory for the root CNode")?;
    for i in 0..cnode_bytes / PAGE {
        mmu::zero_frame(cnode_paddr + i * PAGE);
    }
    let tcb_paddr = tables.alloc.alloc_frame().map_err(|_| "out of memory for the root TCB")?;
    mmu::zero_frame(tcb_paddr);
    let bootinfo_paddr =
        tables.alloc.alloc_contiguous(bootinfo_frames as u64, PAGE).map_err(|_| "out of memory for bootinfo")?;
    for i in 0..bootinfo_frames as u64 {
        mmu::zero_frame(bootinfo_paddr + i * PAGE);
        paging::map(
            &mut tables,
            vspace,
            ROOT_BOOTINFO_VADDR + i * PAGE,
            bootinfo_paddr + i * PAGE,
            PageSize::Size4K,
            PteFlags::USER | PteFlags::NO_EXECUTE,
        )
        .map_err(|_| "cannot map bootinfo")?;
    }
    Ok(RootTask { vspace, bootinfo_paddr, ipc_buffer_paddr, cnode_paddr, cnode_radix, tcb_paddr })
}

/// An exception in the kernel itself: always a bug. Report and stop.
pub fn kernel_exception(frame: &TrapFrame) -> ! {
    // SAFETY: single CPU, interrupts off, and the system stops below.
    unsafe { serial::force_unlock() };
    serial::write_fmt(format_args!(
        "KERNEL EXCEPTION: {} (vector {}) error={:#x} rip={:#x} rsp={:#x} cr2={:#x} rflags={:#x}\n",
        trap::vector_name(frame.vector),
        frame.vector,
        frame.error_code,
        frame.rip,
        frame.rsp,
        trap::fault_address(),
        frame.rflags
    ));
    cpu::exit_qemu(ExitCode::KernelException.raw())
}
