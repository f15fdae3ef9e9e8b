//! Platform discovery at boot: ACPI, PCI config space and VT-d units.
//!
//! Reads the platform at boot: ACPI tables through the direct map, PCI config space
//! through ECAM, and each VT-d unit's capability registers. Logs what it finds.

use core::fmt;
use core::ptr::NonNull;

use abi::bootinfo::{AcpiSummary, IommuDesc, RmrrDesc, MAX_IOMMUS, NO_DRHD};
use acpi::madt::{Madt, MadtEntry};
use acpi::mcfg::Mcfg;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use super::dmar::{self, Dmar, DmarInfo};
use super::pci::{self, PciDeviceList};
use super::pci_config::Ecam;
use super::reserved::{self, ExclusionError, Exclusions, HpetError};
use crate::arch::mmu::DirectMap;
use crate::arch::{mmio, phys_to_virt};
use crate::boot::memory::{BootAllocator, Range, RangeSet, PAGE};
use crate::boot::params::PhysSource;
use crate::boot::sized::boot_slice;
use crate::info;
use crate::iommu::register_set;
use crate::iommu::registers::{CapabilityDecode, ExtendedCapabilityDecode, VtdRegisters};

/// Bytes of one VT-d register page (the DRHD's size field may declare more).
const VTD_REGISTER_BYTES: u64 = PAGE;
/// Bytes of the local APIC's register page.
const LAPIC_BYTES: u64 = PAGE;
/// Bytes of an IOAPIC's register window.
const IOAPIC_BYTES: u64 = PAGE;

/// Why the platform is unusable.
#[derive(Debug)]
pub enum PlatformError {
    /// No RSDP found or the ACPI tables are invalid.
    Acpi(acpi::AcpiError),
    /// No DMAR table: the kernel requires VT-d.
    NoDmar,
    /// No MADT: the local APIC and IOAPIC addresses are unknown.
    NoMadt,
    /// The DMAR table is malformed.
    BadDmar(dmar::DmarError),
    /// The DMAR lists no remapping unit.
    NoDrhd,
    /// More remapping units than bootinfo holds.
    TooManyIommus(usize),
    /// A table or register block lies outside the direct map or is misaligned.
    OutOfRange {
        /// What it is.
        what: &'static str,
        /// Where.
        paddr: u64,
    },
    /// A register block lies in RAM or cannot be reserved (see `platform::reserved`).
    Reserved(ExclusionError),
    /// The ACPI HPET table is malformed.
    BadHpet(HpetError),
    /// A remapping unit's CAP/ECAP put a register block outside its register set.
    RegisterLayout {
        /// Which unit.
        unit: usize,
        /// The block and where it lies.
        error: register_set::LayoutError,
    },
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Acpi(e) => write!(f, "ACPI tables unusable: {e:?}"),
            PlatformError::NoDmar => write!(
                f,
                "no DMAR table: this kernel needs Intel VT-d DMA remapping (QEMU: -machine q35 -device intel-iommu)"
            ),
            PlatformError::BadDmar(e) => write!(f, "DMAR table rejected: {e}"),
            PlatformError::NoMadt => {
                write!(f, "no MADT (APIC) table: the local APIC and IOAPIC addresses are unknown")
            }
            PlatformError::NoDrhd => write!(f, "DMAR table lists no DMA remapping unit (DRHD)"),
            PlatformError::TooManyIommus(n) => write!(f, "{n} DMA remapping units, at most {MAX_IOMMUS} supported"),
            PlatformError::OutOfRange { what, paddr } => {
                write!(f, "{what} at {paddr:#x} is outside usable physical memory or misaligned")
            }
            PlatformError::Reserved(e) => write!(f, "{e}"),
            PlatformError::BadHpet(e) => write!(f, "{e}"),
            PlatformError::RegisterLayout { unit, error } => write!(f, "iommu{unit}: {error}"),
        }
    }
}

/// Maps ACPI tables through the direct map (nothing to map or unmap).
#[derive(Clone, Copy)]
struct DirectMapAcpi {
    limit: u64,
}

impl AcpiHandler for DirectMapAcpi {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        // Firmware input, not a kernel bug: refused as bad boot input (the trait cannot
        // return an error).
        let end = (physical_address as u64).checked_add(size as u64);
        if end.is_none_or(|end| end > self.limit) {
            crate::boot::init::boot_error(format_args!(
                "ACPI table at {physical_address:#x} (+{size:#x} bytes) is outside the direct map (below {:#x})",
                self.limit
            ));
        }
        let virt = NonNull::new(phys_to_virt(physical_address as u64) as *mut T).expect("direct map is never null");
        // SAFETY: the region lies in the direct map (checked above), which is mapped for
        // the kernel's life; unmapping is a no-op.
        unsafe { PhysicalMapping::new(physical_address, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What the kernel knows about the machine after boot.
pub struct Platform {
    /// ACPI facts for bootinfo.
    pub acpi: AcpiSummary,
    /// The parsed DMAR (boot memory, sized by counting the table first).
    pub dmar: DmarInfo,
    /// PCI functions found, each with the DRHD covering it and its alias group (boot
    /// memory, sized by a counting scan).
    pub pci: PciDeviceList<'static>,
    /// CAP/ECAP of each DRHD, in DMAR order.
    pub iommu_regs: [(u64, u64); MAX_IOMMUS],
    /// Physical ranges that never become device untyped, with reasons: the MSI window,
    /// HPET, and the register blocks the kernel owns (IOMMU, APICs, ECAM).
    pub excluded: Exclusions,
    /// ISA IRQ -> (GSI, level triggered, active low), from the MADT overrides.
    pub isa_irqs: [(u8, bool, bool); 16],
}

/// Finds and checks the ACPI tables, the IOMMUs and the PCI devices. `ram` is the RAM
/// of the memory map: no register block may overlap it. The PCI function list and the
/// alias-group scratch come from `alloc`, sized by a first scan that only counts; so do
/// the DMAR's units, RMRRs and device scopes (with room for `extra_rmrrs` more RMRRs of
/// one scope each, for `test_rmrr=`).
pub fn discover(
    phys: &DirectMap,
    rsdp: Option<u64>,
    ram: &RangeSet,
    alloc: &mut BootAllocator,
    extra_rmrrs: usize,
) -> Result<Platform, PlatformError> {
    let handler = DirectMapAcpi { limit: phys.limit };
    // SAFETY: the handler maps through the direct map; the RSDP address comes from the
    // loader and the crate validates signature and checksum before trusting it.
    let tables = unsafe {
        match rsdp {
            Some(addr) => AcpiTables::from_rsdp(handler, addr as usize),
            None => AcpiTables::search_for_rsdp_bios(handler),
        }
    }
    .map_err(PlatformError::Acpi)?;
    match rsdp {
        // Under UEFI there is no BIOS area to scan: the loader's RSDP is the only way.
        Some(addr) => info!("acpi: RSDP at {addr:#x} (from the boot loader)"),
        None => info!("acpi: RSDP found by scanning the BIOS area"),
    }
    let mut acpi = AcpiSummary { rsdp_paddr: rsdp.unwrap_or(0), ..Default::default() };
    let mut excluded = Exclusions::new();
    let kernel_reaches = Some(phys.limit);
    // Identity unless overridden: edge triggered, active high.
    let mut isa_irqs = [(0u8, false, false); 16];
    for (i, e) in isa_irqs.iter_mut().enumerate() {
        e.0 = i as u8;
    }

    if let Ok(madt) = tables.find_table::<Madt>() {
        let madt = madt.get();
        acpi.lapic_paddr = u64::from(madt.local_apic_address);
        for entry in madt.entries() {
            match entry {
                MadtEntry::LocalApic(e) if e.flags & 1 != 0 => acpi.cpu_count += 1,
                MadtEntry::IoApic(e) => {
                    let address = u64::from(e.io_apic_address);
                    if acpi.ioapic_count == 0 {
                        acpi.ioapic_paddr = address;
                    }
                    acpi.ioapic_count += 1;
                    let range = Range::new(address & !(PAGE - 1), IOAPIC_BYTES);
                    excluded
                        .add_mmio(ram, kernel_reaches, "IOAPIC", range, "IOAPIC registers (the kernel's)")
                        .map_err(PlatformError::Reserved)?;
                }
                MadtEntry::LocalApicAddressOverride(e) => acpi.lapic_paddr = e.local_apic_address,
                MadtEntry::InterruptSourceOverride(e) if e.bus == 0 && e.irq < 16 => {
                    // Flags: polarity bits 1:0 (3 = active low), trigger bits 3:2 (3 = level).
                    let flags = e.flags;
                    let gsi = e.global_system_interrupt;
                    isa_irqs[usize::from(e.irq)] = (gsi.min(255) as u8, (flags >> 2) & 3 == 3, flags & 3 == 3);
                }
                _ => {}
            }
        }
        let range = Range::new(acpi.lapic_paddr & !(PAGE - 1), LAPIC_BYTES);
        excluded
            .add_mmio(ram, kernel_reaches, "local APIC", range, "local APIC registers (the kernel's)")
            .map_err(PlatformError::Reserved)?;
        info!(
            "acpi: MADT: {} cpus, local APIC {:#x}, {} IOAPICs (first {:#x})",
            acpi.cpu_count, acpi.lapic_paddr, acpi.ioapic_count, acpi.ioapic_paddr
        );
    } else {
        // Without it the kernel would program a local APIC and IOAPIC at address 0: RAM.
        return Err(PlatformError::NoMadt);
    }

    let mut ecam = None;
    if let Ok(mcfg) = tables.find_table::<Mcfg>() {
        for entry in mcfg.get().entries() {
            let (base, segment, start, end) =
                (entry.base_address, entry.pci_segment_group, entry.bus_number_start, entry.bus_number_end);
            info!("acpi: MCFG: segment {segment} buses {start:#x}..={end:#x} ECAM {base:#x}");
            let bytes = (u64::from(end.saturating_sub(start)) + 1) << 20;
            if segment != 0 || ecam.is_some() || end < start {
                continue;
            }
            if base % PAGE != 0 || base.saturating_add(bytes) > phys.limit {
                return Err(PlatformError::OutOfRange { what: "PCI ECAM", paddr: base });
            }
            excluded
                .add_mmio(
                    ram,
                    kernel_reaches,
                    "PCI ECAM",
                    Range::new(base, bytes),
                    "PCI ECAM (config space via the kernel)",
                )
                .map_err(PlatformError::Reserved)?;
            acpi.ecam_paddr = base;
            acpi.ecam_bus_start = start;
            acpi.ecam_bus_end = end;
            ecam = Some(Ecam { base, bus_start: start, bus_end: end });
        }
    } else {
        info!("acpi: no MCFG: PCI devices are not enumerated");
    }

    let dmar_mapping = tables.find_table::<Dmar>().map_err(|_| PlatformError::NoDmar)?;
    let dmar_paddr = dmar_mapping.physical_start() as u64;
    let dmar_len = dmar_mapping.get().table_length() as usize;
    let dmar_bytes =
        phys.bytes(dmar_paddr, dmar_len).ok_or(PlatformError::OutOfRange { what: "DMAR table", paddr: dmar_paddr })?;
    // Count, then allocate exactly that, then fill (the counts are bounded by the
    // table's own length, checked by the first pass).
    let counts = dmar::count_dmar(dmar_bytes).map_err(PlatformError::BadDmar)?;
    let mut dmar = DmarInfo::with_storage(
        boot_slice(alloc, counts.drhds, "DMAR remapping-unit records"),
        boot_slice(alloc, counts.rmrrs.saturating_add(extra_rmrrs), "DMAR RMRR records"),
        boot_slice(alloc, counts.scopes.saturating_add(extra_rmrrs), "DMAR device-scope records"),
    );
    dmar::parse_dmar_into(dmar_bytes, &mut dmar).map_err(PlatformError::BadDmar)?;
    acpi.dmar_host_address_width = dmar.host_address_width;
    acpi.dmar_flags = dmar.flags;
    info!(
        "acpi: DMAR at {dmar_paddr:#x}: host address width {} bits, flags {:#x}, {} DRHD, {} RMRR",
        dmar.host_address_width,
        dmar.flags,
        dmar.drhds().len(),
        dmar.rmrrs().len()
    );
    if dmar.drhds().is_empty() {
        return Err(PlatformError::NoDrhd);
    }
    if dmar.drhds().len() > MAX_IOMMUS {
        return Err(PlatformError::TooManyIommus(dmar.drhds().len()));
    }
    let mut iommu_regs = [(0u64, 0u64); MAX_IOMMUS];
    for (i, unit) in dmar.drhds().iter().enumerate() {
        let base = unit.register_base;
        if base % PAGE != 0 || base.saturating_add(VTD_REGISTER_BYTES) > phys.limit {
            return Err(PlatformError::OutOfRange { what: "VT-d register block", paddr: base });
        }
        let bytes = register_set::register_set_bytes(unit.size);
        excluded
            .add_mmio(
                ram,
                kernel_reaches,
                "VT-d register block",
                Range::new(base, bytes),
                "VT-d registers (the kernel's)",
            )
            .map_err(PlatformError::Reserved)?;
        // SAFETY: the block is page-aligned inside the uncached direct map; VER, CAP and
        // ECAP are read-only registers without read side effects.
        let (version, cap, ecap) = unsafe {
            (
                mmio::read32(base + core::mem::offset_of!(VtdRegisters, version) as u64),
                mmio::read64(base + core::mem::offset_of!(VtdRegisters, cap) as u64),
                mmio::read64(base + core::mem::offset_of!(VtdRegisters, ecap) as u64),
            )
        };
        iommu_regs[i] = (cap, ecap);
        info!(
            "iommu{i}: base={base:#x} segment={} version={}.{} include-all={} scopes={}",
            unit.segment,
            (version >> 4) & 0xf,
            version & 0xf,
            unit.include_pci_all(),
            unit.scopes.len
        );
        info!("iommu{i}: cap={cap:#018x} {}", CapabilityDecode::from_raw(cap));
        info!("iommu{i}: ecap={ecap:#018x} {}", ExtendedCapabilityDecode::from_raw(ecap));
        for scope in dmar.scopes(unit.scopes) {
            info!("iommu{i}: scope {scope}");
        }
        // The kernel makes MMIO references from ECAP.IRO and CAP.FRO/NFR: they must stay
        // inside the register set reserved above (and the direct map).
        let decoded = (CapabilityDecode::from_raw(cap), ExtendedCapabilityDecode::from_raw(ecap));
        let reach = register_set::check(&decoded.0, &decoded.1, bytes)
            .map_err(|error| PlatformError::RegisterLayout { unit: i, error })?;
        if base.saturating_add(reach) > phys.limit {
            return Err(PlatformError::OutOfRange { what: "VT-d register block", paddr: base });
        }
    }
    for (i, rmrr) in dmar.rmrrs().iter().enumerate() {
        info!("rmrr{i}: {:#x}..={:#x} segment {} ({} devices)", rmrr.base, rmrr.limit, rmrr.segment, rmrr.scopes.len);
    }

    // The HPET's FSB interrupt write reaches memory outside VT-d: its block (from the
    // ACPI table when present; QEMU's fixed page is always excluded) is never handed out.
    if let Ok(hpet) = tables.find_table::<acpi::hpet::HpetTable>() {
        let paddr = hpet.physical_start() as u64;
        let bytes =
            phys.bytes(paddr, hpet.region_length()).ok_or(PlatformError::OutOfRange { what: "HPET table", paddr })?;
        let base = reserved::parse_hpet(bytes).map_err(PlatformError::BadHpet)?;
        info!("acpi: HPET block at {base:#x}");
        excluded
            .add_mmio(ram, None, "HPET", Range::new(base, PAGE), "HPET (ACPI): its FSB interrupt write bypasses VT-d")
            .map_err(PlatformError::Reserved)?;
    }
    excluded.check_ram(ram).map_err(PlatformError::Reserved)?;
    for e in excluded.as_slice() {
        info!("reserved: {} {}", e.range, e.reason);
    }
    for p in abi::reserved::RESERVED_IO_PORTS {
        info!("reserved: I/O ports {:#06x}..={:#06x} {}", p.first, p.last, p.reason);
    }
    if let Ok(fadt) = tables.find_table::<acpi::fadt::Fadt>() {
        let smi = fadt.get().smi_cmd_port;
        match u16::try_from(smi) {
            Ok(port) if reserved::reserve_smi_port(port) => {
                info!("reserved: I/O port {port:#06x} the FADT's SMI command port (runs firmware SMM code)")
            }
            Ok(_) => {}
            Err(_) => crate::warn!("acpi: FADT SMI command port {smi:#x} is not an I/O port; ignored"),
        }
    }

    // Count (a list with no room only counts), then allocate, then fill.
    let mut counted = PciDeviceList::new(&mut []);
    if let Some(ecam) = &ecam {
        pci::enumerate(ecam, 0, ecam.bus_start, ecam.bus_end, &mut counted);
    }
    let found = counted.overflowed();
    let mut devices = PciDeviceList::new(boot_slice(alloc, found, "PCI function records"));
    if let Some(ecam) = &ecam {
        pci::enumerate(ecam, 0, ecam.bus_start, ecam.bus_end, &mut devices);
    }
    for i in 0..devices.as_slice().len() {
        let dev = devices.as_slice()[i];
        let drhd = pci::covering_drhd(&dmar, &dev, &devices);
        // At most MAX_IOMMUS (< NO_DRHD) units were accepted above.
        devices.as_mut_slice()[i].desc.drhd_index = drhd.map_or(NO_DRHD, |d| d as u8);
        info!(
            "pci {:04x}:{:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}.{:02x}.{:02x} drhd={}",
            dev.desc.segment,
            dev.bus(),
            dev.device(),
            dev.function(),
            dev.desc.vendor_id,
            dev.desc.device_id,
            dev.desc.class,
            dev.desc.subclass,
            dev.desc.prog_if,
            drhd.map_or(-1, |d| d as i64)
        );
    }
    if devices.overflowed() > 0 {
        // Only if a function appeared between the two scans.
        crate::warn!("{} PCI functions appeared after they were counted; not used", devices.overflowed());
    }
    let count = devices.as_slice().len();
    let pci_group = boot_slice::<u16>(alloc, count, "PCI alias-group records");
    pci::alias_groups(&devices, boot_slice(alloc, count, "PCI alias-id records"), pci_group);
    for (dev, &group) in devices.as_mut_slice().iter_mut().zip(pci_group.iter()) {
        dev.desc.alias_group = group;
    }
    log_alias_groups(&devices, pci_group);
    Ok(Platform { acpi, dmar, pci: devices, iommu_regs, excluded, isa_irqs })
}

/// Logs every alias group of more than one function, or whose DMA carries another id:
/// `pci: alias group 01:00.0 (DMA as 01:00.0): 01:00.0 01:01.0`.
fn log_alias_groups(devices: &PciDeviceList<'_>, groups: &[u16]) {
    let list = devices.as_slice();
    let bdf = |d: &pci::PciDevice| (d.bus(), d.device(), d.function());
    for (leader, dev) in list.iter().enumerate().filter(|&(i, _)| usize::from(groups[i]) == i) {
        let wire = pci::wire_id(dev, devices);
        let size = groups[..list.len()].iter().filter(|&&g| usize::from(g) == leader).count();
        if size == 1 && wire == dev.requester_id() {
            continue;
        }
        let (b, d, f) = bdf(dev);
        info!(
            "pci: alias group {b:02x}:{d:02x}.{f} (DMA as {:02x}:{:02x}.{}):{}",
            wire >> 8,
            (wire >> 3) & 0x1f,
            wire & 7,
            Members(list, groups, leader)
        );
    }
}

/// Formats the members of alias group `.2` as ` BB:DD.F` each.
struct Members<'a>(&'a [pci::PciDevice], &'a [u16], usize);

impl core::fmt::Display for Members<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (_, m) in self.0.iter().enumerate().filter(|&(j, _)| usize::from(self.1[j]) == self.2) {
            write!(f, " {:02x}:{:02x}.{}", m.bus(), m.device(), m.function())?;
        }
        Ok(())
    }
}

impl Platform {
    /// The IOMMU list bootinfo reports, in boot memory (one per DRHD).
    pub fn iommu_descs(&self, alloc: &mut BootAllocator) -> &'static [IommuDesc] {
        let units = self.dmar.drhds();
        let out = boot_slice::<IommuDesc>(alloc, units.len(), "IOMMU descriptors");
        for ((d, unit), regs) in out.iter_mut().zip(units).zip(&self.iommu_regs) {
            *d = IommuDesc {
                register_base: unit.register_base,
                cap: regs.0,
                ecap: regs.1,
                segment: unit.segment,
                flags: unit.flags,
                _reserved: [0; 5],
            };
        }
        out
    }

    /// The RMRR list bootinfo reports, in boot memory (every RMRR, however many).
    pub fn rmrr_descs(&self, alloc: &mut BootAllocator) -> &'static [RmrrDesc] {
        let rmrrs = self.dmar.rmrrs();
        let out = boot_slice::<RmrrDesc>(alloc, rmrrs.len(), "RMRR descriptors");
        for (d, rmrr) in out.iter_mut().zip(rmrrs) {
            *d = RmrrDesc {
                base: rmrr.base,
                limit: rmrr.limit,
                segment: rmrr.segment,
                scope_count: u16::try_from(rmrr.scopes.len).unwrap_or(u16::MAX),
                _reserved: [0; 4],
            };
        }
        out
    }

    /// The PCI functions bootinfo reports, in bus/device/function order.
    pub fn pci_descs(&self) -> impl Iterator<Item = abi::bootinfo::PciDeviceDesc> + '_ {
        self.pci.as_slice().iter().map(|d| d.desc)
    }
}
