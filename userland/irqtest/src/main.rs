//! Timer and interrupt test program (`init=irqtest`).
//!
//! Test program (run as root task with `init=irqtest`): timer preemption and round
//! robin between spinning threads, an interrupt (the PIT, ISA IRQ 0) delivered as a
//! notification and re-armed by Ack, and the I/O-port and IRQ error paths.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::exit::ExitCode;
use libcap::abi::invocation::Invocation;
use libcap::abi::object::ObjectType;
use libcap::abi::reserved::{MSI_WINDOW, QEMU_HPET_PAGE, RESERVED_IO_PORTS};
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{invoke, CNode, Error, IoPort, IoPortControl, IrqControl, IrqHandler, Notification, Tcb};
use libcap::check::Checker;
use libcap::deadline::Deadline;
use libcap::device::DeviceMemory;
use libcap::ipc;
use libcap::println;
use libcap::thread::{spawn, THREAD_REGION};

libcap::entry!(main);

const THREADS_BASE: u64 = 0x0000_3000_0000_0000;
/// PIT input clock.
const PIT_HZ: u32 = 1_193_182;
/// PIT ports: channel 0 data, mode/command.
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;

static COUNTERS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

extern "C" fn spinner(index: u64) -> ! {
    loop {
        COUNTERS[index as usize].fetch_add(1, SeqCst);
    }
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("irqtest");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    let me = Tcb(slots::INIT_TCB);

    // Preemption: a spinner at our priority makes progress while we spin too.
    c.check("lower own priority to 100", me.set_priority(me, 100).is_ok());
    let a = spawn(&mut objects, &slots, spinner, 0, 100, THREADS_BASE, 0).expect("spawn");
    // Bounded by the TSC, so a timer that never fires fails the check instead of hanging.
    let deadline = Deadline::default_wait();
    while COUNTERS[0].load(SeqCst) == 0 && !deadline.passed() {}
    c.check("timer preempts a spinning thread (no yield anywhere)", COUNTERS[0].load(SeqCst) > 0);
    // Round robin: two spinners at our priority both keep advancing.
    let b = spawn(&mut objects, &slots, spinner, 1, 100, THREADS_BASE + THREAD_REGION + 4096, 0).expect("spawn");
    let start = [COUNTERS[0].load(SeqCst), COUNTERS[1].load(SeqCst)];
    let deadline = Deadline::default_wait();
    while (COUNTERS[0].load(SeqCst) == start[0] || COUNTERS[1].load(SeqCst) == start[1]) && !deadline.passed() {}
    c.check(
        "round robin between two spinning threads and us",
        COUNTERS[0].load(SeqCst) > start[0] && COUNTERS[1].load(SeqCst) > start[1],
    );
    let _ = (a.suspend(), b.suspend());
    let _ = me.set_priority(me, 255);

    // I/O ports.
    let pit = IoPort(slots.alloc().unwrap());
    let ports = IoPortControl(slots::IOPORT_CONTROL);
    c.check("issue PIT ports 0x40..0x43", ports.issue(PIT_CHANNEL0, PIT_COMMAND, root.slot(pit.0)).is_ok());
    c.check(
        "PCI config ports are not handed out",
        ports.issue(0xcf8, 0xcff, root.slot(slots.alloc().unwrap())).map_err(|e| e.code) == Err(E::InvalidArgument),
    );
    c.check("port outside the cap", pit.in8(0x60).map_err(|e| e.code) == Err(E::RangeError));
    port_range_wrap(&mut c, pit);
    platform_reservations(&mut c, bi, &slots);

    // The PIT at 100 Hz on ISA IRQ 0, delivered to a notification.
    let ntfn = Notification(objects.alloc(&slots, ObjectType::Notification, 0).expect("ntfn"));
    let badged = Notification(slots.alloc().unwrap());
    let _ = CNode::mint(root.slot(badged.0), root.slot(ntfn.0), CapRights::ALL, 0x8);
    let handler = IrqHandler(slots.alloc().unwrap());
    let gsi = IrqControl(slots::IRQ_CONTROL).get(0, root.slot(handler.0));
    c.check("get the handler for ISA IRQ 0", gsi.is_ok());
    println!("irqtest: ISA IRQ 0 is GSI {}", gsi.unwrap_or(99));
    c.check(
        "a second handler for the same line is refused",
        matches!(
            IrqControl(slots::IRQ_CONTROL).get(0, root.slot(slots.alloc().unwrap())),
            Err(Error { code: E::RevokeFirst, .. })
        ),
    );
    c.check(
        "a line that does not exist is refused",
        IrqControl(slots::IRQ_CONTROL).get(200, root.slot(slots.alloc().unwrap())).map_err(|e| e.code)
            == Err(E::RangeError),
    );
    c.check("bind the notification", handler.set_notification(badged).is_ok());
    let divisor = PIT_HZ / 100;
    let programmed = pit.out8(PIT_COMMAND, 0b0011_0100).is_ok() // channel 0, lo/hi, mode 2
        && pit.out8(PIT_CHANNEL0, divisor as u8).is_ok()
        && pit.out8(PIT_CHANNEL0, (divisor >> 8) as u8).is_ok();
    c.check("program the PIT", programmed);
    let first = wait_irq(ntfn.0);
    c.check("an interrupt arrives as a signal with the handler's badge", first == Ok(0x8));
    c.check("ack re-arms the line", handler.ack().is_ok());
    let second = wait_irq(ntfn.0);
    c.check("a second interrupt arrives after ack", second == Ok(0x8));
    c.check("clear masks the line", handler.clear().is_ok());
    c.check("delete the handler cap", CNode::delete(root.slot(handler.0)).is_ok());
    c.check(
        "the line can be taken again after delete",
        IrqControl(slots::IRQ_CONTROL).get(0, root.slot(slots.alloc().unwrap())).is_ok(),
    );

    c.finish()
}

/// Waits, bounded, for the PIT's signal; says so if it never comes (and the system
/// then ends with the checks' failure instead of waiting forever).
fn wait_irq(ntfn: u64) -> Result<u64, ()> {
    match ipc::wait_until(ntfn, Deadline::default_wait()) {
        Ok(Some(word)) => Ok(word),
        Ok(None) => {
            println!("irqtest: FAIL the PIT interrupt (ISA IRQ 0) did not arrive");
            Err(())
        }
        Err(_) => Err(()),
    }
}

/// A port number near 2^64 must not wrap the cap's range check (`port + width - 1`)
/// into an access of port 0xffff or 0xfffd; ports above 0xffff do not exist.
fn port_range_wrap(c: &mut Checker, pit: IoPort) {
    let raw = |label, port: u64| invoke(pit.0, label, &[port, 0], &[]).map(|r| r[0]).map_err(|e| e.code);
    let cases = [
        (Invocation::IoPortIn16, u64::MAX),
        (Invocation::IoPortIn32, u64::MAX - 2),
        (Invocation::IoPortOut16, u64::MAX),
        (Invocation::IoPortOut32, u64::MAX - 1),
        (Invocation::IoPortIn8, 0x1_0040),
    ];
    let mut refused = true;
    for (label, port) in cases {
        let r = raw(label, port);
        println!("irqtest: {label:?} at port {port:#x} with a cap for 0x40..=0x43: {r:?}");
        refused &= r == Err(E::RangeError);
    }
    c.check("ports near 2^64 or above 0xffff are refused (no wrap into 0xffff)", refused);
}

/// Nothing that can write memory or raise interrupts outside the IOMMU's control is
/// handed out (`abi::reserved`): no reserved I/O port range, alone or straddled, and
/// no device untyped over the HPET page or the MSI window.
fn platform_reservations(c: &mut Checker, bi: &BootInfo, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let ports = IoPortControl(slots::IOPORT_CONTROL);
    let refused = |first: u16, last: u16| {
        ports.issue(first, last, root.slot(slots.alloc().unwrap())).map_err(|e| e.code) == Err(E::InvalidArgument)
    };
    c.check(
        "fw_cfg ports 0x510..0x51b are not handed out",
        refused(0x510, 0x51b) && refused(0x510, 0x511) && refused(0x514, 0x51b),
    );
    c.check(
        "ISA DMA ports are not handed out",
        refused(0x00, 0x0f) && refused(0x0a, 0x0a) && refused(0x81, 0x8f) && refused(0xc0, 0xdf) && refused(0xd4, 0xd4),
    );
    c.check(
        "the isa-debug-exit ports 0xf4..0xf7 are not handed out (they stop the system)",
        refused(0xf4, 0xf4) && refused(0xf7, 0xf7) && refused(0xf0, 0xff) && refused(0xf5, 0xf6),
    );
    c.check(
        "every reserved I/O port range is refused, whole, by its last port and straddled",
        RESERVED_IO_PORTS.iter().all(|r| {
            refused(r.first, r.last) && refused(r.last, r.last) && refused(r.first.saturating_sub(1), r.first)
        }),
    );
    let device_overlaps = |start: u64, end: u64| {
        bi.untyped().iter().any(|u| u.is_device == 1 && u.paddr < end && start < u.paddr + (1u64 << u.size_bits))
    };
    let mut device = DeviceMemory::new(bi);
    c.check(
        "no device untyped covers the HPET page 0xfed00000",
        !device_overlaps(QEMU_HPET_PAGE, QEMU_HPET_PAGE + 0x1000) && device.frame_at(slots, QEMU_HPET_PAGE).is_none(),
    );
    c.check(
        "no device untyped covers the MSI window 0xfee00000..0xfef00000",
        !device_overlaps(MSI_WINDOW.0, MSI_WINDOW.1)
            && [0xfee0_1000, 0xfee8_0000, 0xfeef_f000].iter().all(|&p| device.frame_at(slots, p).is_none()),
    );
}
