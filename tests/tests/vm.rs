//! Virtual machines on AMD SVM with nested paging (`init=vmm`).
//!
//! The VMM (userland/vmm) builds a guest from untyped (GuestSpace, nested tables, RAM
//! frames, a VCPU), boots its small guest kernel in long mode and handles every exit;
//! on a CPU without SVM the kernel refuses the objects with a clear error.

use abi::exit::ExitCode;
use scenarios::systems::image_for;
use scenarios::Scenario;

/// The guest boots, prints through the emulated serial port, faults on guest-physical
/// pages its space does not map, is stopped by host interrupts and takes an injected one.
#[test]
fn a_guest_boots_prints_faults_and_takes_an_interrupt() {
    let o = Scenario::new("vm_guest").append("init=vmm").run();
    o.expect_serial_contains("svm: on, nested paging")
        .expect_serial_not_contains("vmm: FAIL")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("guest: hello from a guest kernel in long mode")
        .expect_serial_contains("guest: CPUID vendor CapKernelVMM")
        .expect_serial_contains("vmm: nested page fault at guest-physical 0x100000 (read)")
        .expect_serial_contains("vmm: the guest wrote 0x5a5a1234 at guest-physical 0x100000; the VMM reads 0x5a5a1234")
        .expect_serial_contains("vmm: nested page fault at guest-physical 0x40000000 (read)")
        .expect_serial_contains("vmm: ok a guest load outside guest memory arrives as a nested page fault")
        .expect_serial_contains("vmm: ok the skipped load outside guest memory left the guest's RAX as it was")
        .expect_serial_contains("vmm: ok host interrupts stop a spinning guest and return to the VMM")
        .expect_serial_contains("vmm: ok the guest took the injected interrupt in its own handler")
        .expect_serial_contains("vmm: ok the injected interrupt was taken exactly once")
        .expect_serial_contains("guest: done")
        .expect_serial_contains("vmm: ok the guest ran to its exit port with code 0")
        .expect_serial_contains("vmm: ok Run in a VSpace instead of a GuestSpace is InvalidCapability")
        .expect_serial_contains("vmm: ok ReadRegs past the last register is RangeError")
        .expect_serial_contains("vmm: ok WriteRegs of a TR that is not present is InvalidArgument")
        .expect_serial_contains("vmm: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// Without SVM, or with SVM but no nested paging, the kernel says so at boot and
/// refuses a GuestSpace or VCPU retype.
fn refused_on(name: &str, cpu: &str, why: &str) {
    let o = Scenario::new(name).cpu(cpu).append("init=vmm").run();
    o.expect_serial_contains(&format!("svm: {why}: VCPU and GuestSpace objects cannot be created"))
        .expect_serial_contains("retype: GuestSpace needs a CPU with SVM and nested paging; this one has none")
        .expect_serial_contains("retype: Vcpu needs a CPU with SVM and nested paging; this one has none")
        .expect_serial_contains("vmm: cannot create a GuestSpace and a VCPU: illegal operation")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_exit(ExitCode::UserFailure);
}

#[test]
fn without_svm_the_objects_are_refused_with_a_clear_error() {
    refused_on("vm_no_svm", "max,svm=off", "no SVM (CPUID has no leaf 0x8000000a)");
}

#[test]
fn without_nested_paging_the_objects_are_refused_with_a_clear_error() {
    refused_on("vm_no_npt", "max,npt=off", "SVM without nested paging");
}

/// Direct assignment: the VMM maps an edu's BAR into the guest, mirrors guest memory in
/// an IOSpace (IOVA = guest-physical, back-filled after the guest's RAM exists) and
/// forwards the device's MSI; the guest's own driver does DMA at guest-physical
/// addresses, and a DMA it aims outside its memory is blocked and reported to the VMM.
#[test]
fn an_assigned_device_does_dma_to_guest_physical_addresses_only() {
    let mut scenario = Scenario::new("vm_edu").append("init=vmm-edu iommu=allow-unremapped-dma");
    scenario.extra_args = vec!["-device".into(), "edu,dma_mask=0xffffffffffffffff".into()];
    let o = scenario.run();
    o.expect_serial_not_contains("vmm: FAIL")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("vmm: ok back-fill the IOSpace with guest memory at IOVA = guest-physical")
        .expect_serial_contains("vmm: the guest reads edu ident 0x10000ed through its BAR")
        .expect_serial_contains("vmm: ok the guest's DMA round trip at guest-physical addresses kept its data")
        .expect_serial_contains("iova 0x300000 write")
        .expect_serial_contains("vmm: DMA fault: requester 0x0018 reason 5 write at IOVA 0x300000")
        .expect_serial_contains("vmm: ok the DMA outside guest memory was blocked and reported with its address")
        .expect_serial_contains("vmm: ok each DMA completion reached the guest as an injected interrupt")
        .expect_serial_contains("guest: done")
        .expect_serial_contains("vmm: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// The VMM as a component of a system description (`systems/test-vm.toml`): guest
/// memory from its budget, the edu assigned through the iommu-server (the VMM holds a
/// client cap and the BAR page, no PciDevice, IOSpace or IO page table), guest memory
/// mirrored by the server at IOVA = guest-physical from frames the VMM sends, the MSI
/// injected; the guest's DMA outside its memory is blocked and reported to the VMM
/// and to management.
#[test]
fn a_vmm_component_assigns_its_device_through_the_iommu_server() {
    let mut s = Scenario::new("vm_component").append("iommu=allow-unremapped-dma").memory(256);
    s.extra_args = vec!["-device".into(), "edu".into()];
    s.timeout = std::time::Duration::from_secs(120);
    let o = s.initrd(Some(image_for("test-vm"))).run();
    o.expect_serial_not_contains("vmm: FAIL")
        .expect_serial_not_contains("KERNEL EXCEPTION")
        .expect_serial_contains("init: system 'test-vm' started: 3 components")
        .expect_serial_contains("vmm: component 'vmm' generation 1: building its guest")
        .expect_serial_contains("iommu-server: device 0: its driver watches its DMA faults")
        .expect_serial_contains(
            "vmm: ok back-fill the device's IOSpace through the iommu-server at IOVA = guest-physical",
        )
        .expect_serial_contains("vmm: the guest reads edu ident 0x10000ed through its BAR")
        .expect_serial_contains("vmm: ok the guest's DMA round trip at guest-physical addresses kept its data")
        .expect_serial_contains("vmm: ok each DMA completion reached the guest as an injected interrupt")
        // Blocked, and reported to the server, the VMM and management.
        .expect_serial_contains(
            "iommu-server: DMA fault: device 0 requester 00:03.0 iova 0x300000 reason 0x5 write: unmapped",
        )
        .expect_serial_contains("vmm: ok the iommu-server signals the VMM of its device's DMA fault")
        .expect_serial_contains(
            "vmm: DMA fault reported by the iommu-server: device 0 requester 0x0018 reason 5 write at IOVA 0x300000",
        )
        .expect_serial_contains("vmm: ok the DMA outside guest memory was blocked and reported with its address")
        .expect_serial_contains("management: DMA fault from vmm (device edu 00:03.0): iova 0x300000")
        .expect_serial_contains("guest: done")
        .expect_serial_contains("vmm: all checks passed")
        // What the server must refuse a driver's new requests, and what it allows.
        .expect_serial_contains("vmm: ok DmaMapFrame at an IOVA guest memory uses")
        .expect_serial_contains("vmm: ok DmaMapFrame of the device's BAR page")
        .expect_serial_contains("vmm: ok DmaMapFrame of a 2 MiB frame")
        .expect_serial_contains("vmm: ok DmaMapFrame of a notification")
        .expect_serial_contains("vmm: ok DmaAlloc carrying a cap")
        .expect_serial_contains("vmm: ok DmaMapFrame at the IOVA given back")
        .expect_serial_contains("vmm: ok a placed copy of a freed buffer's frame unmaps cleanly")
        .expect_serial_contains("vmm: ok the iommu-server still serves the VMM")
        .expect_serial_contains("init: vmm exited with code 0")
        .expect_exit(ExitCode::Success);
    // The VMM's authority: the device only through the server.
    let vmm = o.expect_line_starting("authority: vmm: ");
    assert!(vmm.contains("dma via iommu-server edu") && !vmm.contains("device edu,"), "{vmm}");
}

/// Random guests: random code laced with I/O, MSR, CPUID, HLT, the virtualization and
/// cache instructions the kernel denies, control- and debug-register writes, random
/// register state (CR0, CR4, EFER, segments...) for five seeds (four fixed, one from
/// the clock, all printed); then the ordinary guest must still run to its end on the
/// same VCPU. A QEMU abort (TCG's own assertion, no exit code, a message on stderr)
/// is told apart from a kernel failure (a KERNEL EXCEPTION line and its exit code).
#[test]
fn random_guests_cannot_hurt_the_kernel_or_the_vmm() {
    let mut scenario = Scenario::new("vm_fuzz").append("init=vmm-fuzz");
    scenario.timeout = std::time::Duration::from_secs(240);
    let o = scenario.run();
    if o.exit_code.is_none() && !o.timed_out {
        panic!(
            "QEMU itself stopped (status {:?}) before the system did: a QEMU abort, not a kernel failure; stderr:\n{}\nserial tail:\n{}",
            o.status,
            o.qemu_stderr,
            scenarios::tail(&o.serial, 20)
        );
    }
    o.expect_serial_not_contains("KERNEL EXCEPTION").expect_serial_not_contains("vmm: FAIL");
    let seeds = o.lines_starting("vmm: fuzz seed ");
    assert_eq!(seeds.len(), 5, "five seeds ran: {seeds:?}");
    for line in &seeds {
        assert!(line.contains(" exits in 64 guests: io "), "{line}");
    }
    o.expect_serial_contains("vmm: ok the kernel and the VMM survive random guests (code, I/O, register state)")
        .expect_serial_contains("guest: hello from a guest kernel in long mode")
        .expect_serial_contains("vmm: ok the guest ran to its exit port with code 0")
        .expect_serial_contains("vmm: all checks passed")
        .expect_exit(ExitCode::Success);
}

/// Two guests with an edu each: guest B aims its stray DMA at the host-physical address
/// of guest A's DMA page; B's IOSpace has no such IOVA, so it is blocked and reported
/// to B's fault handler only, and A's memory keeps A's data.
#[test]
fn two_guests_with_a_device_each_cannot_reach_each_other() {
    let mut scenario = Scenario::new("vm_two_edu").append("init=vmm-two-edu iommu=allow-unremapped-dma");
    let edu = "edu,dma_mask=0xffffffffffffffff";
    scenario.extra_args = vec!["-device".into(), edu.into(), "-device".into(), edu.into()];
    let o = scenario.run();
    o.expect_serial_not_contains("vmm: FAIL").expect_serial_not_contains("KERNEL EXCEPTION");
    let aimed = o.expect_line_starting(
        "vmm: guest B, with the second edu, aims a DMA at guest A's page by its host-physical address ",
    );
    let paddr = aimed.rsplit(' ').next().unwrap_or_default();
    o.expect_serial_contains(&format!("reason 5 write at IOVA {paddr}"))
        .expect_serial_contains("vmm: ok guest B's DMA filled B's own memory")
        .expect_serial_contains("vmm: ok guest A's memory still holds A's data after guest B's DMA")
        .expect_serial_contains("vmm: ok guest B's stray DMA was reported to B's IOSpace, not to A's")
        .expect_serial_contains("vmm: all checks passed")
        .expect_exit(ExitCode::Success);
    assert_eq!(o.lines_starting("vmm: ok the guest ran to its exit port with code 0").len(), 2, "both guests ran");
}
