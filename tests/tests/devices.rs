//! All three devices at once: virtio-net, e1000e and NVMe, each in its domain.
//!
//! `systems/test-three.toml` boots with the three devices attached (two user networks,
//! one disk image). Every driver must finish its self-test while the others run: the
//! two NICs each get slirp's ARP reply, the disk's write/read/flush round trip matches
//! and its data is in the host's image afterwards. No DMA fault anywhere.

use abi::exit::ExitCode;
use scenarios::{scenario_dir, Scenario};

/// What the host writes at LBA 0 and the driver must read back.
const HOST_MARKER: &[u8] = b"HOST-NVME-LBA0-MARKER";

#[test]
fn virtio_net_e1000e_and_nvme_work_at_once() {
    let disk = scenario_dir().join("three-disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..HOST_MARKER.len()].copy_from_slice(HOST_MARKER);
    std::fs::write(&disk, &bytes).expect("create the disk image");
    let drive = format!("file={},if=none,id=d0,format=raw", disk.display());
    let mut scenario = Scenario::new("three_devices").append("iommu=allow-unremapped-dma").args(&[
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=n0,addr=04.0",
        "-netdev",
        "user,id=n1",
        "-device",
        "e1000e,netdev=n1,addr=05.0",
        "-drive",
        &drive,
        "-device",
        "nvme,serial=nvmetest,drive=d0,addr=06.0",
    ]);
    scenario.kernel = scenarios::systems::elf_for("test-three", "three_devices");
    scenario.timeout = std::time::Duration::from_secs(300);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-three' started: 4 components")
        .expect_serial_contains("iommu-server: serving 3 devices")
        .expect_serial_contains("virtionet: ARP reply: 0a000202 is at 52550a000202 (")
        .expect_serial_contains("virtionet: done")
        .expect_serial_contains("e1000e: ARP reply: 0a000202 is at 52550a000202")
        .expect_serial_contains("e1000e: DHCP offer: 10.0.2.15 from Some([10, 0, 2, 2])")
        .expect_serial_contains("e1000e: done")
        .expect_serial_contains("nvmedrv: LBA 0 reads 'HOST-NVME-LBA0-MARKER'")
        .expect_serial_contains(
            "nvmedrv: wrote 16384 bytes at LBA 64 through a PRP list, flushed, read them back: match",
        )
        .expect_serial_contains("init: virtio-net-driver exited with code 0")
        .expect_serial_contains("init: e1000e-driver exited with code 0")
        .expect_serial_contains("init: nvme-driver exited with code 0")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        .expect_serial_not_contains("management: DMA fault")
        .expect_serial_not_contains(" reason 0x")
        .expect_serial_contains("init: system 'test-three': every component stopped (servers left running)")
        .expect_exit(ExitCode::Success);
    // Three domains: each device got its own IOSpace from the server.
    for device in ["virtio-nic", "e1000e-nic", "nvme"] {
        o.expect_serial_contains(&format!("graph: iommu-server -> device:{device} [pci "));
    }
    // The disk write is in the host's image after QEMU exited.
    let after = std::fs::read(&disk).expect("the disk image");
    assert_eq!(&after[..HOST_MARKER.len()], HOST_MARKER, "LBA 0 kept the host's marker");
    assert!(after[64 * 512..68 * 512].iter().any(|&b| b != 0), "nothing written at LBA 64");
}
