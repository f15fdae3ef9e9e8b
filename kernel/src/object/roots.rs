//! Which pages are live translation roots: VSpace PML4s and IOSpace root tables.
//!
//! A mapping record in a Frame or page-table cap names its address space by the root's
//! physical address. Once that space is deleted its root page can be retyped into
//! anything, even a frame its new owner fills with fake table entries, so the kernel
//! checks a root is still live before it walks it to remove a stale mapping (the role
//! seL4's ASID table plays). One bit per 4 KiB page of RAM and kind, allocated at boot.

use super::kcell::KernelCell;

/// The kinds of translation root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// A VSpace's PML4.
    VSpace = 0,
    /// An IOSpace's second-level root table.
    IoSpace = 1,
}

/// A set of page frames, one bit each, for frames below `words.len() * 64` pages.
pub struct RootSet<'a> {
    words: &'a mut [u64],
}

impl<'a> RootSet<'a> {
    /// A set over `words` (all clear = empty).
    pub fn new(words: &'a mut [u64]) -> Self {
        RootSet { words }
    }

    fn bit(&self, paddr: u64) -> Option<(usize, u64)> {
        let page = paddr >> 12;
        let word = usize::try_from(page / 64).ok()?;
        (word < self.words.len()).then_some((word, 1 << (page % 64)))
    }

    /// Adds the page at `paddr` (ignored beyond the covered range).
    pub fn insert(&mut self, paddr: u64) {
        if let Some((w, b)) = self.bit(paddr) {
            self.words[w] |= b;
        }
    }

    /// Removes the page at `paddr`.
    pub fn remove(&mut self, paddr: u64) {
        if let Some((w, b)) = self.bit(paddr) {
            self.words[w] &= !b;
        }
    }

    /// Whether the page at `paddr` is in the set (never beyond the covered range).
    pub fn contains(&self, paddr: u64) -> bool {
        self.bit(paddr).is_some_and(|(w, b)| self.words[w] & b != 0)
    }
}

/// Words needed to cover RAM up to `ram_top`.
pub fn words_for(ram_top: u64) -> usize {
    ram_top.div_ceil(4096 * 64) as usize
}

/// The kernel's two sets: (bitmap address, words) per kind; written once at boot.
static SETS: KernelCell<[(usize, usize); 2]> = KernelCell::new([(0, 0); 2]);

fn with_set<R>(kind: RootKind, f: impl FnOnce(&mut RootSet<'_>) -> R) -> R {
    let (addr, words) = SETS.borrow_mut()[kind as usize];
    let slice: &mut [u64] = if words == 0 {
        &mut []
    } else {
        // SAFETY: `init` was given `words` zeroed, 8-byte aligned words that nothing
        // else uses, for the kernel's lifetime.
        unsafe { core::slice::from_raw_parts_mut(addr as *mut u64, words) }
    };
    f(&mut RootSet::new(slice))
}

/// Boot: the zeroed bitmap (kernel virtual address, length in words) for `kind`.
///
/// # Safety
/// `addr` must point at `words` zeroed u64 that nothing else ever uses.
pub unsafe fn init(kind: RootKind, addr: usize, words: usize) {
    SETS.borrow_mut()[kind as usize] = (addr, words);
}

/// A root of `kind` now lives at `paddr`.
pub fn mark_live(kind: RootKind, paddr: u64) {
    with_set(kind, |s| s.insert(paddr));
}

/// The root of `kind` at `paddr` is being destroyed.
pub fn mark_dead(kind: RootKind, paddr: u64) {
    with_set(kind, |s| s.remove(paddr));
}

/// Whether a root of `kind` lives at `paddr`.
pub fn is_live(kind: RootKind, paddr: u64) -> bool {
    with_set(kind, |s| s.contains(paddr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_contains_and_range() {
        let mut words = [0u64; 2];
        let mut s = RootSet::new(&mut words);
        for p in [0u64, 0x1000, 0x3f000, 0x40000, 0x7f000] {
            assert!(!s.contains(p));
            s.insert(p);
            assert!(s.contains(p));
        }
        // Beyond 128 pages: never contained, inserting changes nothing.
        s.insert(0x80000);
        assert!(!s.contains(0x80000));
        s.remove(0x3f000);
        assert!(!s.contains(0x3f000) && s.contains(0x40000) && s.contains(0x1000));
        assert_eq!(words_for(0x80000), 2);
        assert_eq!(words_for(0x80001), 3);
    }
}
