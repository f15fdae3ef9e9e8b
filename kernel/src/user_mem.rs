//! Checked access to user memory. A user pointer is a [`UserSlice`]: a range proven to
//! lie in user space, read page by page through the current address space's tables
//! (never dereferenced directly), so a bad pointer is an error, not a kernel fault.

use abi::error::SyscallError;
use abi::layout::{is_user_range, PAGE_SIZE};

use crate::arch::kmem::DirectMemory;
use crate::arch::{mmu, phys_to_virt};
use crate::paging::{self, PteFlags};

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
    /// checking that every page is mapped user-readable in the current address space.
    /// Nothing is passed to `sink` unless the whole range is readable.
    pub fn read_chunks(&self, mut sink: impl FnMut(&[u8])) -> Result<(), SyscallError> {
        let tables = DirectMemory;
        let root = mmu::current_root();
        let mut at = self.addr;
        let end = self.addr + self.len;
        while at < end {
            let t = paging::translate(&tables, root, at).ok_or(SyscallError::InvalidUserPointer)?;
            if !t.flags.contains(PteFlags::USER) {
                return Err(SyscallError::InvalidUserPointer);
            }
            at = (at & !(PAGE_SIZE - 1)) + PAGE_SIZE;
        }
        let mut at = self.addr;
        while at < end {
            let page_end = ((at & !(PAGE_SIZE - 1)) + PAGE_SIZE).min(end);
            let t = paging::translate(&tables, root, at).ok_or(SyscallError::InvalidUserPointer)?;
            // SAFETY: the page was just found mapped user-readable; its frame lies in the
            // direct map and the chunk stays inside that page. The kernel runs with
            // interrupts off on one CPU, so the mapping cannot change under us.
            let bytes =
                unsafe { core::slice::from_raw_parts(phys_to_virt(t.paddr) as *const u8, (page_end - at) as usize) };
            sink(bytes);
            at = page_end;
        }
        Ok(())
    }
}
