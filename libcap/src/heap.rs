//! The user heap: a talc global allocator over a static arena.
//!
//! The user heap: a talc allocator over a static arena in the program's bss, installed
//! as the global allocator so programs can use `alloc` (Vec, Box, String).

/// Bytes of heap every program gets.
pub const HEAP_SIZE: usize = 256 * 1024;

#[cfg(target_os = "none")]
mod global {
    use talc::source::Claim;
    use talc::TalcLock;

    #[global_allocator]
    pub(super) static HEAP: TalcLock<spin::Mutex<()>, Claim> = TalcLock::new({
        static mut ARENA: [u8; super::HEAP_SIZE] = [0; super::HEAP_SIZE];
        // SAFETY: the arena is used by this allocator only; nothing else names it.
        unsafe { Claim::array(&raw mut ARENA) }
    });
}

/// Adds `[base, base + size)` to the global heap (a component's heap region); false if
/// talc cannot use it (too small).
///
/// # Safety
/// The range must be mapped read-write, used by nothing else, for the program's life.
#[cfg(target_os = "none")]
pub unsafe fn claim(base: *mut u8, size: usize) -> bool {
    // SAFETY: the caller guarantees the range is mapped, writable and exclusively ours.
    unsafe { global::HEAP.lock().claim(base, size).is_some() }
}
