//! The VCPU object: its pages, guest registers, exits in ABI terms.
//!
//! A VCPU is 8 KiB from untyped: page 0 the VMCB (hardware-defined, see `vmcb`), page 1
//! the guest state the VMCB does not hold (the general-purpose registers VMRUN leaves
//! in the CPU, the FPU/SSE image). Entering the guest is `arch::svm::run`; this file is
//! the hardware-independent part, tested on the host.

use abi::vcpu::{IoExit, VcpuReg, VmExit, VmExitKind, NPF_EXECUTE, NPF_PRESENT, NPF_WRITE, SEGMENT_ATTR_MASK};
use static_assertions::const_assert;

use super::tcb::FpuArea;
use super::vmcb::{exit, Vmcb, VmcbSegment, EFER_SVME};

/// The general-purpose registers VMRUN neither loads nor saves (RAX and RSP are in
/// the VMCB). The entry code (`arch::svm`) uses these offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct GuestGprs {
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Page 1 of a VCPU.
#[repr(C, align(4096))]
pub struct VcpuState {
    /// Registers outside the VMCB.
    pub gprs: GuestGprs,
    /// The guest's FPU/SSE image (switched around every VMRUN).
    pub fpu: FpuArea,
    /// The external interrupt InjectIrq made pending, not yet delivered (0: none;
    /// vectors are 32..=255).
    pub pending_vector: u64,
    /// The guest's protection-key rights register: no VMCB field holds it and VMRUN
    /// leaves it alone, so the kernel switches it (on CPUs with PKU), else one guest
    /// would read and set another's.
    pub pkru: u64,
    /// The event the last `prepare_events` put in EVENTINJ (0: none), kept so a VMRUN
    /// the hardware refuses does not lose it (see `after_run`).
    pub injected: u64,
}

/// Page 0 and page 1.
#[repr(C)]
pub struct VcpuObject {
    /// The VMCB.
    pub vmcb: Vmcb,
    /// The rest.
    pub state: VcpuState,
}

const_assert!(core::mem::size_of::<VcpuObject>() <= 1 << abi::object::VCPU_SIZE_BITS);
const_assert!(core::mem::offset_of!(VcpuObject, state) == 4096);

fn segment_word(s: &VmcbSegment) -> u64 {
    abi::vcpu::segment(s.selector, s.attrib, s.limit)
}

fn set_segment_word(s: &mut VmcbSegment, w: u64) {
    s.selector = w as u16;
    s.attrib = ((w >> 16) & SEGMENT_ATTR_MASK) as u16;
    s.limit = (w >> 32) as u32;
}

/// Which part of a segment a register number names.
enum SegmentPart {
    /// Selector, attributes and limit as one word (`abi::vcpu::segment`).
    Word,
    /// The base.
    Base,
    /// The limit alone (GDTR, IDTR).
    Limit,
}

/// The segment a segment register number names, and which part of it.
fn segment(v: &mut Vmcb, r: VcpuReg) -> Option<(&mut VmcbSegment, SegmentPart)> {
    use SegmentPart::*;
    use VcpuReg::*;
    let s = &mut v.save;
    Some(match r {
        Cs => (&mut s.cs, Word),
        CsBase => (&mut s.cs, Base),
        Ss => (&mut s.ss, Word),
        SsBase => (&mut s.ss, Base),
        Ds => (&mut s.ds, Word),
        DsBase => (&mut s.ds, Base),
        Es => (&mut s.es, Word),
        EsBase => (&mut s.es, Base),
        Fs => (&mut s.fs, Word),
        FsBase => (&mut s.fs, Base),
        Gs => (&mut s.gs, Word),
        GsBase => (&mut s.gs, Base),
        Tr => (&mut s.tr, Word),
        TrBase => (&mut s.tr, Base),
        Ldtr => (&mut s.ldtr, Word),
        LdtrBase => (&mut s.ldtr, Base),
        GdtrLimit => (&mut s.gdtr, Limit),
        GdtrBase => (&mut s.gdtr, Base),
        IdtrLimit => (&mut s.idtr, Limit),
        IdtrBase => (&mut s.idtr, Base),
        _ => return None,
    })
}

impl VcpuObject {
    /// The word of `r` (an integer field of the VMCB save area or of the state page).
    fn field(&mut self, r: VcpuReg) -> Option<&mut u64> {
        use VcpuReg::*;
        let (s, g) = (&mut self.vmcb.save, &mut self.state.gprs);
        Some(match r {
            Rax => &mut s.rax,
            Rbx => &mut g.rbx,
            Rcx => &mut g.rcx,
            Rdx => &mut g.rdx,
            Rsi => &mut g.rsi,
            Rdi => &mut g.rdi,
            Rbp => &mut g.rbp,
            R8 => &mut g.r8,
            R9 => &mut g.r9,
            R10 => &mut g.r10,
            R11 => &mut g.r11,
            R12 => &mut g.r12,
            R13 => &mut g.r13,
            R14 => &mut g.r14,
            R15 => &mut g.r15,
            Rsp => &mut s.rsp,
            Rip => &mut s.rip,
            Rflags => &mut s.rflags,
            Cr0 => &mut s.cr0,
            Cr2 => &mut s.cr2,
            Cr3 => &mut s.cr3,
            Cr4 => &mut s.cr4,
            Efer => &mut s.efer,
            Dr6 => &mut s.dr6,
            Dr7 => &mut s.dr7,
            Pat => &mut s.g_pat,
            Star => &mut s.star,
            Lstar => &mut s.lstar,
            Cstar => &mut s.cstar,
            Sfmask => &mut s.sfmask,
            KernelGsBase => &mut s.kernel_gs_base,
            SysenterCs => &mut s.sysenter_cs,
            SysenterEsp => &mut s.sysenter_esp,
            SysenterEip => &mut s.sysenter_eip,
            _ => return None,
        })
    }

    /// Guest register `r`.
    pub fn read(&mut self, r: VcpuReg) -> u64 {
        if let Some(f) = self.field(r) {
            return *f;
        }
        let (s, part) = segment(&mut self.vmcb, r).expect("every register is a field or a segment");
        match part {
            SegmentPart::Limit => u64::from(s.limit),
            SegmentPart::Base => s.base,
            SegmentPart::Word => segment_word(s),
        }
    }

    /// Sets guest register `r`. Anything goes except EFER without SVME, which the
    /// hardware needs (VMRUN checks the rest and refuses what it cannot run). A new
    /// RIP moves the guest elsewhere: an event delivery an exit interrupted, and an
    /// interrupt shadow, belonged to the old place and are dropped.
    pub fn write(&mut self, r: VcpuReg, value: u64) {
        use VcpuReg::*;
        let value = if r == Efer { value | EFER_SVME } else { value };
        if r == Rip {
            self.vmcb.control.exit_int_info = 0;
            self.vmcb.control.interrupt_shadow = 0;
        }
        if let Some(f) = self.field(r) {
            *f = value;
            return;
        }
        let (s, part) = segment(&mut self.vmcb, r).expect("every register is a field or a segment");
        match part {
            SegmentPart::Limit => s.limit = value as u32,
            SegmentPart::Base => s.base = value,
            SegmentPart::Word => set_segment_word(s, value),
        }
    }

    /// Moves the guest to `rip` past an instruction its VMM emulated: the interrupt
    /// shadow of an STI or MOV SS before it no longer applies (else `sti; hlt` resumed
    /// after the HLT would still block the interrupt the VMM injected for it).
    pub fn resume_at(&mut self, rip: u64) {
        self.vmcb.save.rip = rip;
        self.vmcb.control.interrupt_shadow &= !1;
    }

    /// Makes external interrupt `vector` pending (see `VcpuInjectIrq`).
    pub fn inject_irq(&mut self, vector: u8) {
        self.state.pending_vector = u64::from(vector);
    }

    /// Sets up event delivery for the next VMRUN. An event whose delivery an exit
    /// interrupted (EXITINTINFO) is delivered again first, as the hardware left it. A
    /// pending interrupt goes in by event injection when the guest can take it
    /// (RFLAGS.IF set, no interrupt shadow); otherwise a virtual interrupt request with
    /// the VINTR intercept makes the guest exit as soon as it can, and the next call
    /// injects it. Returns whether an interrupt is still waiting for its window.
    ///
    /// While the window is requested, CR8 writes exit (`exit::WRITE_CR8`): under
    /// QEMU 7.2 a guest's CR8 write with V_IRQ pending aborts the whole emulator. The
    /// caller then runs the guest again without the request ([`Self::drop_window`]),
    /// so the write executes, and the interrupt waits for the next Run.
    pub fn prepare_events(&mut self) -> bool {
        use super::vmcb::int_ctl::{V_IGN_TPR, V_INTR_PRIO_MAX, V_IRQ};
        use super::vmcb::{intercept1, EVENT_VALID, RFLAGS_IF};
        self.drop_window();
        self.state.injected = 0;
        let c = &mut self.vmcb.control;
        c.event_inj = 0;
        if c.exit_code == super::vmcb::exit::SHUTDOWN {
            // A shutdown's EXITINTINFO (under QEMU: the #DF of a triple fault) is an
            // event that can never be delivered: repeating it would shut the guest
            // down again at once, whatever state the VMM writes to restart it.
            c.exit_int_info = 0;
        }
        if c.exit_int_info & EVENT_VALID != 0 {
            c.event_inj = c.exit_int_info;
            c.exit_int_info = 0;
            self.state.injected = c.event_inj;
            return self.state.pending_vector != 0;
        }
        let vector = self.state.pending_vector;
        if vector == 0 {
            return false;
        }
        if self.vmcb.save.rflags & RFLAGS_IF != 0 && c.interrupt_shadow & 1 == 0 {
            // Type 0 (external interrupt), valid.
            c.event_inj = EVENT_VALID | vector;
            self.state.injected = c.event_inj;
            self.state.pending_vector = 0;
            return false;
        }
        c.int_vector = vector as u32;
        c.int_ctl |= V_IRQ | V_INTR_PRIO_MAX | V_IGN_TPR;
        c.intercept1 |= intercept1::VINTR;
        c.intercept_cr |= super::vmcb::INTERCEPT_CR8_WRITE;
        true
    }

    /// After a VMRUN: an event injected into a run the hardware refused (VMRUN's
    /// consistency checks: the guest never ran) was not delivered. An external
    /// interrupt from InjectIrq is pending again (delivered when the guest can take it,
    /// its state may have changed by then); any other (an interrupted delivery being
    /// repeated) is kept for repetition, as EXITINTINFO would have held it.
    pub fn after_run(&mut self) {
        use super::vmcb::EVENT_VALID;
        let injected = core::mem::take(&mut self.state.injected);
        if !super::vmcb::exit::is_invalid(self.vmcb.control.exit_code) || injected & EVENT_VALID == 0 {
            return;
        }
        let external = (injected >> 8) & 7 == 0;
        if external && self.state.pending_vector == 0 {
            self.state.pending_vector = injected & 0xff;
        } else if !external {
            self.vmcb.control.exit_int_info = injected;
        }
    }

    /// Withdraws a request for the guest's interrupt window (the vector stays pending).
    pub fn drop_window(&mut self) {
        use super::vmcb::int_ctl::{V_IGN_TPR, V_INTR_PRIO_MAX, V_IRQ};
        let c = &mut self.vmcb.control;
        c.int_ctl &= !(V_IRQ | V_INTR_PRIO_MAX | V_IGN_TPR);
        c.intercept1 &= !super::vmcb::intercept1::VINTR;
        c.intercept_cr &= !super::vmcb::INTERCEPT_CR8_WRITE;
    }

    /// The exit the VMCB reports, in the ABI's terms.
    pub fn exit(&mut self) -> VmExit {
        let c = &self.vmcb.control;
        let (code, info1, info2) = (c.exit_code, c.exit_info1, c.exit_info2);
        // RAX..R15 and RSP in VcpuReg order, from where they are (the tests check the
        // order against `read`).
        let (s, g) = (&self.vmcb.save, &self.state.gprs);
        let gprs = [
            s.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15,
            s.rsp,
        ];
        let (rax, rcx) = (s.rax, g.rcx);
        let (kind, a, b, next_rip) = classify(code, info1, info2, rax, rcx);
        VmExit { kind, a, b, rip: self.vmcb.save.rip, next_rip, hw_code: code, hw_info1: info1, hw_info2: info2, gprs }
    }
}

/// Translates an SVM exit (code, EXITINFO1, EXITINFO2, guest RAX and RCX) into the
/// ABI's kind, words a and b, and the next RIP where the hardware gives it.
pub fn classify(code: u64, info1: u64, info2: u64, rax: u64, rcx: u64) -> (Option<VmExitKind>, u64, u64, u64) {
    use VmExitKind as K;
    match code {
        exit::IOIO => {
            let size = if info1 & (1 << 4) != 0 {
                1
            } else if info1 & (1 << 5) != 0 {
                2
            } else {
                4
            };
            let io = IoExit {
                port: (info1 >> 16) as u16,
                size,
                is_in: info1 & 1 != 0,
                string: info1 & (1 << 2) != 0,
                rep: info1 & (1 << 3) != 0,
            };
            (Some(K::Io), io.encode(), 0, info2)
        }
        exit::MSR => (Some(K::Msr), (rcx & 0xffff_ffff) | (info1 & 1) << 32, 0, 0),
        exit::CPUID => (Some(K::Cpuid), rax & 0xffff_ffff, rcx & 0xffff_ffff, 0),
        exit::HLT => (Some(K::Hlt), 0, 0, 0),
        exit::NPF => {
            let mut access = 0;
            if info1 & (1 << 1) != 0 {
                access |= NPF_WRITE;
            }
            if info1 & (1 << 4) != 0 {
                access |= NPF_EXECUTE;
            }
            if info1 & 1 != 0 {
                access |= NPF_PRESENT;
            }
            (Some(K::NestedPageFault), info2, access, 0)
        }
        exit::INTR | exit::NMI | exit::SMI | exit::INIT => (Some(K::Interrupt), 0, 0, 0),
        exit::SHUTDOWN => (Some(K::Shutdown), 0, 0, 0),
        _ if exit::is_invalid(code) => (Some(K::Invalid), info1, 0, 0),
        exit::VMMCALL => (Some(K::Vmcall), 0, 0, 0),
        exit::EXCEPTION_FIRST..=exit::EXCEPTION_LAST => (None, code - exit::EXCEPTION_FIRST, 0, 0),
        _ if is_denied(code) => (Some(K::Denied), code, 0, 0),
        _ => (None, 0, 0, 0),
    }
}

/// Exits of instructions the kernel never lets a guest execute (see `Vmcb::init_controls`).
fn is_denied(code: u64) -> bool {
    matches!(code, exit::DR_READ_FIRST..=exit::DR_WRITE_LAST)
        || matches!(code, 0x76 | 0x7a | 0x7d | 0x80 | 0x82..=0x86 | 0x89..=0x8d)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::boxed::Box;

    fn object() -> Box<VcpuObject> {
        // SAFETY: every field is an integer or a byte array; zero is valid.
        unsafe { Box::new(core::mem::zeroed()) }
    }

    #[test]
    fn every_register_reads_back_what_was_written() {
        let mut v = object();
        for r in VcpuReg::ALL {
            let value = 0x0123_4567_89ab_0000 | r.raw();
            v.write(*r, value);
        }
        for r in VcpuReg::ALL {
            let value = 0x0123_4567_89ab_0000 | r.raw();
            let want = match r {
                VcpuReg::Efer => value | EFER_SVME,
                VcpuReg::GdtrLimit | VcpuReg::IdtrLimit => value & 0xffff_ffff,
                VcpuReg::Cs
                | VcpuReg::Ss
                | VcpuReg::Ds
                | VcpuReg::Es
                | VcpuReg::Fs
                | VcpuReg::Gs
                | VcpuReg::Tr
                | VcpuReg::Ldtr => value & !(0xf000 << 16),
                _ => value,
            };
            assert_eq!(v.read(*r), want, "{r:?}");
        }
        // Distinct registers land in distinct places.
        assert_eq!(v.vmcb.save.rip, 0x0123_4567_89ab_0000 | VcpuReg::Rip.raw());
        assert_eq!(v.state.gprs.r15, 0x0123_4567_89ab_0000 | VcpuReg::R15.raw());
        assert_eq!(v.vmcb.save.cs.base, 0x0123_4567_89ab_0000 | VcpuReg::CsBase.raw());
    }

    #[test]
    fn writing_rip_drops_an_interrupted_delivery_and_the_shadow() {
        let mut v = object();
        v.vmcb.control.exit_int_info = super::super::vmcb::EVENT_VALID | 14;
        v.vmcb.control.interrupt_shadow = 1;
        v.write(VcpuReg::Rax, 1);
        assert_ne!(v.vmcb.control.exit_int_info, 0, "only RIP moves the guest");
        v.write(VcpuReg::Rip, 0x1000);
        assert_eq!((v.vmcb.control.exit_int_info, v.vmcb.control.interrupt_shadow), (0, 0));
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, 0);
    }

    #[test]
    fn efer_always_keeps_svme() {
        let mut v = object();
        v.write(VcpuReg::Efer, 0);
        assert_eq!(v.read(VcpuReg::Efer), EFER_SVME);
    }

    #[test]
    fn exits_translate_to_the_abi() {
        // OUT dx, al to 0x3f8: type 0 (out), 8-bit, port in bits 16..32.
        let (k, a, _, next) = classify(exit::IOIO, 0x03f8_0010, 0x10_0005, 0, 0);
        assert_eq!((k, next), (Some(VmExitKind::Io), 0x10_0005));
        assert_eq!(IoExit::decode(a), IoExit { port: 0x3f8, size: 1, is_in: false, string: false, rep: false });
        let (_, a, _, _) = classify(exit::IOIO, 0x03fd_0021, 0, 0, 0);
        assert_eq!(IoExit::decode(a), IoExit { port: 0x3fd, size: 2, is_in: true, string: false, rep: false });
        let (k, a, b, _) = classify(exit::NPF, 0b1_0011, 0x4000_0000, 0, 0);
        assert_eq!((k, a, b), (Some(VmExitKind::NestedPageFault), 0x4000_0000, NPF_WRITE | NPF_EXECUTE | NPF_PRESENT));
        let (k, a, _, _) = classify(exit::MSR, 1, 0, 0, 0xffff_ffff_c000_0080);
        assert_eq!((k, a), (Some(VmExitKind::Msr), 0xc000_0080 | 1 << 32));
        assert_eq!(classify(exit::CPUID, 0, 0, 7, 1), (Some(VmExitKind::Cpuid), 7, 1, 0));
        assert_eq!(classify(exit::INTR, 0, 0, 0, 0).0, Some(VmExitKind::Interrupt));
        assert_eq!(classify(exit::INVALID, 0, 0, 0, 0).0, Some(VmExitKind::Invalid));
        assert_eq!(classify(0xffff_ffff, 0, 0, 0, 0).0, Some(VmExitKind::Invalid), "QEMU's 32-bit -1");
        assert_eq!(classify(0x80, 0, 0, 0, 0), (Some(VmExitKind::Denied), 0x80, 0, 0));
        assert_eq!(classify(0x76, 0, 0, 0, 0).0, Some(VmExitKind::Denied), "INVD");
        assert_eq!(classify(0x8d, 0, 0, 0, 0).0, Some(VmExitKind::Denied), "XSETBV");
        assert_eq!(classify(0x33, 0, 0, 0, 0).0, Some(VmExitKind::Denied), "a DR write");
        assert_eq!(classify(0x4e, 0, 0, 0, 0).0, None, "an exception the kernel does not intercept");
    }

    #[test]
    fn a_pending_interrupt_is_injected_when_the_guest_can_take_it() {
        use super::super::vmcb::{int_ctl::V_IRQ, intercept1::VINTR, EVENT_VALID, RFLAGS_IF};
        let mut v = object();
        v.inject_irq(0x30);
        // IF clear: a window request, nothing injected yet.
        assert!(v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, 0);
        assert_eq!((v.vmcb.control.int_vector, v.vmcb.control.int_ctl & V_IRQ), (0x30, V_IRQ));
        assert_ne!(v.vmcb.control.intercept1 & VINTR, 0);
        let cr8 = super::super::vmcb::INTERCEPT_CR8_WRITE;
        assert_ne!(v.vmcb.control.intercept_cr & cr8, 0, "CR8 writes exit while V_IRQ is pending");
        v.drop_window();
        assert_eq!((v.vmcb.control.int_ctl & V_IRQ, v.vmcb.control.intercept_cr & cr8), (0, 0));
        assert_eq!(v.state.pending_vector, 0x30, "the vector still waits");
        assert!(v.prepare_events());
        // IF set but an interrupt shadow: still waiting.
        v.vmcb.save.rflags = RFLAGS_IF;
        v.vmcb.control.interrupt_shadow = 1;
        assert!(v.prepare_events());
        // Interruptible: injected once, the window request gone.
        v.vmcb.control.interrupt_shadow = 0;
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, EVENT_VALID | 0x30);
        assert_eq!((v.vmcb.control.int_ctl & V_IRQ, v.vmcb.control.intercept1 & VINTR), (0, 0));
        assert_eq!(v.vmcb.control.intercept_cr & super::super::vmcb::INTERCEPT_CR8_WRITE, 0);
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, 0, "delivered once");
    }

    #[test]
    fn a_refused_vmrun_loses_no_injected_event() {
        use super::super::vmcb::{exit, EVENT_VALID, RFLAGS_IF};
        let mut v = object();
        v.vmcb.save.rflags = RFLAGS_IF;
        v.inject_irq(0x41);
        assert!(!v.prepare_events());
        assert_eq!(v.state.pending_vector, 0, "taken for injection");
        v.vmcb.control.exit_code = exit::INVALID_32;
        v.after_run();
        assert_eq!(v.state.pending_vector, 0x41, "pending again");
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, EVENT_VALID | 0x41);
        // Delivered this time: nothing comes back.
        v.vmcb.control.exit_code = exit::HLT;
        v.after_run();
        assert_eq!(v.state.pending_vector, 0);
        // A repeated delivery (#PF with an error code) refused by VMRUN is kept.
        let pf = EVENT_VALID | 1 << 11 | 3 << 8 | 14 | 2 << 32;
        v.vmcb.control.exit_int_info = pf;
        v.prepare_events();
        v.vmcb.control.exit_code = exit::INVALID;
        v.after_run();
        assert_eq!(v.vmcb.control.exit_int_info, pf);
    }

    #[test]
    fn an_interrupted_delivery_is_repeated_first() {
        use super::super::vmcb::{EVENT_VALID, RFLAGS_IF};
        let mut v = object();
        v.vmcb.save.rflags = RFLAGS_IF;
        v.inject_irq(0x40);
        // A #PF (vector 14, type 3, error code 2) was being delivered when the guest exited.
        let interrupted = EVENT_VALID | 1 << 11 | 3 << 8 | 14 | 2 << 32;
        v.vmcb.control.exit_int_info = interrupted;
        assert!(v.prepare_events(), "the VMM's interrupt waits");
        assert_eq!(v.vmcb.control.event_inj, interrupted);
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, EVENT_VALID | 0x40);
    }

    #[test]
    fn a_shutdown_leaves_no_event_to_repeat() {
        use super::super::vmcb::EVENT_VALID;
        let mut v = object();
        // A triple fault: the #DF (vector 8, type 3, error code 0) was being delivered.
        v.vmcb.control.exit_code = exit::SHUTDOWN;
        v.vmcb.control.exit_int_info = EVENT_VALID | 1 << 11 | 3 << 8 | 8;
        assert!(!v.prepare_events());
        assert_eq!(v.vmcb.control.event_inj, 0, "a VMM restarting the VCPU gets a clean start");
    }

    #[test]
    fn an_exit_record_carries_the_registers() {
        let mut v = object();
        v.write(VcpuReg::Rax, 0x41);
        v.write(VcpuReg::Rsp, 0x8000);
        v.write(VcpuReg::Rip, 0x10_0000);
        v.vmcb.control.exit_code = exit::IOIO;
        v.vmcb.control.exit_info1 = 0x03f8_0010;
        v.vmcb.control.exit_info2 = 0x10_0001;
        for (i, r) in VcpuReg::ALL.iter().take(16).enumerate() {
            v.write(*r, 0x100 + i as u64);
        }
        let e = v.exit();
        for (i, r) in VcpuReg::ALL.iter().take(16).enumerate() {
            assert_eq!(e.gprs[i], v.read(*r), "{r:?}");
        }
        v.write(VcpuReg::Rax, 0x41);
        v.write(VcpuReg::Rsp, 0x8000);
        v.write(VcpuReg::Rip, 0x10_0000);
        let e = v.exit();
        assert_eq!((e.kind, e.rip, e.next_rip), (Some(VmExitKind::Io), 0x10_0000, 0x10_0001));
        assert_eq!((e.gpr(VcpuReg::Rax), e.gpr(VcpuReg::Rsp)), (Some(0x41), Some(0x8000)));
    }
}
