//! CPU-state test program (`init=cputest`).
//!
//! Test program (run as root task with `init=cputest`): CPU state a thread controls
//! must neither crash the kernel nor reach another thread. RFLAGS.NT set before a
//! system call, RFLAGS bits written with TCB WriteRegisters, the GS base switched per
//! thread (FSGSBASE lets user mode set it), and `sgdt`/`sidt` faulting under UMIP.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::abi::fault::FaultKind;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::slots;
use libcap::abi::syscall::Syscall;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::cap::Tcb;
use libcap::check::Checker;
use libcap::ipc;
use libcap::println;
use libcap::thread::{spawn, THREAD_REGION};

libcap::entry!(main);

const THREADS_BASE: u64 = 0x0000_3000_0000_0000;

/// RFLAGS bits.
const NT: u64 = 1 << 14;
const IOPL: u64 = 3 << 12;
const IF: u64 = 1 << 9;
const RF: u64 = 1 << 16;
const VM: u64 = 1 << 17;
const CF: u64 = 1;

/// GS bases the two threads of the GS test use.
const MAIN_GS: u64 = 0x0000_1234_5678_0000;
const SERVER_GS: u64 = 0x0000_0bad_c0de_0000;

static EP: AtomicU64 = AtomicU64::new(0);
static BLOCK_EP: AtomicU64 = AtomicU64::new(0);
/// The GS server's own TCB (set before the first call reaches it).
static SERVER_TCB: AtomicU64 = AtomicU64::new(0);
/// What `sgdt` stored, or 0 if it faulted.
static SGDT_BASE: AtomicU64 = AtomicU64::new(0);

fn block_forever() -> ! {
    loop {
        let _ = ipc::recv(BLOCK_EP.load(SeqCst));
    }
}

/// The root task's IPC buffer address.
fn slots_ipc() -> u64 {
    libcap::abi::layout::ROOT_IPC_BUFFER_VADDR
}

/// Whether user mode may use rd/wr FS/GS base (CPUID FSGSBASE; the kernel enables it).
fn fsgsbase() -> bool {
    let max = core::arch::x86_64::__cpuid(0).eax;
    max >= 7 && core::arch::x86_64::__cpuid_count(7, 0).ebx & 1 != 0
}

/// This thread's GS base; `me` is its own TCB, used when the CPU lacks FSGSBASE.
fn read_gs_base(me: u64) -> u64 {
    if !fsgsbase() {
        return Tcb(me).tls_bases().map_or(u64::MAX, |(_, gs)| gs);
    }
    let value: u64;
    // SAFETY: rdgsbase only reads the GS base (the kernel enables FSGSBASE).
    unsafe { core::arch::asm!("rdgsbase {}", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Sets this thread's GS base (by instruction, or TCB SetGsBase without FSGSBASE).
fn write_gs_base(me: u64, value: u64) {
    if !fsgsbase() {
        let _ = Tcb(me).set_gs_base(value);
        return;
    }
    // SAFETY: libcap does not use GS; a canonical value.
    unsafe { core::arch::asm!("wrgsbase {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// Sets RFLAGS.NT, makes system call `number` (cptr 0, no message), and returns
/// RFLAGS as the thread got them back (NT cleared again before returning).
fn syscall_with_nt(number: u64) -> u64 {
    let flags: u64;
    // SAFETY: only flags, rax, rdi, rsi and the syscall clobbers (rcx, r11) change; the
    // stack is used balanced by pushfq/popfq.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], {nt}",
            "popfq",
            "syscall",
            "pushfq",
            "pop {flags}",
            "pushfq",
            "and qword ptr [rsp], {not_nt}",
            "popfq",
            nt = const NT,
            not_nt = const !NT,
            flags = out(reg) flags,
            inout("rax") number => _,
            inout("rdi") 0u64 => _,
            inout("rsi") 0u64 => _,
            out("rdx") _, out("r10") _, out("r8") _, out("r9") _,
            out("rcx") _, out("r11") _,
        );
    }
    flags
}

/// Serves the GS test: answers each call with the GS base it finds, then sets its own.
extern "C" fn gs_server(_: u64) -> ! {
    let ep = EP.load(SeqCst);
    let mut msg = ipc::recv(ep);
    loop {
        let me = SERVER_TCB.load(SeqCst);
        let seen = read_gs_base(me);
        write_gs_base(me, SERVER_GS);
        if msg.is_err() {
            msg = ipc::recv(ep);
            continue;
        }
        msg = ipc::reply_recv(ep, MessageInfo::new(0, 1), [seen, 0, 0, 0]);
    }
}

extern "C" fn sgdt_thread(_: u64) -> ! {
    let mut gdtr = [0u8; 10];
    // SAFETY: sgdt stores 10 bytes into the buffer (or faults under UMIP).
    unsafe { core::arch::asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack)) };
    let base = u64::from_le_bytes(gdtr[2..10].try_into().unwrap_or([0; 8]));
    SGDT_BASE.store(base | 1, SeqCst);
    // No UMIP: end with a fault of another kind so the handler is not left waiting.
    // SAFETY: ud2 raises #UD, reported to the fault handler.
    unsafe { core::arch::asm!("ud2") };
    block_forever()
}

extern "C" fn spinner(_: u64) -> ! {
    loop {
        ipc::yield_now();
    }
}

/// Reads of its own thread pointer word the selector test's victim made.
static VICTIM_READS: AtomicU64 = AtomicU64::new(0);
/// Reads the victim makes before it reports (each after a switch to the loader).
const VICTIM_ROUNDS: u64 = 200;

/// Reads its thread pointer (an FS-relative load) after every switch, then reports
/// with label 0x77 on `done_ep`. A zeroed FS base makes the read page-fault instead.
extern "C" fn fs_victim(done_ep: u64) -> ! {
    for _ in 0..VICTIM_ROUNDS {
        let _ = libcap::cap::ipc_buffer();
        VICTIM_READS.fetch_add(1, SeqCst);
        ipc::yield_now();
    }
    let _ = ipc::send(done_ep, MessageInfo::new(0x77, 0), [0; 4]);
    block_forever()
}

/// Loads FS and GS with a data selector, which loads their bases from the GDT (0) on
/// every CPU, FSGSBASE or not, then yields forever by raw system calls (this thread
/// never uses FS again).
extern "C" fn selector_loader(_: u64) -> ! {
    // SAFETY: only FS, GS and the system call's clobbers change; the thread makes no
    // FS- or GS-relative access afterwards.
    unsafe {
        core::arch::asm!(
            "mov ax, ss",
            "mov fs, ax",
            "mov gs, ax",
            "2:",
            "mov eax, {y}",
            "syscall",
            "jmp 2b",
            y = const Syscall::Yield as u64,
            options(noreturn)
        );
    }
}

/// A Yield with nothing else ready (the kernel's fast return) leaves every register
/// but rax (the result, 0), rcx and r11 (zeroed) as it was.
fn yield_keeps_registers() -> bool {
    let pattern = |i: u64| 0x5a00_0000_0000_0000 | i << 32 | i;
    let (mut rdx, mut rsi, mut rdi, mut r8, mut r9, mut r10) =
        (pattern(1), pattern(2), pattern(3), pattern(4), pattern(5), pattern(6));
    let (mut r12, mut r13, mut r14, mut r15) = (pattern(7), pattern(8), pattern(9), pattern(10));
    let (rax, rcx, r11): (u64, u64, u64);
    // SAFETY: a Yield system call; every register it may change is an operand.
    unsafe {
        core::arch::asm!(
            "syscall",
            inout("rax") Syscall::Yield as u64 => rax,
            inout("rdx") rdx, inout("rsi") rsi, inout("rdi") rdi,
            inout("r8") r8, inout("r9") r9, inout("r10") r10,
            inout("r12") r12, inout("r13") r13, inout("r14") r14, inout("r15") r15,
            out("rcx") rcx, out("r11") r11,
        );
    }
    let kept = [rdx, rsi, rdi, r8, r9, r10, r12, r13, r14, r15];
    kept.iter().zip(1..).all(|(&v, i)| v == pattern(i)) && (rax, rcx, r11) == (0, 0, 0)
}

fn umip_offered() -> bool {
    let max = core::arch::x86_64::__cpuid(0).eax;
    max >= 7 && core::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 2) != 0
}

/// Where a 1 GiB frame is mapped (its own PML4 entry).
const HUGE_VADDR: u64 = 0x0000_3800_0000_0000;

/// A 1 GiB frame maps for the CPU as one PDPT leaf only where CPUID reports 1 GiB pages
/// (PDPE1GB); elsewhere Map is IllegalOperation. Needs 1 GiB of free RAM in one block
/// (the oldcpu Nehalem scenario boots with 3 GiB); says so when there is none.
fn huge_frame_on_this_cpu(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    use libcap::abi::error::SyscallError;
    use libcap::abi::rights::CapRights;
    use libcap::cap::{CNode, Frame, VSpace};
    let max_extended = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    let has_1g = max_extended >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 26) != 0;
    let Ok(huge) = objects.alloc(slots, ObjectType::Frame1G, 0).map(Frame) else {
        println!("cputest: no 1 GiB of free RAM in one block: the 1 GiB frame check is skipped");
        return;
    };
    if has_1g {
        let mapped = libcap::alloc::map_frame(objects, slots, huge, HUGE_VADDR, CapRights::ALL, 0);
        c.check("a 1 GiB frame maps for this CPU (it has 1 GiB pages)", mapped.is_ok());
        let _ = huge.unmap();
    } else {
        let refused = huge.map(VSpace(slots::INIT_VSPACE), HUGE_VADDR, CapRights::ALL, 0).map_err(|e| e.code);
        c.check(
            "a 1 GiB frame cannot be mapped for this CPU (no 1 GiB pages): IllegalOperation",
            refused == Err(SyscallError::IllegalOperation),
        );
    }
    let _ = CNode::delete(CNode(slots::INIT_CNODE).slot(huge.0));
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("cputest");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let mut region = THREADS_BASE;
    let mut next_region = || {
        region += THREAD_REGION + 4096;
        region
    };
    let mut new = |t: ObjectType| objects.alloc(&slots, t, 0).expect("objects");
    let ep = new(ObjectType::Endpoint);
    let fault_ep = new(ObjectType::Endpoint);
    EP.store(ep, SeqCst);
    BLOCK_EP.store(new(ObjectType::Endpoint), SeqCst);

    // RFLAGS.NT survives no system call path into the kernel's own iretq.
    let flags = syscall_with_nt(Syscall::NbSend as u64);
    c.check("a system call with RFLAGS.NT set returns (slow path)", flags & IF != 0);
    let flags = syscall_with_nt(Syscall::Yield as u64);
    c.check("a system call with RFLAGS.NT set returns (Yield fast path)", flags & IF != 0);
    c.check("a Yield with nothing else ready keeps every register but rax, rcx, r11", yield_keeps_registers());
    let flags = syscall_with_nt(Syscall::Call as u64);
    c.check("a system call with RFLAGS.NT set returns (IPC fast path entry)", flags & IF != 0);

    huge_frame_on_this_cpu(&mut c, &mut objects, &slots);

    // RFLAGS written by WriteRegisters keep only what user mode may set.
    let spin = spawn(&mut objects, &slots, spinner, 0, 100, next_region(), 0).expect("spawn");
    let regs = spin.read_registers(true);
    c.check("suspend a thread and read its registers", regs.is_ok());
    let mut regs = regs.unwrap_or_default();
    regs.rflags = NT | IOPL | RF | VM | CF;
    c.check("write RFLAGS with NT, IOPL, RF and VM set", spin.write_registers(false, &regs).is_ok());
    let back = spin.read_registers(false).map(|r| r.rflags).unwrap_or(0);
    println!("cputest: RFLAGS written {:#x}, read back {back:#x}", regs.rflags);
    c.check(
        "NT, IOPL, RF and VM are cleared, IF is set, CF kept",
        back & (NT | IOPL | RF | VM) == 0 && back & (IF | CF) == IF | CF,
    );
    c.check("the thread runs with the sanitised RFLAGS", spin.resume().is_ok());
    ipc::yield_now();
    let _ = spin.suspend();

    // The GS base is per thread, across the IPC fast path's switch and the scheduler's.
    let me = slots::INIT_TCB;
    println!(
        "cputest: FSGSBASE {}",
        if fsgsbase() { "offered: bases set by instruction" } else { "absent: bases set through the TCB" }
    );
    let fs = Tcb(me).tls_bases().map(|(fs, _)| fs);
    c.check(
        "the thread pointer is this thread's IPC buffer",
        fs == Ok(slots_ipc()) && libcap::cap::ipc_buffer() as u64 == slots_ipc(),
    );
    c.check("a non-canonical thread pointer is refused", Tcb(me).set_tls_base(1 << 63).is_err());
    write_gs_base(me, MAIN_GS);
    let server = spawn(&mut objects, &slots, gs_server, 0, 255, next_region(), 0).expect("spawn");
    SERVER_TCB.store(server.0, SeqCst);
    ipc::yield_now();
    let first = ipc::call(ep, MessageInfo::new(1, 0), [0; 4]).map(|m| m.mrs[0]);
    println!("cputest: GS base: the other thread saw {first:x?}, this one has {:#x}", read_gs_base(me));
    c.check("another thread does not see this thread's GS base", first == Ok(0));
    c.check("this thread's GS base survives the switches", read_gs_base(me) == MAIN_GS);
    let second = ipc::call(ep, MessageInfo::new(2, 0), [0; 4]).map(|m| m.mrs[0]);
    c.check("the other thread keeps its own GS base", second == Ok(SERVER_GS));
    c.check("and does not change this one's", read_gs_base(me) == MAIN_GS);
    write_gs_base(me, 0);

    // A thread that loads a selector into FS changes its own FS base (to 0) without
    // FSGSBASE too: the switch must save the live base, not assume the stored one, or
    // the next thread with the same stored base keeps the zeroed register.
    let done_ep = objects.alloc(&slots, ObjectType::Endpoint, 0).expect("endpoint");
    let victim = spawn(&mut objects, &slots, fs_victim, done_ep, 50, next_region(), done_ep).expect("spawn");
    let loader = spawn(&mut objects, &slots, selector_loader, 0, 50, next_region(), done_ep).expect("spawn");
    let victim_fs = victim.tls_bases().map(|(fs, _)| fs).unwrap_or(0);
    c.check("give the selector loader the same thread pointer", loader.set_tls_base(victim_fs).is_ok());
    let report = ipc::recv(done_ep);
    println!(
        "cputest: selector test: {} reads, report label {:?}",
        VICTIM_READS.load(SeqCst),
        report.map(|m| m.info.label)
    );
    c.check(
        "a thread that loads FS and GS with a selector leaves other threads' bases alone",
        matches!(report, Ok(m) if m.info.label == 0x77) && VICTIM_READS.load(SeqCst) == VICTIM_ROUNDS,
    );
    let _ = victim.suspend();
    let _ = loader.suspend();

    // Configure makes the IPC buffer address the thread pointer: it must be a canonical
    // user address (the CPU takes only canonical bases: #GP in the kernel otherwise).
    {
        use libcap::cap::{CNode, Frame, VSpace};
        let t = Tcb(objects.alloc(&slots, ObjectType::Tcb, 0).expect("tcb"));
        let f = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).expect("frame"));
        let (cspace, vspace) = (CNode(slots::INIT_CNODE), VSpace(slots::INIT_VSPACE));
        for bad in [1u64 << 63, 0x0000_8000_0000_0000, 0xffff_8000_0000_0000] {
            let r = t.configure(0, cspace, vspace, bad, f).map_err(|e| e.code);
            c.check(
                "Configure with a non-canonical or kernel-half IPC buffer address is refused",
                r == Err(libcap::abi::error::SyscallError::InvalidArgument),
            );
        }
    }

    // UMIP: sgdt in user mode faults with #GP instead of telling where the GDT is.
    if umip_offered() {
        let t = spawn(&mut objects, &slots, sgdt_thread, 0, 100, next_region(), fault_ep).expect("spawn");
        let f = ipc::recv(fault_ep);
        let gp = matches!(f, Ok(m) if m.info.label == FaultKind::UserException.raw() && m.mrs[3] == 13);
        if SGDT_BASE.load(SeqCst) != 0 {
            println!("cputest: sgdt in user mode returned GDT base {:#x}", SGDT_BASE.load(SeqCst) & !1);
        }
        c.check("sgdt in user mode raises #GP (UMIP)", gp && SGDT_BASE.load(SeqCst) == 0);
        let _ = t.suspend();
    } else {
        println!("cputest: this CPU does not offer UMIP");
    }
    let _ = Tcb(slots::INIT_TCB);
    println!("cputest: done");
    c.finish()
}
