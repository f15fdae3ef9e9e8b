//! Address spaces beyond the root task's.
//!
//! Address spaces beyond the root task's: a new VSpace that maps the root task's own
//! image (so a thread there runs the same code), with its own stack and IPC buffer.
// Thread creation exists only on bare metal; host builds see just the types.
#![cfg_attr(not(target_os = "none"), allow(unused_imports, dead_code))]

use abi::bootinfo::BootInfo;
use abi::layout::PAGE_SIZE;
use abi::object::ObjectType;
use abi::registers::UserRegisters;
use abi::rights::CapRights;
use abi::slots;

use crate::alloc::{map_frame_in, ObjectAllocator, SlotAllocator};
use crate::cap::{CNode, CPtr, Frame, Result, Tcb, VSpace, ATTR_EXECUTABLE};
use crate::thread::STACK_PAGES;

/// A new VSpace mapping copies of the root task's image frame caps at the addresses
/// the image uses: read-only pages readable and executable, writable pages read-write.
/// The writable pages are the root task's own data: the two spaces share it.
pub fn clone_image_space(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, bi: &BootInfo) -> Result<VSpace> {
    let vspace = VSpace(objects.alloc(slots, ObjectType::Pml4, 0)?);
    for cptr in bi.user_image_frames.start..bi.user_image_frames.end {
        let [_, vaddr, _, _] = crate::cap::invoke(cptr, abi::invocation::Invocation::FrameGetAddress, &[], &[])?;
        let copy = Frame(slots.alloc()?);
        CNode::copy(CNode(slots::INIT_CNODE).slot(copy.0), CNode(slots::INIT_CNODE).slot(cptr), CapRights::ALL)?;
        // Writable pages (data, bss) map read-write; the rest is text or rodata, mapped
        // read-only and executable.
        match map_frame_in(objects, slots, vspace, copy, vaddr, CapRights::ALL, 0) {
            Err(crate::cap::Error { code: abi::error::SyscallError::InsufficientRights, .. }) => {
                map_frame_in(objects, slots, vspace, copy, vaddr, CapRights::READ, ATTR_EXECUTABLE)?
            }
            other => other?,
        }
    }
    Ok(vspace)
}

/// Creates a thread in `vspace` (sharing the root's CSpace) running `entry(arg)`; its
/// stack and IPC buffer are new frames at `region` in that space.
#[cfg(target_os = "none")]
#[allow(clippy::too_many_arguments)]
pub fn spawn_in(
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    vspace: VSpace,
    entry: extern "C" fn(u64) -> !,
    arg: u64,
    priority: u8,
    region: u64,
    fault_ep: CPtr,
) -> Result<Tcb> {
    spawn_with(objects, slots, CNode(slots::INIT_CNODE), vspace, entry, arg, priority, region, fault_ep)
}

/// Like [`spawn_in`], with the thread's own CSpace root `cspace`.
#[cfg(target_os = "none")]
#[allow(clippy::too_many_arguments)]
pub fn spawn_with(
    objects: &mut ObjectAllocator<'_>,
    slots: &SlotAllocator,
    cspace: CNode,
    vspace: VSpace,
    entry: extern "C" fn(u64) -> !,
    arg: u64,
    priority: u8,
    region: u64,
    fault_ep: CPtr,
) -> Result<Tcb> {
    let tcb = Tcb(objects.alloc(slots, ObjectType::Tcb, 0)?);
    for page in 0..STACK_PAGES {
        let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0)?);
        map_frame_in(objects, slots, vspace, frame, region + page * PAGE_SIZE, CapRights::ALL, 0)?;
    }
    let ipc_vaddr = region + STACK_PAGES * PAGE_SIZE;
    let ipc_frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0)?);
    map_frame_in(objects, slots, vspace, ipc_frame, ipc_vaddr, CapRights::ALL, 0)?;
    tcb.configure(fault_ep, cspace, vspace, ipc_vaddr, ipc_frame)?;
    let regs = UserRegisters {
        rip: crate::thread::start_address(),
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
