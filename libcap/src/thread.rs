//! Threads in the caller's own CSpace and VSpace: a stack and IPC buffer from untyped
//! memory, a TCB configured and started at an `extern "C" fn(u64) -> !`.
// Thread creation exists only on bare metal; host builds see just the types.
#![cfg_attr(not(target_os = "none"), allow(unused_imports, dead_code))]

use abi::object::ObjectType;
use abi::registers::UserRegisters;
use abi::rights::CapRights;
use abi::slots;

use crate::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use crate::cap::{CNode, CPtr, Frame, Result, Tcb, VSpace};

/// Pages of stack each thread gets.
pub const STACK_PAGES: u64 = 4;
/// Bytes of virtual space a thread's stack and IPC buffer take: stack, IPC page, guard.
pub const THREAD_REGION: u64 = (STACK_PAGES + 2) * 4096;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".section .text.libcap_thread_start, \"ax\"",
    ".global libcap_thread_start",
    "libcap_thread_start:",
    "    wrfsbase rsi",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call rdx",
    "    ud2",
);

#[cfg(target_os = "none")]
unsafe extern "C" {
    fn libcap_thread_start();
}

/// Address of the thread start trampoline (sets the thread pointer, calls the entry).
#[cfg(target_os = "none")]
pub fn start_address() -> u64 {
    libcap_thread_start as *const () as u64
}

/// Creates a thread running `entry(arg)` at `priority`, with its stack and IPC buffer
/// at `region` (THREAD_REGION bytes of free virtual space, page-aligned) and fault
/// endpoint `fault_ep` (0 for none). The thread starts running once this returns.
#[cfg(target_os = "none")]
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    entry: extern "C" fn(u64) -> !,
    arg: u64,
    priority: u8,
    region: u64,
    fault_ep: CPtr,
) -> Result<Tcb> {
    let tcb = Tcb(objects.alloc(slots, ObjectType::Tcb, 0)?);
    for page in 0..STACK_PAGES {
        let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0)?);
        map_frame(objects, slots, frame, region + page * 4096, CapRights::ALL, 0)?;
    }
    let ipc_vaddr = region + STACK_PAGES * 4096;
    let ipc_frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0)?);
    map_frame(objects, slots, ipc_frame, ipc_vaddr, CapRights::ALL, 0)?;
    tcb.configure(fault_ep, CNode(slots::INIT_CNODE), VSpace(slots::INIT_VSPACE), ipc_vaddr, ipc_frame)?;
    let regs = UserRegisters {
        rip: libcap_thread_start as *const () as u64,
        rsp: ipc_vaddr,
        rflags: 0x202,
        rdi: arg,
        rsi: ipc_vaddr,
        rdx: entry as *const () as u64,
        ..Default::default()
    };
    tcb.write_registers(false, &regs)?;
    tcb.set_priority(Tcb(slots::INIT_TCB), priority)?;
    tcb.resume()?;
    Ok(tcb)
}
