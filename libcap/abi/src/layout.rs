//! Fixed virtual addresses of the root task's address space and user-space limits.

/// Page size of the smallest frame.
pub const PAGE_SIZE: u64 = 4096;
/// First address user programs may be linked at (the page at 0 stays unmapped).
pub const USER_MIN: u64 = 0x0000_0000_0040_0000;
/// One past the highest canonical lower-half address; user memory lies below.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// End of the range frames may be mapped in: the last page below [`USER_END`] stays
/// unmapped, so no `syscall` instruction can sit at its very end and return to the
/// non-canonical address after it (the kernel's iretq would fault in ring 0). Linux
/// keeps the same page free for the same reason.
pub const USER_MAP_END: u64 = USER_END - PAGE_SIZE;
/// Where the kernel maps the root task's bootinfo frames (read-only).
pub const ROOT_BOOTINFO_VADDR: u64 = 0x0000_7f00_0000_0000;
/// Where the kernel maps the boot image (read-only, every page of the module) in the
/// root task's VSpace; bootinfo's `boot_image_*` fields describe it.
pub const ROOT_BOOT_IMAGE_VADDR: u64 = 0x0000_7e00_0000_0000;
/// Where the kernel maps the root task's IPC buffer frame (read-write).
pub const ROOT_IPC_BUFFER_VADDR: u64 = 0x0000_7f00_0001_0000;
/// Top (exclusive) of the root task's initial stack.
pub const ROOT_STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Size of the root task's initial stack.
pub const ROOT_STACK_SIZE: u64 = 64 * 1024;

/// Whether `[addr, addr + len)` lies entirely in user space (no wrap-around).
pub const fn is_user_range(addr: u64, len: u64) -> bool {
    match addr.checked_add(len) {
        Some(end) => addr >= USER_MIN && end <= USER_END,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_range() {
        assert!(is_user_range(USER_MIN, 4096));
        assert!(!is_user_range(0, 1));
        assert!(!is_user_range(USER_END - 1, 2));
        assert!(!is_user_range(u64::MAX, 2));
        const _: () = assert!(ROOT_STACK_TOP < USER_END && ROOT_BOOTINFO_VADDR > USER_MIN);
        // The boot image (at most 1 TiB) ends below the bootinfo.
        const _: () = assert!(ROOT_BOOT_IMAGE_VADDR + (1 << 40) <= ROOT_BOOTINFO_VADDR);
        const _: () = assert!(
            ROOT_BOOTINFO_VADDR + crate::bootinfo::BOOTINFO_MAX_FRAMES as u64 * PAGE_SIZE <= ROOT_IPC_BUFFER_VADDR
        );
    }
}
