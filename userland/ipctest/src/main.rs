//! Threads and IPC test program (`init=ipctest`).
//!
//! Test program (run as root task with `init=ipctest`): threads, endpoints (Call,
//! ReplyRecv, badges, long messages, cap grant, replies carrying caps), notifications (Signal/Wait/Poll,
//! binding), faults delivered to a handler (resume and kill), priorities, round robin
//! with Yield, FPU state across switches, CancelBadgedSends and error paths.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::exit::ExitCode;
use libcap::abi::fault::FaultKind;
use libcap::abi::msginfo::MessageInfo;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::syscall::Syscall;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, Notification, Tcb};
use libcap::check::Checker;
use libcap::ipc;
use libcap::println;
use libcap::space::{clone_image_space, spawn_in};
use libcap::thread::{spawn, THREAD_REGION};

mod replycap;

libcap::entry!(main);

const THREADS_BASE: u64 = 0x0000_3000_0000_0000;
const FAULT_VADDR: u64 = 0x0000_3100_0000_0000;

// Capabilities and results shared between the threads of this address space.
static EP: AtomicU64 = AtomicU64::new(0);
static NTFN: AtomicU64 = AtomicU64::new(0);
static BLOCK_EP: AtomicU64 = AtomicU64::new(0);
static RECV_SLOT: AtomicU64 = AtomicU64::new(0);
static LOG: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
static LOG_LEN: AtomicUsize = AtomicUsize::new(0);
static FAULT_READ: AtomicU64 = AtomicU64::new(0);
static AFTER_UD2: AtomicU64 = AtomicU64::new(0);
static FPU_OK: AtomicU64 = AtomicU64::new(0);
static FPU_DONE: AtomicU64 = AtomicU64::new(0);
static CANCELLED: AtomicU64 = AtomicU64::new(0);
static BOUND_BADGE: AtomicU64 = AtomicU64::new(0);
static FIXED_SLOT: AtomicU64 = AtomicU64::new(0);
static CAP_FAULT_RESULT: AtomicU64 = AtomicU64::new(0);
static UNKNOWN_RESULT: AtomicU64 = AtomicU64::new(0);
static UNHANDLED_CONTINUED: AtomicU64 = AtomicU64::new(0);
static NO_BUFFER_LENGTH: AtomicU64 = AtomicU64::new(99);
static FAST_EP: AtomicU64 = AtomicU64::new(0);
/// Reply-link test: the two servers' endpoints and go signals, and the label the
/// client's second call came back with.
static REPLY_EPS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static REPLY_GO: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static SECOND_REPLY: AtomicU64 = AtomicU64::new(0);
/// What the suspended and resumed first call returned: 1 an error, 2 + label success.
static FIRST_REPLY: AtomicU64 = AtomicU64::new(0);
/// What the cancelled fault senders saw: [0] the unknown system call's result, [1] set
/// if the page-faulting one continued (0: not yet).
static FAULT_SENDER_RESULT: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
/// Fast-IPC server: replies checked, and register problems it saw.
static FAST_SERVED: AtomicU64 = AtomicU64::new(0);
static FAST_SERVER_BAD: AtomicU64 = AtomicU64::new(0);

/// What [`checked_ipc`] saw.
struct Checked {
    rax: u64,
    badge: u64,
    info: u64,
    mrs: [u64; 4],
    /// rbx, rbp and r12..r15 held their values across the system call.
    callee_saved_kept: bool,
    /// rcx and r11 after it hold no kernel address.
    clobbers_clean: bool,
}

/// A raw IPC system call that also checks the register contract: the callee-saved
/// registers come back unchanged and rcx/r11 (the only clobbers) leak nothing.
fn checked_ipc(number: u64, cptr: u64, info: u64, mrs: [u64; 4]) -> Checked {
    let (mut rax, mut rdi, mut rsi) = (number, cptr, info);
    let [mut m0, mut m1, mut m2, mut m3] = mrs;
    let (dirty, not_kept): (u64, u64);
    let (mut r12, mut r13, mut r14, mut r15) = (0x1212_1212_1212_1212u64, 0x1313u64, 0x1414u64, 0x1515u64);
    // SAFETY: rbx and rbp (which LLVM reserves) are saved on the stack around the
    // system call and restored; everything else the kernel may change is an operand.
    // After the call rcx = 0 iff neither rcx nor r11 held a kernel-half address, and
    // r11 = 0 iff rbx and rbp came back unchanged.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "mov rbx, 0x0b0b0b0b0b0b0b0b",
            "mov rbp, 0x0d0d0d0d0d0d0d0d",
            "syscall",
            "or rcx, r11",
            "shr rcx, 47",
            "mov r11, 0x0b0b0b0b0b0b0b0b",
            "cmp rbx, r11",
            "jne 2f",
            "mov r11, 0x0d0d0d0d0d0d0d0d",
            "cmp rbp, r11",
            "jne 2f",
            "xor r11d, r11d",
            "jmp 3f",
            "2:",
            "mov r11d, 1",
            "3:",
            "pop rbp",
            "pop rbx",
            inout("rax") rax,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("rdx") m0,
            inout("r10") m1,
            inout("r8") m2,
            inout("r9") m3,
            inout("r12") r12,
            inout("r13") r13,
            inout("r14") r14,
            inout("r15") r15,
            out("rcx") dirty,
            out("r11") not_kept,
        );
    }
    let kept = not_kept == 0 && r12 == 0x1212_1212_1212_1212 && (r13, r14, r15) == (0x1313, 0x1414, 0x1515);
    Checked { rax, badge: rdi, info: rsi, mrs: [m0, m1, m2, m3], callee_saved_kept: kept, clobbers_clean: dirty == 0 }
}

fn log(id: u64) {
    let i = LOG_LEN.fetch_add(1, SeqCst);
    if i < LOG.len() {
        LOG[i].store(id, SeqCst);
    }
}

fn take_log() -> [u64; 8] {
    let mut out = [0; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = LOG[i].swap(0, SeqCst);
    }
    LOG_LEN.store(0, SeqCst);
    out
}

fn block_forever() -> ! {
    loop {
        let _ = ipc::recv(BLOCK_EP.load(SeqCst));
    }
}

/// Echo server: replies (mr0 + 1, badge, label, mr5) and handles cap grants (label 8).
extern "C" fn server(_: u64) -> ! {
    let ep = EP.load(SeqCst);
    let mut msg = ipc::recv(ep);
    loop {
        let Ok(m) = msg else {
            println!("ipctest: server recv failed: {msg:?}");
            block_forever()
        };
        if m.info.label == 0 && m.info.length == 0 {
            // A bound-notification wake-up: no one to reply to.
            BOUND_BADGE.store(m.badge, SeqCst);
            msg = ipc::recv(ep);
            continue;
        }
        let reply = if m.info.label == 8 {
            let slot = RECV_SLOT.load(SeqCst);
            let addr = Frame(slot).address().unwrap_or(0);
            [u64::from(addr == m.mrs[0] && m.info.extra_caps == 1), m.badge, 8, 0]
        } else {
            let long = if m.info.length > 5 { ipc::mr(5) } else { 0 };
            ipc::set_mr(5, long);
            [m.mrs[0] + 1, m.badge, m.info.label, m.mrs[3]]
        };
        ipc::set_receive_slot(slots::INIT_CNODE, RECV_SLOT.load(SeqCst), 64);
        msg = ipc::reply_recv(ep, MessageInfo::new(m.info.label, 6), reply);
    }
}

/// Server in a second address space answering Call with ReplyRecv, both with short
/// messages and no caps: the IPC fastpath. Every fourth reply has five registers,
/// so replies through the slowpath reach callers that blocked through the fastpath.
/// Replies (mr0 + 1, badge, label, mr3 ^ 0xff).
extern "C" fn fast_server(_: u64) -> ! {
    let ep = FAST_EP.load(SeqCst);
    let mut m = checked_ipc(Syscall::Recv.raw(), ep, 0, [0; 4]);
    loop {
        if m.rax != 0 || !m.callee_saved_kept || !m.clobbers_clean {
            FAST_SERVER_BAD.fetch_add(1, SeqCst);
        }
        let label = m.info >> 12;
        let length = if m.mrs[0] % 4 == 3 { 5 } else { 4 };
        let reply = MessageInfo::new(label, length).to_word();
        FAST_SERVED.fetch_add(1, SeqCst);
        m = checked_ipc(Syscall::ReplyRecv.raw(), ep, reply, [m.mrs[0] + 1, m.badge, label, m.mrs[3] ^ 0xff]);
    }
}

extern "C" fn prio_thread(id: u64) -> ! {
    log(id);
    if id == 10 {
        let _ = ipc::signal(NTFN.load(SeqCst));
    }
    block_forever()
}

extern "C" fn yielder(id: u64) -> ! {
    for _ in 0..3 {
        log(id);
        ipc::yield_now();
    }
    if id == 2 {
        let _ = ipc::signal(NTFN.load(SeqCst));
    }
    block_forever()
}

extern "C" fn faulter(_: u64) -> ! {
    // SAFETY: deliberately unmapped: the fault handler maps it and resumes us.
    let v = unsafe { (FAULT_VADDR as *const u64).read_volatile() };
    FAULT_READ.store(v, SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

extern "C" fn killed(_: u64) -> ! {
    // SAFETY: ud2 raises #UD; the handler kills us.
    unsafe { core::arch::asm!("ud2") };
    AFTER_UD2.store(1, SeqCst);
    block_forever()
}

extern "C" fn fpu_thread(value: u64) -> ! {
    let mut ok = true;
    for _ in 0..3 {
        let back: u64;
        // SAFETY: only xmm0 and the named registers are touched; yield in between
        // makes the other thread run and load its own value.
        unsafe {
            core::arch::asm!("movq xmm0, {}", in(reg) value, out("xmm0") _);
        }
        ipc::yield_now();
        // SAFETY: reads xmm0 back.
        unsafe { core::arch::asm!("movq {}, xmm0", out(reg) back) };
        ok &= back == value;
    }
    FPU_OK.fetch_add(u64::from(ok), SeqCst);
    // The last of the two to finish wakes the main thread (a timer tick can change
    // which one that is).
    if FPU_DONE.fetch_add(1, SeqCst) == 1 {
        let _ = ipc::signal(NTFN.load(SeqCst));
    }
    block_forever()
}

/// Sends through an empty slot: the handler puts a notification cap there and the send
/// runs again.
extern "C" fn cap_faulter(_: u64) -> ! {
    let r = ipc::nb_send(FIXED_SLOT.load(SeqCst), MessageInfo::new(0, 0), [0; 4]);
    CAP_FAULT_RESULT.store(if r.is_ok() { 1 } else { 2 }, SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

/// Issues an unknown system call: the handler sees it and lets it continue.
extern "C" fn unknown_syscaller(_: u64) -> ! {
    let rax = ipc::raw_syscall(0x777);
    UNKNOWN_RESULT.store(rax, SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

/// Issues unknown system call 0x778 + `i` and records what it returned: its fault
/// message waits on an endpoint nobody receives on.
extern "C" fn fault_sender(i: u64) -> ! {
    let rax = ipc::raw_syscall(0x778 + i);
    FAULT_SENDER_RESULT[i as usize].store(rax, SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

/// Reads an unmapped address with a marker in rax; the handler never answers. Sets
/// `FAULT_SENDER_RESULT[1]` if it ever continues.
extern "C" fn vm_fault_sender(_: u64) -> ! {
    // SAFETY: the read faults (nothing is mapped there); rax and rcx are declared
    // clobbered.
    unsafe {
        core::arch::asm!(
            "mov rax, 0x5a5a5a",
            "mov rcx, qword ptr [{addr}]",
            addr = in(reg) 0x0000_3e00_0000_0000u64,
            out("rax") _,
            out("rcx") _,
        )
    };
    FAULT_SENDER_RESULT[1].store(1, SeqCst);
    block_forever()
}

/// Has no IPC buffer: asks to send six registers, only four can travel.
extern "C" fn bufferless(badged_ep: u64) -> ! {
    let r = ipc::call(badged_ep, MessageInfo::new(7, 6), [1, 0, 0, 0]);
    NO_BUFFER_LENGTH.store(r.map_or(98, |m| u64::from(m.info.length)), SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

/// Faults with no handler: the kernel suspends it.
extern "C" fn unhandled(_: u64) -> ! {
    // SAFETY: deliberately unmapped.
    let _ = unsafe { (0x0000_3f00_0000_0000 as *const u64).read_volatile() };
    UNHANDLED_CONTINUED.store(1, SeqCst);
    block_forever()
}

extern "C" fn blocked_sender(badged_ep: u64) -> ! {
    let r = ipc::send(badged_ep, MessageInfo::new(1, 0), [0; 4]);
    CANCELLED.store(if r == Err(E::IllegalOperation) { 1 } else { 2 }, SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

/// A server that receives one call on REPLY_EPS[n], waits for its go signal, then
/// replies with label 0x50 + n.
extern "C" fn holding_server(n: u64) -> ! {
    let n = n as usize;
    let _ = ipc::recv(REPLY_EPS[n].load(SeqCst));
    let _ = ipc::wait(REPLY_GO[n].load(SeqCst));
    ipc::reply(MessageInfo::new(0x50 + n as u64, 0), [0; 4]);
    block_forever()
}

/// Calls server 0 (and is suspended and resumed while waiting), then server 1; records
/// the label its second call returns.
extern "C" fn twice_caller(_: u64) -> ! {
    let first = ipc::call(REPLY_EPS[0].load(SeqCst), MessageInfo::new(1, 0), [0; 4]);
    FIRST_REPLY.store(first.map_or(1, |m| 2 + m.info.label), SeqCst);
    let r = ipc::call(REPLY_EPS[1].load(SeqCst), MessageInfo::new(2, 0), [0; 4]);
    SECOND_REPLY.store(r.map_or(0xdead, |m| m.info.label), SeqCst);
    let _ = ipc::signal(NTFN.load(SeqCst));
    block_forever()
}

extern "C" fn idle_thread(_: u64) -> ! {
    block_forever()
}

/// Drops to the lowest priority and back: every ready thread runs until it blocks.
fn let_others_run(me: Tcb) {
    let _ = me.set_priority(me, 1);
    let _ = me.set_priority(me, 255);
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("ipctest");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let root = CNode(slots::INIT_CNODE);
    let me = Tcb(slots::INIT_TCB);
    let mut region = THREADS_BASE;
    let mut next_region = || {
        region += THREAD_REGION + 4096;
        region
    };
    let new = |objects: &mut ObjectAllocator<'_>, t: ObjectType| objects.alloc(&slots, t, 0).expect("objects");
    let ep = new(&mut objects, ObjectType::Endpoint);
    let ntfn = new(&mut objects, ObjectType::Notification);
    let block_ep = new(&mut objects, ObjectType::Endpoint);
    let fault_ep = new(&mut objects, ObjectType::Endpoint);
    EP.store(ep, SeqCst);
    NTFN.store(ntfn, SeqCst);
    BLOCK_EP.store(block_ep, SeqCst);
    RECV_SLOT.store(slots.alloc().expect("slot"), SeqCst);

    // Endpoint ping-pong with a badge and a long message.
    let badged = slots.alloc().expect("slot");
    c.check("mint badged endpoint", CNode::mint(root.slot(badged), root.slot(ep), CapRights::ALL, 0x11).is_ok());
    let server_tcb = spawn(&mut objects, &slots, server, 0, 200, next_region(), 0).expect("spawn server");
    ipc::set_mr(4, 0x4444);
    ipc::set_mr(5, 0x5555);
    let r = ipc::call(badged, MessageInfo::new(7, 6), [41, 0, 0, 3]);
    c.check(
        "call/reply-recv with badge and 6 registers",
        matches!(r, Ok(m) if m.mrs == [42, 0x11, 7, 3] && m.info.length == 6 && ipc::mr(5) == 0x5555),
    );
    // Cap transfer: grant a frame cap through the badged (Grant) cap.
    let frame = new(&mut objects, ObjectType::Frame4K);
    let addr = Frame(frame).address().unwrap_or(1);
    ipc::set_extra_cap(frame);
    let r = ipc::call(badged, MessageInfo { label: 8, caps_unwrapped: 0, extra_caps: 1, length: 1 }, [addr, 0, 0, 0]);
    c.check("grant a frame cap over IPC", matches!(r, Ok(m) if m.mrs[0] == 1 && m.mrs[1] == 0x11));
    // Without Grant the cap is not transferred.
    let no_grant = slots.alloc().expect("slot");
    let _ = CNode::mint(root.slot(no_grant), root.slot(ep), CapRights::WRITE, 0x12);
    let r = ipc::call(no_grant, MessageInfo { label: 8, caps_unwrapped: 0, extra_caps: 1, length: 1 }, [addr, 0, 0, 0]);
    c.check("no transfer without the grant right", matches!(r, Ok(m) if m.mrs[0] == 0 && m.mrs[1] == 0x12));
    replycap::run(&mut c, &mut objects, &slots, next_region());

    // Error paths.
    let read_only = slots.alloc().expect("slot");
    let _ = CNode::mint(root.slot(read_only), root.slot(ep), CapRights::READ, 0x13);
    c.check(
        "send without write right",
        ipc::send(read_only, MessageInfo::new(1, 0), [0; 4]) == Err(E::InvalidCapability),
    );
    c.check("receive on a frame cap (wrong type)", ipc::recv(frame).err() == Some(E::InvalidCapability));
    c.check(
        "call on an empty slot",
        ipc::call(slots.alloc().unwrap(), MessageInfo::new(1, 0), [0; 4]).err() == Some(E::FailedLookup),
    );
    let too_long = MessageInfo { label: 1, caps_unwrapped: 0, extra_caps: 0, length: 121 };
    c.check("message too long", ipc::send(badged, too_long, [0; 4]) == Err(E::InvalidArgument));
    c.check("unknown syscall without a handler", ipc::raw_syscall(0x999) == E::UnknownSyscall.raw());
    c.check(
        "nb-send with no receiver waiting is dropped",
        ipc::nb_send(block_ep, MessageInfo::new(1, 0), [0; 4]).is_ok(),
    );
    c.check("nb-recv with no sender returns at once", matches!(ipc::nb_recv(block_ep), Ok(m) if m.badge == 0));

    // Notifications.
    let (n1, n2) = (slots.alloc().unwrap(), slots.alloc().unwrap());
    let _ = CNode::mint(root.slot(n1), root.slot(ntfn), CapRights::ALL, 0b01);
    let _ = CNode::mint(root.slot(n2), root.slot(ntfn), CapRights::ALL, 0b10);
    c.check("poll an idle notification", ipc::poll(ntfn) == Ok(0));
    let _ = (ipc::signal(n1), ipc::signal(n2));
    c.check("signals accumulate badges", ipc::poll(ntfn) == Ok(0b11));
    let _ = ipc::signal(n1);
    c.check("wait returns a pending signal", ipc::wait(ntfn) == Ok(0b01));

    // Priorities: threads at 10, 20, 30 start in priority order once we block.
    for prio in [10u8, 30, 20] {
        spawn(&mut objects, &slots, prio_thread, u64::from(prio), prio, next_region(), 0).expect("spawn");
    }
    let _ = ipc::wait(ntfn);
    c.check("higher priority runs first", take_log()[..3] == [30, 20, 10]);

    // Round robin: two threads at one priority alternate through Yield.
    spawn(&mut objects, &slots, yielder, 1, 50, next_region(), 0).expect("spawn");
    spawn(&mut objects, &slots, yielder, 2, 50, next_region(), 0).expect("spawn");
    let _ = ipc::wait(ntfn);
    // Each Yield hands over to the other thread. A timer tick landing between a log
    // entry and the Yield hands over early, repeating one entry; allow one such tick
    // (without round robin the log would read 1 1 1 2 2 2: one change).
    let rr = take_log();
    let changes = rr[..6].windows(2).filter(|w| w[0] != w[1]).count();
    let counts = (rr[..6].iter().filter(|&&x| x == 1).count(), rr[..6].iter().filter(|&&x| x == 2).count());
    println!("ipctest: round robin log {:?}", &rr[..6]);
    c.check("round robin with yield", counts == (3, 3) && changes >= 4);

    // FPU state survives switches between threads.
    spawn(&mut objects, &slots, fpu_thread, 0x1111, 60, next_region(), 0).expect("spawn");
    spawn(&mut objects, &slots, fpu_thread, 0x2222, 60, next_region(), 0).expect("spawn");
    let _ = ipc::wait(ntfn);
    c.check("xmm0 preserved across thread switches", FPU_OK.load(SeqCst) == 2);

    // Fault delivered to a handler, fixed up, resumed.
    let faulter_tcb = spawn(&mut objects, &slots, faulter, 0, 100, next_region(), fault_ep).expect("spawn");
    let f = ipc::recv(fault_ep);
    let vm = matches!(f, Ok(m) if m.info.label == FaultKind::VmFault.raw() && m.mrs[1] == FAULT_VADDR && m.mrs[2] == 0);
    c.check("page fault arrives as a VmFault message", vm);
    let fix = Frame(new(&mut objects, ObjectType::Frame4K));
    c.check(
        "handler maps the missing page",
        map_frame(&mut objects, &slots, fix, FAULT_VADDR, CapRights::ALL, 0).is_ok(),
    );
    // SAFETY: just mapped read-write.
    unsafe { (FAULT_VADDR as *mut u64).write_volatile(0x77) };
    ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    let _ = ipc::wait(ntfn);
    c.check("faulting thread resumed and read the fixed page", FAULT_READ.load(SeqCst) == 0x77);
    let _ = faulter_tcb;

    // A thread killed by its handler.
    let victim = spawn(&mut objects, &slots, killed, 0, 100, next_region(), fault_ep).expect("spawn");
    let f = ipc::recv(fault_ep);
    let ud = matches!(f, Ok(m) if m.info.label == FaultKind::UserException.raw() && m.mrs[3] == 6);
    c.check("ud2 arrives as a UserException message (vector 6)", ud);
    c.check("handler suspends the thread", victim.suspend().is_ok());
    let regs = victim.read_registers(false);
    c.check("read the killed thread's registers", matches!(regs, Ok(r) if r.rip == f.map(|m| m.mrs[0]).unwrap_or(0)));
    ipc::yield_now();
    c.check("the killed thread never continues", AFTER_UD2.load(SeqCst) == 0);

    // A cap fault goes to the handler, which fixes the slot; the send then runs again.
    FIXED_SLOT.store(slots.alloc().unwrap(), SeqCst);
    spawn(&mut objects, &slots, cap_faulter, 0, 100, next_region(), fault_ep).expect("spawn");
    let f = ipc::recv(fault_ep);
    let cap_fault =
        matches!(f, Ok(m) if m.info.label == FaultKind::CapFault.raw() && m.mrs[1] == FIXED_SLOT.load(SeqCst));
    c.check("empty slot in Send arrives as a CapFault message", cap_fault);
    let other_ntfn = new(&mut objects, ObjectType::Notification);
    let _ = CNode::copy(root.slot(FIXED_SLOT.load(SeqCst)), root.slot(other_ntfn), CapRights::ALL);
    ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    let _ = ipc::wait(ntfn);
    c.check("the send runs again after the handler fixed the slot", CAP_FAULT_RESULT.load(SeqCst) == 1);
    // An unknown system call goes to the handler and the thread continues after it.
    spawn(&mut objects, &slots, unknown_syscaller, 0, 100, next_region(), fault_ep).expect("spawn");
    let f = ipc::recv(fault_ep);
    c.check(
        "unknown syscall arrives as an UnknownSyscall message",
        matches!(f, Ok(m) if m.info.label == FaultKind::UnknownSyscall.raw() && m.mrs[3] == 0x777),
    );
    ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    let _ = ipc::wait(ntfn);
    c.check("the thread continues after its unknown syscall", UNKNOWN_RESULT.load(SeqCst) == 0x777);
    // A fault with no handler suspends the thread; the rest of the system goes on.
    let lost = spawn(&mut objects, &slots, unhandled, 0, 100, next_region(), 0).expect("spawn");
    let_others_run(me);
    c.check("a thread faulting without a handler is suspended", UNHANDLED_CONTINUED.load(SeqCst) == 0);
    c.check("its registers show the faulting access", lost.read_registers(false).is_ok());

    // A thread configured without an IPC buffer: messages shrink to the four registers.
    let t = Tcb(new(&mut objects, ObjectType::Tcb));
    let stack = next_region();
    for page in 0..4 {
        let f = Frame(new(&mut objects, ObjectType::Frame4K));
        let _ = map_frame(&mut objects, &slots, f, stack + page * 4096, CapRights::ALL, 0);
    }
    let configured = t.configure_without_buffer(0, root, libcap::cap::VSpace(slots::INIT_VSPACE));
    c.check("configure a thread without an IPC buffer", configured.is_ok());
    let regs = libcap::abi::registers::UserRegisters {
        rip: libcap::thread::start_address(),
        rsp: stack + 4 * 4096,
        rflags: 0x202,
        rdi: badged,
        rdx: bufferless as *const () as u64,
        ..Default::default()
    };
    let started = t.write_registers(false, &regs).and(t.set_priority(me, 100)).and(t.resume());
    c.check("start it", started.is_ok());
    let _ = ipc::wait(ntfn);
    c.check("without an IPC buffer only four registers travel", NO_BUFFER_LENGTH.load(SeqCst) == 4);

    // A thread resumed without WriteRegisters starts at address 0 in user mode: its
    // instruction fetch faults to the handler (the kernel itself is not disturbed).
    let blank = Tcb(new(&mut objects, ObjectType::Tcb));
    let started = blank
        .configure_without_buffer(fault_ep, root, libcap::cap::VSpace(slots::INIT_VSPACE))
        .and(blank.set_priority(me, 100))
        .and(blank.resume());
    c.check("resume a thread whose registers were never written", started.is_ok());
    let f = ipc::recv(fault_ep);
    c.check(
        "it faults at address 0 in user mode",
        matches!(f, Ok(m) if m.info.label == FaultKind::VmFault.raw() && m.mrs[0] == 0 && m.mrs[1] == 0),
    );
    c.check("its handler stops it", blank.suspend().is_ok());

    // CancelBadgedSends: a sender blocked with badge 0x99 gets an error.
    let cancel_ep = new(&mut objects, ObjectType::Endpoint);
    let badge99 = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(badge99), root.slot(cancel_ep), CapRights::ALL, 0x99);
    spawn(&mut objects, &slots, blocked_sender, badge99, 100, next_region(), 0).expect("spawn");
    let_others_run(me);
    let r =
        libcap::cap::invoke(root.0, libcap::abi::invocation::Invocation::CNodeCancelBadgedSends, &[badge99, 64], &[]);
    c.check("cancel badged sends cancels one", matches!(r, Ok(v) if v[0] == 1));
    let _ = ipc::wait(ntfn);
    c.check("the cancelled sender saw an error", CANCELLED.load(SeqCst) == 1);
    // A thread blocked sending a fault message is restarted by CancelBadgedSends, as in
    // seL4: it faults again; it never resumes with an error code in rax.
    let quiet_ep = new(&mut objects, ObjectType::Endpoint);
    let badge98 = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(badge98), root.slot(quiet_ep), CapRights::ALL, 0x98);
    let write_only = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(write_only), root.slot(quiet_ep), CapRights::WRITE, 0x98);
    spawn(&mut objects, &slots, fault_sender, 0, 100, next_region(), badge98).expect("spawn");
    let_others_run(me);
    let cancel = |slot: u64| {
        libcap::cap::invoke(root.0, libcap::abi::invocation::Invocation::CNodeCancelBadgedSends, &[slot, 64], &[])
    };
    c.check(
        "CancelBadgedSends through a write-only badged cap is refused",
        matches!(cancel(write_only), Err(e) if e.code == E::IllegalOperation),
    );
    c.check("cancel the blocked fault message", matches!(cancel(badge98), Ok(v) if v[0] == 1));
    let_others_run(me);
    c.check(
        "the cancelled fault sender does not continue (no error in its rax)",
        FAULT_SENDER_RESULT[0].load(SeqCst) == 0,
    );
    let again = ipc::nb_recv(quiet_ep);
    c.check(
        "it faulted again: the same UnknownSyscall message is waiting",
        matches!(again, Ok(m) if m.info.label == FaultKind::UnknownSyscall.raw() && m.mrs[3] == 0x778 && m.badge == 0x98),
    );
    ipc::reply(MessageInfo::new(0, 0), [0; 4]);
    let _ = ipc::wait(ntfn);
    c.check("replied to, it continues with its registers intact", FAULT_SENDER_RESULT[0].load(SeqCst) == 0x778);
    // Deleting the endpoint restarts a fault sender too: with its handler gone, its
    // page fault is unhandled and it is suspended, its registers as they were.
    let pf = spawn(&mut objects, &slots, vm_fault_sender, 0, 100, next_region(), badge98).expect("spawn");
    let_others_run(me);
    c.check(
        "delete the endpoint a fault message is blocked on",
        CNode::revoke(root.slot(quiet_ep)).is_ok() && CNode::delete(root.slot(quiet_ep)).is_ok(),
    );
    let_others_run(me);
    c.check("the fault sender of a deleted endpoint does not continue", FAULT_SENDER_RESULT[1].load(SeqCst) == 0);
    c.check(
        "... and no error code was written into its rax",
        matches!(pf.read_registers(false), Ok(r) if r.rax == 0x5a5a5a),
    );

    // A bound notification wakes the server out of its endpoint receive.
    c.check("bind a notification to the server", server_tcb.bind_notification(Notification(ntfn)).is_ok());
    let bound_badge = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(bound_badge), root.slot(ntfn), CapRights::ALL, 0x40);
    let _ = ipc::signal(bound_badge);
    let_others_run(me);
    c.check("bound notification delivered through Recv", BOUND_BADGE.load(SeqCst) == 0x40);
    c.check(
        "set priority above the MCP is refused",
        server_tcb.set_priority(server_tcb, 255) == Err(libcap::cap::Error { code: E::RangeError, detail: 0 }),
    );

    // The IPC fastpath: Call and ReplyRecv with at most four registers and no caps,
    // between address spaces; mixed with slowpath replies (every fourth) and timer
    // preemption over many round trips.
    let fast_ep = new(&mut objects, ObjectType::Endpoint);
    let fast_badged = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(fast_badged), root.slot(fast_ep), CapRights::ALL, 0x5a);
    FAST_EP.store(fast_ep, SeqCst);
    let space = clone_image_space(&mut objects, &slots, bi).expect("second address space");
    spawn_in(&mut objects, &slots, space, fast_server, 0, 200, next_region(), 0).expect("spawn fast server");
    let_others_run(me);
    let (mut right, mut kept, mut clean) = (0, true, true);
    const ROUNDS: u64 = 2000;
    for i in 0..ROUNDS {
        let info = MessageInfo::new(9, 4).to_word();
        let m = checked_ipc(Syscall::Call.raw(), fast_badged, info, [i, 0, 0, i * 7]);
        let length = if i % 4 == 3 { 5 } else { 4 };
        if m.rax == 0
            && m.badge == 0
            && m.info == MessageInfo::new(9, length).to_word()
            && m.mrs == [i + 1, 0x5a, 9, (i * 7) ^ 0xff]
        {
            right += 1;
        }
        kept &= m.callee_saved_kept;
        clean &= m.clobbers_clean;
    }
    c.check("fastpath Call/ReplyRecv between address spaces: every reply right", right == ROUNDS);
    c.check("callee-saved registers survive Call (fast and slow replies)", kept);
    c.check("rcx/r11 after Call hold no kernel address", clean);
    c.check(
        "the server saw every call, its registers intact",
        FAST_SERVED.load(SeqCst) == ROUNDS && FAST_SERVER_BAD.load(SeqCst) == 0,
    );
    // Declined by the fastpath (no Write right), answered by the slowpath.
    let receive_only = slots.alloc().unwrap();
    let _ = CNode::mint(root.slot(receive_only), root.slot(fast_ep), CapRights::READ, 0);
    let m = checked_ipc(Syscall::Call.raw(), receive_only, MessageInfo::new(0, 1).to_word(), [0; 4]);
    c.check(
        "Call without the Write right: the slowpath's error, registers intact",
        m.rax == E::InvalidCapability.raw() && m.callee_saved_kept && m.clobbers_clean,
    );

    // Teardown of IPC links (found by review): a TCB destroyed while bound to a
    // notification releases the binding...
    let bound_ntfn = Notification(new(&mut objects, ObjectType::Notification));
    let doomed = spawn(&mut objects, &slots, idle_thread, 0, 100, next_region(), 0).expect("spawn");
    c.check(
        "bind a notification to a thread, then delete the thread",
        doomed.bind_notification(bound_ntfn).is_ok() && CNode::delete(root.slot(doomed.0)).is_ok(),
    );
    let heir = spawn(&mut objects, &slots, idle_thread, 0, 100, next_region(), 0).expect("spawn");
    c.check("the notification can be bound to another thread", heir.bind_notification(bound_ntfn).is_ok());
    // ... and a reply owed to a caller that was suspended and resumed never reaches it
    // in its next call.
    for (n, (ep, go)) in REPLY_EPS.iter().zip(&REPLY_GO).enumerate() {
        ep.store(new(&mut objects, ObjectType::Endpoint), SeqCst);
        go.store(new(&mut objects, ObjectType::Notification), SeqCst);
        spawn(&mut objects, &slots, holding_server, n as u64, 100, next_region(), 0).expect("spawn");
    }
    let caller = spawn(&mut objects, &slots, twice_caller, 0, 100, next_region(), 0).expect("spawn");
    let_others_run(me);
    c.check(
        "suspend and resume a caller while its server holds the reply",
        caller.suspend().is_ok() && caller.resume().is_ok(),
    );
    let_others_run(me);
    let _ = ipc::signal(REPLY_GO[0].load(SeqCst));
    let_others_run(me);
    let _ = ipc::signal(REPLY_GO[1].load(SeqCst));
    let _ = ipc::wait(ntfn);
    let second = SECOND_REPLY.load(SeqCst);
    println!("ipctest: the second call came back with label {second:#x}");
    c.check("the first server's stale reply is dropped; the second call gets its own", second == 0x51);
    // The first call blocked through the IPC fastpath: resumed, it returns what the
    // slowpath's frame says (the Call number in rax: an error), not success.
    let first = FIRST_REPLY.load(SeqCst);
    println!("ipctest: the suspended call came back with {first:#x}");
    c.check("a call cut by Suspend does not come back as a success when resumed", first == 1);

    c.finish()
}
