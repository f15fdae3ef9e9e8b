//! ELF loader for user programs: validation and load plan.
//!
//! Checks a user program's ELF image and turns it into a load plan. The image comes
//! from the boot module, so every header field is validated before it is used.

use core::fmt;

use abi::layout::{is_user_range, PAGE_SIZE};
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::file::Class;
use elf::ElfBytes;

/// Most loadable segments a program may have.
pub const MAX_SEGMENTS: usize = 8;

/// One segment to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory (the tail past `file_size` is zero).
    pub mem_size: u64,
    /// Offset of the file bytes in the image.
    pub file_offset: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

impl Segment {
    /// First page and one-past-last page address covered.
    pub fn page_span(&self) -> (u64, u64) {
        let start = self.vaddr & !(PAGE_SIZE - 1);
        let end = (self.vaddr + self.mem_size + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        (start, end)
    }
}

/// A validated program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// Entry point.
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl LoadPlan {
    /// The loadable segments in file order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    /// Total pages the segments cover.
    pub fn pages(&self) -> u64 {
        self.segments().iter().map(|s| (s.page_span().1 - s.page_span().0) / PAGE_SIZE).sum()
    }
}

/// Why an image is not a loadable program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The ELF header could not be parsed (not an ELF file, truncated, wrong class/endianness).
    NotElf,
    /// Not a 64-bit image.
    WrongClass,
    /// Not built for x86_64.
    WrongMachine(u16),
    /// Not a static executable (ET_EXEC).
    WrongType(u16),
    /// The program-header table is missing or malformed.
    BadProgramHeaders,
    /// No PT_LOAD segment.
    NoSegments,
    /// More than [`MAX_SEGMENTS`] PT_LOAD segments.
    TooManySegments,
    /// A segment's file bytes lie outside the image, or filesz > memsz.
    SegmentOutOfFile(usize),
    /// A segment lies outside user space.
    SegmentNotUser(usize),
    /// Two segments share a page.
    SegmentsOverlap(usize),
    /// The entry point is not in an executable segment.
    BadEntry(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF image (bad header)"),
            ElfError::WrongClass => write!(f, "ELF image is not 64-bit"),
            ElfError::WrongMachine(m) => write!(f, "ELF image is for machine {m}, not x86_64 ({EM_X86_64})"),
            ElfError::WrongType(t) => write!(f, "ELF image has type {t}, need a static executable (ET_EXEC)"),
            ElfError::BadProgramHeaders => write!(f, "ELF program headers are missing or malformed"),
            ElfError::NoSegments => write!(f, "ELF image has no loadable segment"),
            ElfError::TooManySegments => write!(f, "ELF image has more than {MAX_SEGMENTS} loadable segments"),
            ElfError::SegmentOutOfFile(i) => write!(f, "ELF segment {i} lies outside the file"),
            ElfError::SegmentNotUser(i) => write!(f, "ELF segment {i} lies outside user space"),
            ElfError::SegmentsOverlap(i) => write!(f, "ELF segment {i} overlaps another segment's pages"),
            ElfError::BadEntry(e) => write!(f, "ELF entry point {e:#x} is not in an executable segment"),
        }
    }
}

/// Validates `image` and plans its loading.
pub fn plan(image: &[u8]) -> Result<LoadPlan, ElfError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| ElfError::NotElf)?;
    let header = file.ehdr;
    if header.class != Class::ELF64 {
        return Err(ElfError::WrongClass);
    }
    if header.e_machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(header.e_machine));
    }
    if header.e_type != ET_EXEC {
        return Err(ElfError::WrongType(header.e_type));
    }
    let headers = file.segments().ok_or(ElfError::BadProgramHeaders)?;
    let mut plan = LoadPlan { entry: header.e_entry, segments: [Segment::default(); MAX_SEGMENTS], count: 0 };
    for (i, ph) in headers.iter().filter(|ph| ph.p_type == PT_LOAD).enumerate() {
        if ph.p_memsz == 0 {
            continue;
        }
        if plan.count == MAX_SEGMENTS {
            return Err(ElfError::TooManySegments);
        }
        let file_end = ph.p_offset.checked_add(ph.p_filesz).ok_or(ElfError::SegmentOutOfFile(i))?;
        if file_end > image.len() as u64 || ph.p_filesz > ph.p_memsz {
            return Err(ElfError::SegmentOutOfFile(i));
        }
        if !is_user_range(ph.p_vaddr, ph.p_memsz) {
            return Err(ElfError::SegmentNotUser(i));
        }
        let segment = Segment {
            vaddr: ph.p_vaddr,
            mem_size: ph.p_memsz,
            file_offset: ph.p_offset,
            file_size: ph.p_filesz,
            writable: ph.p_flags & PF_W != 0,
            executable: ph.p_flags & PF_X != 0,
        };
        let (start, end) = segment.page_span();
        if plan.segments().iter().any(|s| {
            let (s0, s1) = s.page_span();
            start < s1 && s0 < end
        }) {
            return Err(ElfError::SegmentsOverlap(i));
        }
        plan.segments[plan.count] = segment;
        plan.count += 1;
    }
    if plan.count == 0 {
        return Err(ElfError::NoSegments);
    }
    let entry_ok =
        plan.segments().iter().any(|s| s.executable && s.vaddr <= plan.entry && plan.entry < s.vaddr + s.mem_size);
    if !entry_ok {
        return Err(ElfError::BadEntry(plan.entry));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// A minimal static x86_64 executable: one RX segment at 0x400000 with `code`.
    fn build(machine: u16, etype: u16, vaddr: u64, entry: u64, extra: Option<(u64, u64, u32)>) -> Vec<u8> {
        let phnum: u16 = if extra.is_some() { 2 } else { 1 };
        let mut e = Vec::new();
        e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        e.extend_from_slice(&[0; 8]);
        e.extend_from_slice(&etype.to_le_bytes());
        e.extend_from_slice(&machine.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&entry.to_le_bytes());
        e.extend_from_slice(&64u64.to_le_bytes()); // phoff
        e.extend_from_slice(&0u64.to_le_bytes()); // shoff
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&64u16.to_le_bytes());
        e.extend_from_slice(&56u16.to_le_bytes());
        e.extend_from_slice(&phnum.to_le_bytes());
        e.extend_from_slice(&64u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        let ph = |e: &mut Vec<u8>, vaddr: u64, filesz: u64, memsz: u64, flags: u32, off: u64| {
            e.extend_from_slice(&PT_LOAD.to_le_bytes());
            e.extend_from_slice(&flags.to_le_bytes());
            e.extend_from_slice(&off.to_le_bytes());
            e.extend_from_slice(&vaddr.to_le_bytes());
            e.extend_from_slice(&vaddr.to_le_bytes());
            e.extend_from_slice(&filesz.to_le_bytes());
            e.extend_from_slice(&memsz.to_le_bytes());
            e.extend_from_slice(&0x1000u64.to_le_bytes());
        };
        ph(&mut e, vaddr, 16, 16, 5, 0x100);
        if let Some((v, mem, flags)) = extra {
            ph(&mut e, v, 0, mem, flags, 0x100);
        }
        e.resize(0x110, 0x90);
        e
    }

    #[test]
    fn good_image() {
        let p = plan(&build(EM_X86_64, ET_EXEC, 0x40_0000, 0x40_0004, Some((0x40_1000, 0x3000, 6)))).unwrap();
        assert_eq!(p.entry, 0x40_0004);
        assert_eq!(p.segments().len(), 2);
        assert_eq!(p.pages(), 4);
        assert!(p.segments()[1].writable && !p.segments()[1].executable);
    }

    #[test]
    fn bad_images() {
        assert_eq!(plan(b"hello, not an elf"), Err(ElfError::NotElf));
        assert_eq!(plan(&build(3, ET_EXEC, 0x40_0000, 0x40_0000, None)), Err(ElfError::WrongMachine(3)));
        assert_eq!(plan(&build(EM_X86_64, 3, 0x40_0000, 0x40_0000, None)), Err(ElfError::WrongType(3)));
        assert_eq!(plan(&build(EM_X86_64, ET_EXEC, 0x1000, 0x1000, None)), Err(ElfError::SegmentNotUser(0)));
        assert_eq!(
            plan(&build(EM_X86_64, ET_EXEC, 0xffff_ffff_8000_0000, 0xffff_ffff_8000_0000, None)),
            Err(ElfError::SegmentNotUser(0))
        );
        assert_eq!(plan(&build(EM_X86_64, ET_EXEC, 0x40_0000, 0x50_0000, None)), Err(ElfError::BadEntry(0x50_0000)));
        assert_eq!(
            plan(&build(EM_X86_64, ET_EXEC, 0x40_0000, 0x40_0000, Some((0x40_0800, 0x10, 6)))),
            Err(ElfError::SegmentsOverlap(1))
        );
        let mut truncated = build(EM_X86_64, ET_EXEC, 0x40_0000, 0x40_0000, None);
        truncated.truncate(0x104);
        assert_eq!(plan(&truncated), Err(ElfError::SegmentOutOfFile(0)));
    }
}
