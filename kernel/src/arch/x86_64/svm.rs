//! AMD SVM: enabling at boot, the permission maps, entering a guest.
//!
//! One CPU, so one host save area and one pair of permission maps serve every VCPU.
//! Both maps are all ones and never change: every guest I/O port access and MSR
//! access exits to the VMM. Every guest runs under ASID 1; the guest TLB is flushed on
//! the VMRUN after any change a guest could have cached (an unmapped entry, a deleted
//! GuestSpace, another GuestSpace than the last run's).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::model_specific::Msr;

use super::{phys_to_virt, KERNEL_VMA};
use crate::object::guest_tlb::GuestTlb;
use crate::object::kcell::KernelCell;
use crate::object::tcb::FpuArea;
use crate::object::vcpu::{GuestGprs, VcpuObject};
use crate::object::vmcb::EFER_SVME;

/// IA32_EFER.
const MSR_EFER: u32 = 0xc000_0080;
/// VM_CR: SVMDIS says firmware locked SVM off.
const MSR_VM_CR: u32 = 0xc001_0114;
/// VM_HSAVE_PA: where VMRUN saves the host state.
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
/// VM_CR.SVMDIS.
const VM_CR_SVMDIS: u64 = 1 << 4;

/// Page-aligned pages in the kernel image (.bss): physical address = virtual - KERNEL_VMA.
#[repr(C, align(4096))]
struct Pages<const N: usize>([[u8; 4096]; N]);

/// The I/O permission map (12 KiB, all ones after `init`).
static mut IOPM: Pages<3> = Pages([[0; 4096]; 3]);
/// The MSR permission map (8 KiB, all ones after `init`).
static mut MSRPM: Pages<2> = Pages([[0; 4096]; 2]);
/// VM_HSAVE_PA's page: VMRUN's own save of the host state.
static mut HOST_SAVE: Pages<1> = Pages([[0; 4096]; 1]);
/// The host's VMSAVE area (FS, GS, TR, LDTR, KernelGsBase, the syscall MSRs), which
/// VMRUN does not save.
static mut HOST_VMCB: Pages<1> = Pages([[0; 4096]; 1]);
/// The calling thread's FPU image while its guest runs.
static mut HOST_FPU: FpuArea = FpuArea([0; 512]);

/// SVM with nested paging is on.
static AVAILABLE: AtomicBool = AtomicBool::new(false);
/// The CPU has protection keys (PKRU exists and a guest may set CR4.PKE).
static PKU: AtomicBool = AtomicBool::new(false);
/// When the next VMRUN must flush the guest TLB (every guest shares ASID 1).
static GUEST_TLB: KernelCell<GuestTlb> = KernelCell::new(GuestTlb::new());

fn kernel_phys<T>(p: *const T) -> u64 {
    p as u64 - KERNEL_VMA
}

/// What the CPU offers: (SVM, nested paging, ASIDs), or why not.
fn detect() -> Result<u32, &'static str> {
    use core::arch::x86_64::__cpuid;
    if __cpuid(0x8000_0000).eax < 0x8000_000a {
        return Err("no SVM (CPUID has no leaf 0x8000000a)");
    }
    if __cpuid(0x8000_0001).ecx & (1 << 2) == 0 {
        return Err("no SVM (CPUID 0x80000001 ECX.SVM clear)");
    }
    let leaf = __cpuid(0x8000_000a);
    if leaf.edx & 1 == 0 {
        return Err("SVM without nested paging");
    }
    // SAFETY: VM_CR exists on every CPU with SVM; reading it has no side effect.
    if unsafe { Msr::new(MSR_VM_CR).read() } & VM_CR_SVMDIS != 0 {
        return Err("SVM disabled by firmware (VM_CR.SVMDIS)");
    }
    if leaf.ebx < 2 {
        return Err("SVM with no guest ASID");
    }
    Ok(leaf.ebx)
}

/// Boot: turns SVM on where the CPU has it with nested paging, and logs either way.
pub fn init() {
    let asids = match detect() {
        Ok(n) => n,
        Err(why) => {
            crate::info!("svm: {why}: VCPU and GuestSpace objects cannot be created");
            return;
        }
    };
    // SAFETY: boot, single CPU, before any guest: the maps and save pages are only
    // ever read by the hardware after this; EFER.SVME only enables the SVM instructions.
    unsafe {
        core::ptr::addr_of_mut!(IOPM).write_bytes(0xff, 1);
        core::ptr::addr_of_mut!(MSRPM).write_bytes(0xff, 1);
        let mut efer = Msr::new(MSR_EFER);
        efer.write(efer.read() | EFER_SVME);
        Msr::new(MSR_VM_HSAVE_PA).write(kernel_phys(core::ptr::addr_of!(HOST_SAVE)));
    }
    AVAILABLE.store(true, Ordering::Relaxed);
    // CPUID.(7,0):ECX.PKU: guests can use PKRU, which VMRUN does not switch.
    PKU.store(core::arch::x86_64::__cpuid_count(7, 0).ecx & (1 << 3) != 0, Ordering::Relaxed);
    crate::info!("svm: on, nested paging, {asids} ASIDs (guests share ASID 1, flushed on change)");
}

/// Whether VCPUs and GuestSpaces can be created and run.
pub fn available() -> bool {
    AVAILABLE.load(Ordering::Relaxed)
}

/// A guest translation may be stale: the next VMRUN flushes the guest TLB.
#[inline]
pub fn guest_tlb_stale() {
    GUEST_TLB.borrow_mut().mark_stale();
}

/// The VCPU object at `paddr`.
///
/// Sound as `kmem::tcb` is: one CPU, interrupts off in the kernel, `paddr` from a VCPU
/// cap (a live 8 KiB object in RAM), no caller keeps the reference across another.
#[allow(clippy::mut_from_ref)]
pub fn vcpu(paddr: u64) -> &'static mut VcpuObject {
    debug_assert!(paddr.is_multiple_of(1 << abi::object::VCPU_SIZE_BITS));
    // SAFETY: see above; the direct map covers all RAM.
    unsafe { &mut *(phys_to_virt(paddr) as *mut VcpuObject) }
}

/// A new (zeroed) VCPU: the fixed controls and the clean FPU image.
pub fn init_vcpu(paddr: u64) {
    let v = vcpu(paddr);
    v.vmcb.init_controls(kernel_phys(core::ptr::addr_of!(IOPM)), kernel_phys(core::ptr::addr_of!(MSRPM)));
    super::fpu::init_area(&mut v.state.fpu);
}

/// Runs the VCPU at `paddr` in the GuestSpace rooted at `n_cr3` until its next exit
/// (the exit code and details are then in its VMCB). Host interrupts that arrive
/// meanwhile stop the guest and stay pending until the kernel next enables interrupts.
/// Returns the time-stamp ticks from VMRUN to the exit (the guest's, not kernel time).
pub fn run(paddr: u64, n_cr3: u64) -> u64 {
    debug_assert!(available());
    let flush = GUEST_TLB.borrow_mut().before_run(n_cr3);
    let v = vcpu(paddr);
    v.vmcb.prepare_run(n_cr3, flush);
    // The FPU registers hold the calling thread's state (eager switching): park it,
    // give the guest its own, and swap back after the exit.
    // SAFETY: HOST_FPU is used only here, on one CPU with interrupts off.
    let host_fpu = unsafe { &mut *core::ptr::addr_of_mut!(HOST_FPU) };
    super::fpu::save(host_fpu);
    super::fpu::restore(&v.state.fpu);
    let pku = PKU.load(Ordering::Relaxed);
    if pku {
        // SAFETY: the CPU has PKU; CR4.PKE stays on only until the exit below, and the
        // kernel touches no user page meanwhile, so only the guest's PKRU ever applies.
        unsafe { enter_guest_pkru(v.state.pkru as u32) };
    }
    let entered = super::cpu::timestamp();
    // SAFETY: `paddr` is a VCPU whose control area the kernel set (nested paging on,
    // every exit the host needs intercepted, the all-ones permission maps, ASID 1) and
    // `n_cr3` a live GuestSpace root with no kernel half; SVM is on (`available`).
    // svm_enter saves and restores every host register and the VMSAVE state.
    unsafe {
        svm_enter(paddr, &mut v.state.gprs, kernel_phys(core::ptr::addr_of!(HOST_VMCB)));
    }
    let in_guest = super::cpu::timestamp().wrapping_sub(entered);
    if pku {
        // SAFETY: as above; VMRUN's exit put back the host CR4 with PKE on.
        v.state.pkru = u64::from(unsafe { leave_guest_pkru() });
    }
    super::fpu::save(&mut v.state.fpu);
    super::fpu::restore(host_fpu);
    // A refused VMRUN (VMEXIT_INVALID) may not have done the flush it was asked for.
    GUEST_TLB.borrow_mut().after_run(!crate::object::vmcb::exit::is_invalid(v.vmcb.control.exit_code));
    in_guest
}

/// CR4.PKE.
const CR4_PKE: u64 = 1 << 22;

/// Turns CR4.PKE on (VMRUN saves the host CR4 with it, so it is still on at the exit)
/// and loads the guest's PKRU.
///
/// # Safety
/// The CPU has PKU; [`leave_guest_pkru`] follows the guest's exit.
unsafe fn enter_guest_pkru(pkru: u32) {
    use x86_64::registers::control::Cr4;
    // SAFETY: PKE only makes PKRU govern user-page accesses, and RDPKRU/WRPKRU legal;
    // the kernel makes no user-page access before `leave_guest_pkru` turns it off.
    unsafe {
        Cr4::write_raw(Cr4::read_raw() | CR4_PKE);
        core::arch::asm!("wrpkru", in("eax") pkru, in("ecx") 0, in("edx") 0, options(nomem, nostack, preserves_flags));
    }
}

/// Reads the guest's PKRU, leaves PKRU at 0 (no restriction: the host never uses keys)
/// and turns CR4.PKE off again.
///
/// # Safety
/// Right after a guest exit that [`enter_guest_pkru`] prepared (CR4.PKE is on).
unsafe fn leave_guest_pkru() -> u32 {
    use x86_64::registers::control::Cr4;
    let pkru: u32;
    // SAFETY: CR4.PKE is on (saved by VMRUN, restored at the exit); clearing PKRU and
    // then PKE returns the host to its state before the run.
    unsafe {
        core::arch::asm!("rdpkru", in("ecx") 0, out("eax") pkru, out("edx") _, options(nomem, nostack, preserves_flags));
        core::arch::asm!("wrpkru", in("eax") 0, in("ecx") 0, in("edx") 0, options(nomem, nostack, preserves_flags));
        Cr4::write_raw(Cr4::read_raw() & !CR4_PKE);
    }
    pkru
}

extern "C" {
    /// Enters the guest whose VMCB is at physical `vmcb`, with the registers in `gprs`,
    /// and returns at its exit with them saved back; `host_vmcb` is the host's VMSAVE
    /// area.
    fn svm_enter(vmcb: u64, gprs: *mut GuestGprs, host_vmcb: u64);
}

// GIF is cleared first so no interrupt or NMI lands between the two VMLOADs; STI
// before VMRUN makes the host's IF 1 in the save area, so with V_INTR_MASKING a host
// interrupt stops the guest (INTR intercept) instead of waiting for it. After the exit
// GIF is 0 again: CLI before STGI leaves that interrupt pending for the kernel.
global_asm!(
    ".pushsection .text.svm_enter, \"ax\"",
    ".global svm_enter",
    "svm_enter:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "push rsi",
    "push rdi",
    "push rdx",
    "clgi",
    "mov rax, rdx",
    "vmsave rax",
    "mov rax, rdi",
    "vmload rax",
    "mov rbx, [rsi + {rbx}]",
    "mov rcx, [rsi + {rcx}]",
    "mov rdx, [rsi + {rdx}]",
    "mov rdi, [rsi + {rdi}]",
    "mov rbp, [rsi + {rbp}]",
    "mov r8, [rsi + {r8}]",
    "mov r9, [rsi + {r9}]",
    "mov r10, [rsi + {r10}]",
    "mov r11, [rsi + {r11}]",
    "mov r12, [rsi + {r12}]",
    "mov r13, [rsi + {r13}]",
    "mov r14, [rsi + {r14}]",
    "mov r15, [rsi + {r15}]",
    "mov rsi, [rsi + {rsi}]",
    "sti",
    "vmrun rax",
    // Exit: RAX, RSP and the host's segments are back; the other registers are the
    // guest's. The stack holds host_vmcb, vmcb, gprs.
    "push rsi",
    "mov rsi, [rsp + 24]",
    "mov [rsi + {rbx}], rbx",
    "mov [rsi + {rcx}], rcx",
    "mov [rsi + {rdx}], rdx",
    "mov [rsi + {rdi}], rdi",
    "mov [rsi + {rbp}], rbp",
    "mov [rsi + {r8}], r8",
    "mov [rsi + {r9}], r9",
    "mov [rsi + {r10}], r10",
    "mov [rsi + {r11}], r11",
    "mov [rsi + {r12}], r12",
    "mov [rsi + {r13}], r13",
    "mov [rsi + {r14}], r14",
    "mov [rsi + {r15}], r15",
    "pop rbx",
    "mov [rsi + {rsi}], rbx",
    "vmsave rax",
    "pop rax",
    "vmload rax",
    "pop rdi",
    "pop rsi",
    "cli",
    "stgi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    ".popsection",
    rbx = const core::mem::offset_of!(GuestGprs, rbx),
    rcx = const core::mem::offset_of!(GuestGprs, rcx),
    rdx = const core::mem::offset_of!(GuestGprs, rdx),
    rsi = const core::mem::offset_of!(GuestGprs, rsi),
    rdi = const core::mem::offset_of!(GuestGprs, rdi),
    rbp = const core::mem::offset_of!(GuestGprs, rbp),
    r8 = const core::mem::offset_of!(GuestGprs, r8),
    r9 = const core::mem::offset_of!(GuestGprs, r9),
    r10 = const core::mem::offset_of!(GuestGprs, r10),
    r11 = const core::mem::offset_of!(GuestGprs, r11),
    r12 = const core::mem::offset_of!(GuestGprs, r12),
    r13 = const core::mem::offset_of!(GuestGprs, r13),
    r14 = const core::mem::offset_of!(GuestGprs, r14),
    r15 = const core::mem::offset_of!(GuestGprs, r15),
);
