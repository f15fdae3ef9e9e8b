//! Virtual machines: VCPU and GuestSpace caps and their invocations.
//!
//! A VMM makes a [`GuestSpace`] and its tables from untyped, maps frames into it (the
//! same frames, through copied caps, into its own VSpace to fill them), writes a
//! [`Vcpu`]'s registers and calls [`Vcpu::run`] in a loop, handling each exit
//! (docs/vm.md).

use abi::invocation::Invocation;
use abi::rights::CapRights;
use abi::vcpu::{self, VcpuReg, VmExit, EXIT_WORDS, VCPU_REG_COUNT};

use crate::alloc::{map_frame_in, ObjectAllocator, SlotAllocator};
use crate::cap::{invoke, ipc_buffer, CPtr, Frame, Result, VSpace};

/// A virtual CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vcpu(pub CPtr);

/// A guest-physical address space (nested page-table root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestSpace(pub CPtr);

impl GuestSpace {
    /// Maps `frame` at guest-physical `gpa`, creating the nested table levels it needs
    /// from `objects` (Frame::Map and PageTable::Map take a GuestSpace where they take
    /// a VSpace).
    pub fn map_frame(
        self,
        objects: &mut ObjectAllocator<'_>,
        slots: &SlotAllocator,
        frame: Frame,
        gpa: u64,
        rights: CapRights,
        attributes: u64,
    ) -> Result<()> {
        map_frame_in(objects, slots, VSpace(self.0), frame, gpa, rights, attributes)
    }
}

impl Vcpu {
    /// Runs the guest in `space` until its next exit; `resume` sets RIP (and RAX)
    /// first, as after an emulated instruction.
    pub fn run(self, space: GuestSpace, resume: Resume) -> Result<VmExit> {
        let mrs: &[u64] = match resume {
            Resume::AsIs => &[],
            Resume::At(rip) => &[rip],
            Resume::AtWithRax(rip, rax) => &[rip, rax],
        };
        let resume_words = [mrs.first().copied().unwrap_or(0), mrs.get(1).copied().unwrap_or(0)];
        invoke(self.0, Invocation::VcpuRun, &resume_words[..mrs.len()], &[space.0])?;
        let mut words = [0u64; EXIT_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: the kernel wrote the exit record to this thread's IPC buffer.
            *w = unsafe { (*ipc_buffer()).msg[i] };
        }
        Ok(VmExit::decode(&words))
    }

    /// Reads `out.len()` registers from `first` on.
    pub fn read_regs(self, first: VcpuReg, out: &mut [u64]) -> Result<()> {
        invoke(self.0, Invocation::VcpuReadRegs, &[first.raw(), out.len() as u64], &[])?;
        for (i, r) in out.iter_mut().enumerate() {
            // SAFETY: the kernel wrote `out.len()` words to this thread's IPC buffer.
            *r = unsafe { (*ipc_buffer()).msg[i] };
        }
        Ok(())
    }

    /// One register.
    pub fn read(self, r: VcpuReg) -> Result<u64> {
        let mut v = [0u64];
        self.read_regs(r, &mut v)?;
        Ok(v[0])
    }

    /// Writes `values` to the registers from `first` on (at most 54).
    pub fn write_regs(self, first: VcpuReg, values: &[u64]) -> Result<()> {
        let mut mrs = [0u64; 2 + abi::vcpu::VCPU_REG_COUNT];
        let n = values.len().min(abi::vcpu::VCPU_REG_COUNT);
        mrs[0] = first.raw();
        mrs[1] = values.len() as u64;
        mrs[2..2 + n].copy_from_slice(&values[..n]);
        invoke(self.0, Invocation::VcpuWriteRegs, &mrs[..2 + n], &[]).map(|_| ())
    }

    /// One register.
    pub fn write(self, r: VcpuReg, value: u64) -> Result<()> {
        self.write_regs(r, &[value])
    }

    /// Makes external interrupt `vector` pending in the guest.
    pub fn inject_irq(self, vector: u64) -> Result<()> {
        invoke(self.0, Invocation::VcpuInjectIrq, &[vector], &[]).map(|_| ())
    }
}

/// Where [`Vcpu::run`] resumes the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Where it stopped (a retried instruction, or the first entry).
    AsIs,
    /// At this RIP (past an emulated instruction).
    At(u64),
    /// At this RIP with this RAX (past an emulated IN).
    AtWithRax(u64, u64),
}

/// The GDT entries [`long_mode_registers`] expects at `gdt` + 8 and + 16: a 64-bit code
/// segment and a flat data segment (what an IRETQ or a segment load reads back).
pub const LONG_MODE_GDT: [u64; 2] = [0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff];

/// The register state of a 64-bit guest at CPL 0 entering at `rip` with stack `rsp`:
/// paging on with the tables at `cr3` (PAE, long mode active), flat segments (code
/// 0x08, data 0x10, a busy TSS at 0x18) from a three-entry GDT at `gdt` (see
/// [`LONG_MODE_GDT`]), no IDT, everything else zero.
pub fn long_mode_registers(cr3: u64, gdt: u64, rip: u64, rsp: u64) -> [u64; VCPU_REG_COUNT] {
    use VcpuReg::*;
    let mut r = [0u64; VCPU_REG_COUNT];
    let mut set = |reg: VcpuReg, v: u64| r[reg.raw() as usize] = v;
    set(Rip, rip);
    set(Rsp, rsp);
    set(Rflags, 0x2);
    set(Cr0, 0x8000_0031); // PG, NE, ET, PE
    set(Cr3, cr3);
    set(Cr4, 0x20); // PAE
    set(Efer, 0x500); // LME, LMA
    set(Dr6, 0xffff_0ff0);
    set(Dr7, 0x400);
    set(Pat, 0x0007_0406_0007_0406);
    set(Cs, vcpu::segment(0x08, vcpu::ATTR_CODE64, 0xffff_ffff));
    for s in [Ss, Ds, Es, Fs, Gs] {
        set(s, vcpu::segment(0x10, vcpu::ATTR_DATA, 0xffff_ffff));
    }
    set(Tr, vcpu::segment(0x18, vcpu::ATTR_TSS64, 0x67));
    set(GdtrBase, gdt);
    set(GdtrLimit, 23);
    r
}
