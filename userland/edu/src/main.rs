//! The edu driver as a program (`init=edu`).
//!
//! The edu driver as a program (`init=edu`, QEMU `-device edu,dma_mask=...` and an
//! intel-iommu with `intremap=on`): it maps the device's BAR from device untyped
//! memory, enables decoding and bus mastering through its PciDevice cap, puts the
//! device in an IOSpace with a DMA buffer at an IOVA it chooses, asks the kernel for
//! an MSI (backed by an IRTE that accepts only this device), programs it into the
//! MSI capability and runs transfers in both directions, each completed by the MSI.
//! With a second edu it shows that a device programmed with another device's MSI
//! address raises nothing, and that deleting the handler cap blocks the device's MSI.
//! Without interrupt remapping the kernel refuses MSIs, and the program checks that;
//! with a remapping unit that passes compatibility-format interrupts (QEMU 7.2) and no
//! `iommu=allow-unremapped-dma`, it checks that bus mastering is refused.
#![no_std]
#![no_main]

extern crate alloc;

mod forge;

use core::sync::atomic::{AtomicU64, Ordering};

use edu_driver::{Edu, EduError, EduRegisters};
use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError;
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::pci;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{
    CNode, Frame, IoPageTable, IoSpace, IrqControl, IrqHandler, Msi, Notification, PciDevice, ATTR_UNCACHED,
};
use libcap::check::Checker;
use libcap::device::DeviceMemory;
use libcap::println;
use libcap::thread::spawn;

libcap::entry!(main);

/// Where the program maps each device's register page (per device + 0x10_0000).
const REGS_VADDR: u64 = 0x0000_4000_0000_0000;
/// The DMA buffer in RAM, for the CPU and (at IOVA) for the device.
const RAM_VADDR: u64 = 0x0000_4000_0100_0000;
const IOVA: u64 = 0x3000_0000;
/// Stack and IPC buffer of the thread that shows the timer still preempts.
const SPINNER_REGION: u64 = 0x0000_3000_0000_0000;
/// Polls of a notification before an interrupt counts as not delivered. An edu raise
/// is delivered before the raising store retires, so a handful would do.
pub(crate) const POLLS: u32 = 20_000;
/// Raises back to back to show the kernel's per-tick MSI limit (64). Raises the CPU has
/// not yet taken coalesce in the LAPIC (about 20 per delivered MSI under TCG), so the
/// burst is large enough to deliver several hundred in any one tick.
const BURST: u32 = 20_000;

/// One edu function the program drives.
struct Function {
    pci: PciDevice,
    regs: &'static EduRegisters,
}

/// A notification cap with `badge`, so a poll can tell a delivered interrupt from none.
fn badged_notification(slots: &SlotAllocator, objects: &mut ObjectAllocator, badge: u64) -> Notification {
    let root = CNode(slots::INIT_CNODE);
    let object = objects.alloc(slots, ObjectType::Notification, 0).expect("notification");
    let badged = slots.alloc().expect("slot");
    CNode::mint(root.slot(badged), root.slot(object), CapRights::ALL, badge).expect("mint a badged notification");
    Notification(badged)
}

fn setup(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator,
    device_memory: &mut DeviceMemory,
    pci: PciDevice,
    n: u64,
) -> Option<Function> {
    let bar = pci.config_read(0x10, 4).ok()? & !0xf;
    let regs = REGS_VADDR + n * 0x10_0000;
    let frame = device_memory.frame_at(slots, bar);
    c.check(
        "map the BAR's register page",
        frame.is_some_and(|f| map_frame(objects, slots, f, regs, CapRights::ALL, ATTR_UNCACHED).is_ok()),
    );
    let command = pci.config_read(pci::COMMAND, 2).ok()? as u16;
    c.check("enable memory decoding", pci.write_command(command | pci::COMMAND_MEMORY as u16).is_ok());
    // SAFETY: `regs` now maps edu's BAR 0 page uncached, and this program never unmaps it.
    Some(Function { pci, regs: unsafe { EduRegisters::at(regs) } })
}

/// Counts while [`spinner`] runs.
static SPINS: AtomicU64 = AtomicU64::new(0);

extern "C" fn spinner(_: u64) -> ! {
    loop {
        SPINS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether the timer still preempts: a thread at our priority gets the CPU while we
/// spin without yielding (it is suspended again afterwards).
fn timer_preempts(slots: &SlotAllocator, objects: &mut ObjectAllocator) -> bool {
    let Ok(thread) = spawn(objects, slots, spinner, 0, 255, SPINNER_REGION, 0) else {
        return false;
    };
    let mut spins = 0u64;
    while SPINS.load(Ordering::SeqCst) == 0 && spins < 200_000_000 {
        spins += 1;
    }
    let _ = thread.suspend();
    SPINS.load(Ordering::SeqCst) != 0
}

/// Bus mastering (the kernel allows it with interrupt remapping on).
fn enable_bus_mastering(c: &mut Checker, dev: PciDevice) {
    let command = dev.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    c.check("enable bus mastering", dev.write_command(command | pci::COMMAND_BUS_MASTER as u16).is_ok());
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("edu");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    let irq_control = IrqControl(slots::IRQ_CONTROL);
    let found: [Option<usize>; 2] = {
        let mut it = bi.pci_devices().iter().enumerate().filter(|(_, d)| edu_driver::is_edu(d));
        [it.next().map(|(i, _)| i), it.next().map(|(i, _)| i)]
    };
    let Some(first) = found[0] else {
        println!("edu: FAIL no edu device (run QEMU with -device edu,dma_mask=0xffffffffffffffff)");
        return ExitCode::UserFailure;
    };
    let mut device_memory = DeviceMemory::new(bi);
    let pci_cap = |i: usize| PciDevice(bi.pci_device_caps.start + i as u64);
    let Some(a) = setup(&mut c, &slots, &mut objects, &mut device_memory, pci_cap(first), 0) else {
        println!("edu: FAIL cannot set up the first edu");
        return ExitCode::UserFailure;
    };
    let d = bi.pci_devices()[first];
    println!("edu: driving {:02x}:{:02x}.{}", d.bus, d.devfn >> 3, d.devfn & 7);

    let ntfn_a = badged_notification(&slots, &mut objects, 0x1);
    let handler_a = IrqHandler(slots.alloc().expect("slot"));
    let msi_a = match irq_control.get_msi(a.pci, root.slot(handler_a.0)) {
        Err(e) if e.code == SyscallError::IllegalOperation => return without_remapping(c, a.pci),
        Err(e) => {
            println!("edu: FAIL GetMsi: {e:?}");
            return ExitCode::UserFailure;
        }
        Ok(msi) => msi,
    };
    println!("edu: MSI on vector {:#x}: address {:#x} data {:#x}", msi_a.vector, msi_a.address, msi_a.data);
    c.check("the kernel returns a remappable-format MSI address", msi_a.address & 0xfff0_0010 == 0xfee0_0010);
    if let Some(exit) = compatibility_format_gap(&mut c, a.pci) {
        return exit;
    }
    enable_bus_mastering(&mut c, a.pci);
    c.check("bind the MSI to a notification", handler_a.set_notification(ntfn_a).is_ok());
    c.check("program the MSI capability through the PciDevice cap", a.pci.enable_msi(&msi_a) == Ok(true));
    forge::compatibility_address_refused(&mut c, a.pci, &msi_a);
    c.check(
        "GetMsi with something other than a PciDevice is refused",
        irq_control.get_msi(PciDevice(ntfn_a.0), root.slot(slots.alloc().expect("slot"))).map_err(|e| e.code)
            == Err(SyscallError::InvalidCapability),
    );
    c.check(
        "BARs are still not writable",
        a.pci.config_write(0x10, 4, 0).map_err(|e| e.code) == Err(SyscallError::InvalidArgument),
    );
    let edu = Edu::new(a.regs, handler_a, ntfn_a);
    c.check("edu answers", edu.present());
    edu.raise(0x1);
    let word = edu.poll_interrupt(POLLS);
    let status = edu.interrupt_status();
    c.check("an interrupt the device raises arrives as its MSI", word != 0 && status & 1 != 0);
    edu.acknowledge(status);

    // A DMA buffer at an IOVA of the driver's choosing.
    let iospace = IoSpace(objects.alloc(&slots, ObjectType::IoSpace, 0).expect("iospace"));
    for _ in 0..3 {
        let t = IoPageTable(objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io table"));
        let _ = t.map(iospace, IOVA);
    }
    let ram = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
    let io = Frame(slots.alloc().expect("slot"));
    c.check(
        "map the DMA buffer for the CPU",
        map_frame(&mut objects, &slots, ram, RAM_VADDR, CapRights::ALL, 0).is_ok(),
    );
    c.check("copy its cap for the device", CNode::copy(root.slot(io.0), root.slot(ram.0), CapRights::ALL).is_ok());
    c.check("map it at the chosen IOVA", io.map_io(iospace, IOVA, CapRights::ALL).is_ok());
    c.check("assign the device to the IOSpace", iospace.assign(a.pci).is_ok());
    let ram_words = RAM_VADDR as *mut u64;
    for i in 0..8 {
        // SAFETY: the buffer frame is mapped read-write at RAM_VADDR (4 KiB).
        unsafe { ram_words.add(i).write_volatile(0xed0_0000 + i as u64) };
    }
    // The device buffer is not visible through the BAR: check by a round trip.
    let sent = edu.to_device(IOVA, 0x100, 64);
    c.check("RAM -> device DMA completes by MSI", sent.is_ok());
    let received = edu.to_ram(0x100, IOVA + 0x800, 64);
    c.check("device -> RAM DMA completes by MSI", received.is_ok());
    // SAFETY: as above; offset 0x800 + 64 bytes lies inside the frame.
    let landed = (0..8).all(|i| unsafe { ram_words.add(0x100 + i).read_volatile() } == 0xed0_0000 + i as u64);
    c.check("the data made the round trip RAM -> device -> RAM intact", landed);
    println!("edu: transfers: {sent:?} {received:?}");
    c.check("a zero-length transfer is refused", edu.to_device(IOVA, 0, 0) == Err(EduError::Empty));
    c.check(
        "a transfer past the device buffer is refused",
        edu.to_ram(0xff8, IOVA, 16) == Err(EduError::OutsideBuffer),
    );
    c.check("an offset that wraps is refused", edu.to_ram(u64::MAX - 7, IOVA, 16) == Err(EduError::OutsideBuffer));
    c.check("the device still works after the refusals", edu.to_device(IOVA, 0, 8).is_ok());
    forge::exception_vectors_by_dma(&mut c, &edu, ram_words, IOVA);
    forge::spurious_vector_by_dma(&mut c, &edu, ram_words, IOVA, || timer_preempts(&slots, &mut objects));
    forge::nmi_during_console_output(&mut c, &edu, ram_words, IOVA);

    if let Some(second) = found[1] {
        two_devices(&mut c, &slots, &mut objects, &mut device_memory, pci_cap(second), (&msi_a, &edu, a.pci));
    } else {
        println!("edu: one edu device: the source-id checks need a second one");
    }
    // A device raising its MSI back to back is throttled (the harness checks the kernel
    // log), and the vector works again on a later timer tick.
    for _ in 0..BURST {
        edu.raise(0x40);
    }
    edu.acknowledge(0x40);
    let _ = edu.poll_interrupt(1);
    let mut back = false;
    for _ in 0..50 {
        spin_past_a_tick();
        edu.raise(0x40);
        back = edu.poll_interrupt(POLLS) != 0;
        edu.acknowledge(0x40);
        if back {
            break;
        }
    }
    c.check("after a burst of MSIs the vector works again on a later tick", back);

    // A notification deleted while the MSI is bound to it: the kernel forgets the
    // binding (the harness checks the kernel log says the vector fired unbound).
    let doomed = Notification(objects.alloc(&slots, ObjectType::Notification, 0).expect("notification"));
    c.check(
        "bind the MSI to a notification, then delete the notification",
        handler_a.set_notification(doomed).is_ok() && CNode::delete(root.slot(doomed.0)).is_ok(),
    );
    edu.raise(0x10);
    edu.acknowledge(0x10);
    c.check("rebind the MSI to its notification", handler_a.set_notification(ntfn_a).is_ok());
    edu.raise(0x20);
    c.check("the MSI arrives again", edu.poll_interrupt(POLLS) != 0);
    edu.acknowledge(0x20);
    late_msi_after_release(&mut c, &edu, (a.regs, a.pci, msi_a.vector), ntfn_a, handler_a);
    println!("edu: done");
    c.finish()
}

/// Raises edu's interrupt and, in the same translated block (no branch in between, so
/// QEMU delivers the MSI only once interrupts are on again), deletes the MSI handler
/// cap in `slot`: the MSI is pending in the local APIC while the kernel releases the
/// vector and arrives after. Returns the delete's error code (0 on success).
fn raise_then_delete(regs: &EduRegisters, bits: u32, slot: u64) -> u64 {
    use libcap::abi::invocation::Invocation;
    use libcap::abi::msginfo::MessageInfo;
    use libcap::abi::syscall::Syscall;
    let info = MessageInfo::new(Invocation::CNodeDelete.raw(), 2).to_word();
    let mut rax = Syscall::Call.raw();
    // SAFETY: `regs` is edu's register block, mapped uncached (the store is the 4-byte
    // raise register); the system call is CNodeDelete on this thread's root CNode, and every
    // register the kernel writes is declared clobbered.
    unsafe {
        core::arch::asm!(
            "mov dword ptr [{raise}], {bits:e}",
            "syscall",
            raise = in(reg) core::ptr::from_ref(&regs.interrupt_raise),
            bits = in(reg) bits,
            inout("rax") rax,
            inout("rdi") slots::INIT_CNODE => _,
            inout("rsi") info => _,
            inout("rdx") slot => _,
            inout("r10") libcap::cap::FULL_DEPTH => _,
            out("r8") _,
            out("r9") _,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        )
    };
    rax
}

/// Spins in user mode (no system call) for 60e6 TSC ticks, longer than one 10 ms kernel
/// timer tick on the hosts QEMU runs on. Timed by the TSC rather than counted in
/// `pause`s: under TCG each `pause` leaves the translated code, so a count took from
/// milliseconds to minutes depending on the host's load.
fn spin_past_a_tick() {
    let deadline = libcap::deadline::Deadline::after(60_000_000);
    while !deadline.passed() {}
}

/// Deleting an MSI handler cap frees everything about its vector: an MSI still pending
/// when it goes is ignored (the kernel logs it, the harness checks), is not counted, and
/// can neither throttle the freed vector nor make the next tick restore its IRTE. The
/// vector is first brought to the per-tick limit, one delivered MSI at a time, so that
/// the late MSI would be the one that throttles it (when no tick falls in between:
/// hence three rounds, each with the vector freshly handed out).
fn late_msi_after_release(
    c: &mut Checker,
    edu: &Edu,
    (regs, pci, vector): (&EduRegisters, PciDevice, u8),
    ntfn: Notification,
    handler: IrqHandler,
) {
    let root = CNode(slots::INIT_CNODE);
    // Each round starts from a fresh allocation (count zero), whatever this tick saw.
    c.check("delete the MSI handler cap", CNode::delete(root.slot(handler.0)).is_ok());
    for _ in 0..3 {
        // The device keeps the old MSI address and data: the same vector must come back.
        let again = IrqControl(slots::IRQ_CONTROL).get_msi(pci, root.slot(handler.0));
        let same = again.is_ok_and(|m| m.vector == vector);
        c.check("the freed vector is handed out again", same && handler.set_notification(ntfn).is_ok());
        let mut delivered = 0;
        for _ in 0..64 {
            edu.raise(0x80);
            delivered += u32::from(edu.poll_interrupt(POLLS) != 0);
            edu.acknowledge(0x80);
        }
        c.check("64 MSIs delivered one at a time", delivered == 64);
        c.check("delete the MSI handler cap right after a raise", raise_then_delete(regs, 0x80, handler.0) == 0);
        // Several timer ticks, then the device raises again with the old address and data.
        for _ in 0..5 {
            spin_past_a_tick();
        }
        edu.acknowledge(0x80);
        edu.raise(0x80);
        spin_past_a_tick();
        edu.acknowledge(0x80);
        println!("edu: raised the released vector's MSI again after several ticks");
    }
}

/// A second edu cannot raise the first one's interrupt, even when it is programmed
/// with exactly its MSI address and data; its own MSI stops when its cap is deleted.
fn two_devices(
    c: &mut Checker,
    slots: &SlotAllocator,
    objects: &mut ObjectAllocator,
    device_memory: &mut DeviceMemory,
    pci: PciDevice,
    (msi_a, edu_a, pci_a): (&Msi, &Edu, PciDevice),
) {
    let root = CNode(slots::INIT_CNODE);
    let Some(b) = setup(c, slots, objects, device_memory, pci, 1) else {
        c.check("set up the second edu", false);
        return;
    };
    enable_bus_mastering(c, b.pci);
    let ntfn_b = badged_notification(slots, objects, 0x2);
    let handler_b = IrqHandler(slots.alloc().expect("slot"));
    let edu_b = Edu::new(b.regs, handler_b, ntfn_b);
    c.check("program edu #2 with edu #1's MSI address and data", b.pci.enable_msi(msi_a) == Ok(true));
    edu_b.raise(0x1);
    c.check("edu #2 raising it reaches nobody (the IRTE checks the requester)", edu_a.poll_interrupt(POLLS) == 0);
    edu_b.acknowledge(0x1);
    let msi_b = IrqControl(slots::IRQ_CONTROL).get_msi(b.pci, root.slot(handler_b.0));
    c.check("GetMsi for edu #2", msi_b.is_ok());
    let msi_b = msi_b.unwrap_or(*msi_a);
    c.check("it gets a vector of its own", msi_b.vector != msi_a.vector);
    c.check("bind and program it", handler_b.set_notification(ntfn_b).is_ok() && b.pci.enable_msi(&msi_b) == Ok(true));
    edu_b.raise(0x2);
    let on_b = edu_b.poll_interrupt(POLLS);
    let on_a = edu_a.poll_interrupt(POLLS);
    c.check("edu #2's own MSI arrives on its notification and nowhere else", on_b != 0 && on_a == 0);
    edu_b.acknowledge(0x2);
    c.check("delete edu #2's MSI handler cap", CNode::delete(root.slot(handler_b.0)).is_ok());
    edu_b.raise(0x4);
    c.check(
        "after the delete edu #2's MSI is blocked",
        edu_b.poll_interrupt(POLLS) == 0 && edu_a.poll_interrupt(POLLS) == 0,
    );
    edu_b.acknowledge(0x4);
    // The freed vector goes to edu #1 now; edu #2 still holds the old address.
    let ntfn_reused = badged_notification(slots, objects, 0x4);
    let handler_reused = IrqHandler(slots.alloc().expect("slot"));
    let reused = IrqControl(slots::IRQ_CONTROL).get_msi(pci_a, root.slot(handler_reused.0));
    c.check(
        "the freed vector is handed to edu #1",
        reused.is_ok_and(|m| m.vector == msi_b.vector) && handler_reused.set_notification(ntfn_reused).is_ok(),
    );
    edu_b.raise(0x8);
    let stale = Edu::new(b.regs, handler_reused, ntfn_reused).poll_interrupt(POLLS);
    c.check("edu #2's stale MSI address does not reach the vector's new owner", stale == 0);
    edu_b.acknowledge(0x8);
}

/// Interrupt remapping is on, but the kernel found at boot that the unit passes
/// compatibility-format interrupts (QEMU 7.2), or could not verify that it blocks them,
/// and was not told to allow bus mastering
/// anyway: Bus Master Enable is refused (the device could DMA-write INIT, NMI or any
/// vector to the MSI window). Returns the exit code then, `None` when BME is allowed.
fn compatibility_format_gap(c: &mut Checker, pci: PciDevice) -> Option<ExitCode> {
    let command = pci.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    match pci.write_command(command | pci::COMMAND_BUS_MASTER as u16).map_err(|e| e.code) {
        Ok(()) => return None,
        Err(SyscallError::IllegalOperation) => {
            println!("edu: bus mastering refused with interrupt remapping on (compatibility-format interrupts not known to be blocked)")
        }
        Err(e) => c.check(&alloc::format!("enabling bus mastering fails as expected, not with {e:?}"), false),
    }
    let back = pci.config_read(pci::COMMAND, 2).unwrap_or(0);
    c.check("Bus Master Enable stays clear", back & pci::COMMAND_BUS_MASTER == 0);
    println!("edu: done");
    Some(c.finish())
}

/// Interrupt remapping is off: MSIs are refused, and so are writes to the MSI
/// capability; bus mastering is refused unless the kernel was told to allow it.
fn without_remapping(mut c: Checker, pci: PciDevice) -> ExitCode {
    println!("edu: no interrupt remapping: GetMsi refused with IllegalOperation");
    let command = pci.config_read(pci::COMMAND, 2).unwrap_or(0) as u16;
    match pci.write_command(command | pci::COMMAND_BUS_MASTER as u16).map_err(|e| e.code) {
        Err(SyscallError::IllegalOperation) => println!("edu: bus mastering refused without interrupt remapping"),
        Ok(()) => println!("edu: bus mastering allowed without interrupt remapping (iommu=allow-unremapped-dma)"),
        Err(e) => c.check(&alloc::format!("enabling bus mastering fails as expected, not with {e:?}"), false),
    }
    let back = pci.config_read(pci::COMMAND, 2).unwrap_or(0);
    println!("edu: command register now {back:#x}");
    let at = pci.find_capability(0x05).ok().flatten();
    c.check("the device has an MSI capability", at.is_some());
    c.check(
        "writing its MSI address is refused without remapping",
        pci.config_write(at.unwrap_or(0x40) + 4, 4, 0xfee0_0000).map_err(|e| e.code)
            == Err(SyscallError::InvalidArgument),
    );
    println!("edu: done");
    c.finish()
}
