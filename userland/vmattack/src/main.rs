//! Attacks on VCPU and GuestSpace objects (`init=vmattack`); all must fail.
//!
//! Run as the root task, this program is a hostile VMM with two small guests. It tries
//! to get a guest out of its GuestSpace (instructions that reach the host, memory its
//! space does not map, translations that outlive an unmap or belong to another guest,
//! a reused root page), to leak state between the VMM and guests (SSE, PKRU), to crash
//! the kernel with guest register values and event injection, and to pass the wrong
//! caps. Each attempt is a `vmattack: ok ...` line when the kernel held, `FAIL` when it
//! did not (tests/tests/vmattack.rs).
#![no_std]
#![no_main]

mod caps;
mod guest;
mod snippets;
mod state;
mod tlb;
mod tss;
mod vm;

use libcap::abi::bootinfo::BootInfo;
use libcap::abi::exit::ExitCode;
use libcap::alloc::{ObjectAllocator, SlotAllocator};
use libcap::check::Checker;
use libcap::println;

use vm::Vm;

libcap::entry!(main);

/// Where guest A's RAM appears in the VMM.
const WINDOW_A: u64 = 0x0000_4000_0000_0000;
/// Where guest B's RAM appears in the VMM.
const WINDOW_B: u64 = 0x0000_4100_0000_0000;

fn main(bi: &'static BootInfo) -> ExitCode {
    let mut c = Checker::new("vmattack");
    let slots = SlotAllocator::new(bi);
    let mut objects = ObjectAllocator::new(bi);
    let (mut a, mut b) = match (Vm::new(&mut objects, &slots, WINDOW_A), Vm::new(&mut objects, &slots, WINDOW_B)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            println!("vmattack: cannot build two VMs: {}", e.code.name());
            c.check("build two VMs", false);
            return c.finish();
        }
    };
    c.check("build two VMs", true);
    c.check("every guest snippet fits its slot", snippets::intact());
    println!("vmattack: section escapes");
    guest::escapes(&mut c, &mut a);
    println!("vmattack: section memory");
    let host = [a.guest_frames[0].address().unwrap_or(0), b.guest_frames[9].address().unwrap_or(0)];
    println!("vmattack:   host-physical addresses of guest A's page 0 and guest B's data: {host:#x?}");
    guest::memory(&mut c, &a, &host);
    println!("vmattack: section events");
    guest::tpr(&mut c, &b);
    guest::events(&mut c, &a);
    println!("vmattack: section tlb");
    tlb::unmap(&mut c, &a);
    tlb::cross_space(&mut c, &a, &b);
    tlb::root_reuse(&mut c, &mut objects, &slots, &a);
    tlb::vcpu_reuse(&mut c, &mut objects, &slots, &a);
    println!("vmattack: section state");
    state::fpu(&mut c, &a, &b);
    state::pkru(&mut c, &mut a, &mut b);
    state::registers(&mut c, &a);
    tss::fresh_vcpu(&mut c, &mut objects, &slots, &a);
    tss::guest_leaves_long_mode(&mut c, &a);
    println!("vmattack: section caps");
    caps::confusion(&mut c, bi, &mut objects, &slots, &a);
    // The kernel is intact: guest B still runs normally.
    let e = b.attempt(snippets::Snippet::Halt, &[]);
    c.check(
        "after every attack a guest still runs to its HLT",
        e.is_ok_and(|e| e.kind == Some(libcap::abi::vcpu::VmExitKind::Hlt)),
    );
    c.finish()
}
