//! Attack PoC (the frame route, commit 8459678): regression checks.
//!
//! A `Call` without caps and with at most four message registers on a Frame cap of a
//! single-level CSpace leaves the IPC fastpath's assembly for `syscall_frame_dispatch`
//! (`arch/x86_64/fastpath.S`, `.Lfp_call_other`), where UnmapIO takes its short way
//! (`invoke::iospace::fast_frame_call_at`). There a hit in the one-entry domain cache
//! (`iommu::iospace::cached_domain`) stands for "the IOSpace the record names is live":
//! no `roots::is_live` check before the IOSpace's tables are walked.
//!
//! 1. Stale cache: an UnmapIO warms the cache with an IOSpace's (root, domain), the
//!    IOSpace dies (by Delete, by Revoke of its untyped, inside a deleted CNode, after a
//!    copy was deleted), its root page becomes a frame this thread fills with a fake
//!    table chain whose leaf names a frame still recording a mapping in the dead
//!    IOSpace. If the cache still answered "live", UnmapIO of that frame would walk the
//!    fake chain and clear the word this thread planted (a kernel write of 0 at an
//!    address of the user's choosing). The word must survive.
//! 2. Registers: UnmapIO through the route and the same call through the general path
//!    (a fifth message register sends it there) must leave every user register alike:
//!    result registers, callee-saved ones, rcx/r11 (zero) and rflags as the caller had
//!    them (CF, PF, ZF, SF, DF, OF, AC set).

use libcap::abi::invocation::Invocation;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::syscall::Syscall;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, IoSpace, SlotRef};
use libcap::println;

use crate::{fake_tables, io_tables, page_untyped, Checker, FAKE_VADDR, STALE_IOVA};

/// Where this module maps its own CPU pages (above stale_roots' two fake pages).
const CPU_VADDR: u64 = FAKE_VADDR + 0x10_0000;

// regs_call(block: *mut [u64; 17]): loads rax, rbx, rcx, rdx, rsi, rdi, rbp, r8..r15 and
// rflags from the block (indices 0..=14 in that order, 16 = rflags; 15 unused), runs
// `syscall`, stores every register and rflags back in the same places. rbx, rbp and
// r12..r15 are restored for the compiler afterwards; DF and the other flags are cleared.
core::arch::global_asm!(
    ".pushsection .text.captest_regs_call, \"ax\"",
    ".global captest_regs_call",
    "captest_regs_call:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    push rdi",
    "    push qword ptr [rdi + 8 * 16]",
    "    mov rax, [rdi + 8 * 0]",
    "    mov rbx, [rdi + 8 * 1]",
    "    mov rcx, [rdi + 8 * 2]",
    "    mov rdx, [rdi + 8 * 3]",
    "    mov rsi, [rdi + 8 * 4]",
    "    mov rbp, [rdi + 8 * 6]",
    "    mov r8, [rdi + 8 * 7]",
    "    mov r9, [rdi + 8 * 8]",
    "    mov r10, [rdi + 8 * 9]",
    "    mov r11, [rdi + 8 * 10]",
    "    mov r12, [rdi + 8 * 11]",
    "    mov r13, [rdi + 8 * 12]",
    "    mov r14, [rdi + 8 * 13]",
    "    mov r15, [rdi + 8 * 14]",
    "    mov rdi, [rdi + 8 * 5]",
    "    popfq",
    "    syscall",
    "    pushfq",
    "    push rdi",
    "    mov rdi, [rsp + 16]",
    "    mov [rdi + 8 * 0], rax",
    "    mov [rdi + 8 * 1], rbx",
    "    mov [rdi + 8 * 2], rcx",
    "    mov [rdi + 8 * 3], rdx",
    "    mov [rdi + 8 * 4], rsi",
    "    mov [rdi + 8 * 6], rbp",
    "    mov [rdi + 8 * 7], r8",
    "    mov [rdi + 8 * 8], r9",
    "    mov [rdi + 8 * 9], r10",
    "    mov [rdi + 8 * 10], r11",
    "    mov [rdi + 8 * 11], r12",
    "    mov [rdi + 8 * 12], r13",
    "    mov [rdi + 8 * 13], r14",
    "    mov [rdi + 8 * 14], r15",
    "    pop rax",
    "    mov [rdi + 8 * 5], rax",
    "    pop rax",
    "    mov [rdi + 8 * 16], rax",
    "    push 0x202",
    "    popfq",
    "    add rsp, 8",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".popsection",
);

extern "C" {
    fn captest_regs_call(block: *mut [u64; 17]);
}

/// rflags the caller sets: CF, bit 1, PF, ZF, SF, IF, DF, OF, AC.
const FLAGS_IN: u64 = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x200 | 0x400 | 0x800 | 0x4_0000;

/// One `Call` on `cptr` with `info` and register patterns everywhere else; the
/// registers after it.
fn regs_call(cptr: u64, info: u64) -> [u64; 17] {
    let mut block = [0u64; 17];
    for (i, w) in block.iter_mut().enumerate() {
        *w = 0x5a5a_0000_0000_0000 | (i as u64) << 32 | 0x1234_5678;
    }
    block[0] = Syscall::Call as u64;
    block[4] = info;
    block[5] = cptr;
    block[16] = FLAGS_IN;
    // SAFETY: the function saves and restores every register the compiler relies on
    // and only reads and writes `block`.
    unsafe { captest_regs_call(&mut block) };
    block
}

/// The registers a successful invocation returns: result 0, rdi 0, MR0..MR3 as
/// `results`, rcx and r11 0, everything else as the caller had it.
fn expected_after(info: u64, cptr: u64, results: [u64; 4]) -> [u64; 17] {
    let mut block = [0u64; 17];
    for (i, w) in block.iter_mut().enumerate() {
        *w = 0x5a5a_0000_0000_0000 | (i as u64) << 32 | 0x1234_5678;
    }
    let _ = cptr;
    block[0] = 0;
    block[2] = 0;
    block[10] = 0;
    block[4] = info;
    block[5] = 0;
    [block[3], block[9], block[7], block[8]] = results;
    block[16] = FLAGS_IN;
    block
}

fn info(label: Invocation, length: u64) -> u64 {
    (label.raw() << 12) | length
}

const NAMES: [&str; 17] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "-",
    "rflags",
];

fn same(c: &mut Checker, name: &str, got: &[u64; 17], want: &[u64; 17]) {
    let mut equal = true;
    for i in (0..17).filter(|&i| i != 15) {
        if got[i] != want[i] {
            println!("captest: route regs: {name}: {} = {:#x}, expected {:#x}", NAMES[i], got[i], want[i]);
            equal = false;
        }
    }
    c.check(name, equal);
}

/// Part 1: one IOSpace per way to kill it, the cache warm with it when it dies.
fn stale_cache(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    for (way, how) in ["Delete", "Revoke of its untyped", "Delete of the CNode holding it", "Delete after a copy"]
        .into_iter()
        .enumerate()
    {
        let Some(ut) = page_untyped(objects, slots) else { return c.check("route: a 4 KiB untyped", false) };
        let space = IoSpace(slots.alloc().unwrap_or(0));
        c.ok("route: retype an IOSpace", ut.retype(ObjectType::IoSpace, 0, root, 0, 0, space.0, 1));
        c.check("route: its tables", io_tables(objects, slots, space, STALE_IOVA) >= 2);
        let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
        let warm = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
        c.ok("route: map the frame that keeps its record", frame.map_io(space, STALE_IOVA, CapRights::ALL));
        let paddr = frame.address().unwrap_or(0);
        // The cache names this IOSpace from here on (the UnmapIO's miss fills it).
        let warmed = |c: &mut Checker| {
            c.ok("route: warm the domain cache (MapIO)", warm.map_io(space, STALE_IOVA + 0x1000, CapRights::ALL));
            c.ok("route: warm the domain cache (UnmapIO through the route)", warm.unmap_io());
        };
        warmed(c);
        let killed = match way {
            0 => CNode::delete(root.slot(space.0)),
            1 => CNode::revoke(root.slot(ut.0)),
            2 => {
                let holder = objects.alloc(slots, ObjectType::CNode, 1).unwrap_or(0);
                let inner = SlotRef { root: CNode(holder), index: 0, depth: 1 };
                CNode::move_cap(inner, root.slot(space.0)).and_then(|()| CNode::delete(root.slot(holder)))
            }
            _ => {
                let copy = slots.alloc().unwrap_or(0);
                let copied = CNode::copy(root.slot(copy), root.slot(space.0), CapRights::ALL)
                    .and_then(|()| CNode::delete(root.slot(copy)));
                warmed(c);
                copied.and_then(|()| CNode::delete(root.slot(space.0)))
            }
        };
        c.ok("route: kill the IOSpace", killed);
        let offset = 0x2000 + 0x1000 * way as u64;
        let Some(leaf) = fake_tables(c, objects, slots, ut, offset, &[0, 2, 3], 4, paddr) else { return };
        c.ok("route: UnmapIO of the frame whose record names the dead IOSpace", frame.unmap_io());
        // SAFETY: `leaf` is inside the page fake_tables mapped read-write.
        let word = unsafe { leaf.read_volatile() };
        let kept = word == paddr | 0x7;
        println!("captest: route: IOSpace killed by {how}, warm cache; planted word after UnmapIO {word:#x}");
        c.check("attack: a warm domain cache does not make a dead IOSpace's root page walkable", kept);
        c.check("route: the record is gone", frame.info().map(|i| i.vaddr) == Ok(0));
    }
}

/// Part 2: the route's registers against the general path's.
fn registers(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let Some(space) = objects.alloc(slots, ObjectType::IoSpace, 0).ok().map(IoSpace) else {
        return c.check("route regs: an IOSpace", false);
    };
    const IOVA: u64 = 0x7000_0000;
    c.check("route regs: tables", io_tables(objects, slots, space, IOVA) >= 2);
    let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
    let unmap = |length: u64| info(Invocation::FrameUnmapIo, length);
    // UnmapIO of a mapped frame: route (0 and 4 registers) and general path (5).
    for length in [0, 4, 5] {
        c.ok("route regs: map the frame", frame.map_io(space, IOVA, CapRights::ALL));
        let got = regs_call(frame.0, unmap(length));
        same(
            c,
            "attack: UnmapIO leaves the registers as the general path",
            &got,
            &expected_after(unmap(length), frame.0, [0; 4]),
        );
        c.check("route regs: unmapped", frame.info().map(|i| i.vaddr) == Ok(0));
    }
    // UnmapIO of an unmapped frame and of a CPU-mapped one: the route hands both to the
    // general path (success, nothing to do).
    for length in [0, 5] {
        let got = regs_call(frame.0, unmap(length));
        same(
            c,
            "attack: UnmapIO of an unmapped frame: registers",
            &got,
            &expected_after(unmap(length), frame.0, [0; 4]),
        );
    }
    let cpu = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
    c.ok("route regs: map a frame for the CPU", map_frame(objects, slots, cpu, CPU_VADDR, CapRights::ALL, 0));
    for length in [0, 5] {
        let got = regs_call(cpu.0, unmap(length));
        same(
            c,
            "attack: UnmapIO of a CPU-mapped frame: registers",
            &got,
            &expected_after(unmap(length), cpu.0, [0; 4]),
        );
    }
    // SAFETY: still mapped read-write (UnmapIO leaves CPU mappings alone).
    unsafe { (CPU_VADDR as *mut u64).write_volatile(7) };
    // GetAddress through the route's fallback and through the general path.
    let get = |length: u64| info(Invocation::FrameGetAddress, length);
    let (a, b) = (regs_call(cpu.0, get(0)), regs_call(cpu.0, get(5)));
    let results = [a[3], a[9], a[7], a[8]];
    same(c, "attack: GetAddress through the route: registers", &a, &expected_after(get(0), cpu.0, results));
    same(c, "attack: GetAddress through the general path: registers", &b, &expected_after(get(5), cpu.0, results));
    c.check("route regs: GetAddress names the frame", Some(results[0]) == cpu.address().ok());
    // Labels the route must not take for UnmapIO (high bits set, all ones, MapIO
    // without its cap), on a mapped frame: the route and the general path answer alike
    // (every register but rsi, whose length field differs) and the frame stays mapped.
    c.ok("route regs: map the frame", frame.map_io(space, IOVA, CapRights::ALL));
    let unmap_io = Invocation::FrameUnmapIo.raw();
    for label in [unmap_io | 1 << 40, unmap_io | 1 << 51, (1 << 52) - 1, Invocation::FrameMapIo.raw()] {
        let (a, b) = (regs_call(frame.0, label << 12), regs_call(frame.0, label << 12 | 5));
        let mut b_as_a = b;
        b_as_a[4] = a[4];
        same(c, "attack: an odd label through the route answers as the general path", &a, &b_as_a);
        if a[0] == 0 {
            println!("captest: route regs: label {label:#x} succeeded");
        }
    }
    c.check("route regs: the frame is still mapped", frame.info().map(|i| i.vaddr) == Ok(IOVA));
    c.ok("route regs: unmap it", frame.unmap_io());
    let _ = CNode::delete(CNode(slots::INIT_CNODE).slot(space.0));
}

pub fn run(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    stale_cache(c, objects, slots);
    registers(c, objects, slots);
}
