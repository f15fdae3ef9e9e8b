//! The composed default system and issue 12's fault scenarios, booted in QEMU.
//!
//! Each scenario packs a description (`systems/default.toml` or a `systems/test-*.toml`,
//! checked by the same library as `mksys`) into a copy of `build/boot.img` and boots
//! it with QEMU's edu device at its default 28-bit DMA mask and
//! `iommu=allow-unremapped-dma` (QEMU 7.2 records no interrupt-remapping faults). They
//! assert the serial markers of init, the iommu-server, the edu driver (`edudrv`) and
//! management; a marker that never comes fails with the log's tail.

use abi::exit::ExitCode;
use scenarios::systems::image_for;
use scenarios::{Outcome, Scenario};

/// Boots `system` with edu (default DMA mask) and `mib` MiB of RAM.
fn boot(name: &str, system: &str, mib: u32) -> Outcome {
    let mut s = Scenario::new(name).append("iommu=allow-unremapped-dma").memory(mib);
    s.extra_args = vec!["-device".into(), "edu".into()];
    s.timeout = std::time::Duration::from_secs(120);
    s.initrd(Some(image_for(system))).run()
}

/// The lines every composed system prints while starting.
fn started(o: &Outcome, system: &str) {
    o.expect_serial_contains(&format!("init: system '{system}': 3 components, 1 channels, 1 regions, 1 devices"))
        .expect_serial_contains(&format!("init: system '{system}' started: 3 components"))
        .expect_serial_contains("iommu-server: device 0: IOVAs below 0x10000000 (dma mask 28 bits)")
        .expect_serial_contains("management: watching device edu (driver edu-driver)")
        .expect_serial_not_contains("FAIL")
        .expect_serial_not_contains("ACCEPTED");
}

#[test]
fn default_system_does_dma_through_the_pool() {
    let o = boot("system_default", "default", 256);
    started(&o, "default");
    // Who can DMA where: init's summary and the server's domain.
    let driver = o.expect_line_starting("authority: edu-driver: ");
    assert!(driver.contains("dma via iommu-server edu") && driver.contains("device edu 00:03.0 via iommu-server"));
    assert!(!driver.contains("device edu,") && !driver.contains("msi"), "{driver}");
    let server = o.expect_line_starting("authority: iommu-server: ");
    assert!(server.contains("device edu") && server.contains("dma pool edu") && server.contains("msi edu"));
    o.expect_serial_contains("graph: iommu-server -> device:edu [pci 00:03.0, iospace]")
        .expect_serial_contains("graph: edu-driver -> iommu-server [dma edu, pool 64 KiB]")
        .expect_serial_contains("edudrv: generation 1, mode Normal")
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_contains("init: edu-driver exited with code 0")
        .expect_serial_contains("init: system 'default': every component stopped (servers left running)")
        .expect_serial_not_contains("management: DMA fault")
        .expect_exit(ExitCode::Success);
}

/// `0x...` after `prefix` in `line`, parsed.
fn hex_after(line: &str, prefix: &str) -> u64 {
    let rest = &line[line.find(prefix).unwrap_or_else(|| panic!("{prefix} in {line}")) + prefix.len()..];
    let digits: String = rest.trim_start_matches("0x").chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn frames_above_4g_get_iovas_below_the_28_bit_mask() {
    let o = boot("system_6g", "default", 6144);
    started(&o, "default");
    let line = o.expect_line_starting("edudrv: buffer iova ");
    let (iova, frame) = (hex_after(line, "iova "), hex_after(line, "frame "));
    assert!(iova + 4096 <= 1 << 28, "IOVA {iova:#x} fits edu's 28-bit mask: {line}");
    assert!(frame >= 1 << 32, "the driver's budget (and pool) lies above 4 GiB with -m 6G: {line}");
    o.expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)").expect_exit(ExitCode::Success);
}

#[test]
fn rogue_dma_is_reported_and_the_driver_restarted_then_cut_off() {
    let o = boot("system_restart", "test-restart", 256);
    started(&o, "test-restart");
    o.expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_contains("edudrv: second buffer iova 0x102000 (gen 1)")
        .expect_serial_contains("edudrv: rogue-outside: programming edu to read iova 0x8000000 (outside the pool)")
        .expect_serial_contains(
            "management: DMA fault from edu-driver (device edu 00:03.0): iova 0x8000000, reason 0x6 (read of unmapped IOVA); policy restart (1 of 2)",
        )
        .expect_serial_contains("iommu-server: device 0 reset: ")
        .expect_serial_contains("management: restarted edu-driver: generation 2")
        // The new instance's DMA works on fresh IOVAs (the reset quarantined generation
        // 1's: the device is not reset with its domain); generation 1's buffers are dead.
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x104000, gen 2)")
        .expect_serial_contains("edudrv: rogue-outside: reading the stale iova 0x102000 of generation 1")
        .expect_serial_contains(
            "management: DMA fault from edu-driver (device edu 00:03.0): iova 0x102000, reason 0x6 (read of unmapped IOVA); policy restart (2 of 2)",
        )
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x106000, gen 3)")
        .expect_serial_contains("policy restart: limit (2) reached, cut-off")
        .expect_serial_contains("management: device edu cut off: it stays unassigned (ok)")
        .expect_serial_contains("management: counters: faults 3, restarts 2, cut-offs 1")
        .expect_serial_contains("edudrv: device cut off: the server refuses its requests (CutOff)")
        .expect_serial_not_contains("gen 4")
        .expect_exit(ExitCode::Success);
}

#[test]
fn cut_off_device_stays_unassigned_and_its_dma_is_blocked() {
    let o = boot("system_cutoff", "test-cutoff", 256);
    started(&o, "test-cutoff");
    o.expect_serial_contains(
        "management: DMA fault from edu-driver (device edu 00:03.0): iova 0x8000000, reason 0x6 (read of unmapped IOVA); policy cut-off",
    )
    .expect_serial_contains("iommu-server: device 0 cut off: ")
    .expect_serial_contains("management: device edu cut off: it stays unassigned (ok)")
    .expect_serial_contains("edudrv: device cut off: the server refuses its requests (CutOff)")
    .expect_serial_contains("edudrv: programming edu to read iova 0x100000 after the cut-off");
    // No context entry any more: the kernel blocks and reports the DMA (reason 0x2).
    let after = o.serial.split("after the cut-off").nth(1).unwrap_or_default();
    assert!(after.contains("requester 00:03.0 reason 0x2"), "blocked DMA after the cut-off not reported:\n{after}");
    o.expect_serial_not_contains("gen 2").expect_exit(ExitCode::Success);
}

#[test]
fn dma_to_a_freed_buffer_is_blocked_and_reported() {
    let o = boot("system_use_freed", "test-use-freed", 256);
    started(&o, "test-use-freed");
    o.expect_serial_contains("edudrv: use-freed: freed iova 0x100000 (1 page)")
        .expect_serial_contains("edudrv: use-freed: frame cap after free: revoked")
        .expect_serial_contains(
            "management: DMA fault from edu-driver (device edu 00:03.0): iova 0x100000, reason 0x6 (read of unmapped IOVA); policy log",
        )
        .expect_serial_contains("management: counters: faults 1, restarts 0, cut-offs 0")
        .expect_serial_contains("init: edu-driver exited with code 0")
        .expect_serial_not_contains("init: fault in")
        .expect_exit(ExitCode::Success);
}

#[test]
fn a_driver_asking_for_what_it_was_not_given_is_refused() {
    let o = boot("system_rogue_device", "test-rogue-device", 256);
    started(&o, "test-rogue-device");
    o.expect_serial_contains(
        "edudrv: rogue-device: DriverCutoff of device 0 through the driver's cap: refused (Denied)",
    )
    .expect_serial_contains("edudrv: rogue-device: DriverReset of device 1 through the driver's cap: refused (Denied)")
    .expect_serial_contains("edudrv: rogue-device: config read of BAR 0: refused (Denied)")
    .expect_serial_contains("edudrv: rogue-device: a client cap for another device: refused (")
    // Nothing of it disturbed the driver's own device.
    .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
    .expect_serial_not_contains("init: fault in")
    .expect_serial_not_contains("management: DMA fault")
    .expect_exit(ExitCode::Success);
}

#[test]
fn a_malicious_server_is_refused_by_the_kernel() {
    let o = boot("system_malicious", "test-malicious", 256);
    started(&o, "test-malicious");
    let refused = o.lines_starting("iommu-server: malicious: ");
    assert!(refused.len() >= 4 && refused.iter().all(|l| l.contains(": refused (")), "{refused:#?}");
    o.expect_serial_contains("iommu-server: malicious: map a forged frame slot into the IOSpace: refused (")
        .expect_serial_contains("iommu-server: malicious: assign the device to a second IOSpace: refused (")
        .expect_serial_contains("iommu-server: malicious: map a driver's mapped frame into another domain: refused (")
        // The server's real work is untouched by what it tried.
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_exit(ExitCode::Success);
}

#[test]
fn cpu_faults_are_reported_to_management() {
    let o = boot("system_crash", "test-crash", 256);
    o.expect_serial_contains("init: system 'test-crash' started: 2 components")
        .expect_serial_contains("crasher: generation 1: reading 0xdead0000")
        .expect_serial_contains("policy restart (1 of 1)")
        .expect_serial_contains("management: CPU fault in crasher: page fault at 0x40")
        .expect_serial_contains("; init restarted it (1 of its limit)")
        .expect_serial_contains("crasher: generation 2: reading 0xdead0000")
        .expect_serial_contains("; init keeps it down (cut off or out of restarts)")
        .expect_serial_contains("management: counters: faults 0, restarts 0, cut-offs 0, CPU faults 2")
        .expect_serial_contains("init: system 'test-crash': every component stopped (servers left running)")
        .expect_exit(ExitCode::Success);
}

#[test]
fn a_driver_restarted_after_a_cpu_fault_gets_a_clean_domain() {
    let o = boot("system_driver_crash", "test-driver-crash", 256);
    started(&o, "test-driver-crash");
    o.expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_contains("edudrv: crash: reading 0xdead0000 while holding iova 0x100000")
        .expect_serial_contains("policy restart (1 of 1)")
        .expect_serial_contains("management: CPU fault in edu-driver: page fault at 0x")
        // The old frames died with the driver's budget; the server drops their records
        // when generation 2 first calls, quarantines their IOVAs, and serves.
        .expect_serial_contains(
            "iommu-server: device 0: driver generation 2: dropped 1 buffers of the previous instance",
        )
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x102000, gen 2)")
        .expect_serial_not_contains("management: device edu reset")
        .expect_serial_contains("init: edu-driver exited with code 0")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_exit(ExitCode::Success);
}

#[test]
fn no_fault_report_is_lost_while_management_is_busy() {
    let o = boot("system_fault_storm", "test-fault-storm", 256);
    o.expect_serial_contains("init: system 'test-fault-storm' started: 4 components")
        .expect_serial_contains("management: busy: not fetching fault reports")
        .expect_serial_contains("edudrv: storm: 5 DMAs outside the pool issued")
        .expect_serial_contains("init: fault in crasher: page fault")
        .expect_serial_contains("management: busy: done, fetching")
        .expect_serial_contains("management: CPU fault in crasher: page fault at 0x")
        .expect_serial_contains("management: received 5 DMA fault reports, 0 lost; 1 CPU fault reports, 0 lost")
        .expect_serial_not_contains("FAIL")
        .expect_exit(ExitCode::Success);
    // Every DMA fault arrived, in the order the driver issued them.
    let iovas: Vec<u64> =
        o.lines_starting("management: DMA fault from edu-driver").iter().map(|l| hex_after(l, "iova ")).collect();
    let expected: Vec<u64> = (0..5).map(|k| 0x0800_0000 + k * 0x1000).collect();
    assert_eq!(iovas, expected, "DMA fault reports at management");
}

#[test]
fn a_restarted_driver_cannot_make_the_server_fault() {
    let o = boot("system_stale", "test-stale", 256);
    started(&o, "test-stale");
    o.expect_serial_contains("edudrv: stale: crashing while holding iovas 0x100000 and 0x102000")
        .expect_serial_contains("init: restarted edu-driver: generation 2")
        .expect_serial_contains(
            "iommu-server: device 0: driver generation 2: dropped 2 buffers of the previous instance",
        )
        .expect_serial_contains("edudrv: stale: free generation 1's first iova: refused (NotFound)")
        .expect_serial_contains("edudrv: stale: free generation 1's second iova: refused (NotFound)")
        .expect_serial_contains("edudrv: stale: frame of generation 1's buffer: refused (NotFound)")
        .expect_serial_contains("edudrv: stale: free an unaligned iova: refused (BadRequest)")
        .expect_serial_contains("edudrv: stale: alloc 0 bytes: refused (BadRequest)")
        .expect_serial_contains("edudrv: stale: alloc with bad rights: refused (BadRequest)")
        .expect_serial_contains("edudrv: stale: unknown label: refused (BadRequest)")
        .expect_serial_contains("edudrv: stale: MSI 7: refused (Denied)")
        .expect_serial_contains("iommu-server: request label 0x3 (badge 0x20001) refused: Ok(NotFound)")
        // The server keeps serving: generation 2's own DMA works at a fresh IOVA.
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x104000, gen 2)")
        .expect_serial_contains("init: edu-driver exited with code 0")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_serial_not_contains("cap fault")
        .expect_exit(ExitCode::Success);
}
