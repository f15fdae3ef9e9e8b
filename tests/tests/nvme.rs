//! NVMe driver scenario: `systems/test-nvme.toml` with QEMU's NVMe controller.
//!
//! The host writes a marker into LBA 0 of a raw disk image; the `nvmedrv` component
//! (DMA only through its iommu-server pool) identifies the controller and namespace,
//! makes one I/O queue pair, reads the marker, writes 16 KiB at LBA 64 through a PRP
//! list, flushes and reads it back. After QEMU exits the host opens the image and
//! checks the bytes at LBA 64. The boot image is packed into the kernel ELF: with an
//! NVMe drive attached a PVH `-initrd` arrives corrupted (docs/boot.md).

use scenarios::{scenario_dir, Scenario};

/// What the host puts at LBA 0 (the driver prints it).
const HOST_MARKER: &[u8] = b"HOST-NVME-LBA0-MARKER";
/// Where and how much the driver writes (userland/nvmedrv).
const WRITE_LBA: u64 = 64;
const TRANSFER: usize = 16384;

/// The byte the driver writes at offset `i` of its transfer.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 9)) as u8
}

#[test]
fn nvme_write_read_flush_and_persist() {
    let disk = scenario_dir().join("nvme-disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..HOST_MARKER.len()].copy_from_slice(HOST_MARKER);
    std::fs::write(&disk, &bytes).expect("create the disk image");
    let drive = format!("file={},if=none,id=d0,format=raw", disk.display());
    let mut scenario = Scenario::new("nvme").append("iommu=allow-unremapped-dma").args(&[
        "-drive",
        &drive,
        "-device",
        "nvme,serial=nvmetest,drive=d0",
    ]);
    scenario.kernel = scenarios::systems::elf_for("test-nvme", "nvme");
    scenario.timeout = std::time::Duration::from_secs(90);
    let o = scenario.run();
    let server = o.expect_line_starting("authority: iommu-server: ");
    assert!(server.contains("msi-x nvme"), "init made the MSI-X handler for the server: {server}");
    o.expect_serial_contains("init: system 'test-nvme' started: 2 components")
        .expect_serial_contains("nvmedrv: device nvme: BAR0 0x")
        .expect_serial_contains("nvmedrv: controller enabled: version 0x10400")
        .expect_serial_contains("nvmedrv: identify: model 'QEMU NVMe Ctrl' serial 'nvmetest' vendor 0x1b36")
        .expect_serial_contains("nvmedrv: namespace 1: 2048 blocks of 512 bytes")
        .expect_serial_contains("nvmedrv: I/O queue pair 1 created")
        .expect_serial_contains("nvmedrv: LBA 0 reads 'HOST-NVME-LBA0-MARKER'")
        .expect_serial_contains(
            "nvmedrv: wrote 16384 bytes at LBA 64 through a PRP list, flushed, read them back: match",
        )
        .expect_serial_contains("nvmedrv: completions by MSI-X entry 0 vector 0x")
        .expect_serial_not_contains("nvmedrv: FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        // The driver exits when done and the system ends (the server serves forever).
        .expect_serial_contains("init: system 'test-nvme': every component stopped (servers left running)")
        .expect_exit(abi::exit::ExitCode::Success);
    // Completions woke the driver by MSI-X (it blocks on the handler's notification).
    let line = o.expect_line_starting("nvmedrv: 8 completions, ");
    let interrupts: u64 =
        line.split(", ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(interrupts >= 1, "no MSI-X interrupt woke the driver: {line}");
    // The data is in the host's image after QEMU exited.
    let after = std::fs::read(&disk).expect("read the disk image back");
    let at = (WRITE_LBA * 512) as usize;
    let bad = (0..TRANSFER).find(|&i| after[at + i] != pattern(i as u64));
    assert_eq!(bad, None, "the disk image differs at LBA {WRITE_LBA} + byte {bad:?}; log {}", o.log_path.display());
    assert_eq!(&after[..HOST_MARKER.len()], HOST_MARKER, "LBA 0 untouched");
}

#[test]
fn a_rogue_controller_is_blocked_and_a_crashed_driver_restarts_with_dead_old_iovas() {
    let disk = scenario_dir().join("nvme-rogue-disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..HOST_MARKER.len()].copy_from_slice(HOST_MARKER);
    std::fs::write(&disk, &bytes).expect("create the disk image");
    let drive = format!("file={},if=none,id=d0,format=raw", disk.display());
    let mut scenario = Scenario::new("nvme_rogue").append("iommu=allow-unremapped-dma").args(&[
        "-drive",
        &drive,
        "-device",
        "nvme,serial=nvmetest,drive=d0",
    ]);
    scenario.kernel = scenarios::systems::elf_for("test-nvme-rogue", "nvme_rogue");
    scenario.timeout = std::time::Duration::from_secs(120);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-nvme-rogue' started: 3 components")
        .expect_serial_contains("nvmedrv: rogue: reading LBA 0 into iova 0x8000000 (outside the pool)")
        .expect_serial_contains("management: DMA fault from nvme-driver (device nvme 00:0")
        .expect_serial_contains("iova 0x8000000, reason 0x5 (write to a read-only or unmapped IOVA); policy log")
        .expect_serial_contains("nvmedrv: rogue: the read outside the pool completed")
        .expect_serial_contains("nvmedrv: rogue: crashing with the 16384 byte write at LBA 64 in flight")
        .expect_serial_contains("management: CPU fault in nvme-driver: page fault at 0x")
        .expect_serial_contains("policy restart (1 of 2)")
        .expect_serial_contains(
            "iommu-server: device 0: driver generation 2: dropped 4 buffers of the previous instance",
        )
        // Generation 2: the controller works again.
        .expect_serial_contains("nvmedrv: device nvme: BAR0 0x4000 bytes at 0x500000000000 (gen 2)")
        .expect_serial_contains(
            "nvmedrv: wrote 16384 bytes at LBA 64 through a PRP list, flushed, read them back: match",
        )
        .expect_serial_contains("nvmedrv: rogue: reading LBA 0 into the stale iova 0x108000 of generation 1")
        .expect_serial_contains("iova 0x108000, reason 0x5 (write to a read-only or unmapped IOVA); policy log")
        .expect_serial_contains("nvmedrv: rogue: the read into the stale iova completed")
        .expect_serial_not_contains("nvmedrv: FAIL")
        .expect_serial_contains("init: nvme-driver exited with code 0")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_exit(abi::exit::ExitCode::Success);
    // Generation 2's buffers are not generation 1's (quarantined, then dead).
    let queues = o.lines_starting("nvmedrv: queues at iova ");
    assert_eq!(queues.len(), 2, "{queues:?}");
    assert!(!queues[1].contains("0x108000"), "generation 2 reused generation 1's write buffer: {queues:?}");
    // Generation 2's write is in the host's image.
    let after = std::fs::read(&disk).expect("read the disk image back");
    let at = (WRITE_LBA * 512) as usize;
    assert_eq!((0..TRANSFER).find(|&i| after[at + i] != pattern(i as u64)), None, "generation 2's data");
}

#[test]
fn a_block_client_writes_and_reads_through_the_driver_rings() {
    let disk = scenario_dir().join("nvme-client-disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..HOST_MARKER.len()].copy_from_slice(HOST_MARKER);
    std::fs::write(&disk, &bytes).expect("create the disk image");
    let drive = format!("file={},if=none,id=d0,format=raw", disk.display());
    let mut scenario = Scenario::new("nvme_client").append("iommu=allow-unremapped-dma").args(&[
        "-drive",
        &drive,
        "-device",
        "nvme,serial=nvmetest,drive=d0",
    ]);
    scenario.kernel = scenarios::systems::elf_for("test-nvme-client", "nvme_client");
    scenario.timeout = std::time::Duration::from_secs(120);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-nvme-client' started: 3 components")
        .expect_serial_contains(
            "nvmedrv: serving a client: data region 64 KiB, 2048 blocks of 512 bytes, at most 32 per request",
        )
        .expect_serial_contains("blkclient: disk of 2048 blocks of 512 bytes, at most 32 blocks per request")
        .expect_serial_contains(
            "nvmedrv: refused a client request outside the data region (offset 0xfe00, 8 blocks, id 1)",
        )
        .expect_serial_contains("blkclient: a read into a buffer past the region: refused with status 2")
        .expect_serial_contains("blkclient: an unknown operation: refused with status 1")
        .expect_serial_contains("blkclient: a read past the disk's end: refused with status 4")
        .expect_serial_contains("blkclient: a request larger than the driver takes: refused with status 3")
        .expect_serial_contains(
            "blkclient: wrote 4096 bytes at LBA 512, flushed, read them back through the driver: match",
        )
        .expect_serial_contains("blkclient: LBA 0 (status 0) reads 'HOST-NVME-LBA0-MARKER'")
        .expect_serial_contains("blkclient: done")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        .expect_serial_contains("init: system 'test-nvme-client': every component stopped (servers left running)")
        .expect_exit(abi::exit::ExitCode::Success);
    // The client's pattern is in the host's image; the refused read wrote nothing.
    let after = std::fs::read(&disk).expect("read the disk image back");
    let at = 512 * 512;
    let expect: Vec<u8> = (0..4096).map(|i: usize| (i as u8).wrapping_mul(13) ^ 0x5a).collect();
    assert_eq!(&after[at..at + 4096], &expect[..], "the client's blocks in the image");
    assert_eq!(&after[..HOST_MARKER.len()], HOST_MARKER, "LBA 0 untouched");
}
