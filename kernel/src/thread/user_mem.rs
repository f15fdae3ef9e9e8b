//! Checked access to user memory.
//!
//! Checked access to user memory. A user pointer is a [`UserSlice`]: a range proven to
//! lie in user space, read page by page through the current address space's tables
//! (never dereferenced directly), so a bad pointer is an error, not a kernel fault.
//!
//! The kernel reads a user page only if its frame is RAM, which the direct map always
//! covers. A page backed by a device frame (from device untyped) is refused: above the
//! direct map it is not mapped at all (reading it would be a kernel page fault), and
//! below it is MMIO, which the kernel never reads on a user's behalf.

use abi::error::SyscallError;
use abi::layout::{is_user_range, PAGE_SIZE};
use spin::Once;

use crate::arch::kmem::DirectMemory;
use crate::arch::{mmu, phys_to_virt};
use crate::boot::memory::{Range, RangeSet};
use crate::object::paging::{self, PteFlags};

/// The RAM the kernel may read for a user: the memory map's RAM, all inside the direct map.
static USER_RAM: Once<RangeSet> = Once::new();

/// Records the RAM of the memory map (`ram`, which must lie below `direct_map_limit`).
/// Until this runs, no user page is readable.
pub fn init(ram: &RangeSet, direct_map_limit: u64) {
    assert!(ram.as_slice().last().is_none_or(|r| r.end <= direct_map_limit), "the direct map must cover all RAM");
    USER_RAM.call_once(|| ram.clone());
}

/// Whether the 4 KiB frame holding `paddr` is RAM the kernel reads through its direct map.
pub fn is_ram_frame(paddr: u64) -> bool {
    let page = Range::new(paddr & !(PAGE_SIZE - 1), PAGE_SIZE);
    USER_RAM.get().is_some_and(|ram| ram.contains(page))
}

/// A range of user virtual memory named by a system call argument.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    addr: u64,
    len: u64,
}

impl UserSlice {
    /// Checks that `[addr, addr + len)` is in user space and at most `max` bytes.
    pub fn new(addr: u64, len: u64, max: u64) -> Result<Self, SyscallError> {
        if len > max {
            return Err(SyscallError::RangeError);
        }
        if len != 0 && !is_user_range(addr, len) {
            return Err(SyscallError::InvalidUserPointer);
        }
        Ok(UserSlice { addr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `sink` with successive chunks of the bytes, each within one page, after
    /// checking that every page is mapped user-readable in the current address space
    /// and backed by RAM (a device frame is `InvalidUserPointer`).
    /// Nothing is passed to `sink` unless the whole range is readable.
    pub fn read_chunks(&self, mut sink: impl FnMut(&[u8])) -> Result<(), SyscallError> {
        let tables = DirectMemory;
        let root = mmu::current_root();
        let mut at = self.addr;
        let end = self.addr + self.len;
        while at < end {
            let t = paging::translate(&tables, root, at).ok_or(SyscallError::InvalidUserPointer)?;
            if !t.flags.contains(PteFlags::USER) || !is_ram_frame(t.paddr) {
                return Err(SyscallError::InvalidUserPointer);
            }
            at = (at & !(PAGE_SIZE - 1)) + PAGE_SIZE;
        }
        let mut at = self.addr;
        while at < end {
            let page_end = ((at & !(PAGE_SIZE - 1)) + PAGE_SIZE).min(end);
            let t = paging::translate(&tables, root, at).ok_or(SyscallError::InvalidUserPointer)?;
            // SAFETY: the page was just found mapped user-readable and backed by RAM, which
            // lies in the direct map (checked in `init`); the chunk stays inside that page. The kernel runs with
            // interrupts off on one CPU, so the mapping cannot change under us.
            let bytes =
                unsafe { core::slice::from_raw_parts(phys_to_virt(t.paddr) as *const u8, (page_end - at) as usize) };
            sink(bytes);
            at = page_end;
        }
        Ok(())
    }
}
