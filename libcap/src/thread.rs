//! Threads in the caller's own CSpace and VSpace.
//!
//! Threads in the caller's own CSpace and VSpace: a stack and IPC buffer from untyped
//! memory, a TCB configured and started at an `extern "C" fn(u64) -> !`.
// Thread creation exists only on bare metal; host builds see just the types.
#![cfg_attr(not(target_os = "none"), allow(unused_imports, dead_code))]

use abi::layout::PAGE_SIZE;
use abi::slots;

use crate::alloc::{ObjectAllocator, SlotAllocator};
use crate::cap::{CNode, CPtr, Result, Tcb, VSpace};

/// Pages of stack each thread gets.
pub const STACK_PAGES: u64 = 4;
/// Bytes of virtual space a thread's stack and IPC buffer take: stack, IPC page, guard.
pub const THREAD_REGION: u64 = (STACK_PAGES + 2) * PAGE_SIZE;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".section .text.libcap_thread_start, \"ax\"",
    ".global libcap_thread_start",
    "libcap_thread_start:",
    // The kernel set the FS base to the IPC buffer (rsi) at Configure; record the
    // buffer's own address in it for `ipc_buffer` (no buffer: rsi is 0).
    "    test rsi, rsi",
    "    jz 1f",
    "    mov [rsi + {self_offset}], rsi",
    "1:",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call rdx",
    "    ud2",
    self_offset = const abi::ipc_buffer::SELF_OFFSET,
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
    crate::space::spawn_with(
        objects,
        slots,
        CNode(slots::INIT_CNODE),
        VSpace(slots::INIT_VSPACE),
        entry,
        arg,
        priority,
        region,
        fault_ep,
    )
}
