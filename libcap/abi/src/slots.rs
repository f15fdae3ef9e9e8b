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
/// log2 of the smallest root CNode: the kernel grows it (up to
/// [`crate::object::CNODE_MAX_RADIX`]) when boot finds more caps to hand out; the actual
/// radix is in bootinfo (`init_cnode_radix`).
pub const INIT_CNODE_RADIX: u32 = 12;
/// Free slots the root CNode keeps at least, beyond the boot caps (the bench program
/// alone takes over 6,000: 4,096 IO-mapped copies, 1,000 IOSpaces, 256 TCBs...).
pub const MIN_FREE_SLOTS: u64 = 8192;

/// The root CNode's radix for `boot_caps` untyped, PciDevice and image-frame caps: the
/// smallest from [`INIT_CNODE_RADIX`] that also leaves [`MIN_FREE_SLOTS`]; None if even
/// [`crate::object::CNODE_MAX_RADIX`] is too small.
pub fn root_cnode_radix(boot_caps: u64) -> Option<u32> {
    let needed = FIRST_DYNAMIC.checked_add(boot_caps)?.checked_add(MIN_FREE_SLOTS)?;
    (INIT_CNODE_RADIX..=crate::object::CNODE_MAX_RADIX).find(|&r| needed <= 1u64 << r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_cnode_grows_with_the_boot_caps() {
        // The free slots alone need 2^14.
        assert_eq!(root_cnode_radix(0), Some(14));
        assert_eq!(root_cnode_radix((1 << 14) - FIRST_DYNAMIC - MIN_FREE_SLOTS), Some(14));
        assert_eq!(root_cnode_radix((1 << 14) - FIRST_DYNAMIC - MIN_FREE_SLOTS + 1), Some(15));
        assert_eq!(root_cnode_radix(40_000), Some(16));
        assert_eq!(root_cnode_radix(70_000), None);
        assert_eq!(root_cnode_radix(u64::MAX), None);
    }
}
