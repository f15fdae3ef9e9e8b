//! Packs a boot image into the kernel ELF as one more load segment.
//!
//! Packs a boot image into the kernel ELF as one more load segment (Microkit-style: one file).
//!
//! The image goes at [`PACKED_IMAGE_PADDR`] (`p_paddr == p_vaddr`, flags R), its bytes
//! appended page-aligned to the file, and the kernel's [`DESCRIPTOR_SYMBOL`] static is
//! patched with a [`Descriptor`]. The new program header goes into the gap before the
//! first segment's data when there is room (GRUB reads program headers only near the
//! start of the file), else the whole table moves to the end of the file.

use abi::packed_image::{
    checksum, Descriptor, DESCRIPTOR_MAGIC, DESCRIPTOR_SIZE, DESCRIPTOR_SYMBOL, PACKED_IMAGE_PADDR,
};
use elf::abi::{EM_X86_64, ET_EXEC, PT_LOAD, PT_PHDR, SHT_NOBITS};
use elf::endian::AnyEndian;
use elf::file::Class;
use elf::ElfBytes;

/// Size of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;
/// Alignment (and `p_align`) of the packed segment.
const SEGMENT_ALIGN: u64 = 0x1000;

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// `kernel` with `image` packed in: the bytes of `build/system.elf`.
pub fn pack_system(kernel: &[u8], image: &[u8]) -> Result<Vec<u8>, String> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(kernel).map_err(|e| format!("kernel ELF: {e}"))?;
    let h = &file.ehdr;
    if h.class != Class::ELF64 || h.endianness != AnyEndian::Little || h.e_machine != EM_X86_64 {
        return Err("kernel ELF: not a little-endian ELF64 for x86_64".into());
    }
    if h.e_type != ET_EXEC {
        return Err(format!("kernel ELF: type {} is not ET_EXEC", h.e_type));
    }
    if usize::from(h.e_phentsize) != PHDR_SIZE {
        return Err(format!("kernel ELF: program header size {} is not {PHDR_SIZE}", h.e_phentsize));
    }
    if image.is_empty() {
        return Err("the boot image is empty".into());
    }
    let phnum = h.e_phnum;
    if phnum == u16::MAX || phnum == 0 {
        return Err(format!("kernel ELF: {phnum} program headers"));
    }
    let segments: Vec<_> = file.segments().ok_or("kernel ELF: no program headers")?.iter().collect();
    // The descriptor: a symbol inside some segment's file bytes, still all zero.
    let (symtab, strtab) = file
        .symbol_table()
        .map_err(|e| format!("kernel ELF: symbol table: {e}"))?
        .ok_or("kernel ELF: no symbol table (was it stripped?)")?;
    let sym = symtab
        .iter()
        .find(|s| strtab.get(s.st_name as usize).is_ok_and(|n| n == DESCRIPTOR_SYMBOL))
        .ok_or_else(|| format!("kernel ELF: no symbol {DESCRIPTOR_SYMBOL} (not this kernel?)"))?;
    if sym.st_size != DESCRIPTOR_SIZE as u64 {
        return Err(format!("kernel ELF: {DESCRIPTOR_SYMBOL} is {} bytes, expected {DESCRIPTOR_SIZE}", sym.st_size));
    }
    let desc_off = segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD)
        .find(|s| s.p_vaddr <= sym.st_value && sym.st_value + DESCRIPTOR_SIZE as u64 <= s.p_vaddr + s.p_filesz)
        .map(|s| s.p_offset + (sym.st_value - s.p_vaddr))
        .and_then(|o| usize::try_from(o).ok())
        .filter(|&o| o + DESCRIPTOR_SIZE <= kernel.len())
        .ok_or_else(|| format!("kernel ELF: {DESCRIPTOR_SYMBOL} is not in a loaded segment's file bytes"))?;
    if kernel[desc_off..desc_off + DESCRIPTOR_SIZE].iter().any(|&b| b != 0) {
        return Err(format!("kernel ELF: {DESCRIPTOR_SYMBOL} is already filled in (already packed?)"));
    }

    let len = image.len() as u64;
    let new = (PACKED_IMAGE_PADDR, PACKED_IMAGE_PADDR + len);
    for s in segments.iter().filter(|s| s.p_type == PT_LOAD) {
        for (what, at) in [("physical", s.p_paddr), ("virtual", s.p_vaddr)] {
            let end = at.checked_add(s.p_memsz).ok_or("kernel ELF: a segment wraps")?;
            if at < new.1 && new.0 < end {
                return Err(format!(
                    "the boot image ({len} bytes at {:#x}) would overlap the kernel segment at {what} {at:#x}..{end:#x}",
                    new.0
                ));
            }
        }
    }

    // Room for one more program header right after the table?
    let phoff = usize::try_from(h.e_phoff).map_err(|_| "kernel ELF: bad e_phoff")?;
    let table_len = usize::from(phnum) * PHDR_SIZE;
    let table = kernel.get(phoff..phoff + table_len).ok_or("kernel ELF: program headers outside the file")?.to_vec();
    let grown_end = (phoff + table_len + PHDR_SIZE) as u64;
    let mut first_data = u64::MAX;
    for s in &segments {
        if s.p_filesz > 0 && s.p_type != PT_PHDR && s.p_offset >= h.e_phoff {
            first_data = first_data.min(s.p_offset);
        }
        if s.p_filesz > 0 && s.p_offset < grown_end && s.p_offset + s.p_filesz > h.e_phoff {
            first_data = 0; // a segment covers the table: do not touch it
        }
    }
    if let Some(sections) = file.section_headers() {
        for s in sections.iter().filter(|s| s.sh_type != SHT_NOBITS && s.sh_size > 0) {
            first_data = first_data.min(if s.sh_offset >= h.e_phoff { s.sh_offset } else { u64::MAX });
        }
    }
    if h.e_shoff >= h.e_phoff && h.e_shoff != 0 {
        first_data = first_data.min(h.e_shoff);
    }
    let in_place = phoff >= 64 && grown_end <= first_data;

    let mut out = kernel.to_vec();
    out.resize(out.len().next_multiple_of(SEGMENT_ALIGN as usize), 0);
    let image_off = out.len() as u64;
    out.extend_from_slice(image);
    let mut phdr = [0u8; PHDR_SIZE];
    phdr[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
    phdr[4..8].copy_from_slice(&elf::abi::PF_R.to_le_bytes());
    put_u64(&mut phdr, 8, image_off);
    put_u64(&mut phdr, 16, PACKED_IMAGE_PADDR);
    put_u64(&mut phdr, 24, PACKED_IMAGE_PADDR);
    put_u64(&mut phdr, 32, len);
    put_u64(&mut phdr, 40, len);
    put_u64(&mut phdr, 48, SEGMENT_ALIGN);
    if in_place {
        out[phoff + table_len..phoff + table_len + PHDR_SIZE].copy_from_slice(&phdr);
    } else {
        out.resize(out.len().next_multiple_of(8), 0);
        let new_phoff = out.len() as u64;
        out.extend_from_slice(&table);
        out.extend_from_slice(&phdr);
        put_u64(&mut out, 32, new_phoff);
    }
    put_u16(&mut out, 56, phnum + 1);
    let desc = Descriptor { magic: DESCRIPTOR_MAGIC, paddr: PACKED_IMAGE_PADDR, len, checksum: checksum(image) };
    out[desc_off..desc_off + DESCRIPTOR_SIZE].copy_from_slice(&desc.encode());
    Ok(out)
}

/// Reads back what [`pack_system`] wrote: the packed segment's bytes and the descriptor.
pub fn unpack_system(system: &[u8]) -> Result<(Vec<u8>, Descriptor), String> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(system).map_err(|e| format!("system ELF: {e}"))?;
    let seg = file
        .segments()
        .ok_or("system ELF: no program headers")?
        .iter()
        .find(|s| s.p_type == PT_LOAD && s.p_paddr == PACKED_IMAGE_PADDR)
        .ok_or("system ELF: no segment at the packed image address")?;
    let bytes = file.segment_data(&seg).map_err(|e| format!("system ELF: {e}"))?.to_vec();
    let (symtab, strtab) = file.symbol_table().ok().flatten().ok_or("system ELF: no symbol table")?;
    let sym = symtab
        .iter()
        .find(|s| strtab.get(s.st_name as usize).is_ok_and(|n| n == DESCRIPTOR_SYMBOL))
        .ok_or("system ELF: no descriptor symbol")?;
    let holder = file
        .segments()
        .ok_or("system ELF: no program headers")?
        .iter()
        .find(|s| s.p_type == PT_LOAD && s.p_vaddr <= sym.st_value && sym.st_value < s.p_vaddr + s.p_filesz)
        .ok_or("system ELF: descriptor not in a segment")?;
    let off = (holder.p_offset + sym.st_value - holder.p_vaddr) as usize;
    let raw: [u8; DESCRIPTOR_SIZE] = system[off..off + DESCRIPTOR_SIZE].try_into().map_err(|_| "short descriptor")?;
    Ok((bytes, Descriptor::decode(&raw)))
}

#[cfg(test)]
#[path = "packelf_tests.rs"]
mod tests;
