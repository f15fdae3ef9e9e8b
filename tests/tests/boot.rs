//! Boot scenarios.
//!
//! Boot scenarios: the default system, the failure paths (panic, kernel exception, user
//! fault, bad boot input), memory sizes, IOMMU address widths, the -initrd fallback and the GRUB ISO.

use abi::exit::ExitCode;
use scenarios::{build_dir, make_image, scenario_dir, untyped_ram_total, Iommu, Scenario};

#[test]
fn boot_to_root_task() {
    let o = Scenario::new("boot_to_root_task").run();
    o.expect_exit(ExitCode::Success)
        .expect_serial_contains("boot protocol: PVH")
        .expect_serial_contains(", packed boot image 0x000001000000..")
        .expect_serial_contains("kernel: entering root task 'root'")
        .expect_serial_contains("root: hello from the root task")
        .expect_serial_contains("root: kernel pointer rejected: invalid user pointer")
        .expect_serial_contains("root: heap ok:")
        .expect_serial_contains("root: hello through the user-level console server")
        .expect_serial_contains("root: the console server wrote 50 bytes");
    // QEMU 7.2's remapping unit passes compatibility-format interrupts: the boot probe
    // finds that out, and it is the only warning.
    o.expect_serial_contains(
        "warning: iommu: the remapping unit passes compatibility-format interrupts (QEMU < 8): a bus master could raise any vector, NMI or INIT; bus mastering refused unless iommu=allow-unremapped-dma",
    );
    let warnings: Vec<&str> = o.serial.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(o.lines_starting("memory: ").len() >= 3, "memory map lines");
    let iommu = o.expect_line_starting("iommu0: base=0xfed90000");
    assert!(iommu.contains("segment=0"), "{iommu}");
    let cap = o.expect_line_starting("iommu0: cap=");
    assert!(cap.contains("sagaw=3lvl") && cap.contains("mgaw=39") && cap.contains("fault-records="), "{cap}");
    o.expect_line_starting("iommu0: translation enabled, root table at 0x");
    let ecap = o.expect_line_starting("iommu0: ecap=");
    assert!(ecap.contains("qi=yes"), "{ecap}");
    o.expect_line_starting("acpi: MADT: 1 cpus");
    o.expect_line_starting("acpi: MCFG: segment 0");
    // Every PCI function is covered by the include-all unit 0; the host bridge is 8086:29c0.
    // ... and clears Bus Master Enable where firmware left it on (AHCI).
    o.expect_serial_contains("pci 0000:00:1f.2: bus mastering left on by firmware turned off");
    let pci: Vec<&str> = o.lines_starting("pci ").into_iter().filter(|l| l.contains(" class ")).collect();
    assert!(pci.iter().any(|l| l.starts_with("pci 0000:00:00.0 8086:29c0")), "{pci:?}");
    assert!(pci.iter().all(|l| l.ends_with("drhd=0")), "{pci:?}");
    let (ram, caps) = untyped_ram_total(&o.serial).expect("untyped total line");
    assert!(ram > 200 << 20 && caps > 0, "{ram} bytes in {caps} caps");
    // The root task sees what the kernel logged.
    let summary = o.expect_line_starting("root: bootinfo ok:");
    assert!(summary.contains(&format!("{} PCI devices", pci.len())) && summary.ends_with("1 IOMMUs"), "{summary}");
    // The root task parsed the boot image from the kernel's read-only mapping: the
    // bytes of build/boot.img, with the entries the kernel listed.
    let img = std::fs::metadata(build_dir().join("boot.img")).expect("build/boot.img").len();
    let entries = o.lines_starting("image: ").len();
    let line = o.expect_line_starting("root: boot image: ");
    assert!(line.starts_with(&format!("root: boot image: {img} bytes, {entries} entries, ")), "{line}");
    assert!(line.contains(&format!("{} frame caps", img.div_ceil(4096))), "{line}");
}

#[test]
fn kernel_panic_is_reported() {
    Scenario::new("kernel_panic")
        .append("test=panic")
        .run()
        .expect_exit(ExitCode::KernelPanic)
        .expect_serial_contains("KERNEL PANIC at kernel/src/boot/init.rs")
        .expect_serial_contains("deliberate kernel panic")
        .expect_serial_not_contains("root: hello");
}

#[test]
fn kernel_exception_is_reported() {
    let o = Scenario::new("kernel_exception").append("test=exception").run();
    o.expect_exit(ExitCode::KernelException).expect_serial_contains("KERNEL EXCEPTION: #UD invalid opcode (vector 6)");
    let line = o.expect_line_starting("KERNEL EXCEPTION");
    assert!(line.contains("rip=0xffffffff8") && line.contains("cr2="), "{line}");
}

#[test]
fn kernel_stack_overflow_hits_the_guard_page() {
    let o = Scenario::new("kernel_stack_overflow").append("test=stack-overflow").run();
    o.expect_exit(ExitCode::KernelException).expect_serial_contains("KERNEL EXCEPTION: #DF double fault (vector 8)");
}

#[test]
fn user_fault_is_reported() {
    let o = Scenario::new("user_fault").append("init=fault").run();
    o.expect_exit(ExitCode::RootTaskFault)
        .expect_serial_contains("fault: reading bad pointer 0xdead0000")
        .expect_serial_contains("USER FAULT in 'fault': #PF page fault (vector 14)")
        .expect_serial_contains("cr2=0xdead0000")
        .expect_serial_not_contains("the kernel did not stop us");
}

#[test]
fn boots_with_128_mib_and_2_gib() {
    let small = Scenario::new("mem_128m").memory(128).run();
    small.expect_exit(ExitCode::Success).expect_serial_contains("root: hello from the root task");
    let big = Scenario::new("mem_2g").memory(2048).run();
    big.expect_exit(ExitCode::Success).expect_serial_contains("root: hello from the root task");
    let (small_ram, _) = untyped_ram_total(&small.serial).expect("untyped total (128 MiB)");
    let (big_ram, _) = untyped_ram_total(&big.serial).expect("untyped total (2 GiB)");
    // All RAM but the kernel's, the boot image's (every program: it grows with them)
    // and the firmware's reaches user space as untyped: 16 MiB of slack for the rest.
    let module: u64 = small
        .serial
        .lines()
        .find(|l| l.starts_with("kernel: image "))
        .and_then(|l| l.rsplit_once(", ").map(|(_, r)| r))
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the boot image's size in the kernel's `kernel: image` line");
    let floor = (128u64 << 20) - module - (16 << 20);
    assert!(small_ram < 128 << 20 && small_ram > floor, "128 MiB run: {small_ram} (floor {floor})");
    assert!(big_ram > 1900 << 20, "2 GiB run: {big_ram}");
}

#[test]
fn iommu_aw_bits_48() {
    let o = Scenario::new("iommu_aw48").iommu(Iommu::AwBits(48)).run();
    o.expect_exit(ExitCode::Success);
    let cap = o.expect_line_starting("iommu0: cap=");
    assert!(cap.contains("mgaw=48") && cap.contains("4lvl"), "{cap}");
    o.expect_line_starting("iommu: interrupt remapping on, table at ");
}

#[test]
fn iommu_default_aw_bits_39() {
    let o = Scenario::new("iommu_aw39").run();
    o.expect_exit(ExitCode::Success);
    let cap = o.expect_line_starting("iommu0: cap=");
    assert!(cap.contains("mgaw=39") && cap.contains("sagaw=3lvl "), "{cap}");
    o.expect_line_starting("acpi: DMAR at").contains("host address width 39 bits");
    let ir = o.expect_line_starting("iommu: interrupt remapping on, table at ");
    assert!(ir.contains("(256 entries), CFI clear (compatibility-format interrupts refused by the unit; QEMU 7.2 passes them); I/O APIC source validated"), "{ir}");
    o.expect_serial_contains("iommu: I/O APIC requester id ff:00.0");
}

#[test]
fn no_dmar_is_rejected() {
    Scenario::new("no_dmar")
        .iommu(Iommu::None)
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: no DMAR table")
        .expect_serial_not_contains("root: hello");
}

/// Firmware tables outside the direct map are bad boot input (exit 0x72), not a kernel
/// panic: the RSDP is pointed at 16 TiB (`test_rsdp=`), far beyond the direct map.
#[test]
fn acpi_table_outside_direct_map_is_rejected() {
    Scenario::new("acpi_outside_direct_map")
        .append("test_rsdp=0x100000000000")
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: ACPI table at 0x100000000000 (+0x")
        .expect_serial_contains("bytes) is outside the direct map")
        .expect_serial_not_contains("KERNEL PANIC")
        .expect_serial_not_contains("root: hello");
}

/// The plain kernel.elf (no packed image) and no module: the error names both ways.
#[test]
fn no_boot_image_is_rejected() {
    Scenario::new("no_module")
        .initrd(None)
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: no boot image: the kernel ELF carries none")
        .expect_serial_contains("no boot module was passed (-initrd, GRUB module2)");
}

/// A packed image that did not arrive intact (one byte flipped in system.elf) is refused
/// by its checksum before anything in it is trusted.
#[test]
fn corrupt_packed_image_is_rejected() {
    let mut elf = std::fs::read(build_dir().join("system.elf")).expect("build/system.elf: run make image");
    let (image, _) = scenarios::packelf::unpack_system(&elf).expect("a packed system.elf");
    let at = elf.len() - image.len() + 0x1800; // the image is the tail of the file
    elf[at] ^= 0xff;
    let path = scenario_dir().join("corrupt_system.elf");
    std::fs::write(&path, &elf).unwrap();
    let mut s = Scenario::new("corrupt_packed_image");
    s.kernel = path;
    s.run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: packed boot image checksum is 0x")
        .expect_serial_not_contains("root: hello");
}

/// The fallback: the plain kernel.elf takes the boot image as the `-initrd` module.
#[test]
fn boots_from_an_initrd_module() {
    Scenario::new("initrd_module")
        .initrd(Some(build_dir().join("boot.img")))
        .run()
        .expect_exit(ExitCode::Success)
        .expect_serial_contains(", boot module 0x")
        .expect_serial_contains("root: boot image: ")
        .expect_serial_contains("root: hello from the root task");
}

#[test]
fn truncated_module_is_rejected() {
    let full = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run make image");
    let path = scenario_dir().join("truncated.img");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    Scenario::new("truncated_module")
        .initrd(Some(path))
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: boot module: boot image declares")
        .expect_serial_contains("truncated");
}

#[test]
fn wrong_elf_is_rejected() {
    let path = scenario_dir().join("not_elf.img");
    make_image(&path, &[("manifest", b"root root\n"), ("root", b"#!/bin/sh\necho this is not an ELF\n")]);
    Scenario::new("wrong_elf")
        .initrd(Some(path))
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: root task 'root' is not a loadable program: not an ELF image");
    // An ELF for the wrong machine: patch e_machine of the real root task to EM_386.
    let mut elf = std::fs::read(scenarios::user_program("root")).expect("root ELF");
    elf[18..20].copy_from_slice(&3u16.to_le_bytes());
    let path = scenario_dir().join("wrong_machine.img");
    make_image(&path, &[("manifest", b"root root\n"), ("root", &elf)]);
    Scenario::new("wrong_machine")
        .initrd(Some(path))
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("ELF image is for machine 3, not x86_64");
}

#[test]
fn bad_manifest_is_rejected() {
    let path = scenario_dir().join("bad_manifest.img");
    make_image(&path, &[("manifest", b"root missing\n"), ("root", b"x")]);
    Scenario::new("bad_manifest")
        .initrd(Some(path))
        .run()
        .expect_exit(ExitCode::BadBootInput)
        .expect_serial_contains("BOOT ERROR: boot module: manifest line 1 names a program that is not in the image");
}

/// The same (hybrid) ISO under UEFI firmware (OVMF): GRUB EFI loads the kernel by
/// multiboot2; ACPI comes from the loader's RSDP tag (no BIOS area to scan) and VT-d's
/// DMAR table is there.
#[test]
fn iso_boots_under_uefi() {
    let mut s = Scenario::new("iso_uefi").cdrom(build_dir().join("kernel.iso")).uefi("/usr/share/ovmf/OVMF.fd".into());
    s.timeout = std::time::Duration::from_secs(180);
    s.run()
        .expect_exit(ExitCode::Success)
        .expect_serial_contains("boot protocol: multiboot2")
        .expect_serial_contains("(from the boot loader)")
        .expect_serial_contains("acpi: DMAR at ")
        .expect_serial_contains("iommu0: base=0xfed90000")
        .expect_serial_contains("root: hello from the root task")
        .expect_serial_contains("root: the console server wrote");
}

#[test]
fn iso_boots_via_grub_multiboot2() {
    Scenario::new("iso_grub")
        .cdrom(build_dir().join("kernel.iso"))
        .run()
        .expect_exit(ExitCode::Success)
        .expect_serial_contains("boot protocol: multiboot2")
        .expect_serial_contains(", packed boot image 0x000001000000..")
        .expect_serial_contains("iommu0: base=0xfed90000")
        .expect_serial_contains("root: hello from the root task");
}
