//! Boot image selection: packed into the kernel ELF or the loader's module.
//!
//! Chooses the boot image: the one packed into the kernel ELF, else the loader's module.
//!
//! `mksystem` fills in [`BOOT_IMAGE_DESC`] and adds the image as a load segment at
//! [`abi::packed_image::PACKED_IMAGE_PADDR`] (format in `libcap/abi/src/packed_image.rs`).
//! A plain `kernel.elf` has an all-zero descriptor and takes the first boot module
//! (`-initrd`, GRUB `module2`) as before.

use core::fmt;

use abi::packed_image::{checksum, Descriptor, DESCRIPTOR_MAGIC, DESCRIPTOR_SIZE, MAX_PACKED_IMAGE};

use super::memory::{Range, RangeSet, PAGE};
use super::params::PhysSource;

/// The packed image's descriptor, patched in the ELF file by `mksystem` (found through
/// the symbol table by this name); all zero when nothing is packed.
#[used]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".rodata.boot_image_desc")]
pub static BOOT_IMAGE_DESC: [u8; DESCRIPTOR_SIZE] = [0; DESCRIPTOR_SIZE];

/// The descriptor as loaded (read volatile: the compiler must not fold in the zeros).
pub fn descriptor() -> Descriptor {
    // SAFETY: a valid, aligned static of plain bytes; the volatile read only stops the
    // compiler from assuming the value it was compiled with.
    Descriptor::decode(&unsafe { core::ptr::read_volatile(&BOOT_IMAGE_DESC) })
}

/// Where the boot image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A load segment of the kernel ELF.
    Packed,
    /// The loader's first boot module.
    Module,
}

impl Source {
    /// How boot errors and the log name it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Packed => "packed boot image",
            Source::Module => "boot module",
        }
    }
}

/// Why no boot image could be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Neither a packed image nor a module.
    None,
    /// The descriptor is set but its magic is wrong.
    BadMagic(u64),
    /// The packed image is empty, larger than allowed, not page-aligned, or wraps.
    BadBounds(Range),
    /// The packed image or the module is not inside RAM below the limit.
    NotInRam(Source, Range),
    /// The packed image overlaps the kernel's own image.
    OverlapsKernel(Range),
    /// The packed image could not be read.
    Unreadable(Range),
    /// The packed image's bytes do not match the descriptor's checksum.
    Checksum {
        /// From the descriptor.
        expected: u64,
        /// Of the bytes in memory.
        found: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::None => write!(
                f,
                "no boot image: the kernel ELF carries none (boot build/system.elf, which `make image` packs) \
                 and no boot module was passed (-initrd, GRUB module2)"
            ),
            ImageError::BadMagic(m) => write!(f, "packed boot image descriptor has magic {m:#x}, expected {DESCRIPTOR_MAGIC:#x}"),
            ImageError::BadBounds(r) => write!(
                f,
                "packed boot image {r} is empty, unaligned, wraps or exceeds {} MiB",
                MAX_PACKED_IMAGE >> 20
            ),
            ImageError::NotInRam(s, r) => write!(f, "{} {r} does not lie in RAM below 4 GiB", s.name()),
            ImageError::OverlapsKernel(r) => write!(f, "packed boot image {r} overlaps the kernel image"),
            ImageError::Unreadable(r) => write!(f, "packed boot image {r} is not readable"),
            ImageError::Checksum { expected, found } => write!(
                f,
                "packed boot image checksum is {found:#x}, the descriptor says {expected:#x} (the loader did not load it intact)"
            ),
        }
    }
}

/// The boot image to use: the packed one if `desc` is set (checked: magic, bounds,
/// inside `ram` below `limit`, clear of `kernel`, checksum), else `module` (inside `ram`
/// below `limit`).
pub fn choose<S: PhysSource>(
    desc: Descriptor,
    module: Option<Range>,
    ram: &RangeSet,
    kernel: Range,
    limit: u64,
    src: &S,
) -> Result<(Range, Source), ImageError> {
    if !desc.is_set() {
        let module = module.filter(|m| !m.is_empty()).ok_or(ImageError::None)?;
        if !ram.contains(module) || module.end > limit {
            return Err(ImageError::NotInRam(Source::Module, module));
        }
        return Ok((module, Source::Module));
    }
    if desc.magic != DESCRIPTOR_MAGIC {
        return Err(ImageError::BadMagic(desc.magic));
    }
    let image = Range::new(desc.paddr, desc.len);
    if desc.len == 0 || desc.len > MAX_PACKED_IMAGE || !desc.paddr.is_multiple_of(PAGE) || image.len() != desc.len {
        return Err(ImageError::BadBounds(image));
    }
    if !ram.contains(image) || image.end > limit {
        return Err(ImageError::NotInRam(Source::Packed, image));
    }
    if image.start < kernel.end && kernel.start < image.end {
        return Err(ImageError::OverlapsKernel(image));
    }
    let bytes = usize::try_from(desc.len)
        .ok()
        .and_then(|len| src.bytes(desc.paddr, len))
        .ok_or(ImageError::Unreadable(image))?;
    let found = checksum(bytes);
    if found != desc.checksum {
        return Err(ImageError::Checksum { expected: desc.checksum, found });
    }
    Ok((image, Source::Packed))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use abi::packed_image::PACKED_IMAGE_PADDR;
    use std::vec::Vec;

    use crate::boot::params::tests::Buffer;

    const KERNEL: Range = Range { start: 0x20_0000, end: 0x30_0000 };
    const LIMIT: u64 = 4 << 30;

    fn ram() -> RangeSet {
        let mut ram = RangeSet::new();
        ram.add(Range { start: 0x10_0000, end: 0x800_0000 }).unwrap();
        ram
    }

    fn packed(data: &[u8]) -> (Descriptor, Buffer) {
        let desc = Descriptor {
            magic: DESCRIPTOR_MAGIC,
            paddr: PACKED_IMAGE_PADDR,
            len: data.len() as u64,
            checksum: checksum(data),
        };
        (desc, Buffer { base: PACKED_IMAGE_PADDR, data: data.to_vec() })
    }

    #[test]
    fn packed_image_wins_over_a_module() {
        let (desc, src) = packed(b"CAPIMG01 and more");
        let module = Some(Range::new(0x700_0000, 0x1000));
        let got = choose(desc, module, &ram(), KERNEL, LIMIT, &src).unwrap();
        assert_eq!(got, (Range::new(PACKED_IMAGE_PADDR, 17), Source::Packed));
    }

    #[test]
    fn module_is_the_fallback() {
        let src = Buffer { base: 0, data: Vec::new() };
        let m = Range::new(0x700_0000, 0x1000);
        assert_eq!(choose(Descriptor::default(), Some(m), &ram(), KERNEL, LIMIT, &src), Ok((m, Source::Module)));
        assert_eq!(choose(Descriptor::default(), None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::None));
        let outside = Range::new(0x7ff_f000, 0x2000);
        assert_eq!(
            choose(Descriptor::default(), Some(outside), &ram(), KERNEL, LIMIT, &src),
            Err(ImageError::NotInRam(Source::Module, outside))
        );
        let msg = std::format!("{}", ImageError::None);
        assert!(msg.contains("system.elf") && msg.contains("-initrd"), "{msg}");
    }

    #[test]
    fn bad_magic_is_refused() {
        let (mut desc, src) = packed(b"image");
        desc.magic = 0x1234;
        assert_eq!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::BadMagic(0x1234)));
    }

    #[test]
    fn overlap_with_the_kernel_is_refused() {
        let (mut desc, mut src) = packed(b"image");
        desc.paddr = 0x2f_f000;
        src.base = desc.paddr;
        assert!(matches!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::OverlapsKernel(_))));
    }

    #[test]
    fn outside_ram_is_refused() {
        let (mut desc, mut src) = packed(&[7u8; 0x2000]);
        desc.paddr = 0x7ff_f000;
        src.base = desc.paddr;
        assert!(matches!(
            choose(desc, None, &ram(), KERNEL, LIMIT, &src),
            Err(ImageError::NotInRam(Source::Packed, _))
        ));
        // Inside RAM but above the limit (what the early direct map reaches).
        let (desc, src) = packed(b"image");
        assert!(matches!(choose(desc, None, &ram(), KERNEL, 0x100_0000, &src), Err(ImageError::NotInRam(..))));
    }

    #[test]
    fn bad_bounds_and_corruption_are_refused() {
        let (mut desc, src) = packed(b"image");
        desc.paddr += 8;
        assert!(matches!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::BadBounds(_))));
        let (mut desc, src) = packed(b"image");
        desc.len = 0;
        assert!(matches!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::BadBounds(_))));
        let (mut desc, src) = packed(b"image");
        desc.len = u64::MAX;
        assert!(matches!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::BadBounds(_))));
        let (desc, mut src) = packed(b"image");
        src.data[0] ^= 1;
        assert!(matches!(choose(desc, None, &ram(), KERNEL, LIMIT, &src), Err(ImageError::Checksum { .. })));
        let (mut desc, src) = packed(b"image");
        desc.len = 0x1000;
        assert_eq!(
            choose(desc, None, &ram(), KERNEL, LIMIT, &src),
            Err(ImageError::Unreadable(Range::new(PACKED_IMAGE_PADDR, 0x1000)))
        );
    }
}
