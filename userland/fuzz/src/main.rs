//! System-call fuzzer test program (`init=fuzz`).
//!
//! Test program (run as root task with `init=fuzz`): a sandboxed thread with its own
//! small CNode issues thousands of random system calls and invocations (random numbers,
//! labels, lengths, cap addresses, message registers, extra caps). The kernel must
//! answer every one with a result or a fault message, never crash or hang; the root
//! task handles the faults and then checks the system still works.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::abi::fault::FaultKind;
use libcap::abi::invocation::Invocation;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::{ipc_buffer, CNode, IoPortControl, IrqControl, SlotRef, Untyped};
use libcap::check::Checker;
use libcap::ipc;
use libcap::space::{clone_image_space, spawn_with};

libcap::entry!(main);

/// Random operations the sandboxed thread performs unless the harness patched
/// [`PARAMS`] (`make soak` asks for millions).
const ITERATIONS: u64 = 20000;
/// Run parameters the host patches into this ELF before packing a boot image (the root
/// task has no command line): the marker, then the seed and the number of calls. The
/// marker's bytes are unique in the file; `tests/tests/fuzz.rs` finds and rewrites the
/// two words after it.
#[used]
#[no_mangle]
static PARAMS: [u64; 3] = [u64::from_le_bytes(*b"FUZZPRM1"), SEED, ITERATIONS];
/// Radix of the sandbox CNode.
const RADIX: u64 = 6;
/// Sandbox slots: an untyped, a sibling copy of the CNode itself, a frame, a page
/// table, and the endpoint to the root task (faults and the final report); then the
/// IOMMU and interrupt caps: an IOSpace, an IO page table, a PciDevice (a function no
/// other program drives) and IRQControl, so random Assign, MapIO, batches,
/// GetMsi and configuration writes reach the kernel too.
const S_UNTYPED: u64 = 1;
const S_CNODE: u64 = 2;
const S_FRAME: u64 = 3;
const S_TABLE: u64 = 4;
const S_REPORT: u64 = 5;
const S_IOSPACE: u64 = 6;
const S_IO_TABLE: u64 = 7;
const S_PCI: u64 = 8;
const S_IRQ_CONTROL: u64 = 9;
const S_IO_TABLE2: u64 = 10;
/// Caps to aim at beyond the IOMMU: an I/O port range nothing is attached to (COM2's),
/// an MSI handler for the network function, and a frame of device memory (from the
/// first device untyped; it must never be mappable into an IOSpace).
const S_IO_PORT: u64 = 11;
const S_MSI: u64 = 12;
const S_DEVICE_FRAME: u64 = 13;
/// The sandbox's I/O ports: COM2, absent on q35 (`reserved_port_reason` allows it).
const PORTS: (u16, u16) = (0x2f8, 0x2ff);
/// Focused calls: half the invocations name one of these caps with one of these labels
/// (and extra caps among the sandbox's slots), so the IOMMU, MSI and configuration
/// paths are reached past their first checks, not only rejected for a wrong cap type.
const FOCUS_SLOTS: [u64; 10] =
    [S_FRAME, S_IOSPACE, S_IO_TABLE, S_PCI, S_IRQ_CONTROL, S_IO_TABLE2, S_CNODE, S_IO_PORT, S_MSI, S_DEVICE_FRAME];
const FOCUS_LABELS: [Invocation; 21] = [
    Invocation::IoPortIn8,
    Invocation::IoPortIn32,
    Invocation::IoPortOut8,
    Invocation::IoPortOut16,
    Invocation::IrqHandlerAck,
    Invocation::IrqHandlerSetNotification,
    Invocation::IrqHandlerClear,
    Invocation::IoSpaceAssign,
    Invocation::IoSpaceUnassign,
    Invocation::IoPageTableMap,
    Invocation::IoPageTableUnmap,
    Invocation::FrameMapIo,
    Invocation::FrameUnmapIo,
    Invocation::IoSpaceSetFaultHandler,
    Invocation::IoSpaceMapBatch,
    Invocation::IoSpaceUnmapBatch,
    Invocation::IrqControlGetMsi,
    Invocation::PciDeviceConfigRead,
    Invocation::PciDeviceConfigWrite,
    Invocation::CNodeDelete,
    Invocation::CNodeRevoke,
];
/// Seed of the random sequence (fixed, so a failure reproduces).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Label of the "done" message.
const DONE: u64 = 0x600d;

static ISSUED: AtomicU64 = AtomicU64::new(0);
/// Focused invocations that succeeded.
static FOCUSED_OK: AtomicU64 = AtomicU64::new(0);
/// Debug-console invocations that succeeded (the sandbox has no debug cap: must stay 0).
static DEBUG_OK: AtomicU64 = AtomicU64::new(0);

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value that is often small (slot indices, depths, counts) and sometimes wild,
    /// never the report slot's index (the sandbox must keep its way home).
    fn arg(&mut self) -> u64 {
        let v = match self.next() % 4 {
            0 => self.next(),
            1 => self.next() % 70,
            2 => 64,
            _ => self.next() % 8,
        };
        if v == S_REPORT {
            S_REPORT + 1
        } else {
            v
        }
    }
}

/// The patched (or built-in) seed and call count; read volatile so the compiler cannot
/// fold in the built-in values.
fn params() -> (u64, u64) {
    // SAFETY: reads of an initialised static through its own address.
    let (seed, calls) = unsafe { (core::ptr::read_volatile(&PARAMS[1]), core::ptr::read_volatile(&PARAMS[2])) };
    (seed, calls.max(1))
}

extern "C" fn sandbox(seed: u64) -> ! {
    let mut rng = Rng(seed | 1);
    let buffer = ipc_buffer();
    let (_, calls) = params();
    for _ in 0..calls {
        let focused = rng.next().is_multiple_of(2);
        let mut cptr = rng.arg();
        let mut label = rng.next() % 80;
        if focused {
            cptr = FOCUS_SLOTS[(rng.next() % FOCUS_SLOTS.len() as u64) as usize];
            label = FOCUS_LABELS[(rng.next() % FOCUS_LABELS.len() as u64) as usize].raw();
        }
        let length = rng.next() % 130;
        let extra = rng.next() % 4;
        let mut mrs = [0u64; 4];
        for m in mrs.iter_mut() {
            *m = rng.arg();
        }
        // Never create endpoints or notifications: waiting on one would block forever.
        if label == Invocation::UntypedRetype.raw() && (mrs[0] == 2 || mrs[0] == 3) {
            mrs[0] = ObjectType::Frame4K.raw();
        }
        for i in 4..120 {
            // SAFETY: the thread's own mapped IPC buffer.
            unsafe { (*buffer).msg[i] = rng.arg() };
        }
        for k in 0..3 {
            let cap = if focused { rng.next() % 14 } else { rng.arg() };
            // SAFETY: as above.
            unsafe { (*buffer).caps_or_badges[k] = cap };
        }
        let info = (length & 0x7f) | (extra << 7) | (label << 12);
        let pick = if focused { 9 } else { rng.next() % 10 };
        let number = match pick {
            0 => libcap::abi::syscall::Syscall::NbSend.raw(),
            1 => libcap::abi::syscall::Syscall::NbRecv.raw(),
            2 => libcap::abi::syscall::Syscall::Yield.raw(),
            // Mostly unknown numbers (the former debug system calls among them).
            4 => rng.next() % 0x200 + 9,
            _ => libcap::abi::syscall::Syscall::Call.raw(),
        };
        let (mut rax, mut rdi, mut rsi) = (number, cptr, info);
        let [mut m0, mut m1, mut m2, mut m3] = mrs;
        // A debug-console write or halt: the sandbox holds no debug cap, so every one must
        // be refused (a halt that worked would end the test itself).
        let debug = pick == 3;
        if debug {
            let label = if rng.next().is_multiple_of(2) { Invocation::DebugWrite } else { Invocation::DebugHalt };
            rsi = MessageInfo::new(label.raw(), 2).to_word();
            m1 = rng.next() % 64;
        }
        // SAFETY: a raw system call with arbitrary arguments; the kernel must cope.
        unsafe {
            core::arch::asm!(
                "syscall",
                inout("rax") rax, inout("rdi") rdi, inout("rsi") rsi,
                inout("rdx") m0, inout("r10") m1, inout("r8") m2, inout("r9") m3,
                out("rcx") _, out("r11") _,
                options(nostack)
            );
        }
        let _ = (rdi, rsi, m0, m1, m2, m3);
        if focused && rax == 0 {
            FOCUSED_OK.fetch_add(1, SeqCst);
        }
        if debug && rax == 0 {
            DEBUG_OK.fetch_add(1, SeqCst);
        }
        ISSUED.fetch_add(1, SeqCst);
    }
    let _ = ipc::call(S_REPORT, MessageInfo::new(DONE, 0), [0; 4]);
    loop {
        ipc::yield_now();
    }
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("fuzz");
    let (seed, calls) = params();
    libcap::println!("fuzz: seed {seed:#x}, {calls} calls (reproduce: make fuzz-qemu SEED={seed:#x})");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    let report = objects.alloc(&slots, ObjectType::Endpoint, 0).expect("endpoint");
    let cnode = objects.alloc(&slots, ObjectType::CNode, RADIX).expect("cnode");
    // Two sibling copies with the guard: one for the TCB, one inside the sandbox.
    let (for_tcb, for_self) = (slots.alloc().unwrap(), slots.alloc().unwrap());
    let guard = 64 - RADIX;
    c.check(
        "guarded CNode cap for the thread",
        CNode::mint(root.slot(for_tcb), root.slot(cnode), CapRights::ALL, guard).is_ok(),
    );
    c.check(
        "guarded CNode cap for the sandbox",
        CNode::mint(root.slot(for_self), root.slot(cnode), CapRights::ALL, guard).is_ok(),
    );
    let own = |index: u64| SlotRef { root: CNode(for_tcb), index, depth: 64 };
    let untyped = objects.alloc(&slots, ObjectType::Untyped, 16).expect("untyped");
    let frame = objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame");
    let table = objects.alloc(&slots, ObjectType::PageTable, 0).expect("table");
    let placed = CNode::move_cap(own(S_UNTYPED), root.slot(untyped)).is_ok()
        && CNode::move_cap(own(S_CNODE), root.slot(for_self)).is_ok()
        && CNode::move_cap(own(S_FRAME), root.slot(frame)).is_ok()
        && CNode::move_cap(own(S_TABLE), root.slot(table)).is_ok()
        && CNode::mint(own(S_REPORT), root.slot(report), CapRights::WRITE, 0x5a).is_ok();
    c.check("fill the sandbox CNode", placed);
    let iospace = objects.alloc(&slots, ObjectType::IoSpace, 0).expect("iospace");
    let io_table = objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io page table");
    let io_table2 = objects.alloc(&slots, ObjectType::IoPageTable, 0).expect("io page table");
    // A network function: nothing else in this run drives it.
    let nic = bi.pci_devices().iter().position(|d| d.class == 0x02);
    // An MSI handler for the network function, made before IRQControl moves.
    let msi = nic.is_some_and(|i| {
        let pci = libcap::cap::PciDevice(bi.pci_device_caps.start + i as u64);
        IrqControl(slots::IRQ_CONTROL).get_msi(pci, own(S_MSI)).is_ok()
    });
    let io_placed = CNode::move_cap(own(S_IOSPACE), root.slot(iospace)).is_ok()
        && CNode::move_cap(own(S_IO_TABLE), root.slot(io_table)).is_ok()
        && CNode::move_cap(own(S_IO_TABLE2), root.slot(io_table2)).is_ok()
        && nic.is_some_and(|i| {
            CNode::copy(own(S_PCI), root.slot(bi.pci_device_caps.start + i as u64), CapRights::ALL).is_ok()
        })
        // IRQControl cannot be copied (as in seL4): the sandbox gets the original.
        && CNode::move_cap(own(S_IRQ_CONTROL), root.slot(slots::IRQ_CONTROL)).is_ok();
    c.check("give the sandbox IOMMU and interrupt caps", io_placed);
    let ports = IoPortControl(slots::IOPORT_CONTROL).issue(PORTS.0, PORTS.1, own(S_IO_PORT)).is_ok();
    let device = bi.untyped().iter().position(|u| u.is_device != 0).and_then(|i| {
        let slot = slots.alloc().ok()?;
        let made = Untyped(bi.untyped_caps.start + i as u64).retype(ObjectType::Frame4K, 0, root, 0, 0, slot, 1);
        (made.is_ok() && CNode::move_cap(own(S_DEVICE_FRAME), root.slot(slot)).is_ok()).then_some(())
    });
    c.check("give the sandbox an I/O port range, an MSI handler and a device frame", msi && ports && device.is_some());
    let space = clone_image_space(&mut objects, &slots, bi).expect("space");
    let (seed, calls) = params();
    let spawned =
        spawn_with(&mut objects, &slots, CNode(for_tcb), space, sandbox, seed, 100, 0x0000_7000_0000_0000, S_REPORT);
    c.check("start the sandboxed thread", spawned.is_ok());
    let Ok(thread) = spawned else { return c.finish() };
    // Serve its faults (resume it each time) until it reports.
    let mut faults = 0u64;
    let mut other = 0u64;
    loop {
        match ipc::recv(report) {
            Ok(m) if m.info.label == DONE => {
                ipc::reply(MessageInfo::new(0, 0), [0; 4]);
                break;
            }
            Ok(m) if m.info.label == FaultKind::CapFault.raw() && m.badge == 0x5a => {
                // A cap fault re-runs the system call once answered; nothing will fix
                // these random addresses, so skip the instruction instead (as a real
                // handler that gives up on the call would) and fail it.
                faults += 1;
                let skipped = thread.read_registers(true).and_then(|mut r| {
                    r.rip += 2;
                    r.rax = libcap::abi::error::SyscallError::FailedLookup.raw();
                    thread.write_registers(true, &r)
                });
                if skipped.is_err() {
                    other += 1;
                }
                continue;
            }
            Ok(m) if (1..=5).contains(&m.info.label) && m.badge == 0x5a => faults += 1,
            Ok(_) => other += 1,
            Err(_) => other += 1,
        }
        ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    }
    libcap::println!("fuzz: {} random calls, {faults} faults handled, {other} other messages", ISSUED.load(SeqCst));
    let focused_ok = FOCUSED_OK.load(SeqCst);
    libcap::println!("fuzz: {focused_ok} focused IOMMU/MSI/config invocations succeeded");
    c.check("some focused invocations got past every check", focused_ok > 0);
    c.check("every random call returned", ISSUED.load(SeqCst) == calls);
    c.check("the sandbox without a debug cap could not print or halt", DEBUG_OK.load(SeqCst) == 0);
    c.check("faults were delivered", faults > 0);
    // The kernel still works: a fresh retype and a frame address query.
    let probe = objects.alloc(&slots, ObjectType::Frame4K, 0);
    c.check("the kernel still serves invocations", probe.is_ok());
    c.finish()
}
