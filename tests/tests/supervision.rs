//! Regression tests from the attack round: fault routing and supervision rights.
//!
//! A helper that saw only the code and the README confirmed five ways to break
//! invariant 6 and the supervision guarantees in QEMU; each system here is its proof
//! of concept, and each test asserts that the hole stays closed: a management
//! component gets the fault reports of the devices it handles and nobody else's, one
//! device's fault flood cannot drop another's reports, the iommu-server cannot be
//! restarted by management, and restarting a component costs init no slots.

use scenarios::systems::image_for;
use scenarios::{Outcome, Scenario};

fn boot(name: &str, system: &str, devices: &[&str]) -> Outcome {
    let mut s = Scenario::new(name).append("iommu=allow-unremapped-dma").memory(256);
    s.extra_args = devices.iter().flat_map(|d| ["-device".to_string(), d.to_string()]).collect();
    s.timeout = std::time::Duration::from_secs(300);
    s.initrd(Some(image_for(system))).run()
}

#[test]
fn a_management_component_gets_no_other_handlers_faults_and_cannot_cut_off() {
    let o = boot("sup_fault_thief", "test-sup-fault-thief", &["edu"]);
    o.expect_serial_contains("thief: fault sources described to me: 0")
        .expect_serial_contains("thief: stole 0 DMA fault reports meant for another handler")
        .expect_serial_contains("thief: DriverCutoff of device 0 (not mine): Ok(Ok(Denied))")
        .expect_serial_not_contains("iommu-server: device 0 cut off");
    let real = o.lines_starting("management: DMA fault from edu-driver (device edu 00:03.0)");
    assert_eq!(real.len(), 5, "edu's handler got every report: {real:?}");
}

#[test]
fn each_devices_faults_reach_its_own_handler() {
    let o = boot("sup_two_handlers", "test-sup-two-handlers", &["edu,addr=03.0", "edu,addr=04.0"]);
    o.expect_serial_not_contains("nobody described to management");
    let b = o.lines_starting("management: DMA fault from edu-b-driver (device edu-b 00:04.0)");
    assert_eq!(b.len(), 5, "edu-b's handler got edu-b's faults: {b:?}");
}

#[test]
fn one_devices_fault_flood_cannot_drop_another_devices_reports() {
    let o = boot("sup_fault_flood", "test-sup-fault-flood", &["edu,addr=03.0", "edu,addr=04.0"]);
    o.expect_serial_contains("edudrv: flood: 200 DMAs outside the pool issued")
        .expect_serial_contains("edudrv: storm: 5 DMAs outside the pool issued");
    let a = o.lines_starting("management: DMA fault from edu-a-driver");
    let b = o.lines_starting("management: DMA fault from edu-b-driver");
    assert_eq!(b.len(), 5, "every one of edu-b's faults arrived: {b:?}");
    assert!(a.len() >= 128 && a.len() < 200, "edu-a's flood lost only its own reports: {}", a.len());
}

#[test]
fn management_cannot_restart_the_iommu_server() {
    let o = boot("sup_restart_server", "test-sup-restart-server", &["edu"]);
    o.expect_serial_contains("init: restarter may not restart or cut off iommu-server: refused")
        .expect_serial_not_contains("init: restarted iommu-server");
}

#[test]
fn restarting_a_component_many_times_costs_init_no_slots() {
    let o = boot("sup_restart_loop", "test-sup-restart-loop", &[]);
    o.expect_serial_contains("restart-loop: 60 restarts all done")
        .expect_serial_contains("init: restarted victim: generation 61")
        .expect_serial_contains("init: restarted crasher: generation 4")
        .expect_serial_not_contains("failed (Error { code: NotEnoughMemory");
}

/// From attack round 2: a dead driver instance's client cap, kept by a peer it sent it
/// to, made the server drop the live instance's buffers (generations compared with
/// `!=`). Init now revokes every cap it gave an instance before tearing it down (the
/// peer's copy dies with it), and the server refuses an older generation outright.
#[test]
fn a_dead_instances_cap_cannot_disturb_the_live_one() {
    let o = boot("atk_leak", "test-atk-leak", &["edu"]);
    o.expect_serial_contains("init: restarted edu-driver: generation 2")
        .expect_serial_contains("edudrv: leak: gen 2 buffer iova 0x102000, DMA round trip ok")
        .expect_serial_not_contains("driver generation 1: dropped")
        .expect_serial_not_contains("FAILED (buffer unmapped under the live driver)");
}

/// From attack round 2: a peer alternating two generations' caps made the server
/// quarantine IOVAs without bound until its heap ran out. The old generation's cap is
/// revoked now (the peer's call on it faults the peer, not the server), quarantined
/// IOVAs take one record per domain, and the other domain's driver is served.
#[test]
fn generation_flips_cannot_exhaust_the_server() {
    let o = boot("atk_flip", "test-atk-flip", &["edu,addr=03.0", "edu,addr=04.0"]);
    o.expect_serial_contains("keeper-flip: got generation 2's cap")
        .expect_serial_not_contains("init: fault in iommu-server")
        .expect_serial_not_contains("keeper-flip: flip 2")
        .expect_serial_contains("init: restarted other-driver: generation 2");
    let other = o.lines_starting("edudrv: DMA through the pool ok (iova ");
    assert!(other.iter().any(|l| l.ends_with(", gen 2)")), "the other domain's new driver was served: {other:?}");
}

/// From attack round 15: one driver placing a single frame of its own at many IOVAs
/// (`DmaMapFrame`) used up the iommu-server's slots and IO page tables, and every
/// other driver's `DmaAlloc` was refused from then on. The server now gives each
/// device its own share of slots for placed frames and the tables they need.
#[test]
fn one_driver_placing_frames_cannot_starve_another_drivers_dma() {
    let o = boot("atk_hog", "test-atk-hog", &["edu,addr=03.0", "edu,addr=04.0"]);
    o.expect_serial_contains("edudrv: hog: placed one frame at ")
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_not_contains("edudrv: FAIL");
}

/// From attack round 15: a frame a peer lent the driver and the driver placed for its
/// device (`DmaMapFrame`) stayed mapped after init cut the driver off: its budget,
/// pool and caps were revoked, but the server's copy derives from the peer's cap, and
/// nothing told the server. A transfer the dead driver had started landed in it. Init
/// now tells the server (`DriverGone`) at every driver teardown.
#[test]
fn a_lent_frame_placed_by_a_driver_dies_with_the_driver() {
    let o = boot("atk_outlive", "test-atk-outlive", &["edu"]);
    o.expect_serial_contains("edudrv: outlive: lent frame placed at iova 0x4000000, device write started; crashing")
        .expect_serial_contains("policy cut-off")
        .expect_serial_contains("iommu-server: device 0: driver generation 1 gone: 1 placed frames dropped")
        .expect_serial_contains("iommu-server: DMA fault: device 0 requester 00:03.0 iova 0x4000000")
        .expect_serial_contains("giver: the lent frame was never written")
        .expect_serial_not_contains("giver: the edu device wrote");
}

/// From attack round 15: a driver sent the server's own endpoint cap as the frame of a
/// `DmaMapFrame`. The server checked the cap with `Frame::info`, an invocation, which
/// on an endpoint cap is an IPC Call: the server called itself and waited for ever,
/// and no driver was served again. It now maps placed frames with `IoSpace::map_batch`,
/// where the cap is an argument the kernel checks, and never invokes a driver's cap.
#[test]
fn a_driver_sending_an_endpoint_as_a_frame_cannot_block_the_server() {
    let mut s = Scenario::new("atk_block").append("iommu=allow-unremapped-dma").memory(256);
    s.extra_args =
        ["edu,addr=03.0", "edu,addr=04.0"].iter().flat_map(|d| ["-device".to_string(), d.to_string()]).collect();
    s.timeout = std::time::Duration::from_secs(60);
    let o = s.initrd(Some(image_for("test-atk-block"))).run();
    o.expect_serial_contains("edudrv: block: answered Ok(Ok(BadRequest))")
        .expect_serial_contains("edudrv: DMA through the pool ok (iova 0x100000, gen 1)")
        .expect_serial_not_contains("init: fault in iommu-server");
}
