//! Capability-core test program (`init=captest`).
//!
//! Test program (run as root task with `init=captest`): exercises every CNode
//! operation, untyped retype and frame/page-table mapping, each error path, and finally
//! shows that revoking an untyped removes every derived cap and mapping: its last step
//! touches a revoked mapping, which must fault (the kernel then stops the system).
#![no_std]
#![no_main]

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::error::SyscallError as E;
use libcap::abi::exit::ExitCode;
use libcap::abi::invocation::Invocation;
use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{
    CNode, Endpoint, Error, Frame, IoPageTable, IoSpace, PageTable, Result, Untyped, VSpace, FULL_DEPTH,
};
use libcap::println;

mod batchpaths;
mod bigdelete;
mod bootimage;
mod debugcap;
mod retypeconfuse;
mod retypepreempt;
mod routeattack;
mod zombierevoke;

libcap::entry!(main);

/// Where the mapping that is revoked at the end lives.
const REVOKED_VADDR: u64 = 0x0000_2000_0000_0000;
/// Where the frame tests map.
const TEST_VADDR: u64 = 0x0000_1000_0000_0000;
/// Where the stale-root checks map into a second VSpace (table indices 5, 6, 7, 8).
const STALE_VADDR: u64 = (5 << 39) | (6 << 30) | (7 << 21) | (8 << 12);
/// Where they map into an IOSpace (indices 0 or 2, 3, 4 for 4 or 3 levels).
const STALE_IOVA: u64 = (2 << 30) | (3 << 21) | (4 << 12);
/// Where this VSpace maps the page that replaced a dead root.
const FAKE_VADDR: u64 = 0x0000_1100_0000_0000;

struct Checker {
    failures: u32,
}

impl Checker {
    fn ok<T: core::fmt::Debug>(&mut self, name: &str, got: Result<T>) -> Option<T> {
        match got {
            Ok(v) => {
                println!("captest: ok {name}");
                Some(v)
            }
            Err(e) => {
                println!("captest: FAIL {name}: expected success, got {e:?}");
                self.failures += 1;
                None
            }
        }
    }

    fn err<T: core::fmt::Debug>(&mut self, name: &str, expected: E, got: Result<T>) {
        match got {
            Err(Error { code, .. }) if code == expected => println!("captest: ok {name} -> {code:?}"),
            other => {
                println!("captest: FAIL {name}: expected {expected:?}, got {other:?}");
                self.failures += 1;
            }
        }
    }

    fn check(&mut self, name: &str, condition: bool) {
        if condition {
            println!("captest: ok {name}");
        } else {
            println!("captest: FAIL {name}");
            self.failures += 1;
        }
    }
}

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker { failures: 0 };
    let root = CNode(slots::INIT_CNODE);
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let vspace = VSpace(slots::INIT_VSPACE);
    let slot = || slots.alloc().expect("free slots");

    // The biggest RAM untyped does the explicit retype tests; a second one is revoked at the end.
    let mut ram: [(usize, u8); 2] = [(usize::MAX, 0); 2];
    for (i, u) in bi.untyped().iter().enumerate() {
        if u.is_device == 0 && u.size_bits >= 16 && u.size_bits <= 24 {
            if ram[0].0 == usize::MAX || u.size_bits > ram[0].1 {
                ram[1] = ram[0];
                ram[0] = (i, u.size_bits);
            } else if ram[1].0 == usize::MAX || u.size_bits > ram[1].1 {
                ram[1] = (i, u.size_bits);
            }
        }
    }
    if ram[1].0 == usize::MAX {
        println!("captest: FAIL need two RAM untyped regions of 64 KiB..16 MiB");
        return ExitCode::UserFailure;
    }
    let ut = Untyped(bi.untyped_caps.start + ram[0].0 as u64);
    let ut2 = Untyped(bi.untyped_caps.start + ram[1].0 as u64);
    let device = bi.untyped().iter().position(|u| u.is_device == 1).map(|i| Untyped(bi.untyped_caps.start + i as u64));

    // Untyped retype and its errors.
    let eps = [slot(), slot(), slot(), slot()];
    c.ok("retype 4 endpoints", ut.retype(ObjectType::Endpoint, 0, root, 0, 0, eps[0], 4));
    c.err("retype into an occupied slot", E::DeleteFirst, ut.retype(ObjectType::Endpoint, 0, root, 0, 0, eps[0], 1));
    c.err("retype count 0", E::RangeError, ut.retype(ObjectType::Endpoint, 0, root, 0, 0, slot(), 0));
    // The root CNode grows with the boot image (a frame cap per page): its last slot.
    let last = (1u64 << bi.init_cnode_radix) - 1;
    c.err("retype beyond the CNode", E::RangeError, ut.retype(ObjectType::Endpoint, 0, root, 0, 0, last, 2));
    c.err(
        "retype bad object type",
        E::InvalidArgument,
        libcap::cap::invoke(ut.0, Invocation::UntypedRetype, &[99, 0, 0, 0, slot(), 1], &[root.0]),
    );
    c.err(
        "retype more than the untyped holds",
        E::NotEnoughMemory,
        ut.retype(ObjectType::Untyped, u64::from(ram[0].1) + 1, root, 0, 0, slot(), 1),
    );
    c.err(
        "retype message too short",
        E::TruncatedMessage,
        libcap::cap::invoke(ut.0, Invocation::UntypedRetype, &[ObjectType::Endpoint.raw(), 0], &[root.0]),
    );
    c.err(
        "invoke retype on a VSpace (wrong type; Call on an endpoint is IPC)",
        E::IllegalOperation,
        Untyped(slots::INIT_VSPACE).retype(ObjectType::Endpoint, 0, root, 0, 0, slot(), 1),
    );
    c.err(
        "retype from an empty slot",
        E::FailedLookup,
        Untyped(slot()).retype(ObjectType::Endpoint, 0, root, 0, 0, slot(), 1),
    );
    if let Some(dev) = device {
        c.err(
            "device untyped cannot become an endpoint",
            E::InvalidArgument,
            dev.retype(ObjectType::Endpoint, 0, root, 0, 0, slot(), 1),
        );
    }
    // Untyped exhausted: fill the rest of a fresh small region.
    let small = slot();
    c.ok("retype a 16 KiB child untyped", ut.retype(ObjectType::Untyped, 14, root, 0, 0, small, 1));
    let four = slot();
    let _ = (slot(), slot(), slot());
    c.ok("retype 4 frames filling it", Untyped(small).retype(ObjectType::Frame4K, 0, root, 0, 0, four, 4));
    c.err(
        "untyped exhausted",
        E::NotEnoughMemory,
        Untyped(small).retype(ObjectType::Frame4K, 0, root, 0, 0, slot(), 1),
    );
    // Retype never reuses a used region while children live.
    let (a, b) = (Frame(four).address(), Frame(four + 3).address());
    c.check("retyped frames are distinct and in order", matches!((a, b), (Ok(a), Ok(b)) if b == a + 3 * 4096));
    c.err(
        "untyped cannot be copied",
        E::IllegalOperation,
        CNode::copy(root.slot(slot()), root.slot(ut.0), CapRights::ALL),
    );

    // CNode operations.
    let copy = slot();
    c.ok("copy endpoint", CNode::copy(root.slot(copy), root.slot(eps[0]), CapRights::READ));
    c.err(
        "copy into an occupied slot",
        E::DeleteFirst,
        CNode::copy(root.slot(copy), root.slot(eps[1]), CapRights::ALL),
    );
    c.err(
        "copy from an empty slot",
        E::FailedLookup,
        CNode::copy(root.slot(slot()), root.slot(slot()), CapRights::ALL),
    );
    c.err(
        "copy with a bad rights mask",
        E::InvalidArgument,
        libcap::cap::invoke(root.0, Invocation::CNodeCopy, &[slot(), FULL_DEPTH, eps[0], FULL_DEPTH, 0xff], &[root.0]),
    );
    let badged = slot();
    c.ok("mint a badged endpoint", CNode::mint(root.slot(badged), root.slot(eps[0]), CapRights::WRITE, 0x42));
    c.err(
        "re-badge a badged endpoint",
        E::IllegalOperation,
        CNode::mint(root.slot(slot()), root.slot(badged), CapRights::ALL, 7),
    );
    let moved = slot();
    c.ok("move", CNode::move_cap(root.slot(moved), root.slot(eps[1])));
    c.err(
        "moved-from slot is empty",
        E::FailedLookup,
        CNode::copy(root.slot(slot()), root.slot(eps[1]), CapRights::ALL),
    );
    let mutated = slot();
    c.ok("mutate (set a badge while moving)", CNode::mutate(root.slot(mutated), root.slot(moved), 0x77));
    c.err(
        "depth mismatch (depth 12 against a 64-bit CSpace)",
        E::FailedLookup,
        CNode::delete(libcap::cap::SlotRef { root, index: copy, depth: 12 }),
    );
    c.err("depth out of range", E::RangeError, CNode::delete(libcap::cap::SlotRef { root, index: copy, depth: 65 }));
    c.err(
        "CNode operation on a VSpace (wrong type)",
        E::IllegalOperation,
        CNode::delete(CNode(slots::INIT_VSPACE).slot(0)),
    );
    c.ok("delete", CNode::delete(root.slot(copy)));
    c.err("deleted slot is empty", E::FailedLookup, CNode::copy(root.slot(slot()), root.slot(copy), CapRights::ALL));
    // Revoke: a chain of copies below eps[2] disappears, eps[2] stays.
    let (c1, c2, c3) = (slot(), slot(), slot());
    c.ok("copy chain 1", CNode::copy(root.slot(c1), root.slot(eps[2]), CapRights::ALL));
    c.ok("copy chain 2", CNode::mint(root.slot(c2), root.slot(eps[2]), CapRights::ALL, 5));
    c.ok("copy chain 3", CNode::copy(root.slot(c3), root.slot(c2), CapRights::ALL));
    c.ok("revoke", CNode::revoke(root.slot(eps[2])));
    for (name, s) in [("revoked copy 1 gone", c1), ("revoked badged copy gone", c2), ("revoked grandchild gone", c3)] {
        c.err(name, E::FailedLookup, CNode::copy(root.slot(slot()), root.slot(s), CapRights::ALL));
    }
    c.ok("revoked cap itself stays", CNode::copy(root.slot(slot()), root.slot(eps[2]), CapRights::ALL));
    // A revoke larger than one kernel batch is preempted and restarted transparently.
    const MANY: u64 = 600;
    let first = slots.alloc_range(MANY).expect("free slots");
    let mut made = 0;
    for i in 0..MANY {
        if CNode::copy(root.slot(first + i), root.slot(eps[2]), CapRights::ALL).is_ok() {
            made += 1;
        }
    }
    c.check("made 600 copies", made == MANY);
    c.ok("revoke 600 copies (several kernel batches)", CNode::revoke(root.slot(eps[2])));
    let left =
        (0..MANY).filter(|i| CNode::copy(root.slot(slot()), root.slot(first + i), CapRights::ALL).is_ok()).count();
    c.check("no copy survives the long revoke", left == 0);
    // Rotate: eps[3] -> empty, badged -> eps[3]'s slot.
    let empty = slot();
    c.ok("rotate", CNode::rotate(root.slot(empty), root.slot(eps[3]), root.slot(badged)));
    c.err(
        "rotate source is now empty",
        E::FailedLookup,
        CNode::copy(root.slot(slot()), root.slot(badged), CapRights::ALL),
    );
    c.ok("rotate swap", CNode::rotate(root.slot(empty), root.slot(eps[3]), root.slot(empty)));
    c.err(
        "rotate with pivot == src",
        E::IllegalOperation,
        CNode::rotate(root.slot(slot()), root.slot(empty), root.slot(empty)),
    );
    let _ = Endpoint(eps[3]);

    // Frames and page tables.
    let frame = Frame(objects.alloc(&slots, ObjectType::Frame4K, 0).unwrap_or(0));
    c.err("map without page tables", E::FailedLookup, frame.map(vspace, TEST_VADDR, CapRights::ALL, 0));
    c.err("map misaligned", E::AlignmentError, frame.map(vspace, TEST_VADDR + 8, CapRights::ALL, 0));
    c.err("map into kernel space", E::InvalidArgument, frame.map(vspace, 0xffff_8000_0000_0000, CapRights::ALL, 0));
    c.err("map with no read right", E::InvalidArgument, frame.map(vspace, TEST_VADDR, CapRights::WRITE, 0));
    c.err("map with a non-VSpace cap", E::InvalidCapability, frame.map(VSpace(eps[0]), TEST_VADDR, CapRights::ALL, 0));
    c.ok("map frame (creating page tables)", map_frame(&mut objects, &slots, frame, TEST_VADDR, CapRights::ALL, 0));
    let ptr = TEST_VADDR as *mut u64;
    // SAFETY: the frame was just mapped read-write at TEST_VADDR.
    unsafe { ptr.write_volatile(0x1234_5678_9abc_def0) };
    // SAFETY: as above.
    c.check("write then read back through the mapping", unsafe { ptr.read_volatile() } == 0x1234_5678_9abc_def0);
    c.err(
        "map an already mapped frame cap",
        E::IllegalOperation,
        frame.map(vspace, TEST_VADDR + 4096, CapRights::ALL, 0),
    );
    let alias = Frame(slot());
    c.ok("copy the frame cap", CNode::copy(root.slot(alias.0), root.slot(frame.0), CapRights::READ));
    c.err("map over an existing mapping", E::DeleteFirst, alias.map(vspace, TEST_VADDR, CapRights::READ, 0));
    c.err(
        "map the read-only copy writable (insufficient rights)",
        E::InsufficientRights,
        alias.map(vspace, TEST_VADDR + 4096, CapRights::READ.union(CapRights::WRITE), 0),
    );
    c.ok("map the read-only copy next door", alias.map(vspace, TEST_VADDR + 4096, CapRights::READ, 0));
    // SAFETY: mapped read-only just above; reading is allowed.
    c.check(
        "the copy shows the same memory",
        unsafe { ((TEST_VADDR + 4096) as *const u64).read_volatile() } == 0x1234_5678_9abc_def0,
    );
    c.ok("remap read-only (same place, fewer rights)", frame.map(vspace, TEST_VADDR, CapRights::READ, 0));
    // SAFETY: still mapped (read-only); reading is allowed.
    c.check("remapped frame still readable", unsafe { ptr.read_volatile() } == 0x1234_5678_9abc_def0);
    c.ok("remap read-write again", frame.map(vspace, TEST_VADDR, CapRights::ALL, 0));
    // SAFETY: mapped read-write again.
    unsafe { ptr.write_volatile(0x0bad_cafe) };
    // SAFETY: still mapped read-write; reading is allowed.
    c.check("remapped frame writable again", unsafe { ptr.read_volatile() } == 0x0bad_cafe);
    c.ok("unmap", frame.unmap());
    c.ok("map again after unmap", frame.map(vspace, TEST_VADDR, CapRights::ALL, 0));
    c.ok("delete a mapped frame cap (unmaps it)", CNode::delete(root.slot(alias.0)));
    // A 2 MiB frame becomes a large-page leaf at the page-directory level.
    const LARGE_VADDR: u64 = 0x0000_1000_4000_0000;
    let large = Frame(objects.alloc(&slots, ObjectType::Frame2M, 0).unwrap_or(0));
    c.err(
        "map a 2 MiB frame at a 4 KiB-aligned address",
        E::AlignmentError,
        large.map(vspace, LARGE_VADDR + 4096, CapRights::ALL, 0),
    );
    c.ok("map a 2 MiB frame", map_frame(&mut objects, &slots, large, LARGE_VADDR, CapRights::ALL, 0));
    let far = (LARGE_VADDR + 0x18_0000) as *mut u64;
    // SAFETY: inside the 2 MiB mapping made just above.
    unsafe { far.write_volatile(0x2a2a) };
    // SAFETY: as above.
    c.check("2 MiB frame readable 1.5 MiB in", unsafe { far.read_volatile() } == 0x2a2a);
    // An IPC buffer in the last KiB of a 2 MiB frame lies inside it.
    let idle = libcap::cap::Tcb(objects.alloc(&slots, ObjectType::Tcb, 0).unwrap_or(0));
    c.ok(
        "an IPC buffer in the last KiB of a 2 MiB frame",
        idle.configure(0, root, vspace, LARGE_VADDR + 0x20_0000 - 1024, large),
    );
    let pt = PageTable(objects.alloc(&slots, ObjectType::PageTable, 0).unwrap_or(0));
    c.err("map a page table where one exists", E::DeleteFirst, pt.map(vspace, TEST_VADDR));

    // Revoke of an untyped removes every derived cap and every mapping made through them.
    let levels = [(ObjectType::Pdpt, slot()), (ObjectType::PageDirectory, slot()), (ObjectType::PageTable, slot())];
    for (t, s) in levels {
        c.ok("retype a paging level from the second untyped", ut2.retype(t, 0, root, 0, 0, s, 1));
        c.ok("install it", PageTable(s).map(vspace, REVOKED_VADDR));
    }
    let victim = Frame(slot());
    c.ok("retype the victim frame", ut2.retype(ObjectType::Frame4K, 0, root, 0, 0, victim.0, 1));
    c.ok("map the victim frame", victim.map(vspace, REVOKED_VADDR, CapRights::ALL, 0));
    // SAFETY: mapped read-write just above.
    unsafe { (REVOKED_VADDR as *mut u64).write_volatile(0x5a5a) };
    c.ok("revoke the second untyped", CNode::revoke(root.slot(ut2.0)));
    c.err("revoked frame cap is gone", E::FailedLookup, victim.address());
    for (_, s) in levels {
        c.err("revoked page-table cap is gone", E::FailedLookup, PageTable(s).unmap());
    }
    let again = slot();
    c.ok("the revoked untyped can be retyped again", ut2.retype(ObjectType::Frame4K, 0, root, 0, 0, again, 1));
    c.check("it starts from the beginning again", Frame(again).address().ok() == Some(bi.untyped()[ram[1].0].paddr));

    stale_roots(&mut c, &mut objects, &slots);
    deep_cnode_chain(&mut c, &mut objects, &slots);
    debugcap::run(&mut c, bi, &mut objects, &slots);
    bootimage::run(&mut c, bi, &mut objects, &slots);
    configure_over_a_last_cspace_cap(&mut c, &mut objects, &slots);
    bigdelete::run(&mut c, &mut objects, &slots);
    zombierevoke::run(&mut c, &mut objects, &slots);
    retypepreempt::run(&mut c, &mut objects, &slots);
    retypeconfuse::run(&mut c, &mut objects, &slots);
    routeattack::run(&mut c, &mut objects, &slots);
    batchpaths::run(&mut c, bi, &mut objects, &slots);

    if c.failures > 0 {
        println!("captest: {} checks FAILED", c.failures);
        return ExitCode::UserFailure;
    }
    println!("captest: all checks passed; touching the revoked mapping at {REVOKED_VADDR:#x} must fault");
    // SAFETY: deliberately reads an address whose mapping was revoked; the kernel must
    // report a user page fault here.
    let value = unsafe { (REVOKED_VADDR as *const u64).read_volatile() };
    println!("captest: FAIL the revoked mapping is still readable: {value:#x}");
    ExitCode::UserFailure
}

/// A chain of CNodes each holding the only cap to the next, far deeper than the kernel
/// stack could recurse: deleting the outer one deletes them all and the kernel lives on.
fn deep_cnode_chain(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    const LENGTH: usize = 400;
    let root = CNode(slots::INIT_CNODE);
    let mut chain = [0u64; LENGTH];
    for link in chain.iter_mut() {
        *link = objects.alloc(slots, ObjectType::CNode, 1).expect("cnode");
    }
    // Each CNode (radix 1, no guard) takes the next one's only cap in its slot 0.
    let linked = (1..LENGTH).rev().all(|i| {
        let inner = libcap::cap::SlotRef { root: CNode(chain[i - 1]), index: 0, depth: 1 };
        CNode::move_cap(inner, root.slot(chain[i])).is_ok()
    });
    c.check("link 400 CNodes, each holding the only cap to the next", linked);
    c.check("delete the outermost: every nested CNode goes with it", CNode::delete(root.slot(chain[0])).is_ok());
    let probe = objects.alloc(slots, ObjectType::Endpoint, 0);
    c.check("the kernel still serves invocations", probe.is_ok());
}

/// TCB Configure replaces the thread's CSpace slot: when that slot holds the last cap
/// to a CNode, the replacement would delete the CNode and every cap in it (possibly the
/// very caps the call copies from) before copying. As in seL4, such a Configure is
/// refused; deleting the CNode is a separate, explicit step.
fn configure_over_a_last_cspace_cap(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    let vspace = VSpace(slots::INIT_VSPACE);
    let t = libcap::cap::Tcb(objects.alloc(slots, ObjectType::Tcb, 0).expect("tcb"));
    let inner = objects.alloc(slots, ObjectType::CNode, 2).expect("cnode");
    let ep = objects.alloc(slots, ObjectType::Endpoint, 0).expect("endpoint");
    let in_inner = libcap::cap::SlotRef { root: CNode(inner), index: 0, depth: 2 };
    c.ok("configure a thread with a CNode of its own", t.configure_without_buffer(0, CNode(inner), vspace));
    c.ok(
        "configure it again while its CSpace slot holds a copy (not the last cap)",
        t.configure_without_buffer(0, CNode(inner), vspace),
    );
    c.ok("move an endpoint cap into that CNode", CNode::move_cap(in_inner, root.slot(ep)));
    c.ok("delete the CNode's original cap: the thread holds the last one", CNode::delete(root.slot(inner)));
    c.err(
        "Configure that would delete a thread's last CSpace cap is refused",
        E::IllegalOperation,
        t.configure_without_buffer(0, root, vspace),
    );
    c.ok("deleting the thread deletes its CNode", CNode::delete(root.slot(t.0)));
    c.check("the kernel still serves invocations", objects.alloc(slots, ObjectType::Endpoint, 0).is_ok());
}

/// A 4 KiB untyped for one object whose page is then reused.
fn page_untyped(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) -> Option<Untyped> {
    objects.alloc(slots, ObjectType::Untyped, 12).ok().map(Untyped)
}

/// Installs the IO page tables `iova` needs in `space` (three tries: 3- or 4-level
/// tables need two or three); returns how many a map took.
fn io_tables(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, space: IoSpace, iova: u64) -> usize {
    (0..3)
        .filter(|_| {
            let table = IoPageTable(objects.alloc(slots, ObjectType::IoPageTable, 0).unwrap_or(0));
            table.map(space, iova).is_ok()
        })
        .count()
}

/// Retypes `ut` into a frame, maps it at FAKE_VADDR + `offset` and fills it with a fake
/// table chain: entries `chain` point at the page itself, entry `leaf` at `target`.
/// Returns the frame's address, or None.
#[allow(clippy::too_many_arguments)]
fn fake_tables(
    c: &mut Checker,
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    ut: Untyped,
    offset: u64,
    chain: &[usize],
    leaf: usize,
    target: u64,
) -> Option<*mut u64> {
    let root = CNode(slots::INIT_CNODE);
    let page = Frame(slots.alloc().ok()?);
    c.ok("retype the dead root's page into a frame", ut.retype(ObjectType::Frame4K, 0, root, 0, 0, page.0, 1))?;
    let paddr = page.address().ok()?;
    c.ok("map it", map_frame(objects, slots, page, FAKE_VADDR + offset, CapRights::ALL, 0))?;
    let words = (FAKE_VADDR + offset) as *mut u64;
    for &i in chain {
        // SAFETY: the page was just mapped read-write at `words`; i < 512.
        unsafe { words.add(i).write_volatile(paddr | 0x7) };
    }
    // SAFETY: as above.
    unsafe { words.add(leaf).write_volatile(target | 0x7) };
    Some(words.wrapping_add(leaf))
}

/// Mapping records name their space by root address. Once the space is deleted its
/// root page can become a frame its owner fills with fake tables; removing a mapping
/// recorded in the dead space must not walk them (the kernel would otherwise clear a
/// word the fake chain points at).
fn stale_roots(c: &mut Checker, objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator) {
    let root = CNode(slots::INIT_CNODE);
    // A VSpace.
    let Some(ut) = page_untyped(objects, slots) else { return c.check("a 4 KiB untyped", false) };
    let second = VSpace(slots.alloc().unwrap_or(0));
    c.ok("retype a second VSpace", ut.retype(ObjectType::Pml4, 0, root, 0, 0, second.0, 1));
    for t in [ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable] {
        let table = PageTable(objects.alloc(slots, t, 0).unwrap_or(0));
        c.ok("install a paging level in it", table.map(second, STALE_VADDR));
    }
    let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
    c.ok("map a frame in it", frame.map(second, STALE_VADDR, CapRights::ALL, 0));
    let frame_paddr = frame.address().unwrap_or(0);
    c.ok("delete the second VSpace (its last cap)", CNode::delete(root.slot(second.0)));
    let Some(leaf) = fake_tables(c, objects, slots, ut, 0, &[5, 6, 7], 8, frame_paddr) else { return };
    c.ok("unmap the frame whose mapping names the dead VSpace", frame.unmap());
    // SAFETY: `leaf` is inside the page mapped by fake_tables.
    let kept = unsafe { leaf.read_volatile() } == frame_paddr | 0x7;
    c.check("the kernel did not walk the dead VSpace's root page", kept);

    // An IOSpace.
    let Some(ut) = page_untyped(objects, slots) else { return c.check("a 4 KiB untyped", false) };
    let iospace = IoSpace(slots.alloc().unwrap_or(0));
    c.ok("retype an IOSpace", ut.retype(ObjectType::IoSpace, 0, root, 0, 0, iospace.0, 1));
    io_tables(objects, slots, iospace, STALE_IOVA);
    let io_frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0).unwrap_or(0));
    c.ok("map a frame into it", io_frame.map_io(iospace, STALE_IOVA, CapRights::ALL));
    let io_paddr = io_frame.address().unwrap_or(0);
    c.ok("delete the IOSpace (its last cap)", CNode::delete(root.slot(iospace.0)));
    let Some(leaf) = fake_tables(c, objects, slots, ut, 0x1000, &[0, 2, 3], 4, io_paddr) else { return };
    c.ok("unmap_io the frame whose mapping names the dead IOSpace", io_frame.unmap_io());
    // SAFETY: as above.
    let kept = unsafe { leaf.read_volatile() } == io_paddr | 0x7;
    c.check("the kernel did not walk the dead IOSpace's root page", kept);
}
