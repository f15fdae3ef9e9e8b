//! The fixed slots of the root task's initial CNode (seL4's `seL4_Cap*` constants).
//!
//! Variable-length groups (untyped, PCI devices) follow [`FIRST_DYNAMIC`] and are
//! described by [`crate::bootinfo::SlotRegion`]s in the bootinfo frame.

/// A slot index in the root task's CNode.
pub type Slot = u64;

/// Always empty.
pub const NULL: Slot = 0;
/// The root task's TCB.
pub const INIT_TCB: Slot = 1;
/// The root task's CNode (its whole CSpace).
pub const INIT_CNODE: Slot = 2;
/// The root task's VSpace (PML4).
pub const INIT_VSPACE: Slot = 3;
/// IRQ control: hands out IRQHandler caps.
pub const IRQ_CONTROL: Slot = 4;
/// I/O port control: hands out IOPort caps.
pub const IOPORT_CONTROL: Slot = 5;
/// The bootinfo frame.
pub const BOOTINFO_FRAME: Slot = 6;
/// The root task's IPC buffer frame.
pub const INIT_IPC_BUFFER: Slot = 7;
/// The debug console capability: invoking it prints on the kernel console or ends the
/// system (`Invocation::DebugPutChar`, `DebugWrite`, `DebugHalt`). libcap's `println!`
/// and exit path use the cap at this address of the caller's CSpace, so a thread with
/// its own CSpace prints only if given a copy here.
pub const DEBUG_CONSOLE: Slot = 8;
/// First slot of the variable-length groups.
pub const FIRST_DYNAMIC: Slot = 16;
/// log2 of the number of slots in the root task's CNode.
pub const INIT_CNODE_RADIX: u32 = 12;
