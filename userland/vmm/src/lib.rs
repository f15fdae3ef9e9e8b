//! A user-level VMM: builds a guest from untyped, runs it on a VCPU.
//!
//! The VMM holds only caps: a GuestSpace and its nested tables, guest RAM frames (each
//! mapped twice through copied caps: into the GuestSpace at its guest-physical address
//! and into the VMM's own VSpace to fill it), and a VCPU. It loads the guest kernel of
//! `guest.rs`, starts it in long mode and handles every exit: a 16550 transmit and
//! line-status register on COM1, CPUID, an exit port, a check port, and nested page
//! faults (a fresh frame for the demand page, a skipped load for an address outside
//! guest memory). Then it checks the VCPU invocations refuse bad arguments. Every
//! result is a `vmm: ok ...` / `vmm: FAIL ...` line (docs/vm.md).
//!
//! Packed as `vmm-edu` (`init=vmm-edu`) it also assigns an edu device to the guest
//! (`assigned`) and the guest drives it. As `vmm-component` it is a component of a
//! system description ([`run_component`]): guest memory from its budget, its device
//! through the iommu-server (`served`).
#![no_std]

mod assigned;
mod fuzz;
mod guest;
mod layout;
mod served;
mod two;

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::component::{ComponentInfo, CNODE_BITS_VMM};
use libcap::abi::error::SyscallError;
use libcap::abi::exit::ExitCode;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::vcpu::{self, IoExit, VcpuReg, VmExit, VmExitKind, NPF_WRITE};
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, VSpace, ATTR_EXECUTABLE};
use libcap::check::Checker;
use libcap::deadline::Deadline;
use libcap::device::DeviceMemory;
use libcap::println;
use libcap::vm::{GuestSpace, Resume, Vcpu};

use layout::*;

/// Exits one run may take before the VMM gives up on the guest.
const MAX_EXITS: u32 = 100_000;
/// The benchmark rows (`make bench`).
const EXIT_ROW: &str = "VM exit round trip (guest OUT to the VMM and back into the guest)";
const IRQ_ROW: &str = "VM injected interrupt (InjectIrq and Run to the guest's handler)";
/// Most guest RAM pages the VMM keeps track of.
const MAX_PAGES: usize = 40;

/// Which machine the VMM builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// The guest alone (`vmm`).
    Plain,
    /// The guest with an edu device assigned (`vmm-edu`).
    WithEdu,
    /// The guest's benchmark loops, timed by the VMM (`vmm-bench`, for `make bench`).
    Bench,
    /// Random guests first, then the plain guest (`vmm-fuzz`).
    Fuzz,
    /// Two guests with an edu each, trying to reach each other (`vmm-two-edu`).
    TwoEdu,
}

/// The time-stamp counter (guest instructions under `-icount shift=0`), ordered
/// after earlier work.
fn now() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads the time-stamp counter; lfence orders it after earlier work.
    unsafe { core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Samples of the two benchmark rows.
struct Bench {
    exits: [u64; BENCH_RUNS as usize],
    exit_count: usize,
    irqs: [u64; BENCH_RUNS as usize],
    irq_count: usize,
    /// When the VMM began injecting the interrupt now on its way.
    inject_started: u64,
}

impl Bench {
    /// Prints a row as `make bench` reads it, without the warm-up sample and minus
    /// the cost of the timestamps.
    fn report(name: &str, samples: &mut [u64], overhead: u64) {
        let samples = &mut samples[1..];
        for s in samples.iter_mut() {
            *s = s.saturating_sub(overhead);
        }
        samples.sort_unstable();
        let (min, median) = (samples[0], samples[samples.len() / 2]);
        println!("bench: {name} min={min} median={median} runs={}", samples.len());
    }
}

/// What the VMM needs while the guest runs.
struct Vmm<'r, 'a> {
    objects: &'r mut ObjectAllocator<'a>,
    slots: &'r SlotAllocator,
    /// Where this guest's RAM appears in the VMM's VSpace (window + guest-physical).
    window: u64,
    space: GuestSpace,
    vcpu: Vcpu,
    /// The guest's current serial line.
    line: [u8; 120],
    line_len: usize,
    /// Host interrupts that stopped the guest.
    interrupts: u32,
    /// While the guest spins: `interrupts` when it started.
    spinning: Option<u32>,
    /// The guest's HLT got its interrupt.
    injected: bool,
    /// Interrupts the guest's handler reported.
    irqs_taken: u32,
    /// Guest RAM: guest-physical address and the VMM's frame cap.
    ram: [(u64, Frame); MAX_PAGES],
    pages: usize,
    /// The assigned device, in `vmm-edu`.
    device: Option<assigned::Assigned>,
    /// The benchmark samples, in `vmm-bench`.
    bench: Option<Bench>,
    /// Time stamps of the last Run.
    last_run: u64,
    /// Where the guest aims its DMA outside its memory (its R14).
    outside_dma: u64,
}

impl Vmm<'_, '_> {
    /// A new frame mapped at `gpa` in the guest and at `window + gpa` in the VMM.
    fn add_ram(&mut self, gpa: u64) -> Result<(), libcap::cap::Error> {
        let frame = Frame(self.objects.alloc(self.slots, ObjectType::Frame4K, 0)?);
        let rw = CapRights::READ.union(CapRights::WRITE);
        map_frame(self.objects, self.slots, frame, self.window + gpa, rw, 0)?;
        let copy = self.slots.alloc()?;
        let root = CNode(slots::INIT_CNODE);
        CNode::copy(root.slot(copy), root.slot(frame.0), CapRights::ALL)?;
        self.space.map_frame(self.objects, self.slots, Frame(copy), gpa, rw, ATTR_EXECUTABLE)?;
        if let Some(d) = &self.device {
            // Guest memory added later is mirrored for the device too.
            d.mirror(self.slots, frame, gpa)?;
        }
        if self.pages < MAX_PAGES {
            self.ram[self.pages] = (gpa, frame);
            self.pages += 1;
        }
        Ok(())
    }

    /// The device's MSI, if it arrived (waiting until `deadline` if given), made
    /// pending in the guest.
    fn forward_msi(&mut self, deadline: Option<Deadline>) -> bool {
        let Some(d) = self.device.as_mut() else { return false };
        d.take_msi(deadline) && self.vcpu.inject_irq(EDU_VECTOR).is_ok()
    }

    /// Handles an I/O exit; returns the exit code if the guest ended.
    fn io(&mut self, exit: &VmExit, io: IoExit, c: &mut Checker) -> (Resume, Option<u64>) {
        let rax = exit.gpr(VcpuReg::Rax).unwrap_or(0);
        let next = Resume::At(exit.next_rip);
        match (io.port, io.is_in) {
            (COM1, false) => {
                let byte = rax as u8;
                if byte == b'\n' || self.line_len == self.line.len() {
                    let text = core::str::from_utf8(&self.line[..self.line_len]).unwrap_or("(not UTF-8)");
                    println!("{text}");
                    self.line_len = 0;
                } else {
                    self.line[self.line_len] = byte;
                    self.line_len += 1;
                }
                (next, None)
            }
            // Line status: transmitter empty, holding register empty.
            (p, true) if p == COM1 + 5 => (Resume::AtWithRax(exit.next_rip, (rax & !0xff) | 0x60), None),
            (CHECK_PORT, false) => {
                let wrote = rax as u32;
                // SAFETY: the demand page is mapped in the VMM window since its fault.
                let seen = unsafe { core::ptr::read_volatile((self.window + DEMAND_PAGE) as *const u64) };
                println!("vmm: the guest wrote {wrote:#x} at guest-physical {DEMAND_PAGE:#x}; the VMM reads {seen:#x}");
                c.check(
                    "the demand-mapped frame holds what the guest wrote",
                    seen == PATTERN && wrote == PATTERN as u32,
                );
                (next, None)
            }
            (OUTSIDE_PORT, false) => {
                c.check(
                    "the skipped load outside guest memory left the guest's RAX as it was",
                    rax as u32 == MARKER as u32,
                );
                (next, None)
            }
            (EXIT_PORT, false) => (next, Some(rax & 0xff)),
            (IDENT_PORT, false) => {
                println!("vmm: the guest reads edu ident {:#x} through its BAR", rax as u32);
                c.check("the guest reaches the assigned device's registers", rax as u32 == edu_driver::IDENT);
                (next, None)
            }
            (DMA_PORT, false) => {
                c.check("the guest's DMA round trip at guest-physical addresses kept its data", rax as u32 == 1);
                (next, None)
            }
            (OUTSIDE_DMA_PORT, false) => {
                match self.device.as_mut() {
                    Some(d) => d.check_outside_fault(c, self.outside_dma),
                    None => c.check("a device is assigned", false),
                }
                (next, None)
            }
            (SPIN_PORT, false) if self.spinning.is_none() => {
                self.spinning = Some(self.interrupts);
                (next, None)
            }
            (SPIN_PORT, false) => {
                let seen = self.interrupts - self.spinning.unwrap_or(0);
                println!("vmm: the guest's spin ended after {seen} host interrupts stopped it");
                c.check("host interrupts stop a spinning guest and return to the VMM", seen >= SPIN_INTERRUPTS);
                (next, None)
            }
            (BENCH_PORT, false) => {
                if let Some(b) = self.bench.as_mut().filter(|b| b.exit_count < b.exits.len()) {
                    b.exits[b.exit_count] = self.last_run;
                    b.exit_count += 1;
                }
                (next, None)
            }
            (IRQ_PORT, false) if self.bench.is_some() => {
                let end = now();
                if let Some(b) = self.bench.as_mut().filter(|b| b.irq_count < b.irqs.len()) {
                    b.irqs[b.irq_count] = end - b.inject_started;
                    b.irq_count += 1;
                }
                (next, None)
            }
            (IRQ_PORT, false) => {
                self.irqs_taken += 1;
                c.check("the guest took the injected interrupt in its own handler", rax as u8 == VECTOR as u8);
                (next, None)
            }
            (port, true) => {
                println!("vmm: guest read from port {port:#x}: no device (all ones)");
                (Resume::AtWithRax(exit.next_rip, rax | 0xffff_ffff), None)
            }
            (port, false) => {
                println!("vmm: guest wrote {rax:#x} to port {port:#x}: no device (ignored)");
                (next, None)
            }
        }
    }

    /// Handles a nested page fault: the demand page gets a frame; a load outside guest
    /// memory is skipped (the VMM knows the guest's one such instruction).
    fn nested_fault(&mut self, exit: &VmExit, c: &mut Checker) -> Option<Resume> {
        let (gpa, write) = (exit.a, exit.b & NPF_WRITE != 0);
        let access = if write { "write" } else { "read" };
        println!("vmm: nested page fault at guest-physical {gpa:#x} ({access}) rip {:#x}", exit.rip);
        if gpa & !0xfff == DEMAND_PAGE {
            let mapped = self.add_ram(DEMAND_PAGE);
            c.check("map a fresh frame at the faulting guest-physical page", mapped.is_ok());
            return mapped.ok().map(|_| Resume::AsIs);
        }
        if gpa == OUTSIDE {
            c.check("a guest load outside guest memory arrives as a nested page fault", !write);
            // SAFETY: the guest's code is mapped in the VMM window (identity-mapped guest).
            let code = unsafe { core::ptr::read_volatile((self.window + exit.rip) as *const [u8; 3]) };
            if code == guest::OUTSIDE_LOAD {
                return Some(Resume::At(exit.rip + guest::OUTSIDE_LOAD.len() as u64));
            }
            println!("vmm: unexpected instruction {code:02x?} at the fault");
        }
        None
    }

    /// Runs the guest until it exits through the exit port; returns its exit code.
    fn run(&mut self, c: &mut Checker) -> Option<u64> {
        let mut resume = Resume::AsIs;
        for _ in 0..MAX_EXITS {
            let start = now();
            let ran = self.vcpu.run(self.space, resume);
            self.last_run = now() - start;
            let exit = match ran {
                Ok(e) => e,
                Err(e) => {
                    println!("vmm: Run failed: {} (argument {})", e.code.name(), e.detail);
                    return None;
                }
            };
            resume = match exit.kind {
                Some(VmExitKind::Io) => match self.io(&exit, IoExit::decode(exit.a), c) {
                    (_, Some(code)) => return Some(code),
                    (r, None) => r,
                },
                Some(VmExitKind::Cpuid) => {
                    let [b, d, cx] = VENDOR;
                    let regs = [1, u64::from(b), u64::from(cx), u64::from(d)];
                    if self.vcpu.write_regs(VcpuReg::Rax, &regs).is_err() {
                        return None;
                    }
                    println!("vmm: CPUID leaf {:#x} answered", exit.a);
                    // CPUID is two bytes (0f a2).
                    Resume::At(exit.rip + 2)
                }
                Some(VmExitKind::NestedPageFault) => self.nested_fault(&exit, c)?,
                Some(VmExitKind::Interrupt) => {
                    self.interrupts += 1;
                    self.forward_msi(None);
                    if self.spinning.is_some_and(|start| self.interrupts - start == SPIN_INTERRUPTS) {
                        // End the spin: its counter reaches zero at the next decrement.
                        if self.vcpu.write(VcpuReg::Rcx, 1).is_err() {
                            return None;
                        }
                    }
                    Resume::AsIs
                }
                Some(VmExitKind::Hlt) if self.device.is_some() => {
                    // The guest waits for its device: block until the MSI comes.
                    if !self.forward_msi(Some(Deadline::default_wait())) {
                        println!("vmm: the guest waits for an interrupt and its device raised none");
                        return None;
                    }
                    Resume::At(exit.rip + 1)
                }
                Some(VmExitKind::Hlt) if self.bench.is_some() => {
                    if let Some(b) = self.bench.as_mut() {
                        b.inject_started = now();
                    }
                    if self.vcpu.inject_irq(VECTOR).is_err() {
                        return None;
                    }
                    Resume::At(exit.rip + 1)
                }
                Some(VmExitKind::Hlt) if !self.injected => {
                    self.injected = true;
                    println!("vmm: the guest halted at rip {:#x}: injecting vector {VECTOR:#x}", exit.rip);
                    c.check("inject an interrupt into the halted guest", self.vcpu.inject_irq(VECTOR).is_ok());
                    // HLT is one byte (f4).
                    Resume::At(exit.rip + 1)
                }
                _ => {
                    println!(
                        "vmm: guest stopped: {:?} (hardware exit {:#x}, info {:#x} {:#x}) at rip {:#x}",
                        exit.kind, exit.hw_code, exit.hw_info1, exit.hw_info2, exit.rip
                    );
                    return None;
                }
            };
        }
        println!("vmm: the guest took more than {MAX_EXITS} exits");
        None
    }
}

/// The register state the guest starts with: long mode, paging on with the page
/// tables at [`PML4`], flat 64-bit segments, RIP at the code.
pub(crate) fn initial_registers(machine: Machine) -> [u64; vcpu::VCPU_REG_COUNT] {
    let mut r = libcap::vm::long_mode_registers(PML4, GDT, CODE, STACK_TOP);
    // RDI: which program the guest kernel runs; R14: where its stray DMA goes.
    r[VcpuReg::Rdi.raw() as usize] = match machine {
        Machine::Plain | Machine::Fuzz => 0,
        Machine::WithEdu | Machine::TwoEdu => 1,
        Machine::Bench => 2,
    };
    r[VcpuReg::R14.raw() as usize] = OUTSIDE_DMA;
    r
}

/// Writes the guest's page tables and code into its RAM (through the VMM's window
/// onto it).
fn load_guest(window: u64) {
    let put = |gpa: u64, value: u64| {
        // SAFETY: every page below RAM_BYTES is mapped read-write in the window.
        unsafe { core::ptr::write_volatile((window + gpa) as *mut u64, value) }
    };
    const PRESENT_WRITABLE: u64 = 0x3;
    const LARGE: u64 = 0x83;
    put(PML4, PDPT | PRESENT_WRITABLE);
    put(PDPT, PD_LOW | PRESENT_WRITABLE);
    put(PDPT + 8, PD_1G | PRESENT_WRITABLE);
    put(PD_LOW, LARGE);
    put(PD_1G, OUTSIDE | LARGE);
    // The edu BAR at 2 GiB, uncached (PCD | PWT).
    put(PDPT + 16, PD_2G | PRESENT_WRITABLE);
    put(PD_2G, EDU_BAR | LARGE | 0x18);
    // Null, 64-bit code (0x08), data (0x10): what the guest's IRETQ reloads.
    put(GDT + 8, libcap::vm::LONG_MODE_GDT[0]);
    put(GDT + 16, libcap::vm::LONG_MODE_GDT[1]);
    let image = guest::image();
    let dest = (window + CODE) as *mut u8;
    // SAFETY: the code pages are mapped in the VMM window and the image fits below STACK_TOP.
    unsafe { core::ptr::copy_nonoverlapping(image.as_ptr(), dest, image.len()) };
    println!("vmm: guest kernel {} bytes at guest-physical {CODE:#x}", image.len());
}

/// Where the guest's assigned device comes from.
pub(crate) enum DeviceSource<'d> {
    /// No device.
    None,
    /// A root task: edu number `nth` of bootinfo, in an IOSpace of the VMM's own.
    Own { bi: &'static BootInfo, memory: &'d mut DeviceMemory, nth: usize },
    /// A component: the device its description gives, through the iommu-server.
    Served { info: &'static ComponentInfo, client: libcap::iommu::DriverClient },
}

/// Makes a guest (GuestSpace, VCPU, RAM seen at `window` in the VMM, the guest
/// kernel loaded, the device of `source` assigned) for `machine`.
fn build<'r, 'a>(
    c: &mut Checker,
    (objects, slots): (&'r mut ObjectAllocator<'a>, &'r SlotAllocator),
    machine: Machine,
    window: u64,
    source: DeviceSource<'_>,
) -> Option<Vmm<'r, 'a>> {
    let space = objects.alloc(slots, ObjectType::GuestSpace, 0);
    let vcpu = objects.alloc(slots, ObjectType::Vcpu, 0);
    let (space, vcpu) = match (space, vcpu) {
        (Ok(s), Ok(v)) => (GuestSpace(s), Vcpu(v)),
        (Err(e), _) | (_, Err(e)) => {
            println!(
                "vmm: cannot create a GuestSpace and a VCPU: {} (this CPU has no SVM with nested paging?)",
                e.code.name()
            );
            c.check("create a GuestSpace and a VCPU", false);
            return None;
        }
    };
    c.check("create a GuestSpace and a VCPU", true);
    let mut vmm = Vmm {
        objects,
        slots,
        window,
        space,
        vcpu,
        line: [0; 120],
        line_len: 0,
        interrupts: 0,
        spinning: None,
        injected: false,
        irqs_taken: 0,
        ram: [(0, Frame(0)); MAX_PAGES],
        pages: 0,
        device: None,
        bench: (machine == Machine::Bench).then_some(Bench {
            exits: [0; BENCH_RUNS as usize],
            exit_count: 0,
            irqs: [0; BENCH_RUNS as usize],
            irq_count: 0,
            inject_started: 0,
        }),
        last_run: 0,
        outside_dma: OUTSIDE_DMA,
    };
    let ram = (0..RAM_BYTES).step_by(4096).try_for_each(|gpa| vmm.add_ram(gpa));
    c.check("map guest RAM into the GuestSpace and the VMM", ram.is_ok());
    ram.ok()?;
    let ram = vmm.ram;
    let ram = &ram[..vmm.pages];
    let with_device = !matches!(source, DeviceSource::None);
    vmm.device = match source {
        DeviceSource::None => None,
        DeviceSource::Own { bi, memory, nth } => {
            assigned::attach(c, bi, (vmm.objects, vmm.slots, memory), space, ram, nth)
        }
        DeviceSource::Served { info, client } => served::attach(c, info, (vmm.objects, vmm.slots), space, ram, client),
    };
    if with_device {
        vmm.device.as_ref()?;
    }
    load_guest(window);
    Some(vmm)
}

/// Starts the guest of `vmm` with `machine`'s registers (`extra` on top) and runs it
/// to its end; false if it did not end with code 0.
fn start(c: &mut Checker, vmm: &mut Vmm<'_, '_>, machine: Machine, extra: &[(VcpuReg, u64)]) -> bool {
    let mut regs = initial_registers(machine);
    for &(r, v) in extra {
        regs[r.raw() as usize] = v;
        if r == VcpuReg::R14 {
            vmm.outside_dma = v;
        }
    }
    let vcpu = vmm.vcpu;
    c.check("write the guest's initial registers", vcpu.write_regs(VcpuReg::Rax, &regs).is_ok());
    c.check("registers read back", vcpu.read(VcpuReg::Rip) == Ok(CODE) && vcpu.read(VcpuReg::Cr3) == Ok(PML4));
    let code = vmm.run(c);
    println!("vmm: guest exit code {code:?} after {} host interrupts stopped it", vmm.interrupts);
    c.check("the guest ran to its exit port with code 0", code == Some(0));
    code == Some(0)
}

/// Builds `machine`, runs its guest to the end and checks what happened.
pub fn run(bi: &'static BootInfo, machine: Machine) -> ExitCode {
    let mut c = Checker::new("vmm");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let mut device_memory = DeviceMemory::new(bi);
    if machine == Machine::TwoEdu {
        two::run(&mut c, bi, (&mut objects, &slots, &mut device_memory));
        return c.finish();
    }
    let source = match machine {
        Machine::WithEdu => DeviceSource::Own { bi, memory: &mut device_memory, nth: 0 },
        _ => DeviceSource::None,
    };
    let Some(mut vmm) = build(&mut c, (&mut objects, &slots), machine, VMM_WINDOW, source) else {
        return c.finish();
    };
    run_built(c, &mut vmm, machine)
}

/// The VMM as a component of a system description (`program = "vmm-component"`,
/// docs/vm.md): guest memory, tables and VCPU from its budget untyped, slots of its own
/// CNode (`cnode_bits` >= [`CNODE_BITS_VMM`]); if the description makes it the driver
/// of a device, that device is assigned to the guest through the iommu-server.
pub fn run_component(info: &'static ComponentInfo) -> ExitCode {
    let mut c = Checker::new("vmm");
    let client = match libcap::iommu::driver_client(info, DMA_VADDRS, 16) {
        Ok(client) => Some(client),
        Err(why) => {
            println!("vmm: component '{}': no device ({why}): a guest without one", info.name());
            None
        }
    };
    let named = info.caps().iter().map(|c| c.slot).max().unwrap_or(0).max(libcap::abi::component::BUDGET_UNTYPED + 6);
    let first_free = client.as_ref().map_or(named + 1, |d| d.spare);
    // Its CNode's slots (as init reports them), or the smallest the docs ask for.
    let radix = if info.cnode_radix == 0 { u64::from(CNODE_BITS_VMM) } else { info.cnode_radix.min(16) };
    let slots = SlotAllocator::window(first_free..1 << radix);
    let mut objects = ObjectAllocator::budget(info.budget_untyped.start..info.budget_untyped.end);
    let (machine, source) = match client {
        Some(client) => (Machine::WithEdu, DeviceSource::Served { info, client }),
        None => (Machine::Plain, DeviceSource::None),
    };
    println!("vmm: component '{}' generation {}: building its guest", info.name(), info.generation);
    let Some(mut vmm) = build(&mut c, (&mut objects, &slots), machine, VMM_WINDOW, source) else {
        return c.finish();
    };
    run_built(c, &mut vmm, machine)
}

/// Where a component VMM's iommu-server client would map DMA buffers (it asks for
/// none: the device reaches guest memory only).
const DMA_VADDRS: core::ops::Range<u64> = 0x0000_5400_0000_0000..0x0000_5400_0100_0000;

/// Runs the guest `build` made for `machine` to its end and checks what happened.
fn run_built(mut c: Checker, vmm: &mut Vmm<'_, '_>, machine: Machine) -> ExitCode {
    let (vcpu, space) = (vmm.vcpu, vmm.space);
    if machine == Machine::Fuzz && !random_guests(&mut c, vcpu, space) {
        return c.finish();
    }
    start(&mut c, vmm, machine, &[]);
    if let Some(b) = vmm.bench.as_mut() {
        let overhead = (0..BENCH_RUNS).map(|_| now().wrapping_neg().wrapping_add(now())).min().unwrap_or(0);
        let complete = b.exit_count == b.exits.len() && b.irq_count == b.irqs.len();
        c.check("every benchmark exit and interrupt was timed", complete);
        if complete {
            Bench::report(EXIT_ROW, &mut b.exits, overhead);
            Bench::report(IRQ_ROW, &mut b.irqs, overhead);
        }
    } else if let Some(d) = &vmm.device {
        println!("vmm: {} device MSIs injected into the guest", d.msis);
        c.check("each DMA completion reached the guest as an injected interrupt", d.msis >= 2);
    } else {
        c.check("the injected interrupt was taken exactly once", vmm.irqs_taken == 1);
    }
    refusals(&mut c, vcpu, space);
    if let Some(assigned::Route::Served(client, bar)) = vmm.device.as_mut().map(|d| &mut d.route) {
        served::refusals(&mut c, client, *bar, (vmm.objects, vmm.slots));
    }
    c.finish()
}

/// Runs [`fuzz::SEEDS`] and one seed from the clock; false if an invocation failed.
fn random_guests(c: &mut Checker, vcpu: Vcpu, space: GuestSpace) -> bool {
    let clock_seed = now();
    let mut total = 0;
    for seed in fuzz::SEEDS.into_iter().chain([clock_seed]) {
        match fuzz::run_seed(vcpu, space, seed, &|| load_guest(VMM_WINDOW)) {
            Ok(t) => {
                t.print(seed);
                total += 1;
            }
            Err(why) => {
                println!("vmm: fuzz seed {seed:#x}: {why}");
                c.check("every VCPU invocation of the random guests worked", false);
                return false;
            }
        }
    }
    c.check("the kernel and the VMM survive random guests (code, I/O, register state)", total == 5);
    // The ordinary guest runs next, on the same VCPU, from a fresh image.
    load_guest(VMM_WINDOW);
    true
}

/// The VCPU invocations refuse what they must.
fn refusals(c: &mut Checker, vcpu: Vcpu, space: GuestSpace) {
    let err = |r: Result<(), libcap::cap::Error>| r.err().map(|e| e.code);
    let vspace = GuestSpace(VSpace(slots::INIT_VSPACE).0);
    c.check(
        "Run in a VSpace instead of a GuestSpace is InvalidCapability",
        err(vcpu.run(vspace, Resume::AsIs).map(|_| ())) == Some(SyscallError::InvalidCapability),
    );
    let mut out = [0u64; 2];
    c.check(
        "ReadRegs past the last register is RangeError",
        err(vcpu.read_regs(VcpuReg::SysenterEip, &mut out)) == Some(SyscallError::RangeError),
    );
    c.check("InjectIrq of vector 7 is RangeError", err(vcpu.inject_irq(7)) == Some(SyscallError::RangeError));
    let not_present = vcpu::segment(0x18, vcpu::ATTR_TSS64 & !0x80, 0x67);
    c.check(
        "WriteRegs of a TR that is not present is InvalidArgument",
        err(vcpu.write(VcpuReg::Tr, not_present)) == Some(SyscallError::InvalidArgument),
    );
    c.check("InjectIrq of vector 0x30 is accepted", vcpu.inject_irq(0x30).is_ok());
    let not_a_vcpu = Vcpu(space.0);
    c.check(
        "ReadRegs on a GuestSpace cap is IllegalOperation",
        err(not_a_vcpu.read_regs(VcpuReg::Rax, &mut out)) == Some(SyscallError::IllegalOperation),
    );
}
