//! Boot scenario with the drivers' devices attached.
//!
//! Boots with the devices the drivers need attached at once (NVMe, e1000e, virtio-net,
//! virtio-blk). With an NVMe drive SeaBIOS reserves more of the top of low RAM than
//! QEMU's `-initrd` placement allows for, so this needs the packed boot image.

use abi::exit::ExitCode;
use scenarios::{scenario_dir, Scenario};

/// vendor:device of each attached function.
const DEVICES: [(&str, &str); 4] =
    [("8086:10d3", "e1000e"), ("1b36:0010", "nvme"), ("1af4:1041", "virtio-net"), ("1af4:1042", "virtio-blk")];

fn disk(name: &str) -> String {
    let path = scenario_dir().join(name);
    let file = std::fs::File::create(&path).expect("create a scratch disk");
    file.set_len(1 << 20).expect("size the scratch disk");
    path.display().to_string()
}

fn with_devices(name: &str, mib: u32) -> Scenario {
    let nvme = format!("if=none,id=nvm,format=raw,file={}", disk(&format!("{name}-nvme.img")));
    let blk = format!("if=none,id=blk,format=raw,file={}", disk(&format!("{name}-blk.img")));
    Scenario::new(name).memory(mib).args(&[
        "-nic",
        "none",
        "-netdev",
        "user,id=n0",
        "-device",
        "e1000e,netdev=n0",
        "-netdev",
        "user,id=n1",
        "-device",
        "virtio-net-pci,netdev=n1,iommu_platform=on,disable-legacy=on",
        "-drive",
        &nvme,
        "-device",
        "nvme,serial=nvme0,drive=nvm",
        "-drive",
        &blk,
        "-device",
        "virtio-blk-pci,drive=blk,iommu_platform=on,disable-legacy=on",
    ])
}

fn boots_with_devices(name: &str, mib: u32) {
    let o = with_devices(name, mib).run();
    o.expect_exit(ExitCode::Success)
        .expect_serial_contains(", packed boot image 0x000001000000..")
        .expect_serial_contains("root: hello from the root task");
    for (id, what) in DEVICES {
        let kernel = o.lines_starting("pci ").into_iter().any(|l| l.contains(&format!(" {id} class ")));
        let root = o.lines_starting("root: pci ").into_iter().any(|l| l.contains(&format!(" {id} ")));
        assert!(kernel && root, "{name}: {what} ({id}) missing from the PCI lists (kernel {kernel}, root task {root})");
    }
    msix_pages_unmappable(&o.serial);
}

/// Every function's MSI-X table and PBA page is in no untyped, while the first page of
/// a BAR shared with the table (NVMe's registers, BAR 0 + 0x2000 holds the table) is
/// still device untyped: only the table's pages are taken out.
fn msix_pages_unmappable(serial: &str) {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x").trim_end_matches([',', ')', ':']), 16).unwrap();
    let untyped: Vec<(u64, u64, bool)> = serial
        .lines()
        .filter(|l| l.starts_with("untyped: 0x"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let base = hex(w[1]);
            (base, base + (1u64 << w[2].trim_start_matches("2^").parse::<u32>().unwrap()), w[3] == "device")
        })
        .collect();
    let covered = |a: u64| untyped.iter().find(|u| (u.0..u.1).contains(&a)).map(|u| u.2);
    let lines: Vec<&str> =
        serial.lines().filter(|l| l.contains(": MSI-X ") && l.contains("kept out of device untyped")).collect();
    assert_eq!(lines.len(), 4, "one MSI-X table per device: {lines:?}");
    let mut shared = 0;
    for line in lines {
        let w: Vec<&str> = line.split_whitespace().collect();
        let at = |key: &str| w.iter().position(|x| *x == key).map(|i| hex(w[i + 1])).unwrap();
        let (table, pba, offset) = (at("table"), at("PBA"), at("+"));
        assert_eq!((covered(table), covered(pba)), (None, None), "{line}: a table or PBA page is in an untyped");
        if offset >= 0x1000 {
            assert_eq!(covered(table - offset), Some(true), "{line}: the BAR's register page is not device untyped");
            shared += 1;
        }
    }
    assert_eq!(shared, 1, "NVMe's table shares BAR 0 with its registers");
}

#[test]
fn boots_with_nvme_nics_and_virtio_at_256_mib() {
    boots_with_devices("devices_256m", 256);
}

#[test]
fn boots_with_nvme_nics_and_virtio_at_1_gib() {
    boots_with_devices("devices_1g", 1024);
}
