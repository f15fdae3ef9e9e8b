//! Virtual CPUs: guest registers, exit kinds, the VcpuRun exit record.
//!
//! The interface is architecture-neutral: the kernel's AMD SVM backend translates its
//! exit codes into [`VmExitKind`] and its VMCB fields into [`VcpuReg`]; a VT-x backend
//! would do the same from VMCS fields (docs/vm.md). Segment attributes are the
//! descriptor's access byte (bits 0..8) and its flags nibble (G, D/B, L, AVL in bits
//! 8..12), which is SVM's format and VT-x's access-rights format without its gap.

crate::abi_enum! {
    /// A guest register as VcpuReadRegs / VcpuWriteRegs number it.
    pub enum VcpuReg: u64 {
        /// General-purpose registers.
        Rax = 0,
        #[allow(missing_docs)]
        Rbx = 1,
        #[allow(missing_docs)]
        Rcx = 2,
        #[allow(missing_docs)]
        Rdx = 3,
        #[allow(missing_docs)]
        Rsi = 4,
        #[allow(missing_docs)]
        Rdi = 5,
        #[allow(missing_docs)]
        Rbp = 6,
        #[allow(missing_docs)]
        R8 = 7,
        #[allow(missing_docs)]
        R9 = 8,
        #[allow(missing_docs)]
        R10 = 9,
        #[allow(missing_docs)]
        R11 = 10,
        #[allow(missing_docs)]
        R12 = 11,
        #[allow(missing_docs)]
        R13 = 12,
        #[allow(missing_docs)]
        R14 = 13,
        #[allow(missing_docs)]
        R15 = 14,
        /// Stack pointer.
        Rsp = 15,
        /// Instruction pointer.
        Rip = 16,
        /// Flags.
        Rflags = 17,
        /// Control registers.
        Cr0 = 18,
        #[allow(missing_docs)]
        Cr2 = 19,
        #[allow(missing_docs)]
        Cr3 = 20,
        #[allow(missing_docs)]
        Cr4 = 21,
        /// EFER (the kernel keeps the bit its hardware needs set).
        Efer = 22,
        /// Debug status and control.
        Dr6 = 23,
        #[allow(missing_docs)]
        Dr7 = 24,
        /// The guest's PAT.
        Pat = 25,
        /// Segments: [`segment`] word (selector, attributes, limit), then the base.
        Cs = 26,
        #[allow(missing_docs)]
        CsBase = 27,
        #[allow(missing_docs)]
        Ss = 28,
        #[allow(missing_docs)]
        SsBase = 29,
        #[allow(missing_docs)]
        Ds = 30,
        #[allow(missing_docs)]
        DsBase = 31,
        #[allow(missing_docs)]
        Es = 32,
        #[allow(missing_docs)]
        EsBase = 33,
        #[allow(missing_docs)]
        Fs = 34,
        #[allow(missing_docs)]
        FsBase = 35,
        #[allow(missing_docs)]
        Gs = 36,
        #[allow(missing_docs)]
        GsBase = 37,
        #[allow(missing_docs)]
        Tr = 38,
        #[allow(missing_docs)]
        TrBase = 39,
        #[allow(missing_docs)]
        Ldtr = 40,
        #[allow(missing_docs)]
        LdtrBase = 41,
        /// Descriptor tables: limit, then base.
        GdtrLimit = 42,
        #[allow(missing_docs)]
        GdtrBase = 43,
        #[allow(missing_docs)]
        IdtrLimit = 44,
        #[allow(missing_docs)]
        IdtrBase = 45,
        /// The system-call MSRs (every guest RDMSR/WRMSR exits: the VMM emulates them
        /// with these).
        Star = 46,
        #[allow(missing_docs)]
        Lstar = 47,
        #[allow(missing_docs)]
        Cstar = 48,
        #[allow(missing_docs)]
        Sfmask = 49,
        #[allow(missing_docs)]
        KernelGsBase = 50,
        #[allow(missing_docs)]
        SysenterCs = 51,
        #[allow(missing_docs)]
        SysenterEsp = 52,
        #[allow(missing_docs)]
        SysenterEip = 53,
    }
}

/// Number of [`VcpuReg`] registers.
pub const VCPU_REG_COUNT: usize = 54;

/// A segment register's word: selector (bits 0..16), attributes (16..28), limit (32..64).
pub const fn segment(selector: u16, attributes: u16, limit: u32) -> u64 {
    selector as u64 | ((attributes as u64 & SEGMENT_ATTR_MASK) << 16) | (limit as u64) << 32
}

/// The attribute bits a segment word keeps.
pub const SEGMENT_ATTR_MASK: u64 = 0xfff;

/// Whether a segment word (see [`segment`]) may be written to [`VcpuReg::Tr`]: present
/// (attribute bit 7), a system segment (bit 4 clear) and a TSS (type 1 or 3, 16-bit,
/// 9 or 11, 32/64-bit; available or busy). `VcpuWriteRegs` refuses any other with
/// InvalidArgument: QEMU's TCG stops the whole emulator ("invalid tss") when a guest
/// whose TR is not present takes an interrupt that reads its TSS. Available types are
/// taken because QEMU's LTR leaves one in TR (the busy bit only goes to the GDT), so
/// that is what a VMM reads back after a run; the kernel runs a busy one as its
/// available twin (QEMU's 32-bit stack switch stops the emulator, "invalid tss type",
/// on a busy one), which no hardware distinguishes while task switches exit.
pub const fn tr_word_valid(word: u64) -> bool {
    let attributes = (word >> 16) & SEGMENT_ATTR_MASK;
    attributes & 0x90 == 0x80 && matches!(attributes & 0xf, 1 | 3 | 9 | 11)
}

/// Attributes of a 64-bit code segment (present, DPL 0, execute/read, accessed, L, G).
pub const ATTR_CODE64: u16 = 0xa9b;
/// Attributes of a flat data segment (present, DPL 0, read/write, accessed, D/B, G).
pub const ATTR_DATA: u16 = 0xc93;
/// Attributes of a busy 64-bit TSS.
pub const ATTR_TSS64: u16 = 0x08b;

crate::abi_enum! {
    /// Why a guest stopped running, in the exit record's word 0.
    pub enum VmExitKind: u64 {
        /// An IN or OUT. a: [`IoExit`] bits; the VMM emulates it and resumes at
        /// `next_rip` (for IN with the value in RAX).
        Io = 1,
        /// RDMSR (a: MSR index) or WRMSR (a: index | 1 << 32; EDX:EAX in the registers).
        Msr = 2,
        /// CPUID: a: leaf (EAX), b: subleaf (ECX).
        Cpuid = 3,
        /// HLT: the guest waits for an interrupt.
        Hlt = 4,
        /// The guest touched a guest-physical address its GuestSpace does not map as
        /// the access needs. a: the guest-physical address, b: [`NPF_WRITE`] |
        /// [`NPF_EXECUTE`] | [`NPF_PRESENT`] (a mapping exists but forbids it).
        NestedPageFault = 5,
        /// A host interrupt stopped the guest (the kernel serves it when the VMM
        /// runs again): resume with Run.
        Interrupt = 6,
        /// The guest shut down (triple fault): its state is not resumable as it is.
        Shutdown = 7,
        /// The hardware refused the guest state (VMRUN's consistency checks): a:
        /// the hardware's detail, if any.
        Invalid = 8,
        /// VMMCALL: a hypercall to the VMM (arguments in the registers).
        Vmcall = 9,
        /// An instruction the kernel never lets a guest execute (the virtualization
        /// instructions, INVD, WBINVD, MONITOR/MWAIT, XSETBV, task switches, debug
        /// register accesses): a: the hardware's exit code.
        Denied = 10,
    }
}

/// `NestedPageFault` word b: the access was a write.
pub const NPF_WRITE: u64 = 1 << 0;
/// `NestedPageFault` word b: the access was an instruction fetch.
pub const NPF_EXECUTE: u64 = 1 << 1;
/// `NestedPageFault` word b: a mapping exists (the access broke its rights).
pub const NPF_PRESENT: u64 = 1 << 2;

/// An `Io` exit's word a.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoExit {
    /// The port.
    pub port: u16,
    /// Bytes: 1, 2 or 4.
    pub size: u8,
    /// IN (else OUT).
    pub is_in: bool,
    /// INS/OUTS (string form).
    pub string: bool,
    /// With a REP prefix.
    pub rep: bool,
}

impl IoExit {
    /// As word a.
    pub const fn encode(&self) -> u64 {
        self.port as u64
            | (self.size as u64) << 16
            | (self.is_in as u64) << 24
            | (self.string as u64) << 25
            | (self.rep as u64) << 26
    }
    /// From word a.
    pub const fn decode(a: u64) -> Self {
        IoExit {
            port: a as u16,
            size: (a >> 16) as u8,
            is_in: (a >> 24) & 1 != 0,
            string: (a >> 25) & 1 != 0,
            rep: (a >> 26) & 1 != 0,
        }
    }
}

/// Words of the exit record `VcpuRun` leaves in the IPC buffer.
pub const EXIT_WORDS: usize = 24;
/// Index of the first general-purpose register (RAX..R15, RSP in [`VcpuReg`] order) in
/// the exit record.
pub const EXIT_GPRS: usize = 8;

/// One exit, as `VcpuRun` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmExit {
    /// Why (`None`: a kind this ABI does not know, see `hw_code`).
    pub kind: Option<VmExitKind>,
    /// Kind-specific word a.
    pub a: u64,
    /// Kind-specific word b.
    pub b: u64,
    /// Guest RIP of the instruction that exited.
    pub rip: u64,
    /// Guest RIP of the next instruction, where the hardware told it (0: unknown; the
    /// VMM decodes the instruction's length).
    pub next_rip: u64,
    /// The hardware's own exit code and its two detail words (for logs).
    pub hw_code: u64,
    #[allow(missing_docs)]
    pub hw_info1: u64,
    #[allow(missing_docs)]
    pub hw_info2: u64,
    /// RAX..R15 and RSP, in [`VcpuReg`] order.
    pub gprs: [u64; 16],
}

impl VmExit {
    /// The record's words.
    pub fn encode(&self) -> [u64; EXIT_WORDS] {
        let mut w = [0u64; EXIT_WORDS];
        w[0] = self.kind.map_or(0, |k| k.raw());
        w[1] = self.a;
        w[2] = self.b;
        w[3] = self.rip;
        w[4] = self.next_rip;
        w[5] = self.hw_code;
        w[6] = self.hw_info1;
        w[7] = self.hw_info2;
        w[EXIT_GPRS..].copy_from_slice(&self.gprs);
        w
    }
    /// From the record's words.
    pub fn decode(w: &[u64; EXIT_WORDS]) -> Self {
        let mut gprs = [0u64; 16];
        gprs.copy_from_slice(&w[EXIT_GPRS..]);
        VmExit {
            kind: VmExitKind::try_from(w[0]).ok(),
            a: w[1],
            b: w[2],
            rip: w[3],
            next_rip: w[4],
            hw_code: w[5],
            hw_info1: w[6],
            hw_info2: w[7],
            gprs,
        }
    }
    /// Guest register `r` (RAX..R15, RSP) as the exit left it.
    pub fn gpr(&self, r: VcpuReg) -> Option<u64> {
        self.gprs.get(r.raw() as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tr_must_be_a_present_tss() {
        assert!(tr_word_valid(segment(0x18, ATTR_TSS64, 0x67)));
        assert!(tr_word_valid(segment(0, 0x083, 0xffff)), "16-bit busy TSS (the reset state)");
        assert!(!tr_word_valid(segment(0x18, ATTR_TSS64 & !0x80, 0x67)), "not present");
        assert!(tr_word_valid(segment(0x18, 0x089, 0x67)), "available (what QEMU's LTR leaves)");
        assert!(tr_word_valid(segment(0x18, 0x081, 0x67)), "16-bit available");
        assert!(!tr_word_valid(segment(0x18, 0x082, 0x67)), "an LDT");
        assert!(!tr_word_valid(segment(0x18, 0x08e, 0x67)), "an interrupt gate");
        assert!(!tr_word_valid(segment(0x18, 0x093, 0x67)), "a data segment");
        assert!(!tr_word_valid(0));
    }

    #[test]
    fn registers_and_kinds_round_trip() {
        assert_eq!(VcpuReg::ALL.len(), VCPU_REG_COUNT);
        for (i, r) in VcpuReg::ALL.iter().enumerate() {
            assert_eq!(r.raw(), i as u64);
            assert_eq!(VcpuReg::try_from(r.raw()), Ok(*r));
        }
        for k in VmExitKind::ALL {
            assert_eq!(VmExitKind::try_from(k.raw()), Ok(*k));
        }
        assert_eq!(VcpuReg::Rsp.raw() as usize, 15, "the exit record's GPRs end with RSP");
    }

    #[test]
    fn exit_record_round_trips() {
        let io = IoExit { port: 0x3f8, size: 1, is_in: false, string: false, rep: true };
        assert_eq!(IoExit::decode(io.encode()), io);
        let mut gprs = [0u64; 16];
        gprs.iter_mut().enumerate().for_each(|(i, g)| *g = i as u64 * 0x1111);
        let e = VmExit {
            kind: Some(VmExitKind::Io),
            a: io.encode(),
            b: 0,
            rip: 0x10_0000,
            next_rip: 0x10_0001,
            hw_code: 0x7b,
            hw_info1: 0x3f8_0010,
            hw_info2: 0x10_0001,
            gprs,
        };
        assert_eq!(VmExit::decode(&e.encode()), e);
        assert_eq!(e.gpr(VcpuReg::Rdx), Some(3 * 0x1111));
        assert_eq!(e.gpr(VcpuReg::Rip), None);
        let unknown = VmExit { kind: None, ..e };
        assert_eq!(VmExit::decode(&unknown.encode()).kind, None);
    }

    #[test]
    fn segment_word_keeps_fields_apart() {
        let w = segment(0x10, ATTR_DATA, 0xffff_ffff);
        assert_eq!((w as u16, (w >> 16) & SEGMENT_ATTR_MASK, w >> 32), (0x10, ATTR_DATA as u64, 0xffff_ffff));
        assert_eq!(segment(0, 0xffff, 0) >> 16, SEGMENT_ATTR_MASK);
    }
}
