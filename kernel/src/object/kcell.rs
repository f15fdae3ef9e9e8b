//! `KernelCell`: the one cell type for kernel-global state.
//!
//! It holds the scheduler, the IRQ state, the IOSpace state and the live-root sets.
//! The kernel runs on one CPU with interrupts off, so global state needs no lock: what
//! it needs is that no two `&mut` to the same state are live at once. Every global
//! used to repeat that argument with its own `UnsafeCell` and a "callers do not hold
//! the reference" comment; here it is made once, and debug builds check it: taking a
//! second borrow while one is live panics. Release builds carry no flag, so an access
//! compiles to the plain pointer it was before. It lives in `object/` because it is
//! host-tested base logic that every layer (including `object::roots`) may use.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// Kernel-global state of type `T`, reached through [`KernelCell::borrow_mut`] or
/// [`KernelCell::with`].
/// `repr(C)` with the value first: the IPC fastpath's assembly reads the scheduler's
/// fields at their offsets from the cell's address.
#[repr(C)]
pub struct KernelCell<T> {
    value: UnsafeCell<T>,
    /// Whether a [`KernelRef`] to `value` is live (debug builds only).
    #[cfg(debug_assertions)]
    borrowed: core::cell::Cell<bool>,
}

// SAFETY: the kernel runs on one CPU with interrupts off: traps enter it only from user
// mode or the idle loop's `hlt`, never while other kernel code runs, so no two threads
// of control ever reach a cell at once. Exclusive access within that one thread of
// control is what `borrow_mut` hands out (and checks in debug builds). Host tests that
// share a static cell between test threads must serialise themselves.
unsafe impl<T: Send> Sync for KernelCell<T> {}

impl<T> KernelCell<T> {
    /// A cell holding `value`, usable in a `static`.
    pub const fn new(value: T) -> Self {
        KernelCell {
            value: UnsafeCell::new(value),
            #[cfg(debug_assertions)]
            borrowed: core::cell::Cell::new(false),
        }
    }

    /// Exclusive access to the state until the returned reference is dropped. Keep it
    /// for as short as possible, and never across a call that may borrow the same
    /// cell again (debug builds panic there; release builds do not check).
    #[inline(always)]
    pub fn borrow_mut(&self) -> KernelRef<'_, T> {
        #[cfg(debug_assertions)]
        {
            assert!(!self.borrowed.replace(true), "KernelCell borrowed again while a borrow is live");
        }
        KernelRef {
            // SAFETY: see the `Sync` impl: one thread of control, and (checked in debug
            // builds) no other `KernelRef` to this cell is live while this one is.
            value: unsafe { &mut *self.value.get() },
            #[cfg(debug_assertions)]
            borrowed: &self.borrowed,
        }
    }

    /// Runs `f` with exclusive access to the state.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// Exclusive access to the state in a [`KernelCell`]; ends when dropped.
pub struct KernelRef<'a, T> {
    value: &'a mut T,
    #[cfg(debug_assertions)]
    borrowed: &'a core::cell::Cell<bool>,
}

impl<T> Deref for KernelRef<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for KernelRef<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for KernelRef<'_, T> {
    fn drop(&mut self) {
        self.borrowed.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_in_turn_see_each_others_writes() {
        let cell = KernelCell::new(1u64);
        *cell.borrow_mut() += 1;
        cell.with(|v| *v *= 10);
        assert_eq!(*cell.borrow_mut(), 20);
        assert_eq!(cell.with(|v| *v), 20);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "borrowed again")]
    fn second_live_borrow_panics_in_debug_builds() {
        let cell = KernelCell::new(0u64);
        let _first = cell.borrow_mut();
        let _second = cell.borrow_mut();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "borrowed again")]
    fn borrow_inside_with_panics_in_debug_builds() {
        let cell = KernelCell::new(0u64);
        cell.with(|_| cell.with(|v| *v));
    }
}
