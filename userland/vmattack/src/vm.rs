//! A minimal VM for the attacks: a GuestSpace, 16 pages of RAM, a VCPU.
//!
//! A minimal VM for the attacks: a GuestSpace with explicit nested tables, 16 pages of
//! guest RAM, a VCPU in long mode, and one snippet of guest code at a time.
//!
//! The guest's own page tables identity-map guest-physical 0..512 GiB (2 MiB pages for
//! the first GiB, 1 GiB pages above), so a snippet can aim a load or store at any
//! guest-physical address below 512 GiB: only what the GuestSpace maps may answer.

use libcap::abi::object::ObjectType;
use libcap::abi::rights::CapRights;
use libcap::abi::slots;
use libcap::abi::vcpu::{VcpuReg, VmExit, VmExitKind, VCPU_REG_COUNT};
use libcap::alloc::{map_frame, ObjectAllocator, SlotAllocator};
use libcap::cap::{CNode, Frame, PageTable, Result, VSpace, ATTR_EXECUTABLE};
use libcap::vm::{GuestSpace, Resume, Vcpu};

use crate::snippets::Snippet;

/// Guest RAM pages (guest-physical 0..PAGES * 4 KiB).
pub const PAGES: usize = 16;
/// The guest's PML4 (guest-physical).
pub const PML4: u64 = 0x1000;
/// Its PDPT.
pub const PDPT: u64 = 0x2000;
/// Its page directory of the first GiB.
pub const PD: u64 = 0x3000;
/// Its GDT.
pub const GDT: u64 = 0x5000;
/// Where the snippet runs.
pub const CODE: u64 = 0x8000;
/// A data page the attacks read and write.
pub const DATA: u64 = 0x9000;
/// A second data page.
pub const DATA2: u64 = 0xa000;
/// Top of the guest's stack.
pub const STACK_TOP: u64 = (PAGES as u64) * 4096;
/// The port LoadTwice / StoreTwice report on between their two accesses.
pub const MID_PORT: u16 = 0x600;
/// CR4.PAE, OSFXSR and OSXMMEXCPT (SSE on in the guest).
const CR4_PAE: u64 = 1 << 5 | 1 << 9 | 1 << 10;

/// One VM.
pub struct Vm {
    /// Its guest-physical space.
    pub space: GuestSpace,
    /// Its VCPU.
    pub vcpu: Vcpu,
    /// Where guest RAM appears in the VMM (window + guest-physical).
    pub window: u64,
    /// The caps through which guest RAM is mapped in the GuestSpace (page i: gpa i * 4 KiB).
    pub guest_frames: [Frame; PAGES],
    /// The nested PDPT, PD and PT that map guest RAM.
    pub tables: [PageTable; 3],
    /// Extra CR4 bits the guest starts with.
    pub cr4_extra: u64,
}

/// RW.
pub fn rw() -> CapRights {
    CapRights::READ.union(CapRights::WRITE)
}

impl Vm {
    /// Builds a VM whose RAM the VMM sees at `window`.
    pub fn new(objects: &mut ObjectAllocator<'_>, slots: &SlotAllocator, window: u64) -> Result<Vm> {
        let space = GuestSpace(objects.alloc(slots, ObjectType::GuestSpace, 0)?);
        let vcpu = Vcpu(objects.alloc(slots, ObjectType::Vcpu, 0)?);
        let mut tables = [PageTable(0); 3];
        for (t, ty) in tables.iter_mut().zip([ObjectType::Pdpt, ObjectType::PageDirectory, ObjectType::PageTable]) {
            *t = PageTable(objects.alloc(slots, ty, 0)?);
            t.map(VSpace(space.0), 0)?;
        }
        let mut guest_frames = [Frame(0); PAGES];
        let root = CNode(slots::INIT_CNODE);
        for (i, g) in guest_frames.iter_mut().enumerate() {
            let gpa = i as u64 * 4096;
            let frame = Frame(objects.alloc(slots, ObjectType::Frame4K, 0)?);
            map_frame(objects, slots, frame, window + gpa, rw(), 0)?;
            let copy = slots.alloc()?;
            CNode::copy(root.slot(copy), root.slot(frame.0), CapRights::ALL)?;
            Frame(copy).map(VSpace(space.0), gpa, rw(), ATTR_EXECUTABLE)?;
            *g = Frame(copy);
        }
        let vm = Vm { space, vcpu, window, guest_frames, tables, cr4_extra: 0 };
        vm.build_page_tables();
        Ok(vm)
    }

    /// Writes `value` at guest-physical `gpa` (in RAM) through the VMM window.
    pub fn put(&self, gpa: u64, value: u64) {
        // SAFETY: guest RAM is mapped read-write at the window for the VM's life.
        unsafe { core::ptr::write_volatile((self.window + gpa) as *mut u64, value) }
    }

    /// Reads guest-physical `gpa` (in RAM) through the VMM window.
    pub fn get(&self, gpa: u64) -> u64 {
        // SAFETY: as in `put`.
        unsafe { core::ptr::read_volatile((self.window + gpa) as *const u64) }
    }

    fn build_page_tables(&self) {
        const PRESENT_WRITABLE: u64 = 0x3;
        const LARGE: u64 = 0x83;
        self.put(PML4, PDPT | PRESENT_WRITABLE);
        self.put(PDPT, PD | PRESENT_WRITABLE);
        for i in 1..512u64 {
            self.put(PDPT + 8 * i, i << 30 | LARGE);
        }
        for i in 0..512u64 {
            self.put(PD + 8 * i, i << 21 | LARGE);
        }
        self.put(GDT + 8, libcap::vm::LONG_MODE_GDT[0]);
        self.put(GDT + 16, libcap::vm::LONG_MODE_GDT[1]);
    }

    /// The register state every attack starts from: long mode, flat segments, RIP at
    /// the snippet, no IDT.
    pub fn initial_registers(&self) -> [u64; VCPU_REG_COUNT] {
        let mut r = libcap::vm::long_mode_registers(PML4, GDT, CODE, STACK_TOP);
        // PAE plus SSE (OSFXSR, OSXMMEXCPT: the SSE checks run SSE in the guest).
        r[VcpuReg::Cr4.raw() as usize] = CR4_PAE | self.cr4_extra;
        r
    }

    /// Loads `snippet`, resets the registers and sets `regs` on top.
    pub fn load(&self, snippet: Snippet, regs: &[(VcpuReg, u64)]) -> Result<()> {
        let code = snippet.code();
        let dest = (self.window + CODE) as *mut u8;
        // SAFETY: the code page is mapped read-write in the window; a slot is 64 bytes.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), dest, code.len()) };
        self.vcpu.write_regs(VcpuReg::Rax, &self.initial_registers())?;
        for (r, v) in regs {
            self.vcpu.write(*r, *v)?;
        }
        Ok(())
    }

    /// Runs until the next exit.
    pub fn run(&self) -> Result<VmExit> {
        self.vcpu.run(self.space, Resume::AsIs)
    }

    /// Runs `vcpu` in `space` to the first exit that is not a host interrupt (a timer
    /// tick may stop any run; a check that wanted another exit must not fail on it).
    pub fn run_in(vcpu: libcap::vm::Vcpu, space: GuestSpace) -> Result<VmExit> {
        let mut exit = vcpu.run(space, Resume::AsIs);
        for _ in 0..1000 {
            match exit {
                Ok(e) if e.kind == Some(VmExitKind::Interrupt) => exit = vcpu.run(space, Resume::AsIs),
                other => return other,
            }
        }
        exit
    }

    /// Runs from `rip` on, to the first exit that is not a host interrupt.
    pub fn run_at(&self, rip: u64) -> Result<VmExit> {
        self.settle(self.vcpu.run(self.space, Resume::At(rip)))
    }

    /// Resumes after host interrupts (they may stop any run) until another exit.
    fn settle(&self, mut exit: Result<VmExit>) -> Result<VmExit> {
        for _ in 0..1000 {
            match exit {
                Ok(e) if e.kind == Some(VmExitKind::Interrupt) => exit = self.run(),
                other => return other,
            }
        }
        exit
    }

    /// Loads `snippet` with `regs` and runs it to its first exit that is not a host
    /// interrupt.
    pub fn attempt(&self, snippet: Snippet, regs: &[(VcpuReg, u64)]) -> Result<VmExit> {
        self.load(snippet, regs)?;
        self.settle(self.run())
    }
}
