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
    static HEAP: TalcLock<spin::Mutex<()>, Claim> = TalcLock::new({
        static mut ARENA: [u8; super::HEAP_SIZE] = [0; super::HEAP_SIZE];
        // SAFETY: the arena is used by this allocator only; nothing else names it.
        unsafe { Claim::array(&raw mut ARENA) }
    });
}
