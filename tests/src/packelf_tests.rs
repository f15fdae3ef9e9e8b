//! Host tests of the ELF packer on a small synthetic kernel ELF.

use super::*;

const TEXT_VADDR: u64 = 0xffff_ffff_8020_9000;
const TEXT_PADDR: u64 = 0x20_9000;
const DESC_AT: u64 = 0x100;

struct Kernel {
    /// The one PT_LOAD also covers the ELF and program headers (no room to grow).
    covers_headers: bool,
    paddr: u64,
    symbol: &'static str,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel { covers_headers: false, paddr: TEXT_PADDR, symbol: DESCRIPTOR_SYMBOL }
    }
}

fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A minimal x86_64 ET_EXEC: one PT_LOAD (data at 0x1000), .symtab/.strtab/.shstrtab.
fn kernel_elf(k: &Kernel) -> Vec<u8> {
    let mut d = vec![0u8; 0x2000];
    d[0..4].copy_from_slice(b"\x7fELF");
    d[4] = 2; // ELF64
    d[5] = 1; // little-endian
    d[6] = 1;
    put_u16(&mut d, 16, ET_EXEC);
    put_u16(&mut d, 18, EM_X86_64);
    put32(&mut d, 20, 1);
    put_u64(&mut d, 24, TEXT_VADDR);
    put_u64(&mut d, 32, 64);
    put_u16(&mut d, 52, 64);
    put_u16(&mut d, 54, PHDR_SIZE as u16);
    put_u16(&mut d, 56, 1);
    put_u16(&mut d, 58, 64);
    let (off, filesz, delta) = if k.covers_headers { (0u64, 0x2000u64, 0x1000u64) } else { (0x1000, 0x1000, 0) };
    put32(&mut d, 64, PT_LOAD);
    put32(&mut d, 68, elf::abi::PF_R | elf::abi::PF_X);
    put_u64(&mut d, 72, off);
    put_u64(&mut d, 80, TEXT_VADDR - delta);
    put_u64(&mut d, 88, k.paddr - delta);
    put_u64(&mut d, 96, filesz);
    put_u64(&mut d, 104, filesz);
    put_u64(&mut d, 112, 0x1000);
    // Symbols: null + the descriptor.
    let symtab_off = d.len();
    d.extend_from_slice(&[0u8; 48]);
    put32(&mut d, symtab_off + 24, 1);
    d[symtab_off + 24 + 4] = 1; // STT_OBJECT, STB_LOCAL
    put_u16(&mut d, symtab_off + 24 + 6, 1);
    put_u64(&mut d, symtab_off + 24 + 8, TEXT_VADDR + DESC_AT);
    put_u64(&mut d, symtab_off + 24 + 16, DESCRIPTOR_SIZE as u64);
    let strtab_off = d.len();
    let strtab = format!("\0{}\0", k.symbol);
    d.extend_from_slice(strtab.as_bytes());
    let shstr_off = d.len();
    let shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0";
    d.extend_from_slice(shstr);
    d.resize(d.len().next_multiple_of(8), 0);
    let shoff = d.len();
    // (name, type, offset, size, link, entsize)
    let sections: [(u32, u32, usize, usize, u32, u64); 5] = [
        (0, 0, 0, 0, 0, 0),
        (1, 1, 0x1000, 0x1000, 0, 0),
        (7, 2, symtab_off, 48, 3, 24),
        (15, 3, strtab_off, strtab.len(), 0, 0),
        (23, 3, shstr_off, shstr.len(), 0, 0),
    ];
    for (name, ty, off, size, link, entsize) in sections {
        let at = d.len();
        d.extend_from_slice(&[0u8; 64]);
        put32(&mut d, at, name);
        put32(&mut d, at + 4, ty);
        put_u64(&mut d, at + 24, off as u64);
        put_u64(&mut d, at + 32, size as u64);
        put32(&mut d, at + 40, link);
        put_u64(&mut d, at + 56, entsize);
    }
    put_u64(&mut d, 40, shoff as u64);
    put_u16(&mut d, 60, 5);
    put_u16(&mut d, 62, 4);
    d
}

fn check_round_trip(kernel: &[u8], image: &[u8]) -> Vec<u8> {
    let system = pack_system(kernel, image).unwrap();
    let file = ElfBytes::<AnyEndian>::minimal_parse(system.as_slice()).unwrap();
    let segs: Vec<_> = file.segments().unwrap().iter().collect();
    assert_eq!(segs.len(), 2);
    let new = segs[1];
    assert_eq!((new.p_type, new.p_flags), (PT_LOAD, elf::abi::PF_R));
    assert_eq!((new.p_paddr, new.p_vaddr), (PACKED_IMAGE_PADDR, PACKED_IMAGE_PADDR));
    assert_eq!((new.p_filesz, new.p_memsz), (image.len() as u64, image.len() as u64));
    assert_eq!(new.p_offset % 0x1000, 0);
    assert_eq!(segs[0], file_segment0(kernel));
    let (bytes, desc) = unpack_system(&system).unwrap();
    assert_eq!(bytes, image);
    let want = Descriptor {
        magic: DESCRIPTOR_MAGIC,
        paddr: PACKED_IMAGE_PADDR,
        len: image.len() as u64,
        checksum: checksum(image),
    };
    assert_eq!(desc, want);
    system
}

fn file_segment0(kernel: &[u8]) -> elf::segment::ProgramHeader {
    ElfBytes::<AnyEndian>::minimal_parse(kernel).unwrap().segments().unwrap().get(0).unwrap()
}

#[test]
fn packs_in_place_when_there_is_room() {
    let kernel = kernel_elf(&Kernel::default());
    let system = check_round_trip(&kernel, b"CAPIMG01 the boot image");
    assert_eq!(u64::from_le_bytes(system[32..40].try_into().unwrap()), 64, "table stays at offset 64");
    // Everything before the appended image is unchanged but the header count, the new
    // header and the descriptor.
    assert_eq!(system[0x1000..0x1000 + DESC_AT as usize], kernel[0x1000..0x1000 + DESC_AT as usize]);
}

#[test]
fn moves_the_table_when_a_segment_covers_it() {
    let kernel = kernel_elf(&Kernel { covers_headers: true, ..Kernel::default() });
    let system = check_round_trip(&kernel, &[0x5a; 5000]);
    let phoff = u64::from_le_bytes(system[32..40].try_into().unwrap());
    assert!(phoff > kernel.len() as u64, "table moved to the end ({phoff:#x})");
}

#[test]
fn bad_kernels_are_refused() {
    let image = b"image";
    let err = |k: &[u8]| pack_system(k, image).unwrap_err();
    assert!(err(b"not an elf at all, not at all").starts_with("kernel ELF:"));
    let mut wrong = kernel_elf(&Kernel::default());
    put_u16(&mut wrong, 18, 3);
    assert!(err(&wrong).contains("x86_64"), "{}", err(&wrong));
    let nosym = kernel_elf(&Kernel { symbol: "SOMETHING_ELSE_", ..Kernel::default() });
    assert!(err(&nosym).contains("no symbol BOOT_IMAGE_DESC"), "{}", err(&nosym));
    let packed = pack_system(&kernel_elf(&Kernel::default()), image).unwrap();
    assert!(err(&packed).contains("already filled in"), "{}", err(&packed));
    assert!(pack_system(&kernel_elf(&Kernel::default()), b"").unwrap_err().contains("empty"));
}

#[test]
fn overlap_with_a_kernel_segment_is_refused() {
    let kernel = kernel_elf(&Kernel { paddr: PACKED_IMAGE_PADDR + 0x3000, ..Kernel::default() });
    assert!(pack_system(&kernel, &[1; 0x2000]).is_ok(), "ends before the segment");
    let e = pack_system(&kernel, &[1; 0x4000]).unwrap_err();
    assert!(e.contains("would overlap the kernel segment at physical 0x1003000"), "{e}");
}
