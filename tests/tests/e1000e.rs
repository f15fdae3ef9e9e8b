//! e1000e scenario: the driver component exchanges ARP and DHCP with QEMU user net.
//!
//! `systems/test-e1000e.toml` (iommu-server + `e1000edrv`; `-client`: with `netclient`) with QEMU's 82574 on a
//! `-netdev user`. The driver's rings and buffers are in its pool (IOVAs only); it sends
//! an ARP request for 10.0.2.2 and a DHCP DISCOVER and must receive slirp's reply and
//! offer. The host checks the capture of the netdev: the reply the driver logged is
//! the frame slirp sent, and the driver's requests went on the wire.

use abi::exit::ExitCode;
use scenarios::net::{hex, pcap_frames};
use scenarios::{scenario_dir, Scenario};

/// Boots `system` with an 82574 on QEMU's user network, captured into `pcap`.
fn run_with_capture(name: &str, system: &str, pcap: &std::path::Path) -> scenarios::Outcome {
    let _ = std::fs::remove_file(pcap);
    let mut scenario = Scenario::new(name)
        .initrd(Some(scenarios::systems::image_as(system, name)))
        .append("iommu=allow-unremapped-dma");
    scenario.extra_args = [
        "-netdev",
        "user,id=n0",
        "-device",
        "e1000e,netdev=n0",
        "-object",
        &format!("filter-dump,id=d0,netdev=n0,file={}", pcap.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    scenario.timeout = std::time::Duration::from_secs(240);
    scenario.run()
}

#[test]
fn e1000e_exchanges_arp_and_dhcp_with_the_user_network() {
    let pcap = scenario_dir().join("e1000e.pcap");
    let o = run_with_capture("e1000e", "test-e1000e", &pcap);
    o.expect_serial_contains("init: system 'test-e1000e' started: 2 components")
        .expect_serial_contains("e1000e: rings and buffers at iova 0x100000 (18 pages) from the pool")
        .expect_serial_contains("e1000e: ARP reply: 0a000202 is at 52550a000202")
        .expect_serial_contains("e1000e: DHCP offer: 10.0.2.15 from Some([10, 0, 2, 2])")
        .expect_serial_contains("e1000e: interrupts by MSI vector 0x")
        .expect_serial_contains("e1000e: done")
        .expect_serial_not_contains("e1000e: FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        .expect_serial_contains("init: system 'test-e1000e': every component stopped (servers left running)")
        .expect_exit(ExitCode::Success);
    // The MSI path works in the self-test too: slirp's replies land inside the doorbell
    // write, so their MSIs are counted without a wait (docs/e1000e.md).
    let irqs = o.lines_starting("e1000e: ").into_iter().find(|l| l.contains(" interrupts (IMS 0x85)"));
    let irqs = irqs.expect("the driver did not unmask RXT0, TXDW and LSC");
    let n: u64 = irqs["e1000e: ".len()..].split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(n >= 1, "no MSI counted in the self-test: {irqs}");
    let line = o.expect_line_starting("e1000e: MAC ");
    let mac = line["e1000e: MAC ".len()..].split(',').next().unwrap().to_string();
    let frames = pcap_frames(&std::fs::read(&pcap).expect("the netdev capture"));
    // The driver's ARP request and DISCOVER went on the wire from its MAC.
    let sent: Vec<&Vec<u8>> = frames.iter().filter(|f| f.len() >= 14 && hex(&f[6..12]) == mac).collect();
    assert!(sent.iter().any(|f| f[12..14] == [0x08, 0x06]), "no ARP request from {mac} in the capture");
    assert!(sent.iter().any(|f| f.len() >= 590 && f[12..14] == [0x08, 0x00]), "no DISCOVER from {mac}");
    // The reply the driver logged is byte for byte a frame slirp sent.
    let logged = o.expect_line_starting("e1000e: ARP frame received: ");
    let logged = &logged["e1000e: ARP frame received: ".len()..];
    assert!(frames.iter().any(|f| hex(f) == logged), "the logged reply {logged} is not in the capture");
}

#[test]
fn a_client_talks_through_the_driver_rings_and_its_bad_entries_are_refused() {
    let pcap = scenario_dir().join("e1000e-client.pcap");
    let o = run_with_capture("e1000e-client", "test-e1000e-client", &pcap);
    o.expect_serial_contains("init: system 'test-e1000e-client' started: 3 components")
        .expect_serial_contains("e1000e: serving a client: data region 64 KiB, 128 entries per ring")
        .expect_serial_contains("netclient: offered 16 receive buffers and 2 entries outside the 65536 byte region")
        .expect_serial_contains(
            "e1000e: refused a client send entry outside the data region (offset 0xfffffffffffffff0, len 60, id 47825)",
        )
        .expect_serial_contains(
            "e1000e: refused a client receive entry outside the data region (offset 0x10000, len 2048, id 47824)",
        )
        .expect_serial_contains("netclient: ARP reply through the driver: 10.0.2.2 is at 52550a000202")
        .expect_serial_contains("netclient: DHCP offer through the driver: 10.0.2.15")
        .expect_serial_contains("netclient: both entries outside the region came back refused (length 0)")
        .expect_serial_contains("netclient: done")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("iommu-server: DMA fault")
        .expect_serial_contains("init: system 'test-e1000e-client': every component stopped (servers left running)")
        .expect_exit(ExitCode::Success);
    // The client's MAC is the driver's; its requests reached the wire through the NIC.
    scenarios::net::check_client_frames(&o, &pcap);
}

#[test]
fn a_rogue_nic_is_blocked_and_a_crashed_driver_restarts_with_dead_old_iovas() {
    let pcap = scenario_dir().join("e1000e-rogue.pcap");
    let o = run_with_capture("e1000e-rogue", "test-e1000e-rogue", &pcap);
    o.expect_serial_contains("init: system 'test-e1000e-rogue' started: 3 components")
        .expect_serial_contains("e1000e: rogue: programming the NIC to read iova 0x8000000 (outside the pool)")
        .expect_serial_contains(
            "management: DMA fault from e1000e-driver (device nic 00:02.0): iova 0x8000000, reason 0x6 (read of unmapped IOVA); policy log",
        )
        .expect_serial_contains("e1000e: rogue: 8 ARP requests queued; crashing with receive buffers at iova 0x100000")
        .expect_serial_contains("management: CPU fault in e1000e-driver: page fault at 0x")
        .expect_serial_contains("policy restart (1 of 2)")
        // Generation 2: the device works again, from fresh IOVAs.
        .expect_serial_contains("iommu-server: device 0: driver generation 2: dropped 1 buffers of the previous instance")
        .expect_serial_contains("e1000e: DHCP offer: 10.0.2.15 from Some([10, 0, 2, 2])")
        .expect_serial_contains("e1000e: rogue: programming the NIC to read the stale iova 0x10a000 of generation 1")
        .expect_serial_contains(
            "management: DMA fault from e1000e-driver (device nic 00:02.0): iova 0x10a000, reason 0x6 (read of unmapped IOVA); policy log",
        )
        .expect_serial_contains("e1000e: done")
        .expect_serial_contains("init: e1000e-driver exited with code 0")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_exit(ExitCode::Success);
    // Generation 2 took other IOVAs than generation 1 (whose are quarantined, then dead).
    let regions = o.lines_starting("e1000e: rings and buffers at iova ");
    assert_eq!(regions.len(), 2, "{regions:?}");
    assert!(!regions[1].contains("iova 0x100000 "), "generation 2 reused generation 1's IOVAs: {regions:?}");
    // Every DMA fault names an IOVA outside generation 2's region: nothing it owns faulted.
    let gen2 = regions[1]["e1000e: rings and buffers at iova 0x".len()..].split(' ').next().unwrap();
    let gen2 = u64::from_str_radix(gen2, 16).unwrap();
    for line in o.lines_starting("management: DMA fault from e1000e-driver") {
        let iova = line.split("iova 0x").nth(1).unwrap().split(',').next().unwrap();
        let iova = u64::from_str_radix(iova, 16).unwrap();
        assert!(!(gen2..gen2 + 18 * 4096).contains(&iova), "a fault inside generation 2's region: {line}");
    }
}

#[test]
fn two_e1000e_nics_on_a_hub_pass_frames_to_each_other() {
    let a = "e1000e,netdev=h0,addr=04.0,mac=52:54:00:00:00:0a";
    let b = "e1000e,netdev=h1,addr=05.0,mac=52:54:00:00:00:0b";
    let mut scenario = Scenario::new("e1000e_hub")
        .initrd(Some(scenarios::systems::image_as("test-e1000e2", "e1000e_hub")))
        .append("iommu=allow-unremapped-dma")
        .args(&["-device", a, "-netdev", "hubport,id=h0,hubid=0", "-device", b, "-netdev", "hubport,id=h1,hubid=0"]);
    scenario.timeout = std::time::Duration::from_secs(240);
    let o = scenario.run();
    o.expect_serial_contains("init: system 'test-e1000e2' started: 3 components")
        .expect_serial_contains("iommu-server: serving 2 devices")
        .expect_serial_contains("init: nic-a-driver exited with code 0")
        .expect_serial_contains("init: nic-b-driver exited with code 0")
        .expect_serial_not_contains("e1000e: FAIL")
        .expect_serial_contains("init: system 'test-e1000e2': every component stopped (servers left running)")
        .expect_exit(ExitCode::Success);
    scenarios::net::check_hub_exchange(&o, "e1000e", "e1000e: sending ARP request ");
}
