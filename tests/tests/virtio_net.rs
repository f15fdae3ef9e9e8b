//! virtio-net scenario: the driver component exchanges ARP with QEMU user net.
//!
//! `systems/test-virtio-net.toml` (iommu-server + `virtionetdrv`) with a modern
//! virtio-net behind the IOMMU (`iommu_platform=on,disable-legacy=on`) on a `-netdev
//! user`. The driver must accept VIRTIO_F_ACCESS_PLATFORM and read FEATURES_OK back,
//! give the device only IOVAs of its pool, send an ARP request for 10.0.2.2 and receive
//! slirp's reply. The host side checks the frames in a `filter-dump` capture of the
//! netdev: the request the driver logged is what went on the wire, and the reply the
//! driver logged is what slirp sent. A device without `iommu_platform` is refused.

use scenarios::net::{hex, pcap_frames};
use scenarios::systems::image_as;
use scenarios::{scenario_dir, Scenario};

const APPEND: &str = "iommu=allow-unremapped-dma";

#[test]
fn virtio_net_exchanges_arp_with_the_user_network() {
    let pcap = scenario_dir().join("virtio_net.pcap");
    let _ = std::fs::remove_file(&pcap);
    let mut scenario =
        Scenario::new("virtio_net").initrd(Some(image_as("test-virtio-net", "virtio_net"))).append(APPEND);
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
    scenario.stop_at = vec!["init: virtio-net-driver exited".into()];
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
    o.expect_serial_contains("virtionet: done")
        .expect_serial_contains("virtionet: queues routed to MSI-X entry 0 vector 0x")
        .expect_serial_contains(": 2 routed, 0 refused");
    // The queues' completions raised the MSI-X entry (the driver routed them itself).
    let irqs = o.lines_starting("virtionet: ").into_iter().find(|l| l.ends_with(" interrupts")).expect("the count");
    let n: u64 = irqs["virtionet: ".len()..].split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(n >= 1, "no MSI-X interrupt from the virtio queues: {irqs}");
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
    let mut scenario = Scenario::new("virtio_net_bypass")
        .initrd(Some(image_as("test-virtio-net", "virtio_net_bypass")))
        .append(APPEND);
    scenario.extra_args = ["-device", "virtio-net-pci,disable-legacy=on,netdev=n0", "-netdev", "user,id=n0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    scenario.timeout = std::time::Duration::from_secs(240);
    scenario.stop_at = vec!["init: virtio-net-driver exited".into()];
    let o = scenario.run();
    // Bit 33 missing: its DMA would bypass VT-d, so the driver never starts the device.
    let fail = o.expect_line_starting("virtionet: FAIL device refused: Offers(");
    let bits: u64 = fail.trim_end_matches(')').rsplit('(').next().unwrap().parse().unwrap();
    assert!(bits & 1 << 33 == 0 && bits & 1 << 32 != 0, "{fail}");
    o.expect_serial_not_contains("virtionet: features");
}

/// Two NICs on one QEMU hub, each with its own driver component, pool and IOSpace: each
/// driver receives the ARP request the other sent, byte for byte.
///
/// It used to hang in about one run of four: QEMU 7.2 drops a frame the hub queued for
/// a virtio NIC whose driver is just setting DRIVER_OK (the queue is flushed before the
/// status changes, so the device refuses it), so the first NIC's first request is lost;
/// that NIC then gets the second's request, sends once more and ends, and the iommu-server
/// resets its device. The second NIC's own last request then has nowhere to go: QEMU
/// holds a virtio transmit buffer until the peer takes the frame, and the crate's
/// blocking `send` spun for ever (before the line saying what it had received). The
/// driver now queues sends without blocking (`VirtIONetRaw`), bounds the wait for that
/// last one and says so.
#[test]
fn two_virtio_nics_on_a_hub_pass_frames_to_each_other() {
    let nic = "virtio-net-pci,iommu_platform=on,disable-legacy=on";
    let a = format!("{nic},netdev=h0,addr=04.0,mac=52:54:00:00:00:0a");
    let b = format!("{nic},netdev=h1,addr=05.0,mac=52:54:00:00:00:0b");
    let mut scenario = Scenario::new("virtio_net_hub")
        .initrd(Some(image_as("test-virtio-net2", "virtio_net_hub")))
        .append(APPEND)
        .args(&["-device", &a, "-netdev", "hubport,id=h0,hubid=0", "-device", &b, "-netdev", "hubport,id=h1,hubid=0"]);
    scenario.timeout = std::time::Duration::from_secs(240);
    scenario.stop_at = vec!["init: nic-a-driver exited".into(), "init: nic-b-driver exited".into()];
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-virtio-net2' started: 3 components")
        .expect_serial_contains("iommu-server: serving 2 devices")
        .expect_serial_contains("init: nic-a-driver exited with code 0")
        .expect_serial_contains("init: nic-b-driver exited with code 0")
        .expect_serial_not_contains("virtionet: FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault");
    assert!(!o.timed_out, "both drivers finished before the timeout");
    // Only the NIC that ended second may find its last request not taken.
    assert!(o.lines_starting("virtionet: the last request was not taken").len() <= 1);
    scenarios::net::check_hub_exchange(&o, "virtionet", "virtionet: sent ARP request ");
}

#[test]
fn a_rogue_virtio_nic_is_blocked_and_its_driver_restarted_mid_transfer() {
    let mut scenario = Scenario::new("virtio_net_rogue")
        .initrd(Some(image_as("test-virtio-net-rogue", "virtio_net_rogue")))
        .append(APPEND)
        .args(&["-device", "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=n0", "-netdev", "user,id=n0"]);
    scenario.timeout = std::time::Duration::from_secs(240);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-virtio-net-rogue' started: 3 components")
        .expect_serial_contains("virtionet: rogue: handing the device a frame at iova 0x8000000 (outside the pool)")
        .expect_serial_contains("management: DMA fault from virtio-net-driver (device nic 00:0")
        .expect_serial_contains("iova 0x8000000, reason 0x6 (read of unmapped IOVA); policy restart (1 of 2)")
        .expect_serial_contains("virtionet: rogue: a second buffer at iova 0x141000")
        .expect_serial_contains("management: restarted virtio-net-driver: generation 2")
        // Generation 2 works, then its device reads generation 1's dead region.
        .expect_serial_contains("virtionet: rogue: handing the device a frame at iova 0x141000 (generation 1's, stale)")
        .expect_serial_contains("iova 0x141000, reason 0x6 (read of unmapped IOVA); policy restart (2 of 2)")
        .expect_serial_contains("management: restarted virtio-net-driver: generation 3")
        .expect_serial_contains("virtionet: done")
        .expect_serial_contains("init: virtio-net-driver exited with code 0")
        .expect_serial_not_contains("virtionet: FAIL")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_exit(abi::exit::ExitCode::Success);
    // Every generation got its ARP reply except where it was killed mid-send: 2 and 3.
    let replies = o.lines_starting("virtionet: ARP reply: 0a000202 is at 52550a000202 (");
    assert_eq!(replies.len(), 2, "{replies:?}");
    let regions = o.lines_starting("virtionet: DMA region iova ");
    assert_eq!(regions.len(), 3, "{regions:?}");
    // After each device reset the domain starts empty: the region may be at 0x100000
    // again, but generation 1's second buffer is covered by no later allocation.
    assert!(o.lines_starting("virtionet: rogue: a second buffer").len() == 1, "only generation 1 takes it");
}

#[test]
fn a_client_talks_through_the_virtio_driver_rings_and_its_bad_entries_are_refused() {
    let pcap = scenario_dir().join("virtio_net_client.pcap");
    let _ = std::fs::remove_file(&pcap);
    let mut scenario = Scenario::new("virtio_net_client")
        .initrd(Some(image_as("test-virtio-net-client", "virtio_net_client")))
        .append(APPEND);
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
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-virtio-net-client' started: 3 components")
        .expect_serial_contains("virtionet: serving a client: data region 64 KiB, 128 entries per ring")
        .expect_serial_contains("virtionet: one blocking wait for the client (badge 1) and the device (MSI, badge 2)")
        .expect_serial_contains(
            "virtionet: refused a client send entry outside the data region (offset 0xfffffffffffffff0, len 60, id 47825)",
        )
        .expect_serial_contains(
            "virtionet: refused a client receive entry outside the data region (offset 0x10000, len 2048, id 47824)",
        )
        .expect_serial_contains("netclient: ARP reply through the driver: 10.0.2.2 is at 52550a000202")
        .expect_serial_contains("netclient: DHCP offer through the driver: 10.0.2.15")
        .expect_serial_contains("netclient: both entries outside the region came back refused (length 0)")
        .expect_serial_contains("netclient: done")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        .expect_serial_contains("init: system 'test-virtio-net-client': every component stopped (servers left running)")
        .expect_exit(abi::exit::ExitCode::Success);
    scenarios::net::check_client_frames(&o, &pcap);
}
