//! The bootinfo the kernel hands the root task: a header, then variable arrays.
//!
//! The root task finds it at [`crate::layout::ROOT_BOOTINFO_VADDR`] (pointer also in `rdi`
//! at entry) and must check [`BootInfo::is_valid`] before trusting anything else. The
//! header ([`BootInfo`], `#[repr(C)]`, every size asserted) gives the total size and,
//! per array (untyped, IOMMUs, RMRRs, PCI functions), an [`ArrayRef`] (byte offset from
//! the header's start and count); the arrays follow the header in as many frames as they
//! need, at most [`BOOTINFO_MAX_FRAMES`]. The kernel lays it out with [`encode`]; the
//! accessors ([`BootInfo::untyped`], [`BootInfo::pci_devices`], ...) check every offset.

use static_assertions::const_assert;
use static_assertions::const_assert_eq;

/// "CAPBOOTI" in little-endian.
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"CAPBOOTI");
/// Current layout version; bump on any change below.
pub const BOOTINFO_VERSION: u32 = 5;
/// Most IOMMU (DRHD) units the kernel drives (not an array capacity: the bootinfo's
/// IOMMU and RMRR arrays are as long as the kernel makes them).
pub const MAX_IOMMUS: usize = 8;
/// Most 4 KiB frames the bootinfo may occupy: the room below the root task's IPC buffer
/// ([`crate::layout::ROOT_IPC_BUFFER_VADDR`]). 64 KiB hold, for example, 3,000 PCI
/// functions and 900 untyped regions.
pub const BOOTINFO_MAX_FRAMES: usize = 16;

/// Where one variable array lies: `count` entries from byte `offset` of the bootinfo.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArrayRef {
    /// Byte offset from the start of the header (aligned for the entry type).
    pub offset: u32,
    /// Number of entries.
    pub count: u32,
}

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
    /// Reserved, zero.
    pub _reserved: u8,
    /// Its DMA alias group: the index (into [`BootInfo::pci_devices`]) of the group's
    /// first member; its own index if its DMA carries an id no other function's does.
    /// Functions whose DMA can carry the same requester id (behind a PCIe-to-PCI or
    /// conventional PCI bridge) are one group: IOSpace Assign / Unassign take caps to
    /// all of them, and their MSIs are checked against the group's requester id.
    pub alias_group: u16,
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

/// The bootinfo header; the arrays it names follow it (see the module docs).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// [`BOOTINFO_MAGIC`].
    pub magic: u64,
    /// [`BOOTINFO_VERSION`].
    pub version: u32,
    /// Total bytes: the header and every array (at most [`BOOTINFO_MAX_FRAMES`] pages).
    pub size: u32,
    /// A [`BootProtocol`] raw value.
    pub boot_protocol: u32,
    /// log2 of the root CNode's slot count (sized by the kernel from what boot found).
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
    /// Untyped regions ([`UntypedDesc`]), RAM first then device memory.
    pub untyped_array: ArrayRef,
    /// IOMMU units from the DMAR ([`IommuDesc`]).
    pub iommu_array: ArrayRef,
    /// RMRR regions from the DMAR ([`RmrrDesc`]).
    pub rmrr_array: ArrayRef,
    /// PCI functions found ([`PciDeviceDesc`]).
    pub pci_device_array: ArrayRef,
    /// Slots holding read-only Frame caps (original caps, not derived from any untyped)
    /// to the pages of the boot image, in ascending address order; each is mapped
    /// read-only at `boot_image_vaddr + i * 4096`.
    pub boot_image_frames: SlotRegion,
    /// Virtual address of the boot image's first page in the root task's VSpace
    /// ([`crate::layout::ROOT_BOOT_IMAGE_VADDR`]).
    pub boot_image_vaddr: u64,
    /// Offset of the image's first byte in its first page.
    pub boot_image_offset: u64,
    /// Length of the boot image in bytes.
    pub boot_image_size: u64,
}

const_assert_eq!(core::mem::size_of::<SlotRegion>(), 16);
const_assert_eq!(core::mem::size_of::<ArrayRef>(), 8);
const_assert_eq!(core::mem::size_of::<UntypedDesc>(), 16);
const_assert_eq!(core::mem::size_of::<IommuDesc>(), 32);
const_assert_eq!(core::mem::size_of::<RmrrDesc>(), 24);
const_assert_eq!(core::mem::size_of::<PciDeviceDesc>(), 16);
const_assert_eq!(core::mem::size_of::<AcpiSummary>(), 40);
const_assert_eq!(core::mem::size_of::<BootInfo>(), 216);
const_assert!(core::mem::align_of::<BootInfo>() == 8);

/// Bytes [`encode`] needs for a bootinfo with these array lengths (None on overflow).
pub fn encoded_size(untyped: usize, iommus: usize, rmrrs: usize, pci: usize) -> Option<usize> {
    let mut at = core::mem::size_of::<BootInfo>();
    for (n, size) in [
        (untyped, core::mem::size_of::<UntypedDesc>()),
        (iommus, core::mem::size_of::<IommuDesc>()),
        (rmrrs, core::mem::size_of::<RmrrDesc>()),
        (pci, core::mem::size_of::<PciDeviceDesc>()),
    ] {
        at = at.checked_add(n.checked_mul(size)?)?.checked_next_multiple_of(8)?;
    }
    Some(at)
}

/// Why [`encode`] could not lay the bootinfo out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    /// Bytes needed (`usize::MAX` if that overflows).
    pub needed: usize,
    /// Bytes available.
    pub available: usize,
}

/// Writes `header` (its size and array fields replaced) followed by the arrays into
/// `out`, 8-byte aligned words; returns the bytes used. Fails, writing nothing, if they
/// do not fit in `out` or in [`BOOTINFO_MAX_FRAMES`] pages.
pub fn encode(
    out: &mut [u64],
    header: &BootInfo,
    untyped: &[UntypedDesc],
    iommus: &[IommuDesc],
    rmrrs: &[RmrrDesc],
    pci: &[PciDeviceDesc],
) -> Result<usize, TooLarge> {
    let available = core::mem::size_of_val(out).min(BOOTINFO_MAX_FRAMES * 4096);
    let needed = encoded_size(untyped.len(), iommus.len(), rmrrs.len(), pci.len()).unwrap_or(usize::MAX);
    if needed > available {
        return Err(TooLarge { needed, available });
    }
    let mut bi = *header;
    bi.magic = BOOTINFO_MAGIC;
    bi.version = BOOTINFO_VERSION;
    bi.size = needed as u32;
    let base = out.as_mut_ptr().cast::<u8>();
    let mut at = core::mem::size_of::<BootInfo>();
    /// Copies `items` to byte `at` of `base` and returns where they are.
    fn put<T: Copy>(base: *mut u8, at: &mut usize, items: &[T]) -> ArrayRef {
        let r = ArrayRef { offset: *at as u32, count: items.len() as u32 };
        // SAFETY: `encode` checked that every array fits in `out` (which `base` points
        // into); `at` is a multiple of 8, enough for every entry type, and `T: Copy`.
        unsafe { core::ptr::copy_nonoverlapping(items.as_ptr(), base.add(*at).cast::<T>(), items.len()) };
        *at = (*at + core::mem::size_of_val(items)).next_multiple_of(8);
        r
    }
    bi.untyped_array = put(base, &mut at, untyped);
    bi.iommu_array = put(base, &mut at, iommus);
    bi.rmrr_array = put(base, &mut at, rmrrs);
    bi.pci_device_array = put(base, &mut at, pci);
    // SAFETY: `out` is 8-byte aligned and holds at least the header (`needed` includes it).
    unsafe { base.cast::<BootInfo>().write(bi) };
    Ok(needed)
}

impl BootInfo {
    /// An empty header (no arrays, size of the header alone).
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
            untyped_array: ArrayRef { offset: 0, count: 0 },
            iommu_array: ArrayRef { offset: 0, count: 0 },
            rmrr_array: ArrayRef { offset: 0, count: 0 },
            pci_device_array: ArrayRef { offset: 0, count: 0 },
            boot_image_frames: SlotRegion { start: 0, end: 0 },
            boot_image_vaddr: 0,
            boot_image_offset: 0,
            boot_image_size: 0,
        }
    }

    /// Whether `r` names `T` entries inside `size` bytes, after the header, aligned.
    fn fits<T>(&self, r: ArrayRef) -> bool {
        let offset = r.offset as usize;
        let bytes = (r.count as usize).checked_mul(core::mem::size_of::<T>());
        r.count == 0
            || (offset >= core::mem::size_of::<BootInfo>()
                && offset.is_multiple_of(core::mem::align_of::<T>())
                && bytes.and_then(|b| b.checked_add(offset)).is_some_and(|end| end <= self.size as usize))
    }

    /// Whether the header matches what this build of the ABI expects and every array
    /// lies inside `size` bytes, which fit in [`BOOTINFO_MAX_FRAMES`] pages.
    pub fn is_valid(&self) -> bool {
        self.magic == BOOTINFO_MAGIC
            && self.version == BOOTINFO_VERSION
            && self.size as usize >= core::mem::size_of::<BootInfo>()
            && self.size as usize <= BOOTINFO_MAX_FRAMES * 4096
            && self.fits::<UntypedDesc>(self.untyped_array)
            && self.fits::<IommuDesc>(self.iommu_array)
            && self.fits::<RmrrDesc>(self.rmrr_array)
            && self.fits::<PciDeviceDesc>(self.pci_device_array)
    }

    /// The entries `r` names, or none if it does not fit (checked on every call).
    fn array<T>(&self, r: ArrayRef) -> &[T] {
        if r.count == 0 || !self.fits::<T>(r) {
            return &[];
        }
        // SAFETY: a `BootInfo` is only ever read where the kernel (or `encode`) put
        // `size` bytes of bootinfo: the header followed by its arrays, all readable for
        // as long as the header is. `fits` checked that the entries lie inside `size`,
        // after the header, aligned; the entry types are plain `#[repr(C)]` integers.
        unsafe {
            core::slice::from_raw_parts(
                (self as *const Self).cast::<u8>().add(r.offset as usize).cast::<T>(),
                r.count as usize,
            )
        }
    }

    /// The untyped entries.
    pub fn untyped(&self) -> &[UntypedDesc] {
        self.array(self.untyped_array)
    }

    /// The IOMMU entries.
    pub fn iommus(&self) -> &[IommuDesc] {
        self.array(self.iommu_array)
    }

    /// The RMRR entries.
    pub fn rmrrs(&self) -> &[RmrrDesc] {
        self.array(self.rmrr_array)
    }

    /// The PCI device entries.
    pub fn pci_devices(&self) -> &[PciDeviceDesc] {
        self.array(self.pci_device_array)
    }

    /// Whether the boot image fields are consistent: the image lies inside the pages
    /// `boot_image_frames` names, starting `boot_image_offset` (< 4096) into the first,
    /// in user space. An empty image (no frames, size 0) is consistent.
    pub fn boot_image_is_valid(&self) -> bool {
        let pages = self.boot_image_frames.len();
        let end = self.boot_image_offset.checked_add(self.boot_image_size);
        if pages == 0 || self.boot_image_size == 0 {
            return pages == 0 && self.boot_image_size == 0;
        }
        self.boot_image_offset < crate::layout::PAGE_SIZE
            && self.boot_image_vaddr.is_multiple_of(crate::layout::PAGE_SIZE)
            && end.is_some_and(|e| e.div_ceil(crate::layout::PAGE_SIZE) == pages)
            && pages
                .checked_mul(crate::layout::PAGE_SIZE)
                .is_some_and(|len| crate::layout::is_user_range(self.boot_image_vaddr, len))
    }

    /// The boot image's bytes, read where the kernel mapped them (empty if the fields
    /// are inconsistent, see [`BootInfo::boot_image_is_valid`]). Parse them with
    /// [`crate::bootimage::BootImage::parse`].
    ///
    /// Only meaningful in the root task's address space while the kernel's mapping
    /// stands: a root task that unmaps the boot image frames must not call it again.
    pub fn boot_image(&self) -> &[u8] {
        if self.boot_image_size == 0 || !self.boot_image_is_valid() {
            return &[];
        }
        // SAFETY: the kernel maps every page of the image read-only at
        // `boot_image_vaddr` in the root task's VSpace before it starts (and the host
        // tests point it at a live buffer); the checks above keep the slice inside
        // those pages, and bytes have no invalid values. The mapping lives as long as
        // the root task does not unmap it (documented above).
        unsafe {
            core::slice::from_raw_parts(
                (self.boot_image_vaddr + self.boot_image_offset) as *const u8,
                self.boot_image_size as usize,
            )
        }
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
    use std::vec;
    use std::vec::Vec;

    /// Encodes into a fresh 16-page buffer.
    fn encoded(untyped: &[UntypedDesc], pci: &[PciDeviceDesc]) -> Vec<u64> {
        let mut buf = vec![0u64; BOOTINFO_MAX_FRAMES * 512];
        let iommu = IommuDesc { register_base: 0xfed9_0000, cap: 1, ecap: 2, ..Default::default() };
        let mut header = BootInfo::empty();
        header.init_cnode_radix = 13;
        encode(&mut buf, &header, untyped, &[iommu], &[], pci).unwrap();
        buf
    }

    fn view(buf: &[u64]) -> &BootInfo {
        // SAFETY: the buffer is 8-byte aligned and holds an encoded bootinfo of `size` bytes.
        unsafe { &*buf.as_ptr().cast::<BootInfo>() }
    }

    #[test]
    fn round_trip_of_hundreds_of_functions() {
        let untyped: Vec<UntypedDesc> =
            (0..300).map(|i| UntypedDesc { paddr: i << 20, size_bits: 20, ..Default::default() }).collect();
        let pci: Vec<PciDeviceDesc> = (0..1000u16)
            .map(|i| PciDeviceDesc { bus: (i >> 8) as u8, devfn: i as u8, alias_group: i, ..Default::default() })
            .collect();
        let buf = encoded(&untyped, &pci);
        let bi = view(&buf);
        assert!(bi.is_valid());
        assert_eq!(bi.init_cnode_radix, 13);
        assert_eq!(bi.untyped(), &untyped[..]);
        assert_eq!(bi.pci_devices(), &pci[..]);
        assert_eq!(bi.iommus()[0].register_base, 0xfed9_0000);
        assert!(bi.rmrrs().is_empty());
        assert_eq!(bi.size as usize, encoded_size(300, 1, 0, 1000).unwrap());
        assert_eq!(bi.alias_group_of(999).collect::<Vec<_>>(), [999]);
    }

    /// The IOMMU and RMRR arrays are variable: more than 8 of each round-trip.
    #[test]
    fn many_iommus_and_rmrrs() {
        let iommus: Vec<IommuDesc> = (0..12u64)
            .map(|i| IommuDesc { register_base: 0xfed9_0000 + (i << 12), cap: i, ..Default::default() })
            .collect();
        let rmrrs: Vec<RmrrDesc> = (0..20u64)
            .map(|i| RmrrDesc { base: i << 20, limit: (i << 20) + 0xfff, scope_count: 300, ..Default::default() })
            .collect();
        let mut buf = vec![0u64; BOOTINFO_MAX_FRAMES * 512];
        encode(&mut buf, &BootInfo::empty(), &[], &iommus, &rmrrs, &[]).unwrap();
        let bi = view(&buf);
        assert!(bi.is_valid());
        assert_eq!(bi.iommus(), &iommus[..]);
        assert_eq!(bi.rmrrs(), &rmrrs[..]);
    }

    #[test]
    fn too_large_is_refused() {
        let pci = vec![PciDeviceDesc::default(); 5000];
        let mut buf = vec![0u64; BOOTINFO_MAX_FRAMES * 512];
        let e = encode(&mut buf, &BootInfo::empty(), &[], &[], &[], &pci).unwrap_err();
        assert_eq!(e.available, BOOTINFO_MAX_FRAMES * 4096);
        assert!(e.needed > e.available);
        assert!(buf.iter().all(|&w| w == 0), "nothing written");
        let mut small = vec![0u64; 16];
        assert!(encode(&mut small, &BootInfo::empty(), &[], &[], &[], &[]).is_err());
    }

    #[test]
    fn bad_offsets_are_refused() {
        let pci = vec![PciDeviceDesc::default(); 4];
        let mut buf = encoded(&[], &pci);
        assert!(view(&buf).is_valid());
        let mut bi = *view(&buf);
        for bad in [
            ArrayRef { offset: 8, count: 1 },           // inside the header
            ArrayRef { offset: bi.size - 8, count: 1 }, // runs past `size`
            ArrayRef { offset: 219, count: 1 },         // misaligned
            ArrayRef { offset: 216, count: u32::MAX },  // absurd count
        ] {
            bi.pci_device_array = bad;
            // SAFETY: the buffer is aligned and large enough for a header.
            unsafe { buf.as_mut_ptr().cast::<BootInfo>().write(bi) };
            assert!(!view(&buf).is_valid(), "{bad:?}");
            assert!(view(&buf).pci_devices().is_empty(), "{bad:?}");
        }
        bi = BootInfo::empty();
        bi.size = (BOOTINFO_MAX_FRAMES * 4096 + 8) as u32;
        assert!(!bi.is_valid());
        bi.size = 8;
        assert!(!bi.is_valid());
        assert!(BootInfo::empty().is_valid());
    }

    #[test]
    fn alias_group_members() {
        let pci: Vec<PciDeviceDesc> =
            [0u16, 1, 1, 3].iter().map(|&g| PciDeviceDesc { alias_group: g, ..Default::default() }).collect();
        let buf = encoded(&[], &pci);
        let bi = view(&buf);
        assert_eq!(bi.alias_group_of(2).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(bi.alias_group_of(3).collect::<Vec<_>>(), [3]);
        assert_eq!(bi.alias_group_of(9).count(), 0);
    }

    /// The accessor reads exactly the image's bytes inside the pages named, and refuses
    /// inconsistent fields (never a slice past the frames).
    #[test]
    fn boot_image_accessor() {
        #[repr(align(4096))]
        struct Pages([u8; 3 * 4096]);
        let mut pages = std::boxed::Box::new(Pages([0; 3 * 4096]));
        pages.0[100..110].copy_from_slice(b"CAPIMG01xy");
        let mut bi = BootInfo::empty();
        assert!(bi.boot_image_is_valid() && bi.boot_image().is_empty());
        bi.boot_image_vaddr = pages.0.as_ptr() as u64;
        bi.boot_image_offset = 100;
        bi.boot_image_size = 8200;
        bi.boot_image_frames = SlotRegion { start: 40, end: 43 };
        assert!(bi.boot_image_is_valid());
        assert_eq!(&bi.boot_image()[..10], b"CAPIMG01xy");
        assert_eq!(bi.boot_image().len(), 8200);
        for bad in [
            BootInfo { boot_image_size: 3 * 4096, ..bi }, // runs past the last frame
            BootInfo { boot_image_size: 10, ..bi },       // fewer pages than frames
            BootInfo { boot_image_offset: 4096, ..bi },   // offset beyond the first page
            BootInfo { boot_image_vaddr: bi.boot_image_vaddr + 1, ..bi }, // unaligned
            BootInfo { boot_image_size: u64::MAX, ..bi }, // wraps
            BootInfo { boot_image_frames: SlotRegion { start: 0, end: 0 }, ..bi },
            BootInfo { boot_image_vaddr: 0xffff_8000_0000_0000, ..bi }, // kernel half
        ] {
            assert!(!bad.boot_image_is_valid(), "{bad:?}");
            assert!(bad.boot_image().is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn requester_id() {
        let d = PciDeviceDesc { bus: 0, devfn: (3 << 3) | 1, ..Default::default() };
        assert_eq!(d.requester_id(), 0x19);
    }
}
