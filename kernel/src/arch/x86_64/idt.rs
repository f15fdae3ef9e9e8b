//! The interrupt descriptor table.
//!
//! The interrupt descriptor table: 32 exception gates pointing at the stubs in entry.S.

use static_assertions::const_assert_eq;

use super::gdt::{IST_CRITICAL, IST_NMI, KERNEL_CS};

/// One 64-bit interrupt gate descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
struct GateDescriptor {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}
const_assert_eq!(core::mem::size_of::<GateDescriptor>(), 16);

/// Present, DPL 0, 64-bit interrupt gate (interrupts stay off in the kernel).
const INTERRUPT_GATE: u8 = 0x8e;
/// Distance between stubs in entry.S.
const STUB_STRIDE: u64 = 16;
const VECTORS: usize = 256;

#[repr(C, align(16))]
struct Idt([GateDescriptor; VECTORS]);

static mut IDT: Idt = Idt([GateDescriptor {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; VECTORS]);

/// Descriptor-table pointer operand of `lidt`.
#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

unsafe extern "C" {
    static exception_stubs: u8;
}

fn gate(handler: u64, ist: u16) -> GateDescriptor {
    GateDescriptor {
        offset_low: handler as u16,
        selector: KERNEL_CS,
        ist: ist as u8,
        type_attr: INTERRUPT_GATE,
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        reserved: 0,
    }
}

/// Fills in every gate (exceptions 0..31, interrupts 32..255, all DPL 0 so user mode
/// cannot raise them with `int`) and loads the IDT.
pub fn init() {
    let stubs = core::ptr::addr_of!(exception_stubs) as u64;
    // SAFETY: called once during single-threaded boot with interrupts off; nothing else
    // references the IDT until `lidt` below.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for vector in 0..VECTORS as u64 {
        let ist = match vector {
            2 => IST_NMI,
            8 | 18 => IST_CRITICAL, // double fault, machine check
            _ => 0,
        };
        idt.0[vector as usize] = gate(stubs + vector * STUB_STRIDE, ist);
    }
    let pointer = IdtPointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: idt as *const Idt as u64 };
    // SAFETY: the IDT is a static that lives forever and every present gate points at a
    // stub in entry.S.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}
