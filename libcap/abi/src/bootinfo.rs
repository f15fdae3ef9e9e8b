//! The bootinfo frames the kernel hands the root task.
//!
//! The bootinfo frames the kernel hands the root task: what memory, devices and
//! capabilities exist. Versioned, `#[repr(C)]`, every size asserted.
//!
//! The root task finds it at [`crate::layout::ROOT_BOOTINFO_VADDR`] (pointer also in `rdi`
//! at entry) and must check [`BootInfo::magic`], [`BootInfo::version`] and
//! [`BootInfo::size`] before trusting anything else.

use static_assertions::const_assert;
use static_assertions::const_assert_eq;

/// "CAPBOOTI" in little-endian.
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"CAPBOOTI");
/// Current layout version; bump on any change below.
pub const BOOTINFO_VERSION: u32 = 3;
/// Capacity of the untyped list.
pub const MAX_UNTYPED: usize = 192;
/// Capacity of the IOMMU (DRHD) list.
pub const MAX_IOMMUS: usize = 8;
/// Capacity of the RMRR list.
pub const MAX_RMRRS: usize = 8;
/// Capacity of the PCI device list.
pub const MAX_PCI_DEVICES: usize = 64;
/// Number of 4 KiB frames the bootinfo occupies.
pub const BOOTINFO_FRAMES: usize = 2;

/// A half-open range of slots `[start, end)` in the root CNode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotRegion {
    /// First slot.
    pub start: u64,
    /// One past the last slot.
    pub end: u64,
}

impl SlotRegion {
    /// Number of slots.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// Whether the region has no slots.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One untyped capability: a naturally aligned power-of-two physical region.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UntypedDesc {
    /// Physical base address (aligned to `1 << size_bits`).
    pub paddr: u64,
    /// log2 of the size in bytes.
    pub size_bits: u8,
    /// 1 if this is device memory (MMIO): only frames, never DMA-mappable.
    pub is_device: u8,
    /// Reserved, zero.
    pub _reserved: [u8; 6],
}

/// How the kernel was started.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootProtocol {
    /// Xen PVH direct boot (`qemu -kernel`).
    Pvh = 1,
    /// Multiboot2 (GRUB).
    Multiboot2 = 2,
}

/// One VT-d remapping hardware unit (DRHD) and its decoded capabilities.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IommuDesc {
    /// Physical address of the register block.
    pub register_base: u64,
    /// The CAP register as read at boot.
    pub cap: u64,
    /// The ECAP register as read at boot.
    pub ecap: u64,
    /// PCI segment this unit serves.
    pub segment: u16,
    /// DRHD flags (bit 0: INCLUDE_PCI_ALL).
    pub flags: u8,
    /// Reserved, zero.
    pub _reserved: [u8; 5],
}

/// A reserved memory region (RMRR) a device needs identity-mapped.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RmrrDesc {
    /// First byte.
    pub base: u64,
    /// Last byte (inclusive).
    pub limit: u64,
    /// PCI segment.
    pub segment: u16,
    /// Number of device scopes it lists.
    pub scope_count: u16,
    /// Reserved, zero.
    pub _reserved: [u8; 4],
}

/// Value of [`PciDeviceDesc::drhd_index`] when no IOMMU covers the device.
pub const NO_DRHD: u8 = 0xff;

/// One PCI function found at boot. Its PciDevice capability is at
/// `pci_device_caps.start + index`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciDeviceDesc {
    /// PCI segment.
    pub segment: u16,
    /// Bus number.
    pub bus: u8,
    /// Device (bits 7..3) and function (bits 2..0), as in a requester id.
    pub devfn: u8,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Class code.
    pub class: u8,
    /// Subclass code.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Header type (bit 7 multi-function masked off).
    pub header_type: u8,
    /// Index into [`BootInfo::iommus`] of the DRHD covering it, or [`NO_DRHD`].
    pub drhd_index: u8,
    /// Its DMA alias group: the index (into [`BootInfo::pci_devices`]) of the group's
    /// first member; its own index if its DMA carries an id no other function's does.
    /// Functions whose DMA can carry the same requester id (behind a PCIe-to-PCI or
    /// conventional PCI bridge) are one group: IOSpace Assign / Unassign take caps to
    /// all of them, and their MSIs are checked against the group's requester id.
    pub alias_group: u8,
    /// Reserved, zero.
    pub _reserved: [u8; 2],
}

impl PciDeviceDesc {
    /// The 16-bit requester id (bus << 8 | devfn) the IOMMU sees.
    pub const fn requester_id(&self) -> u16 {
        ((self.bus as u16) << 8) | self.devfn as u16
    }
}

/// What the kernel learnt from ACPI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcpiSummary {
    /// Physical address of the RSDP.
    pub rsdp_paddr: u64,
    /// Physical address of the local APIC.
    pub lapic_paddr: u64,
    /// Physical address of the first IOAPIC (0 if none).
    pub ioapic_paddr: u64,
    /// Physical base of PCI ECAM for segment 0 (0 if none).
    pub ecam_paddr: u64,
    /// First ECAM bus.
    pub ecam_bus_start: u8,
    /// Last ECAM bus.
    pub ecam_bus_end: u8,
    /// DMAR host address width in bits.
    pub dmar_host_address_width: u8,
    /// DMAR flags (bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT).
    pub dmar_flags: u8,
    /// Number of processors (enabled local APICs) in the MADT.
    pub cpu_count: u16,
    /// Number of IOAPICs in the MADT.
    pub ioapic_count: u16,
}

/// The bootinfo structure itself.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// [`BOOTINFO_MAGIC`].
    pub magic: u64,
    /// [`BOOTINFO_VERSION`].
    pub version: u32,
    /// `size_of::<BootInfo>()` as the kernel built it.
    pub size: u32,
    /// A [`BootProtocol`] raw value.
    pub boot_protocol: u32,
    /// log2 of the root CNode's slot count.
    pub init_cnode_radix: u32,
    /// Virtual address of the root task's IPC buffer.
    pub ipc_buffer: u64,
    /// Free slots of the root CNode.
    pub empty: SlotRegion,
    /// Slots holding the untyped caps, in [`BootInfo::untyped`] order.
    pub untyped_caps: SlotRegion,
    /// Slots holding the PciDevice caps, in [`BootInfo::pci_devices`] order.
    pub pci_device_caps: SlotRegion,
    /// Slots holding caps to the root task's own image frames (its ELF segments), in
    /// ascending virtual address order; each is mapped where the image uses it
    /// (`FrameGetAddress` reports physical address and mapping address).
    pub user_image_frames: SlotRegion,
    /// Virtual address of the first page of the root task's image.
    pub user_image_vaddr: u64,
    /// ACPI facts.
    pub acpi: AcpiSummary,
    /// Valid entries in `untyped`.
    pub untyped_count: u32,
    /// Valid entries in `iommus`.
    pub iommu_count: u32,
    /// Valid entries in `rmrrs`.
    pub rmrr_count: u32,
    /// Valid entries in `pci_devices`.
    pub pci_device_count: u32,
    /// Untyped regions, RAM first then device memory.
    pub untyped: [UntypedDesc; MAX_UNTYPED],
    /// IOMMU units from the DMAR.
    pub iommus: [IommuDesc; MAX_IOMMUS],
    /// RMRR regions from the DMAR.
    pub rmrrs: [RmrrDesc; MAX_RMRRS],
    /// PCI functions found.
    pub pci_devices: [PciDeviceDesc; MAX_PCI_DEVICES],
}

const_assert_eq!(core::mem::size_of::<SlotRegion>(), 16);
const_assert_eq!(core::mem::size_of::<UntypedDesc>(), 16);
const_assert_eq!(core::mem::size_of::<IommuDesc>(), 32);
const_assert_eq!(core::mem::size_of::<RmrrDesc>(), 24);
const_assert_eq!(core::mem::size_of::<PciDeviceDesc>(), 16);
const_assert_eq!(core::mem::size_of::<AcpiSummary>(), 40);
const_assert_eq!(core::mem::size_of::<BootInfo>(), 4704);
const_assert!(core::mem::size_of::<BootInfo>() <= BOOTINFO_FRAMES * 4096);

impl BootInfo {
    /// An empty bootinfo with the header filled in.
    pub const fn empty() -> Self {
        BootInfo {
            magic: BOOTINFO_MAGIC,
            version: BOOTINFO_VERSION,
            size: core::mem::size_of::<BootInfo>() as u32,
            boot_protocol: 0,
            init_cnode_radix: 0,
            ipc_buffer: 0,
            empty: SlotRegion { start: 0, end: 0 },
            untyped_caps: SlotRegion { start: 0, end: 0 },
            pci_device_caps: SlotRegion { start: 0, end: 0 },
            user_image_frames: SlotRegion { start: 0, end: 0 },
            user_image_vaddr: 0,
            acpi: AcpiSummary {
                rsdp_paddr: 0,
                lapic_paddr: 0,
                ioapic_paddr: 0,
                ecam_paddr: 0,
                ecam_bus_start: 0,
                ecam_bus_end: 0,
                dmar_host_address_width: 0,
                dmar_flags: 0,
                cpu_count: 0,
                ioapic_count: 0,
            },
            untyped_count: 0,
            iommu_count: 0,
            rmrr_count: 0,
            pci_device_count: 0,
            untyped: [UntypedDesc { paddr: 0, size_bits: 0, is_device: 0, _reserved: [0; 6] }; MAX_UNTYPED],
            iommus: [IommuDesc { register_base: 0, cap: 0, ecap: 0, segment: 0, flags: 0, _reserved: [0; 5] };
                MAX_IOMMUS],
            rmrrs: [RmrrDesc { base: 0, limit: 0, segment: 0, scope_count: 0, _reserved: [0; 4] }; MAX_RMRRS],
            pci_devices: [PciDeviceDesc {
                segment: 0,
                bus: 0,
                devfn: 0,
                vendor_id: 0,
                device_id: 0,
                class: 0,
                subclass: 0,
                prog_if: 0,
                header_type: 0,
                drhd_index: NO_DRHD,
                alias_group: 0,
                _reserved: [0; 2],
            }; MAX_PCI_DEVICES],
        }
    }

    /// Whether the header matches what this build of the ABI expects.
    pub fn is_valid(&self) -> bool {
        self.magic == BOOTINFO_MAGIC
            && self.version == BOOTINFO_VERSION
            && self.size as usize == core::mem::size_of::<BootInfo>()
            && self.untyped_count as usize <= MAX_UNTYPED
            && self.iommu_count as usize <= MAX_IOMMUS
            && self.rmrr_count as usize <= MAX_RMRRS
            && self.pci_device_count as usize <= MAX_PCI_DEVICES
    }

    /// The valid untyped entries.
    pub fn untyped(&self) -> &[UntypedDesc] {
        &self.untyped[..(self.untyped_count as usize).min(MAX_UNTYPED)]
    }

    /// The valid IOMMU entries.
    pub fn iommus(&self) -> &[IommuDesc] {
        &self.iommus[..(self.iommu_count as usize).min(MAX_IOMMUS)]
    }

    /// The valid PCI device entries.
    pub fn pci_devices(&self) -> &[PciDeviceDesc] {
        &self.pci_devices[..(self.pci_device_count as usize).min(MAX_PCI_DEVICES)]
    }

    /// Indices (into [`BootInfo::pci_devices`]) of the members of the alias group of
    /// device `index`, itself included, in bootinfo order.
    pub fn alias_group_of(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let group = self.pci_devices().get(index).map(|d| d.alias_group);
        self.pci_devices().iter().enumerate().filter(move |(_, d)| Some(d.alias_group) == group).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_valid_and_counts_are_checked() {
        let mut bi = BootInfo::empty();
        assert!(bi.is_valid());
        assert!(bi.untyped().is_empty());
        bi.untyped_count = MAX_UNTYPED as u32 + 1;
        assert!(!bi.is_valid());
        assert_eq!(bi.untyped().len(), MAX_UNTYPED);
    }

    #[test]
    fn alias_group_members() {
        let mut bi = BootInfo::empty();
        bi.pci_device_count = 4;
        for (i, g) in [0u8, 1, 1, 3].iter().enumerate() {
            bi.pci_devices[i].alias_group = *g;
        }
        assert_eq!(bi.alias_group_of(2).collect::<std::vec::Vec<_>>(), [1, 2]);
        assert_eq!(bi.alias_group_of(3).collect::<std::vec::Vec<_>>(), [3]);
        assert_eq!(bi.alias_group_of(9).count(), 0);
    }

    #[test]
    fn requester_id() {
        let d = PciDeviceDesc { bus: 0, devfn: (3 << 3) | 1, ..Default::default() };
        assert_eq!(d.requester_id(), 0x19);
    }
}
