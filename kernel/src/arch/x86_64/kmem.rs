//! Kernel objects in RAM via the direct map: slots, tables, zeroing, TLB flush.
//!
//! Memory access only: what creating or destroying an object means for threads, IPC,
//! interrupts and IOSpaces is `thread::finalise`, which uses this.

use crate::object::roots::{self, RootKind};
use core::sync::atomic::{AtomicU64, Ordering};

use super::mmu;
use super::phys_to_virt;
use crate::object::cap::Cap;
use crate::object::cte::{Cte, SlotAddr, SlotMemory};
use crate::object::paging::{TableMemory, ENTRIES};

/// The kernel's own PML4, whose upper half every VSpace shares.
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// Records the kernel PML4 once it is built.
pub fn set_kernel_root(root: u64) {
    KERNEL_ROOT.store(root, Ordering::Relaxed);
}

/// Slots, tables and objects in RAM, through the direct map. Every address handed to
/// it comes from a capability the kernel created, so it names kernel-owned RAM.
pub struct DirectMemory;

impl SlotMemory for DirectMemory {
    fn load(&self, slot: SlotAddr) -> Cte {
        let mut words = [0u64; 8];
        // SAFETY: slot addresses come from CNode caps the kernel made over RAM it owns
        // (boot CNode or retyped untyped); a slot is 64 bytes, 64-byte aligned.
        unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(slot) as *const u64, words.as_mut_ptr(), 8) };
        Cte::from_words(words).expect("capability slots only hold encodings the kernel wrote")
    }

    fn is_empty(&self, slot: SlotAddr) -> bool {
        // SAFETY: as in `load`; word 0 holds the tag, 0 only for the empty cap.
        let w0 = unsafe { (phys_to_virt(slot) as *const u64).read() };
        crate::object::cap::raw_frame::is_null(w0)
    }

    fn store(&mut self, slot: SlotAddr, cte: Cte) {
        let words = cte.to_words();
        // SAFETY: as in `load`; the kernel is single-threaded with interrupts off.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), phys_to_virt(slot) as *mut u64, 8) };
    }

    fn store_cap(&mut self, slot: SlotAddr, cap: Cap) {
        let words = cap.encode();
        // SAFETY: as in `load`; only the four cap words change, links stay.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), phys_to_virt(slot) as *mut u64, 4) };
    }
}

impl TableMemory for DirectMemory {
    fn read(&self, table: u64, index: usize) -> u64 {
        assert!(index < ENTRIES);
        // SAFETY: `table` is a page-table frame the kernel created or reached through a
        // present entry of one; index < 512 keeps the access inside it.
        unsafe { core::ptr::read_volatile((phys_to_virt(table) as *const u64).add(index)) }
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        assert!(index < ENTRIES);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((phys_to_virt(table) as *mut u64).add(index), value) }
    }
    fn alloc_table(&mut self) -> Option<u64> {
        // After boot the kernel allocates nothing: tables come from retyped untyped.
        None
    }
    fn is_live_vspace(&self, root: u64) -> bool {
        roots::is_live(RootKind::VSpace, root)
    }
    fn clear_table(&mut self, table: u64) {
        super::mmu::zero_frame(table);
    }
}

impl DirectMemory {
    /// Zeroes `[paddr, paddr + len)`: a range a checked retype carved for new objects.
    #[inline]
    pub fn zero(&mut self, paddr: u64, len: u64) {
        debug_assert!(
            paddr.is_multiple_of(8) && len.is_multiple_of(8),
            "objects are at least 16 bytes, naturally aligned"
        );
        // SAFETY: the range was carved from non-device untyped RAM by a checked retype and
        // no live object overlaps it. `rep stosq` stores len/8 zero words (DF is clear in
        // the kernel: SFMASK and the entry stubs clear it).
        unsafe {
            core::arch::asm!(
                "rep stosq",
                inout("rdi") phys_to_virt(paddr) => _,
                inout("rcx") len / 8 => _,
                in("rax") 0u64,
                options(nostack, preserves_flags)
            )
        };
    }

    /// Gives the new TCB at `paddr` a user-mode register frame (starting at address 0
    /// until WriteRegisters says otherwise) and the clean FPU state.
    pub fn init_tcb(&mut self, paddr: u64) {
        let t = tcb(paddr);
        t.frame = super::trap::TrapFrame::new_user(0, 0, 0).to_words();
        super::fpu::init_area(&mut t.fpu);
    }

    /// Copies the kernel's half of the address space into the new PML4 at `pml4`.
    pub fn copy_kernel_half(&mut self, pml4: u64) {
        let kernel = KERNEL_ROOT.load(Ordering::Relaxed);
        for i in ENTRIES / 2..ENTRIES {
            let entry = self.read(kernel, i);
            self.write(pml4, i, entry);
        }
    }

    /// The PML4 at `pml4` is being destroyed: if it is the running address space, the
    /// CPU moves to the kernel's own root first.
    pub fn forget_root(&mut self, pml4: u64) {
        // SAFETY: the kernel root maps the kernel half like every VSpace.
        unsafe { super::mmu::forget_root(pml4, KERNEL_ROOT.load(Ordering::Relaxed)) };
    }
}

fn mapped_space(cap: &Cap) -> Option<u64> {
    match cap {
        Cap::Frame { mapping: Some(m), .. } | Cap::PageTable { mapping: Some(m), .. } => Some(m.vspace),
        _ => None,
    }
}

/// Flushes one page if the mapping is in the running address space (without PCIDs the
/// TLB holds no other space's entries). A mapping elsewhere may be a GuestSpace's,
/// whose entries the guest's ASID may cache: the next VMRUN flushes them (no guest
/// runs before it on this one CPU, so none uses the old entry after this returns).
pub fn flush_page(cap: &Cap, vaddr: u64) {
    if mapped_space(cap) == Some(mmu::current_root()) {
        x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(vaddr));
    } else {
        super::svm::guest_tlb_stale();
    }
}

/// Flushes the whole (non-global) TLB if the mapping is in the running address space
/// (else, as in [`flush_page`], the guests' entries at the next VMRUN).
pub fn flush_all(cap: &Cap) {
    if mapped_space(cap) == Some(mmu::current_root()) {
        x86_64::instructions::tlb::flush_all();
    } else {
        super::svm::guest_tlb_stale();
    }
}

/// The TCB at `paddr`.
///
/// Kernel invariant that makes this sound: the kernel runs on one CPU with interrupts
/// off, `paddr` comes from a TCB cap (or the boot TCB) so it names a live 2 KiB TCB in
/// RAM, and no caller keeps the reference across a call that could take another
/// reference to the same TCB.
#[allow(clippy::mut_from_ref)]
pub fn tcb(paddr: u64) -> &'static mut crate::object::tcb::Tcb {
    debug_assert!(paddr != 0 && paddr.is_multiple_of(1 << abi::object::TCB_SIZE_BITS));
    // SAFETY: see the invariant above; the direct map covers all RAM.
    unsafe { &mut *(phys_to_virt(paddr) as *mut crate::object::tcb::Tcb) }
}

/// Reads one word of a kernel object at `paddr`.
#[inline]
pub fn read_word(paddr: u64) -> u64 {
    // SAFETY: as in `read_words`.
    unsafe { core::ptr::read(phys_to_virt(paddr) as *const u64) }
}

/// Reads `N` words of a kernel object at `paddr`.
pub fn read_words<const N: usize>(paddr: u64) -> [u64; N] {
    let mut w = [0u64; N];
    // SAFETY: `paddr` comes from an endpoint/notification cap: a live object of at
    // least N words in RAM, inside the direct map.
    unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(paddr) as *const u64, w.as_mut_ptr(), N) };
    w
}

/// Writes `N` words of a kernel object at `paddr`.
pub fn write_words<const N: usize>(paddr: u64, w: [u64; N]) {
    // SAFETY: as in `read_words`.
    unsafe { core::ptr::copy_nonoverlapping(w.as_ptr(), phys_to_virt(paddr) as *mut u64, N) };
}

/// The kernel address of the IPC buffer at `paddr` (aligned down to its size).
fn ipc_buffer_base(paddr: u64) -> u64 {
    phys_to_virt(paddr & !(abi::ipc_buffer::IPC_BUFFER_BYTES as u64 - 1))
}

/// Reads word `index` of the IPC buffer at `paddr`.
pub fn ipc_word(paddr: u64, index: usize) -> u64 {
    assert!(index < abi::ipc_buffer::IPC_BUFFER_WORDS);
    // SAFETY: `paddr` is in the page of an IPC buffer frame cap (RAM); the buffer is
    // aligned to its size inside that page and index is below its word count.
    unsafe { core::ptr::read_volatile((ipc_buffer_base(paddr) as *const u64).add(index)) }
}

/// Copies words `start..start + out.len()` of the IPC buffer at `paddr` into `out`
/// (one string copy: the batch paths read up to 64 cap addresses at once).
pub fn ipc_words(paddr: u64, start: usize, out: &mut [u64]) {
    assert!(start <= abi::ipc_buffer::IPC_BUFFER_WORDS && out.len() <= abi::ipc_buffer::IPC_BUFFER_WORDS - start);
    // SAFETY: as in `ipc_word`, for every word of the range (checked above); `out` is
    // kernel memory and cannot overlap a user frame's direct-map address range.
    unsafe {
        core::ptr::copy_nonoverlapping((ipc_buffer_base(paddr) as *const u64).add(start), out.as_mut_ptr(), out.len())
    }
}

/// Writes word `index` of the IPC buffer at `paddr`.
pub fn set_ipc_word(paddr: u64, index: usize, value: u64) {
    assert!(index < abi::ipc_buffer::IPC_BUFFER_WORDS);
    // SAFETY: as in `ipc_word`.
    unsafe { core::ptr::write_volatile((ipc_buffer_base(paddr) as *mut u64).add(index), value) }
}
