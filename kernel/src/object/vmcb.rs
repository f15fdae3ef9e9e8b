//! The AMD SVM VMCB: its layout and the kernel's fixed controls.
//!
//! A VMCB is one 4 KiB page: a control area (what exits, the nested page-table root,
//! the ASID, pending virtual interrupts, the exit code) and the guest's save area.
//! Offsets follow the AMD64 Architecture Programmer's Manual vol. 2, appendix B, and
//! are asserted below. Only the kernel writes the control area; user level reaches
//! the save area field by field through `vcpu`.

use static_assertions::const_assert_eq;

/// A segment register as the VMCB stores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmcbSegment {
    /// Selector.
    pub selector: u16,
    /// Attributes: access byte in bits 0..8, the flags nibble (AVL, L, D/B, G) in 8..12.
    pub attrib: u16,
    /// Limit.
    pub limit: u32,
    /// Base.
    pub base: u64,
}
const_assert_eq!(core::mem::size_of::<VmcbSegment>(), 16);

/// The control area (offsets 0x000..0x400).
#[repr(C)]
#[allow(missing_docs)]
pub struct ControlArea {
    /// CR reads (bits 0..16) and writes (16..32) that exit.
    pub intercept_cr: u32,
    /// DR reads (bits 0..16) and writes (16..32) that exit.
    pub intercept_dr: u32,
    /// Exception vectors that exit.
    pub intercept_exceptions: u32,
    /// Intercept vector 3 ([`intercept1`]).
    pub intercept1: u32,
    /// Intercept vector 4 ([`intercept2`]).
    pub intercept2: u32,
    pub intercept3: u32,
    _reserved0: [u8; 0x24],
    pub pause_filter_threshold: u16,
    pub pause_filter_count: u16,
    /// Physical address of the I/O permission map (12 KiB).
    pub iopm_base_pa: u64,
    /// Physical address of the MSR permission map (8 KiB).
    pub msrpm_base_pa: u64,
    pub tsc_offset: u64,
    /// The guest's ASID (never 0: that is the host's).
    pub guest_asid: u32,
    /// TLB flush on the next VMRUN ([`TLB_FLUSH_ALL`]).
    pub tlb_control: u32,
    /// Virtual interrupt control ([`int_ctl`]).
    pub int_ctl: u32,
    /// The pending virtual interrupt's vector (bits 0..8).
    pub int_vector: u32,
    pub interrupt_shadow: u64,
    pub exit_code: u64,
    pub exit_info1: u64,
    pub exit_info2: u64,
    pub exit_int_info: u64,
    /// Bit 0: nested paging on.
    pub nested_ctl: u64,
    pub avic_apic_bar: u64,
    pub ghcb_pa: u64,
    pub event_inj: u64,
    /// The nested page tables' root (the GuestSpace).
    pub n_cr3: u64,
    pub lbr_virt: u64,
    /// Which cached state the hardware may reuse (0: reload everything).
    pub vmcb_clean: u64,
    pub next_rip: u64,
    pub insn_len: u8,
    pub insn_bytes: [u8; 15],
    _reserved1: [u8; 0x400 - 0xe0],
}

/// The save area (offsets 0x400..0x1000).
#[repr(C)]
#[allow(missing_docs)]
pub struct SaveArea {
    pub es: VmcbSegment,
    pub cs: VmcbSegment,
    pub ss: VmcbSegment,
    pub ds: VmcbSegment,
    pub fs: VmcbSegment,
    pub gs: VmcbSegment,
    pub gdtr: VmcbSegment,
    pub ldtr: VmcbSegment,
    pub idtr: VmcbSegment,
    pub tr: VmcbSegment,
    _reserved0: [u8; 43],
    pub cpl: u8,
    _reserved1: [u8; 4],
    pub efer: u64,
    _reserved2: [u8; 112],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    _reserved3: [u8; 88],
    pub rsp: u64,
    _reserved4: [u8; 24],
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    _reserved5: [u8; 32],
    pub g_pat: u64,
    _reserved6: [u8; 0xc00 - 0x270],
}

/// A whole VMCB page.
#[repr(C, align(4096))]
pub struct Vmcb {
    /// Control area.
    pub control: ControlArea,
    /// Guest state.
    pub save: SaveArea,
}

const_assert_eq!(core::mem::size_of::<ControlArea>(), 0x400);
const_assert_eq!(core::mem::size_of::<SaveArea>(), 0xc00);
const_assert_eq!(core::mem::size_of::<Vmcb>(), 4096);
const_assert_eq!(core::mem::offset_of!(ControlArea, pause_filter_threshold), 0x3c);
const_assert_eq!(core::mem::offset_of!(ControlArea, iopm_base_pa), 0x40);
const_assert_eq!(core::mem::offset_of!(ControlArea, guest_asid), 0x58);
const_assert_eq!(core::mem::offset_of!(ControlArea, int_ctl), 0x60);
const_assert_eq!(core::mem::offset_of!(ControlArea, exit_code), 0x70);
const_assert_eq!(core::mem::offset_of!(ControlArea, nested_ctl), 0x90);
const_assert_eq!(core::mem::offset_of!(ControlArea, event_inj), 0xa8);
const_assert_eq!(core::mem::offset_of!(ControlArea, n_cr3), 0xb0);
const_assert_eq!(core::mem::offset_of!(ControlArea, next_rip), 0xc8);
const_assert_eq!(core::mem::offset_of!(SaveArea, tr), 0x90);
const_assert_eq!(core::mem::offset_of!(SaveArea, cpl), 0xcb);
const_assert_eq!(core::mem::offset_of!(SaveArea, efer), 0xd0);
const_assert_eq!(core::mem::offset_of!(SaveArea, cr4), 0x148);
const_assert_eq!(core::mem::offset_of!(SaveArea, rip), 0x178);
const_assert_eq!(core::mem::offset_of!(SaveArea, rsp), 0x1d8);
const_assert_eq!(core::mem::offset_of!(SaveArea, rax), 0x1f8);
const_assert_eq!(core::mem::offset_of!(SaveArea, star), 0x200);
const_assert_eq!(core::mem::offset_of!(SaveArea, cr2), 0x240);
const_assert_eq!(core::mem::offset_of!(SaveArea, g_pat), 0x268);

/// `intercept_cr`: writes to CR8 (the TPR) exit. Set only while the kernel requests
/// the guest's interrupt window: QEMU 7.2's TCG aborts when a guest writes CR8 with a
/// virtual interrupt (V_IRQ) pending (see `VcpuObject::prepare_events`).
pub const INTERCEPT_CR8_WRITE: u32 = 1 << (16 + 8);

/// Intercept vector 3 bits.
pub mod intercept1 {
    #![allow(missing_docs)]
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const SMI: u32 = 1 << 2;
    pub const INIT: u32 = 1 << 3;
    pub const VINTR: u32 = 1 << 4;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const HLT: u32 = 1 << 24;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO: u32 = 1 << 27;
    pub const MSR: u32 = 1 << 28;
    pub const TASK_SWITCH: u32 = 1 << 29;
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// Intercept vector 4 bits.
pub mod intercept2 {
    #![allow(missing_docs)]
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const WBINVD: u32 = 1 << 9;
    pub const MONITOR: u32 = 1 << 10;
    pub const MWAIT: u32 = 1 << 11;
    pub const MWAIT_ARMED: u32 = 1 << 12;
    pub const XSETBV: u32 = 1 << 13;
}

/// `int_ctl` bits.
pub mod int_ctl {
    /// A virtual interrupt is pending.
    pub const V_IRQ: u32 = 1 << 8;
    /// Its priority (bits 16..20): the highest.
    pub const V_INTR_PRIO_MAX: u32 = 0xf << 16;
    /// Deliver it whatever the guest's TPR says.
    pub const V_IGN_TPR: u32 = 1 << 20;
    /// The guest's RFLAGS.IF and TPR govern only virtual interrupts; physical ones
    /// follow the host's RFLAGS.IF (so they always stop the guest, see `intercept1::INTR`).
    pub const V_INTR_MASKING: u32 = 1 << 24;
}

/// `tlb_control`: flush every ASID's entries before entering the guest.
pub const TLB_FLUSH_ALL: u32 = 1;
/// `nested_ctl`: nested paging on.
pub const NESTED_PAGING: u64 = 1;
/// EFER.SVME: a guest's EFER must keep it (VMRUN refuses one without).
pub const EFER_SVME: u64 = 1 << 12;
/// EVENTINJ / EXITINTINFO: the event is valid.
pub const EVENT_VALID: u64 = 1 << 31;
/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;
/// The ASID every guest runs under: guests are told apart by flushing on switch.
pub const GUEST_ASID: u32 = 1;

/// Exit codes (`exit_code`).
pub mod exit {
    #![allow(missing_docs)]
    pub const DR_READ_FIRST: u64 = 0x20;
    pub const DR_WRITE_LAST: u64 = 0x3f;
    pub const EXCEPTION_FIRST: u64 = 0x40;
    pub const EXCEPTION_LAST: u64 = 0x5f;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const SMI: u64 = 0x62;
    pub const INIT: u64 = 0x63;
    pub const VINTR: u64 = 0x64;
    pub const WRITE_CR8: u64 = 0x18;
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const SHUTDOWN: u64 = 0x7f;
    pub const VMMCALL: u64 = 0x81;
    pub const NPF: u64 = 0x400;
    pub const INVALID: u64 = u64::MAX;
    pub const INVALID_32: u64 = 0xffff_ffff;

    /// VMEXIT_INVALID (-1): VMRUN refused the guest state and never entered the
    /// guest. QEMU 7.2's TCG writes it as a 32-bit -1, so both forms count.
    pub const fn is_invalid(code: u64) -> bool {
        code == INVALID || code == u32::MAX as u64
    }
}

/// Intercept vector 3 bits every VCPU always has (see [`Vmcb::init_controls`]).
const FIXED_INTERCEPT1: u32 = intercept1::INTR
    | intercept1::NMI
    | intercept1::SMI
    | intercept1::INIT
    | intercept1::CPUID
    | intercept1::INVD
    | intercept1::HLT
    | intercept1::INVLPGA
    | intercept1::IOIO
    | intercept1::MSR
    | intercept1::TASK_SWITCH
    | intercept1::SHUTDOWN;
/// Intercept vector 4 bits every VCPU always has.
const FIXED_INTERCEPT2: u32 = intercept2::VMRUN
    | intercept2::VMMCALL
    | intercept2::VMLOAD
    | intercept2::VMSAVE
    | intercept2::STGI
    | intercept2::CLGI
    | intercept2::SKINIT
    | intercept2::WBINVD
    | intercept2::MONITOR
    | intercept2::MWAIT
    | intercept2::MWAIT_ARMED
    | intercept2::XSETBV;

/// The attributes of TR after a reset: present, a 16-bit busy TSS (type 3).
pub const TR_RESET_ATTRIB: u16 = 0x083;

/// The TR attributes VMRUN is given for `attrib`: a busy TSS (type 3 or 11) as its
/// available twin (1 or 9), anything else unchanged. QEMU's TCG keeps an available
/// type in TR after LTR and stops the whole emulator ("invalid tss type") when a
/// 32-bit guest switches stacks through a TR of any other type; hardware uses only
/// TR's base, limit and width there, and every task switch exits to the VMM.
pub const fn run_tr_attrib(attrib: u16) -> u16 {
    // System segment (bit 4 clear), type bit 0 set and bit 2 clear: 1, 3, 9, 11.
    if attrib & 0x15 == 0x01 {
        attrib & !0x2
    } else {
        attrib
    }
}

impl Vmcb {
    /// Sets the control area a new VCPU starts with: every exit the kernel needs
    /// (host interrupts, NMI, SMI, INIT; I/O and MSR accesses through all-ones
    /// permission maps at `iopm` and `msrpm`; shutdown; CPUID and HLT for the VMM;
    /// every virtualization instruction, INVD/WBINVD, MONITOR/MWAIT, XSETBV, task
    /// switches and all debug-register accesses), nested paging on, the guest ASID,
    /// and V_INTR_MASKING. The save area is left as zeroed by Retype (the VMM writes
    /// a state before the first Run; VMRUN refuses an all-zero one) but for EFER.SVME
    /// and TR, which starts as after a reset (present: see [`TR_RESET_ATTRIB`]).
    pub fn init_controls(&mut self, iopm: u64, msrpm: u64) {
        let c = &mut self.control;
        c.intercept_dr = u32::MAX;
        c.intercept1 = FIXED_INTERCEPT1;
        c.intercept2 = FIXED_INTERCEPT2;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        c.guest_asid = GUEST_ASID;
        c.nested_ctl = NESTED_PAGING;
        c.int_ctl = int_ctl::V_INTR_MASKING;
        self.save.efer = EFER_SVME;
        // TR as after a reset: a present 16-bit TSS at 0, limit 0xffff. A VMM that never
        // writes TR must not leave it not present: QEMU's TCG stops the whole emulator
        // ("invalid tss") when such a guest takes an interrupt that reads its TSS.
        self.save.tr = VmcbSegment { selector: 0, attrib: TR_RESET_ATTRIB, limit: 0xffff, base: 0 };
    }

    /// Puts back what the kernel's isolation rests on, before every VMRUN: nothing but
    /// the kernel writes the control area, so this only guards against a kernel bug
    /// (and keeps the per-run fields: nested root, TLB flush, no clean bits).
    pub fn prepare_run(&mut self, n_cr3: u64, flush: bool) {
        let c = &mut self.control;
        c.n_cr3 = n_cr3;
        c.nested_ctl = NESTED_PAGING;
        c.guest_asid = GUEST_ASID;
        c.tlb_control = if flush { TLB_FLUSH_ALL } else { 0 };
        c.vmcb_clean = 0;
        c.int_ctl |= int_ctl::V_INTR_MASKING;
        // The same sets `init_controls` wrote (the window request's VINTR and CR8
        // intercepts come on top).
        c.intercept_dr = u32::MAX;
        c.intercept1 |= FIXED_INTERCEPT1;
        c.intercept2 |= FIXED_INTERCEPT2;
        self.save.efer |= EFER_SVME;
        // WriteRegs takes only a present TSS and a new VCPU has one (so do exits:
        // the guest cannot load another); a busy one runs as available.
        self.save.tr.attrib = run_tr_attrib(self.save.tr.attrib);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::boxed::Box;

    fn zeroed() -> Box<Vmcb> {
        // SAFETY: every field of a VMCB is an integer; all zeroes is a valid value.
        unsafe { Box::new(core::mem::zeroed()) }
    }

    #[test]
    fn new_vcpus_exit_on_everything_that_reaches_the_host() {
        let mut v = zeroed();
        v.init_controls(0x1000, 0x4000);
        let c = &v.control;
        for bit in [intercept1::INTR, intercept1::NMI, intercept1::IOIO, intercept1::MSR, intercept1::SHUTDOWN] {
            assert_ne!(c.intercept1 & bit, 0);
        }
        assert_ne!(c.intercept2 & intercept2::VMRUN, 0, "VMRUN refuses a VMCB without it");
        assert_eq!((c.iopm_base_pa, c.msrpm_base_pa, c.guest_asid), (0x1000, 0x4000, GUEST_ASID));
        assert_eq!(c.nested_ctl, NESTED_PAGING);
        assert_eq!(v.save.efer & EFER_SVME, EFER_SVME);
    }

    #[test]
    fn prepare_run_restores_the_fixed_controls() {
        let mut v = zeroed();
        v.init_controls(0x1000, 0x4000);
        v.control.nested_ctl = 0;
        v.control.intercept1 = 0;
        v.save.efer = 0x500;
        v.prepare_run(0x9000, true);
        assert_eq!((v.control.n_cr3, v.control.tlb_control), (0x9000, TLB_FLUSH_ALL));
        assert_eq!(v.control.nested_ctl, NESTED_PAGING);
        assert_ne!(v.control.intercept1 & intercept1::INTR, 0);
        assert_eq!(v.save.efer, 0x500 | EFER_SVME);
        v.prepare_run(0x9000, false);
        assert_eq!(v.control.tlb_control, 0);
    }

    #[test]
    fn tr_is_always_a_present_available_tss_at_vmrun() {
        let mut v = zeroed();
        v.init_controls(0x1000, 0x4000);
        assert_eq!(v.save.tr.attrib, TR_RESET_ATTRIB, "a new VCPU's TR is present");
        v.prepare_run(0x9000, false);
        assert_eq!(v.save.tr.attrib, 0x081, "the reset TR runs as a 16-bit available TSS");
        for (written, run) in [(0x08b, 0x089), (0x089, 0x089), (0x083, 0x081), (0x081, 0x081)] {
            v.save.tr.attrib = written;
            v.prepare_run(0x9000, false);
            assert_eq!(v.save.tr.attrib, run, "{written:#x}");
            assert!(abi::vcpu::tr_word_valid(abi::vcpu::segment(0x18, run, 0x67)), "read back, written again");
        }
    }
}
