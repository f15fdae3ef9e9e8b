//! Seed corpus builders: well-formed inputs for each fuzz target.
//!
//! Builders of the seed corpus: well-formed inputs like the ones QEMU, GRUB and
//! `mkbootimg` produce, so mutations start deep inside each format.

use kernel::platform::dmar::fixtures as dmar;

/// `(target, file name, bytes)` for every seed.
pub fn all() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        ("dmar", "qemu-q35", dmar::qemu_q35()),
        (
            "dmar",
            "two-units-rmrr",
            dmar::table(
                38,
                1,
                &[
                    dmar::drhd(
                        0,
                        0,
                        0xfed9_0000,
                        &[dmar::scope(1, 0, 0, &[(2, 0)]), dmar::scope(2, 0, 0, &[(4, 0), (0, 0)])],
                    ),
                    dmar::drhd(1, 0, 0xfed9_1000, &[dmar::scope(3, 2, 0xff, &[(0x1f, 0)])]),
                    dmar::rmrr(0xe_0000, 0xe_ffff, &[dmar::scope(1, 0, 0, &[(2, 0)])]),
                    vec![2, 0, 8, 0, 0, 0, 0, 0],
                ],
            ),
        ),
        ("hpet", "qemu", hpet_table()),
        ("pvh", "qemu", pvh_info()),
        ("multiboot2", "grub", multiboot2_info(36)),
        // Regression: an ACPI tag too short for an RSDP was accepted, and the kernel read
        // the RSDP past the end of the loader's structure.
        ("multiboot2", "short-acpi-tag", multiboot2_info(0)),
        ("memory", "e820", memory_ops()),
        ("bootimage", "small", bootimage()),
        ("elf", "two-segments", elf_exec()),
        ("pci", "q35-bridges", pci_machine()),
    ]
}

fn hpet_table() -> Vec<u8> {
    let mut t = b"HPET".to_vec();
    t.extend_from_slice(&56u32.to_le_bytes());
    t.resize(56, 0);
    t[44..52].copy_from_slice(&0xfed0_0000u64.to_le_bytes());
    t
}

fn put(mem: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if mem.len() < at + bytes.len() {
        mem.resize(at + bytes.len(), 0);
    }
    mem[at..at + bytes.len()].copy_from_slice(bytes);
}

fn e820(entries: &[(u64, u64, u32)], entry_size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for &(addr, len, kind) in entries {
        let mut e = vec![0u8; entry_size];
        e[..8].copy_from_slice(&addr.to_le_bytes());
        e[8..16].copy_from_slice(&len.to_le_bytes());
        e[16..20].copy_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&e);
    }
    out
}

/// QEMU's map for 256 MiB.
const MAP: [(u64, u64, u32); 5] = [
    (0, 0x9fc00, 1),
    (0x9fc00, 0x400, 2),
    (0xf0000, 0x10000, 2),
    (0x10_0000, 0xfee_0000, 1),
    (0xffc0_0000, 0x40_0000, 2),
];

/// Loader input: base, structure address, memory (see `targets::loader_input`).
fn loader(base: u64, at: u64, mem: &[u8]) -> Vec<u8> {
    let mut v = base.to_le_bytes().to_vec();
    v.extend_from_slice(&at.to_le_bytes());
    v.extend_from_slice(mem);
    v
}

fn pvh_info() -> Vec<u8> {
    let base = 0x6000u64;
    let mut mem = Vec::new();
    let mut info = Vec::new();
    for w in [0x336e_c578u32, 1, 0, 1] {
        info.extend_from_slice(&w.to_le_bytes());
    }
    for q in [base + 0x80, base + 0x200, 0xf_52a0] {
        info.extend_from_slice(&q.to_le_bytes());
    }
    info.extend_from_slice(&(base + 0x100).to_le_bytes());
    info.extend_from_slice(&(MAP.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    put(&mut mem, 0, &info);
    put(&mut mem, 0x80, &[0x00, 0x80, 0xfd, 0x0f, 0, 0, 0, 0, 0x00, 0x40, 0x02, 0, 0, 0, 0, 0]);
    put(&mut mem, 0x100, &e820(&MAP, 24));
    put(&mut mem, 0x200, b"init=fuzz loglevel=info\0");
    loader(base, base, &mem)
}

/// GRUB's structure, with an ACPI 2.0 tag of `rsdp_len` body bytes.
fn multiboot2_info(rsdp_len: usize) -> Vec<u8> {
    let base = 0x1_0000u64;
    let mut tags: Vec<u8> = Vec::new();
    let mut tag = |kind: u32, body: &[u8]| {
        let mut t = kind.to_le_bytes().to_vec();
        t.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
        t.extend_from_slice(body);
        while !t.len().is_multiple_of(8) {
            t.push(0);
        }
        tags.extend_from_slice(&t);
    };
    tag(1, b"init=fuzz\0");
    let mut module = 0x20_0000u32.to_le_bytes().to_vec();
    module.extend_from_slice(&0x22_4000u32.to_le_bytes());
    module.extend_from_slice(b"boot.img\0");
    tag(3, &module);
    let mut mmap = 24u32.to_le_bytes().to_vec();
    mmap.extend_from_slice(&0u32.to_le_bytes());
    mmap.extend_from_slice(&e820(&MAP, 24));
    tag(6, &mmap);
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.resize(rsdp_len, 0);
    tag(15, &rsdp);
    tag(0, &[]);
    let mut info = ((8 + tags.len()) as u32).to_le_bytes().to_vec();
    info.extend_from_slice(&0u32.to_le_bytes());
    info.extend_from_slice(&tags);
    loader(base, base, &info)
}

fn memory_ops() -> Vec<u8> {
    let mut ops = Vec::new();
    let mut op = |kind: u8, start: u64, len: u64| {
        ops.push(kind);
        ops.extend_from_slice(&start.to_le_bytes());
        ops.extend_from_slice(&len.to_le_bytes());
    };
    for (start, len, kind) in MAP {
        op(if kind == 1 { 0 } else { 1 }, start, len);
    }
    op(1, 0x10_0000, 0x40_0000);
    op(0, 0x1_0000_0000, 0x4000_0000);
    op(1, 0xfee0_0000, 0x10_0000);
    ops
}

fn bootimage() -> Vec<u8> {
    let manifest: &[u8] = b"# test\nroot root\nprogram fuzz\n";
    abi::bootimage::pack(&[("manifest", manifest), ("root", &[0x7f, b'E', b'L', b'F']), ("fuzz", &[1, 2, 3])])
        .expect("seed image")
}

/// A minimal x86_64 executable: a text and a data segment.
fn elf_exec() -> Vec<u8> {
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    e.resize(16, 0);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // x86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&0x40_0000u64.to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    for h in [64u16, 56, 2, 64, 0, 0] {
        e.extend_from_slice(&h.to_le_bytes());
    }
    let phdr = |flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64| {
        let mut p = 1u32.to_le_bytes().to_vec();
        p.extend_from_slice(&flags.to_le_bytes());
        for q in [offset, vaddr, vaddr, filesz, memsz, 0x1000] {
            p.extend_from_slice(&q.to_le_bytes());
        }
        p
    };
    e.extend_from_slice(&phdr(5, 0x100, 0x40_0000, 16, 16));
    e.extend_from_slice(&phdr(6, 0x110, 0x40_1000, 8, 0x2000));
    e.resize(0x118, 0xcc);
    e
}

/// Records for `targets::pci`: (bus, devfn, kind, secondary, subordinate, cap, pcie type, id).
fn pci_machine() -> Vec<u8> {
    let records: [[u8; 8]; 7] = [
        [0, 0, 2, 0, 0, 0, 0, 0],            // host bridge
        [0, 2 << 3, 1, 0, 0, 0, 0, 1],       // NIC on the root bus
        [0, 4 << 3, 0, 1, 2, 0x50, 4, 2],    // PCIe root port -> buses 1..2
        [1, 0, 0, 2, 2, 0x50, 7, 3],         // PCIe-to-PCI bridge -> bus 2
        [2, 3 << 3, 1, 0, 0, 0, 0, 4],       // conventional device behind it
        [2, 4 << 3, 1, 0, 0, 0, 0, 5],       // a second one (same alias group)
        [0, 0x1f << 3, 0x81, 0, 0, 0, 0, 6], // multi-function device
    ];
    let mut v = vec![records.len() as u8];
    for r in records {
        v.extend_from_slice(&r);
    }
    v.extend_from_slice(&dmar::table(
        38,
        1,
        &[
            dmar::drhd(0, 0, 0xfed9_0000, &[dmar::scope(1, 0, 0, &[(2, 0)]), dmar::scope(2, 0, 0, &[(4, 0), (0, 0)])]),
            dmar::drhd(1, 0, 0xfed9_1000, &[]),
        ],
    ));
    v
}
