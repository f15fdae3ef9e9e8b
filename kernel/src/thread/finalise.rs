//! Object creation and teardown: what each object kind means to the kernel.
//!
//! The object layer (`object::untyped`, `object::cnode`) decides *when* an object is
//! made or its last cap is gone; this file says what that means for threads, IPC
//! queues, interrupt lines and IOSpaces, one function per object kind. Memory access
//! itself (zeroing, slots, tables, TLB flushes) is `arch::kmem::DirectMemory`, which
//! stays free of kernel policy.

use crate::arch::kmem::{self, DirectMemory};
use crate::iommu::access::Vtd;
use crate::iommu::iospace;
use crate::object::cap::Cap;
use crate::object::cnode::Finaliser;
use crate::object::roots::{self, RootKind};
use crate::object::untyped::ObjectMemory;
use crate::object::vspace;
use crate::thread::sched::ThreadRef;
use crate::thread::{ipc, irq, tcb_state};

/// Words of an endpoint object (its queue head and tail).
const ENDPOINT_WORDS: usize = 2;
/// Words of a notification object (queue, word, bound thread).
const NOTIFICATION_WORDS: usize = 4;

/// Kernel objects with their lifecycle: the `ObjectMemory` retype uses to create them
/// and the `Finaliser` delete and revoke use to tear them down.
pub struct KernelObjects;

impl ObjectMemory for KernelObjects {
    #[inline]
    fn zero(&mut self, paddr: u64, len: u64) {
        DirectMemory.zero(paddr, len);
    }

    fn free_domains(&self) -> u64 {
        iospace::free_domains()
    }

    fn interrupt_pending(&self) -> bool {
        crate::arch::apic::interrupt_pending()
    }

    fn new_iospace(&mut self, root: u64) -> (u16, u8) {
        roots::mark_live(RootKind::IoSpace, root);
        iospace::new_iospace(root)
    }

    fn init_tcb(&mut self, paddr: u64) {
        DirectMemory.init_tcb(paddr);
    }

    fn init_vspace(&mut self, pml4: u64) {
        roots::mark_live(RootKind::VSpace, pml4);
        DirectMemory.copy_kernel_half(pml4);
    }

    fn init_vcpu(&mut self, vcpu: u64) {
        crate::arch::svm::init_vcpu(vcpu);
    }

    fn init_guest_space(&mut self, root: u64) {
        // A live root like a VSpace's (mapping records name it the same way), but
        // with no kernel half: a guest-physical address reaches only what is mapped.
        roots::mark_live(RootKind::VSpace, root);
    }
}

impl Finaliser for KernelObjects {
    fn unmap_frame(&mut self, cap: &Cap) {
        if matches!(cap, Cap::Frame { mapping: Some(m), .. } if m.is_io()) {
            iospace::unmap(&mut Vtd, cap);
        } else if let Some((_, vaddr)) = vspace::unmap(&mut DirectMemory, cap) {
            kmem::flush_page(cap, vaddr);
        }
    }

    fn unmap_table(&mut self, cap: &Cap) {
        if vspace::unmap(&mut DirectMemory, cap).is_some() {
            kmem::flush_all(cap);
        }
    }

    fn finalise_object(&mut self, cap: &Cap) {
        match *cap {
            Cap::Tcb { paddr } => finalise_tcb(paddr),
            Cap::Endpoint { paddr, .. } => finalise_endpoint(paddr),
            Cap::Notification { paddr, .. } => finalise_notification(paddr),
            Cap::IrqHandler { gsi } => irq::release(gsi),
            Cap::MsiHandler { vector, .. } => irq::release_msi(vector),
            Cap::IoSpace { paddr, .. } => finalise_iospace(paddr, cap),
            Cap::VSpace { paddr } => finalise_vspace(paddr),
            Cap::GuestSpace { paddr } => finalise_guest_space(paddr),
            Cap::IoPageTable { mapping: Some(_), .. } => {
                iospace::unmap(&mut Vtd, cap);
            }
            _ => {}
        }
    }
}

/// A TCB: the thread stops running and leaves every queue it waits in.
fn finalise_tcb(thread: ThreadRef) {
    tcb_state::suspend(thread);
    ipc::forget_thread(thread);
}

/// An endpoint: its waiters wake with an error; no IOSpace reports faults to it.
fn finalise_endpoint(paddr: u64) {
    ipc::abort_queue(paddr, ENDPOINT_WORDS);
    iospace::forget_fault_handler(paddr);
}

/// A notification: its waiters wake with an error. Interrupts and DMA faults hold the
/// object's address, not a cap, so the lines and IOSpaces that signal it forget it.
fn finalise_notification(paddr: u64) {
    ipc::abort_queue(paddr, NOTIFICATION_WORDS);
    irq::forget_notification(paddr);
    iospace::forget_fault_handler(paddr);
}

/// An IOSpace: its root is no longer live, and its devices and domain id are released.
fn finalise_iospace(root: u64, cap: &Cap) {
    roots::mark_dead(RootKind::IoSpace, root);
    iospace::destroy(&mut Vtd, cap);
}

/// A VSpace: its root is no longer live, and the CPU leaves it if it runs on it.
fn finalise_vspace(pml4: u64) {
    roots::mark_dead(RootKind::VSpace, pml4);
    DirectMemory.forget_root(pml4);
}

/// A GuestSpace: its root is no longer live, and no guest TLB entry made through it
/// survives (the next VMRUN flushes; the page may become anything once reused).
fn finalise_guest_space(root: u64) {
    roots::mark_dead(RootKind::VSpace, root);
    crate::arch::svm::guest_tlb_stale();
}
