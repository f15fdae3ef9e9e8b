//! DMA isolation scenario with QEMU's edu device.
//!
//! DMA isolation scenario with QEMU's edu device: without an IOSpace its DMA is blocked
//! and reported (requester id, address, direction); assigned to an IOSpace it reaches
//! exactly the frames mapped there, with their rights; after UnmapIO, Delete and Revoke
//! it reaches nothing, and each blocked access arrives at the IOSpace's fault handler
//! as a message with the requester, reason and IOVA; with the handler busy, every fault
//! waits in the kernel's fault queue for IoSpaceNextFault.

use abi::exit::ExitCode;
use scenarios::{Iommu, Scenario};

/// dmatest needs bus mastering: QEMU 7.2's remapping unit passes compatibility-format
/// interrupts, so the kernel allows it only with the logged opt-out.
const DMATEST: &str = "init=dmatest iommu=allow-unremapped-dma";

/// With 3 GiB of RAM (1 GiB of it above 4 GiB) dmatest also maps a 1 GiB frame.
#[test]
fn dma_isolation_with_3_level_tables() {
    let o = dma_isolation(Scenario::new("dmatest").append(DMATEST).iommu(Iommu::Default).memory(3072), 2, "queued");
    expect_huge_frames(&o);
}

#[test]
fn dma_isolation_with_4_level_tables() {
    let scenario = Scenario::new("dmatest_aw48").append(DMATEST).iommu(Iommu::AwBits(48)).memory(3072);
    let o = dma_isolation(scenario, 3, "queued");
    // Here the 1 GiB leaf sits in a level-3 table below the root, not in the root.
    expect_huge_frames(&o);
}

/// The 1 GiB frame checks (userland/dmatest/src/huge.rs).
fn expect_huge_frames(o: &scenarios::Outcome) {
    for check in [
        "retype a 1 GiB frame",
        "a 1 GiB frame maps for the CPU at a 1 GiB boundary only",
        "a 1 GiB frame maps for the CPU as one PDPT leaf",
        "the CPU reads back through the 1 GiB page",
        "a 1 GiB frame maps for a device at a 1 GiB boundary only",
        "a batch takes 4 KiB frames only",
        "a 1 GiB frame is one superpage leaf in the IOSpace",
        "the device writes the first and the last page of the 1 GiB frame",
        "the device reads the middle of the 1 GiB frame",
        "attack: MapIO of a 4 KiB frame under a 1 GiB IO leaf is FailedLookup",
        "attack: MapBatch under a 1 GiB IO leaf is FailedLookup",
        "attack: an IO page table under a 1 GiB IO leaf is refused",
        "attack: a second 1 GiB IO leaf over the MSI window is InvalidArgument",
        "attack: a second 1 GiB IO leaf where one is mapped is DeleteFirst",
        "attack: Map of a 4 KiB frame under a 1 GiB CPU leaf is FailedLookup",
        "attack: a page directory where the 1 GiB CPU leaf is mapped is DeleteFirst",
        "attack: MapIO of a 1 GiB frame from device untyped is InvalidCapability",
        "unmap the 1 GiB frame from the IOSpace",
        "after UnmapIO the device cannot reach the 1 GiB frame",
        "... and the fault names the frame's last page",
        "attack: after UnmapBatch of a warm 1 GiB IO mapping its last page is unreachable",
        "attack: after Delete of a warm 1 GiB IO mapping its last page is unreachable",
        "attack: after Revoke of a warm 1 GiB IO mapping its last page is unreachable",
        "unmap the 1 GiB frame from the CPU",
        "delete the 1 GiB frame",
    ] {
        o.expect_serial_contains(&format!("dmatest: ok {check}"));
    }
}

/// The register-based invalidation path (CCMD, IVA + IOTLB registers): QEMU always
/// offers QI, so the kernel is told not to use it.
#[test]
fn dma_isolation_with_register_invalidation() {
    let scenario =
        Scenario::new("dmatest_noqi").iommu(Iommu::Default).append("init=dmatest iommu=noqi,allow-unremapped-dma");
    let o = dma_isolation(scenario, 2, "register-based");
    // noqi leaves interrupt remapping off: bus mastering needs the logged opt-out.
    o.expect_serial_contains("iommu: iommu=allow-unremapped-dma: bus mastering allowed without interrupt remapping");
}

/// Caching mode (CAP.CM): not-present entries may be cached, so maps are invalidated too.
#[test]
fn dma_isolation_in_caching_mode() {
    let mut scenario = Scenario::new("dmatest_cm").append(DMATEST).iommu(Iommu::None);
    scenario.extra_args = vec!["-device".into(), "intel-iommu,caching-mode=on".into()];
    let o = dma_isolation(scenario, 2, "queued");
    o.expect_serial_contains("caching-mode=yes");
}

/// Runs dmatest with one edu device and checks every step; `how` is the invalidation
/// interface the kernel must have used.
fn dma_isolation(scenario: Scenario, tables: u32, how: &str) -> scenarios::Outcome {
    let mut scenario = scenario;
    scenario.extra_args.extend(["-device".into(), "edu,dma_mask=0xffffffffffffffff".into()]);
    let o = scenario.run();
    expect_attack_deletes_hold(&o);
    expect_attack_io_short_paths_hold(&o);
    // The frame route (commit 8459678): UnmapIO after a domain-cache hit and after a
    // miss leaves the device no way to the frame, and the fault names the IOVA.
    o.expect_serial_contains("dmatest: route: UnmapIO after a domain-cache hit: frame word 0x0")
        .expect_serial_contains("dmatest: route: UnmapIO after a domain-cache miss: frame word 0x0")
        .expect_serial_contains("dmatest: ok attack: after UnmapIO through the route the device cannot write the frame")
        .expect_serial_contains("dmatest: ok attack: ... and the fault names that IOVA");
    o.expect_serial_contains("iommu: iommu=allow-unremapped-dma: bus mastering allowed ");
    // Selective invalidations were issued and completed (a rejected descriptor or
    // register request never completes and panics the kernel).
    for kind in ["Device { domain: ", "Domain(", "Pages { domain: "] {
        o.expect_serial_contains(&format!("iommu0: first {how} invalidation of this kind completed: {kind}"));
    }
    // Faults are drained by the fault-event interrupt. QEMU records a fault on its I/O
    // thread while the vCPU runs, so a timer tick that reads the status between the
    // record and the event's delivery legitimately drains that one by its poll (seen on
    // a loaded host): allow at most two such (plus one in 40: the fair-share check makes
    // about 260 faults), never most of them.
    o.expect_serial_contains("iommu0: fault events interrupt on vector 0xf0 (LAPIC 0)");
    let faults: Vec<&str> = o.serial.lines().filter(|l| l.contains("DMA fault via")).collect();
    assert!(faults.len() >= 8, "too few DMA faults logged: {faults:?}");
    let polled = faults.iter().filter(|l| !l.contains("DMA fault via interrupt:")).count();
    assert!(polled <= 2 + faults.len() / 40, "{polled} faults not taken by interrupt: {faults:?}");
    o.expect_serial_contains(&format!("dmatest: {tables} IO page tables installed below the root"))
        .expect_serial_contains("dmatest: ok the IOMMU counters saw the 3 leaf writes (")
        .expect_serial_contains("dmatest: ok after the delete the device cannot write the frame")
        .expect_serial_contains("dmatest: ok after FrameUnmap the device cannot write the frame")
        .expect_serial_contains("dmatest: ok ... and its fault message names the IOVA FrameUnmap removed")
        .expect_serial_contains("dmatest: ok the copy maps for the device again (no stale entry left)");
    expect_no_intx(&o);
    o.expect_serial_not_contains("dmatest: FAIL")
        .expect_serial_contains("dmatest: ok assign edu to the IOSpace")
        .expect_serial_contains("dmatest: ok boot image frame: MapIO refused (Err(InvalidCapability), MapBatch Err(")
        .expect_serial_contains("dmatest: ok fair share: another IOSpace's fault is queued for it though the hogs fill")
        .expect_serial_contains("dmatest: ok translated DMA round trip: RAM -> device -> RAM")
        .expect_serial_contains("dmatest: ok a device write to a read-only IO mapping is blocked")
        .expect_serial_contains(
            "dmatest: ok the fault arrives as a DmaFault message (badge, requester, reason 5, iova, write)",
        )
        .expect_serial_contains("dmatest: ok after unmap_io the device cannot write the frame")
        .expect_serial_contains("dmatest: ok ... and its fault message names the unmapped IOVA")
        .expect_serial_contains("dmatest: ok after the revoke the device cannot write the frame")
        .expect_serial_contains("dmatest: ok a DMA at the kernel's physical address is blocked and reported")
        .expect_serial_contains("dmatest: ok the device writes the last page of the 2 MiB frame")
        .expect_serial_contains("dmatest: ok after the batch unmap the device cannot write it")
        .expect_serial_contains("dmatest: ok the moved table brought no mapping along")
        .expect_serial_contains("dmatest: ok an IO page table cap cannot be copied")
        .expect_serial_contains("dmatest: ok ... and the DMA through it is reported")
        .expect_serial_contains("dmatest: ok after unassign the device reaches nothing")
        .expect_serial_contains("dmatest: ok after the IOSpace is gone the device reaches nothing")
        // The kernel's fault queue: nothing lost while the handler is busy.
        .expect_serial_contains("dmatest: storm: 6 of 6 records popped in order")
        .expect_serial_contains("dmatest: ok storm: every fault queued, popped oldest first, none lost")
        .expect_serial_contains("dmatest: ok storm: then NextFault says empty (FailedLookup)")
        .expect_serial_contains("dmatest: ok storm: the notification was signalled with its badge")
        .expect_serial_contains("dmatest: ok notified: every fault queued, popped oldest first, none lost")
        .expect_serial_contains("dmatest: ok destroy: two faults queued before the IOSpace is deleted")
        .expect_serial_contains("dmatest: ok destroy: the next IOSpace sees none of the deleted one's faults")
        .expect_serial_contains("dmatest: ok destroy: ... and after a fault of its own, exactly that one")
        .expect_serial_contains("dmatest: done")
        .expect_exit(ExitCode::Success);
    let ro = o.expect_line_starting("dmatest: read-only frame at iova ").rsplit(' ').next().unwrap().to_string();
    assert!(
        o.serial
            .lines()
            .any(|l| l.contains("DMA fault") && l.contains("reason 0x5") && l.contains(&format!("iova {ro} write"))),
        "the write to the read-only IO mapping was not reported"
    );
    let edu = o.expect_line_starting("dmatest: edu at ").trim_start_matches("dmatest: edu at ").to_string();
    let dma = o.expect_line_starting("dmatest: DMA from RAM ");
    let paddr = dma.split_whitespace().nth(4).expect("address in the DMA line").to_string();
    let fault = o
        .serial
        .lines()
        .find(|l| l.contains("DMA fault"))
        .unwrap_or_else(|| panic!("no DMA fault reported; log in {}", o.log_path.display()))
        .to_string();
    assert!(fault.contains(&format!("requester {edu}")), "{fault}");
    assert!(fault.contains(&format!("iova {paddr}")) && fault.ends_with("read"), "{fault}");
    assert!(fault.contains("reason 0x1") || fault.contains("reason 0x2"), "{fault}");
    assert!(
        o.serial
            .lines()
            .any(|l| l.contains("DMA fault") && l.contains(&format!("iova {paddr}")) && l.ends_with("write")),
        "the blocked device write was not reported"
    );
    o
}

/// Legacy INTx is off for every PCI function: dmatest binds GSI 16-23, tries to clear
/// edu's Interrupt Disable (refused) and raises edu's interrupt; no line signals.
fn expect_no_intx(o: &scenarios::Outcome) {
    o.expect_serial_contains("pci: legacy INTx disabled on every function (Interrupt Disable set)")
        .expect_serial_contains("dmatest: ok INTx: take GSI 16-23 and bind each to a notification")
        .expect_serial_contains("dmatest: ok INTx: the kernel set Interrupt Disable at boot")
        .expect_serial_contains("dmatest: ok INTx: clearing Interrupt Disable is refused")
        .expect_serial_contains("dmatest: ok INTx: Interrupt Disable is still set")
        .expect_serial_contains("dmatest: ok a command value wider than the register is refused -> RangeError")
        .expect_serial_contains("dmatest: ok INTx: edu's raised interrupt status is pending")
        .expect_serial_contains("dmatest: ok INTx: edu's interrupt reaches none of GSI 16-23")
        .expect_serial_not_contains("dmatest: edu's INTx arrived on GSI");
}

/// edu at 00:10.0: q35 routes its INTx pin to GSI 20, the line of AHCI (00:1f.2) and
/// SMBus (00:1f.3). With the line's IRQHandler bound, an AHCI driver would get edu's
/// interrupts (and a level-triggered line stuck asserted until edu's driver clears it).
#[test]
fn pci_intx_reaches_no_shared_line() {
    let mut scenario = Scenario::new("dmatest_intx").append(DMATEST);
    scenario.extra_args = vec!["-device".into(), "edu,dma_mask=0xffffffffffffffff,addr=0x10".into()];
    let o = scenario.run();
    expect_no_intx(&o);
    o.expect_serial_contains("dmatest: edu at 00:10.0")
        .expect_serial_not_contains("dmatest: FAIL")
        .expect_serial_contains("dmatest: done")
        .expect_exit(ExitCode::Success);
}

#[test]
fn two_devices_in_two_iospaces() {
    let mut scenario = Scenario::new("dmatest_two").append(DMATEST);
    let edu = "edu,dma_mask=0xffffffffffffffff";
    scenario.extra_args = vec!["-device".into(), edu.into(), "-device".into(), edu.into()];
    let o = scenario.run();
    o.expect_serial_not_contains("dmatest: FAIL")
        .expect_serial_contains("dmatest: ok a DMA at the kernel's physical address is blocked and reported")
        .expect_serial_contains("dmatest: ok the first device cannot reach the second IOSpace's frame")
        .expect_serial_contains("dmatest: ok ... and the first IOSpace's handler gets the fault")
        .expect_serial_contains("dmatest: ok the first device writes the shared frame")
        .expect_serial_contains("dmatest: ok the second device writes the shared frame too")
        .expect_exit(ExitCode::Success);
    assert!(
        o.serial.lines().any(|l| l.contains("DMA fault") && l.contains("iova 0x200000 write")),
        "the DMA aimed at the kernel image was not reported"
    );
}

/// RMRR boot path with synthetic RMRRs (QEMU reports none): one for edu over the
/// firmware-reserved 0xf0000..0x100000, one over the kernel image (rejected). edu
/// translates through the identity domain: Assign is refused, a DMA into the region
/// is not a fault, a DMA to RAM outside it faults as an unmapped read (0x6, not 0x2:
/// the context entry is present).
#[test]
fn rmrr_identity_domain() {
    // Ten more one-page RMRRs after the junk entry: twelve in all, more than the eight
    // the parser once held (the DMAR storage is sized from the count, test entries included).
    let more: String =
        (0..10).map(|i| format!("+{:#x}-{:#x}@00:03.0", 0xe0000 + i * 0x1000, 0xe0fff + i * 0x1000)).collect();
    let mut scenario = Scenario::new("dmatest_rmrr").append(&format!(
        "init=dmatest iommu=allow-unremapped-dma test_rmrr=0xf0000-0xfffff@00:03.0+0x200000-0x200fff@00:03.0+junk{more}"
    ));
    scenario.extra_args = vec!["-device".into(), "edu,dma_mask=0xffffffffffffffff".into()];
    let o = scenario.run();
    o.expect_serial_contains("test_rmrr: an entry is not BASE-LIMIT@BB:DD.F; ignored")
        .expect_serial_contains(
            "rmrr1: 0x200000..=0x200fff rejected: overlaps the kernel image; its devices stay blocked",
        )
        .expect_serial_contains("rmrr0: 0xf0000..0x100000 identity-mapped in domain 65535 (2 of at most 2 tables)")
        .expect_serial_contains("rmrr0: 00:03.0 translates through the identity domain")
        .expect_serial_contains("rmrr11: 0xe9000..0xea000 identity-mapped in domain 65535")
        .expect_serial_contains("iospace: 0x0018 keeps its RMRR identity mapping (firmware DMA); it cannot be assigned")
        .expect_serial_contains("dmatest: edu is RMRR-bound: assign refused (illegal operation)")
        .expect_serial_contains("dmatest: DMA from the RMRR page 0xff000 done")
        .expect_serial_not_contains("dmatest: FAIL")
        .expect_exit(ExitCode::Success);
    let dma = o.expect_line_starting("dmatest: DMA from RAM ");
    let paddr = dma.split_whitespace().nth(4).expect("address in the DMA line").to_string();
    let faults: Vec<&str> = o.serial.lines().filter(|l| l.contains("DMA fault via")).collect();
    assert!(
        faults.iter().any(|l| l.contains("reason 0x6") && l.contains(&format!("iova {paddr} read"))),
        "the read outside the RMRR was not an unmapped-read fault: {faults:?}"
    );
    assert!(!faults.iter().any(|l| l.contains("iova 0xff000")), "the RMRR read faulted: {faults:?}");
}

/// Two edus behind a PCIe-to-PCI bridge DMA (and send MSIs) with one requester id
/// (secondary bus, 00.0): they are one alias group, the unit of assignment. Half a
/// group is never assigned, the group is never split across IOSpaces, the second edu's
/// faults reach the group's handler, and an edu of another group cannot raise the
/// group's MSIs.
#[test]
fn alias_group_behind_pcie_to_pci_bridge() {
    let mut scenario = Scenario::new("dmatest_alias").append(DMATEST);
    let edu = "edu,dma_mask=0xffffffffffffffff";
    scenario.extra_args = [
        "-device",
        "pcie-pci-bridge,id=br,bus=pcie.0,addr=0x5",
        "-device",
        &format!("{edu},bus=br,addr=0x0"),
        "-device",
        &format!("{edu},bus=br,addr=0x1"),
        "-device",
        edu,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = scenario.run();
    o.expect_serial_contains("pci: alias group 01:00.0 (DMA as 01:00.0): 01:00.0 01:01.0")
        .expect_serial_contains("dmatest: alias scenario: edu A at 01:00.0, edu B at 01:01.0")
        .expect_serial_contains(
            "dmatest: ok bootinfo puts edu A and edu B (behind the PCIe-to-PCI bridge) in one alias group",
        )
        .expect_serial_contains("dmatest: ok edu C on bus 0 is a group of its own")
        .expect_serial_contains(
            "dmatest: ok assigning edu A without the rest of its alias group is refused (invalid argument)",
        )
        .expect_serial_contains(
            "iospace: 01:00.0 is in an alias group of 2 functions: Assign/Unassign need caps to all of them",
        )
        .expect_serial_contains("dmatest: ok edu B cannot reach S_A's frames while its group is not assigned there")
        .expect_serial_contains("dmatest: ok naming a member twice is refused")
        .expect_serial_contains("dmatest: ok a device of another group in the set is refused")
        .expect_serial_contains("dmatest: ok assign the alias group (A and B) to S_A")
        .expect_serial_contains(
            "dmatest: ok with its group assigned, edu B translates through S_A (one protection unit)",
        )
        .expect_serial_contains(
            "dmatest: ok assigning edu B alone to another IOSpace is refused (the group is not split)",
        )
        .expect_serial_contains("dmatest: ok assigning the group to a second IOSpace is refused (delete first)")
        .expect_serial_contains(
            "dmatest: ok edu B's fault goes to the group's IOSpace handler (badge 0x44, the group's requester id)",
        )
        .expect_serial_contains("dmatest: ok B's write did not land in S_B")
        .expect_serial_contains("dmatest: ok unassigning edu A alone is refused (invalid argument)")
        .expect_serial_contains("dmatest: ok after the group's unassign neither A nor B reaches S_A")
        .expect_serial_contains("dmatest: ok the whole group moves to S_B")
        .expect_serial_contains("dmatest: ok ... where edu B writes its own frame (and reads nothing of S_A)")
        .expect_serial_contains("dmatest: ok edu B's DMA round trip in S_B")
        .expect_serial_contains("dmatest: ok edu B's own MSI arrives (the IRTE checks the group's requester id)")
        .expect_serial_contains("dmatest: ok edu A's own MSI arrives")
        .expect_serial_contains("dmatest: ok edu C raising A's vector reaches nobody")
        .expect_serial_contains("dmatest: done")
        .expect_serial_not_contains("dmatest: FAIL")
        .expect_exit(ExitCode::Success);
}

/// Attack PoC (VtdAccess refactor): Delete of a warm 2 MiB IO mapping and Delete of a
/// mapped IO page table both cut the device off, in every invalidation mode.
fn expect_attack_deletes_hold(o: &scenarios::Outcome) {
    o.expect_serial_not_contains("dmatest: FAIL")
        .expect_serial_not_contains("KERNEL PANIC")
        .expect_serial_contains("dmatest: ok attack: after Delete of a 2 MiB IO mapping its last page is unreachable")
        .expect_serial_contains("dmatest: ok attack: ... and the fault names the 2 MiB frame's last page")
        .expect_serial_contains("dmatest: ok attack: the device reaches the frame through the table")
        .expect_serial_contains("dmatest: ok attack: after Delete of its IO page table the frame is unreachable")
        .expect_serial_contains("dmatest: ok attack: ... and the fault names the IOVA below the deleted table")
        .expect_serial_contains("dmatest: done");
}

/// Attack PoC (IO short paths): batches refuse CPU-mapped and device frames and change
/// nothing then; UnmapIO on an IOSpace root page reused by a new IOSpace (another
/// domain id) invalidates the new domain (the root -> domain cache was cleared when
/// the old IOSpace died), so the device keeps no IOTLB entry for the unmapped frame.
fn expect_attack_io_short_paths_hold(o: &scenarios::Outcome) {
    for check in [
        "attack: a batch naming a CPU-mapped frame is refused",
        "attack: a batch naming a device frame is refused",
        "attack: ... and left its other frames unmapped",
        "reuse: an IOSpace with a frame mapped, unmapped once",
        "reuse: a new IOSpace on the dead one's root page",
        "reuse: the device writes it (its IOTLB entry is warm)",
        "reuse: the record the dead IOSpace left unmaps",
        "attack: after UnmapIO on a reused root the device cannot write the frame",
        "attack: ... and the fault names the IOVA (the new IOSpace's domain was invalidated)",
        "reuse: the device goes back to its IOSpace",
    ] {
        o.expect_serial_contains(&format!("dmatest: ok {check}"));
    }
    o.expect_serial_contains(
        "dmatest: reuse: the stale record's UnmapIO took the new IOSpace's entry: true (root page reused)",
    );
}
