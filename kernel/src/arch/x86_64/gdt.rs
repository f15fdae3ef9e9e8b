//! The kernel's GDT and TSS.
//!
//! The kernel's GDT and TSS: kernel/user segments laid out for `syscall`/`sysret`, and
//! dedicated stacks for traps from user mode, for double faults / machine checks and
//! for NMIs.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// Kernel code selector (STAR's syscall CS).
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// User data selector with RPL 3 (sysret SS = STAR[63:48] + 8).
pub const USER_DS: u16 = 0x18 | 3;
/// User code selector with RPL 3 (sysret CS = STAR[63:48] + 16).
pub const USER_CS: u16 = 0x20 | 3;

/// IST slot used for double faults and machine checks.
pub const IST_CRITICAL: u16 = 1;
/// IST slot of its own for NMIs: an NMI can strike while a #DF or #MC handler (or a
/// device's forged vector 8 or 18, which arrives through the same gate) runs on the
/// critical stack, and would overwrite that handler's frame if it shared the slot.
pub const IST_NMI: u16 = 2;

const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

/// Stack for double faults and machine checks (any mode).
static mut CRITICAL_STACK: Stack = Stack([0; STACK_SIZE]);
/// Stack for NMIs (any mode).
static mut NMI_STACK: Stack = Stack([0; STACK_SIZE]);

static TSS: Once<TaskStateSegment> = Once::new();

/// Points the TSS's ring-0 stack at `rsp0`: traps from user mode push their frame
/// there (the running thread's TCB).
#[inline]
pub fn set_rsp0(rsp0: u64) {
    let tss = TSS_PTR.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `tss` points at the static TSS (set in init, before any thread runs); the
    // CPU reads rsp0 only on a privilege change, never while the kernel (single CPU,
    // interrupts off) writes it. rsp0 is a kernel direct-map address, so canonical.
    // VirtAddr is a transparent u64, so the canonical value is stored as it is.
    unsafe { (core::ptr::addr_of_mut!((*tss).privilege_stack_table[0]) as *mut u64).write(rsp0) };
}

/// The TSS, for the context-switch path (avoids the Once check).
pub(crate) static TSS_PTR: core::sync::atomic::AtomicPtr<TaskStateSegment> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
static GDT: Once<GlobalDescriptorTable> = Once::new();

unsafe extern "C" {
    /// Top of the trap stack (boot.S: 32 KiB above an unmapped guard page).
    static kernel_trap_stack_top: u8;
}

/// Top of the stack used for traps and syscalls from user mode.
pub fn trap_stack_top() -> u64 {
    core::ptr::addr_of!(kernel_trap_stack_top) as u64
}

fn critical_stack_top() -> u64 {
    let base = core::ptr::addr_of!(CRITICAL_STACK) as u64;
    base + STACK_SIZE as u64
}

fn nmi_stack_top() -> u64 {
    let base = core::ptr::addr_of!(NMI_STACK) as u64;
    base + STACK_SIZE as u64
}

/// Builds and loads the GDT and TSS and reloads every segment register.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(trap_stack_top());
        tss.interrupt_stack_table[(IST_CRITICAL - 1) as usize] = VirtAddr::new(critical_stack_top());
        tss.interrupt_stack_table[(IST_NMI - 1) as usize] = VirtAddr::new(nmi_stack_top());
        tss
    });
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kcode = gdt.append(Descriptor::kernel_code_segment());
        let kdata = gdt.append(Descriptor::kernel_data_segment());
        let udata = gdt.append(Descriptor::user_data_segment());
        let ucode = gdt.append(Descriptor::user_code_segment());
        debug_assert_eq!(kcode.0, KERNEL_CS);
        debug_assert_eq!(kdata.0, KERNEL_DS);
        debug_assert_eq!(udata.0, USER_DS);
        debug_assert_eq!(ucode.0, USER_CS);
        gdt.append(Descriptor::tss_segment(tss));
        gdt
    });
    TSS_PTR.store(tss as *const TaskStateSegment as *mut TaskStateSegment, core::sync::atomic::Ordering::Relaxed);
    gdt.load();
    // SAFETY: the selectors name the descriptors appended above in the GDT just loaded,
    // which lives in a static for the kernel's whole life.
    unsafe {
        CS::set_reg(SegmentSelector(KERNEL_CS));
        DS::set_reg(SegmentSelector(KERNEL_DS));
        ES::set_reg(SegmentSelector(KERNEL_DS));
        SS::set_reg(SegmentSelector(KERNEL_DS));
        load_tss(SegmentSelector(0x28));
    }
}
