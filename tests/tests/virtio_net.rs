//! virtio-net scenario: the driver component exchanges ARP with QEMU user net.
//!
//! `systems/test-virtio-net.toml` (iommu-server + `virtionetdrv`) with a modern
//! virtio-net behind the IOMMU (`iommu_platform=on,disable-legacy=on`) on a `-netdev
//! user`. The driver must accept VIRTIO_F_ACCESS_PLATFORM and read FEATURES_OK back,
//! give the device only IOVAs of its pool, send an ARP request for 10.0.2.2 and receive
//! slirp's reply. The host side checks the frames in a `filter-dump` capture of the
//! netdev: the request the driver logged is what went on the wire, and the reply the
//! driver logged is what slirp sent. A device without `iommu_platform` is refused.

use abi::bootimage::BootImage;
use scenarios::{build_dir, make_image, scenario_dir, Scenario};

const APPEND: &str = "iommu=allow-unremapped-dma";

/// The boot image with systems/test-virtio-net.toml packed as `system`.
fn image(name: &str) -> std::path::PathBuf {
    let path = scenarios::repo_root().join("systems/test-virtio-net.toml");
    let text = std::fs::read_to_string(&path).expect("systems/test-virtio-net.toml");
    let programs: Vec<String> = ["root", "iommu-server", "virtionetdrv"].iter().map(|s| s.to_string()).collect();
    let desc = scenarios::sysdesc::compile("systems/test-virtio-net.toml", &text, Some(&programs))
        .unwrap_or_else(|e| panic!("systems/test-virtio-net.toml: {e:?}"));
    let bytes = std::fs::read(build_dir().join("boot.img")).expect("build/boot.img: run `make image` first");
    let image = BootImage::parse(&bytes).expect("build/boot.img parses");
    let mut files: Vec<(&str, &[u8])> =
        image.files().filter(|f| f.name != "system").map(|f| (f.name, f.data)).collect();
    assert!(files.iter().any(|f| f.0 == "virtionetdrv"), "virtionetdrv is packed");
    files.push(("system", &desc));
    let out = scenario_dir().join(format!("{name}.img"));
    make_image(&out, &files);
    out
}

/// The frames of a pcap file (little-endian, as QEMU writes it on x86).
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(bytes.len() >= 24 && bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1], "a pcap file");
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let data = &bytes[at + 16..(at + 16 + len).min(bytes.len())];
        frames.push(data.to_vec());
        at += 16 + len;
    }
    frames
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn virtio_net_exchanges_arp_with_the_user_network() {
    let pcap = scenario_dir().join("virtio_net.pcap");
    let _ = std::fs::remove_file(&pcap);
    let mut scenario = Scenario::new("virtio_net").initrd(Some(image("virtio_net"))).append(APPEND);
    scenario.extra_args = [
        "-device",
        "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=n0",
        "-netdev",
        "user,id=n0",
        "-object",
        &format!("filter-dump,id=d0,netdev=n0,file={}", pcap.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    scenario.timeout = std::time::Duration::from_secs(240);
    scenario.stop_at = Some("init: virtio-net-driver exited".into());
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-virtio-net' started: 2 components")
        .expect_serial_contains("iommu-server: serving 1 devices")
        .expect_serial_not_contains("virtionet: FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault");
    let features = o.expect_line_starting("virtionet: features 0x");
    let bits = u64::from_str_radix(features["virtionet: features 0x".len()..].split(':').next().unwrap(), 16).unwrap();
    assert!(bits & 1 << 33 != 0, "ACCESS_PLATFORM negotiated: {features}");
    let region = o.expect_line_starting("virtionet: DMA region iova 0x");
    assert!(region.ends_with("(64 pages) from the pool"), "{region}");
    let sent = o.expect_line_starting("virtionet: sent ARP request ");
    let sent = sent["virtionet: sent ARP request ".len()..].trim();
    let reply = o.expect_line_starting("virtionet: ARP reply: 0a000202 is at 52550a000202 (");
    let reply = reply.rsplit('(').next().unwrap().trim_end_matches(')');
    o.expect_serial_contains("virtionet: done");
    assert!(!o.timed_out, "the driver finished before the timeout");

    // What the host saw: the driver's request on the wire, byte for byte, and the reply
    // the driver logged is the one slirp sent (padded to 60 bytes on the wire).
    let frames: Vec<String> =
        pcap_frames(&std::fs::read(&pcap).expect("the netdev capture")).iter().map(|f| hex(f)).collect();
    assert!(frames.iter().any(|f| f == sent), "request {sent} not in the capture: {frames:?}");
    assert!(sent.starts_with("ffffffffffff") && sent.contains("08060001080006040001"), "{sent}");
    assert!(sent.ends_with("0a00020f0000000000000a000202"), "asks who has 10.0.2.2: {sent}");
    assert!(frames.iter().any(|f| f == reply), "reply {reply} not in the capture: {frames:?}");
}

#[test]
fn virtio_net_without_access_platform_is_refused() {
    let mut scenario = Scenario::new("virtio_net_bypass").initrd(Some(image("virtio_net_bypass"))).append(APPEND);
    scenario.extra_args = ["-device", "virtio-net-pci,disable-legacy=on,netdev=n0", "-netdev", "user,id=n0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    scenario.timeout = std::time::Duration::from_secs(240);
    scenario.stop_at = Some("init: virtio-net-driver exited".into());
    let o = scenario.run();
    // Bit 33 missing: its DMA would bypass VT-d, so the driver never starts the device.
    let fail = o.expect_line_starting("virtionet: FAIL device refused: Offers(");
    let bits: u64 = fail.trim_end_matches(')').rsplit('(').next().unwrap().parse().unwrap();
    assert!(bits & 1 << 33 == 0 && bits & 1 << 32 != 0, "{fail}");
    o.expect_serial_not_contains("virtionet: features");
}
