//! The guest's memory layout and the ports the VMM emulates.

/// Guest RAM: guest-physical `0..RAM_BYTES`.
pub const RAM_BYTES: u64 = 128 * 1024;
/// The guest's PML4, PDPT and page directories (guest-physical).
pub const PML4: u64 = 0x1000;
/// PDPT.
pub const PDPT: u64 = 0x2000;
/// Page directory of the first GiB (one 2 MiB identity page).
pub const PD_LOW: u64 = 0x3000;
/// Page directory of the second GiB (one 2 MiB page at [`OUTSIDE`]).
pub const PD_1G: u64 = 0x4000;
/// The guest's GDT (null, 64-bit code at 0x08, data at 0x10).
pub const GDT: u64 = 0x5000;
/// The guest's IDT (the guest writes its one gate).
pub const IDT: u64 = 0x6000;
/// Where the guest kernel is loaded and starts.
pub const CODE: u64 = 0x10000;
/// The guest's initial stack pointer (top of RAM).
pub const STACK_TOP: u64 = RAM_BYTES;
/// A guest-physical page outside RAM that the VMM maps on the first fault.
pub const DEMAND_PAGE: u64 = 0x10_0000;
/// A guest-physical address the guest's own page tables map but its memory does not
/// contain.
pub const OUTSIDE: u64 = 0x4000_0000;
/// What the guest writes to [`DEMAND_PAGE`].
pub const PATTERN: u64 = 0x5a5a_1234;
/// What the guest puts in RAX before its load from [`OUTSIDE`].
pub const MARKER: u64 = 0x00c0_ffee;
/// COM1: a 16550 the VMM emulates (transmit and line status only).
pub const COM1: u16 = 0x3f8;
/// The guest reports its exit code here (one byte).
pub const EXIT_PORT: u16 = 0x501;
/// The guest reports what it wrote to the demand page here.
pub const CHECK_PORT: u16 = 0x510;
/// The guest reports RAX after the skipped load from [`OUTSIDE`] here.
pub const OUTSIDE_PORT: u16 = 0x511;
/// The guest announces the start and the end of its spin here.
pub const SPIN_PORT: u16 = 0x512;
/// The guest's interrupt handler reports the vector here.
pub const IRQ_PORT: u16 = 0x513;
/// The vector the VMM injects when the guest halts.
pub const VECTOR: u64 = 0x30;
/// Host interrupts the VMM waits for before it ends the guest's spin.
pub const SPIN_INTERRUPTS: u32 = 3;
/// Where guest RAM appears in the VMM's own VSpace (VMM_WINDOW + guest-physical).
pub const VMM_WINDOW: u64 = 0x0000_4000_0000_0000;
/// The CPUID vendor string the VMM gives the guest: EBX, EDX, ECX.
pub const VENDOR: [u32; 3] = [u32::from_le_bytes(*b"CapK"), u32::from_le_bytes(*b"erne"), u32::from_le_bytes(*b"lVMM")];

/// The edu mode: the guest's third page directory (2 GiB: the edu BAR).
pub const PD_2G: u64 = 0x7000;
/// Where the VMM maps the assigned edu's BAR 0 (guest-physical, identity for the guest).
pub const EDU_BAR: u64 = 0x8000_0000;
/// The DMA source and destination buffers and the interrupt flag (guest RAM).
pub const SRC: u64 = 0x9000;
/// DMA destination.
pub const DST: u64 = 0xa000;
/// Set by the guest's edu interrupt handler.
pub const FLAG: u64 = 0xb000;
/// A guest-physical address outside guest memory the guest aims a DMA at.
pub const OUTSIDE_DMA: u64 = 0x30_0000;
/// The vector the VMM injects for the edu's MSI.
pub const EDU_VECTOR: u64 = 0x31;
/// The guest reports the edu identification register here.
pub const IDENT_PORT: u16 = 0x520;
/// The guest reports 1 here if the DMA round trip kept its data.
pub const DMA_PORT: u16 = 0x521;
/// The guest reports here that its DMA outside guest memory is done.
pub const OUTSIDE_DMA_PORT: u16 = 0x522;

/// The benchmark mode: OUTs and injected interrupts the guest does (the first of
/// each is a warm-up).
pub const BENCH_RUNS: u64 = 66;
/// The guest's benchmark OUTs go here.
pub const BENCH_PORT: u16 = 0x530;
