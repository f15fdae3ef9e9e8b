//! The edu register block and its bitfields, typed (tock-registers).

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

/// edu's PCI vendor id.
pub const VENDOR_ID: u16 = 0x1234;
/// edu's PCI device id.
pub const DEVICE_ID: u16 = 0x11e8;
/// Whether a PCI function the boot found is an edu.
pub fn is_edu(function: &abi::bootinfo::PciDeviceDesc) -> bool {
    function.vendor_id == VENDOR_ID && function.device_id == DEVICE_ID
}
/// What the identification register reads.
pub const IDENT: u32 = 0x0100_00ed;
/// The device buffer's address on the device side (the CPU cannot reach it through the BAR).
pub const BUFFER_BASE: u64 = 0x40000;
/// The device buffer's size.
pub const BUFFER_SIZE: u64 = 0x1000;

register_bitfields! [u64,
    /// The DMA command register.
    pub DmaCommand [
        /// Start; reads back set until the transfer is done.
        START OFFSET(0) NUMBITS(1) [],
        /// Direction: set copies from the device buffer to RAM, clear from RAM to the buffer.
        TO_RAM OFFSET(1) NUMBITS(1) [],
        /// Raise an interrupt when the transfer is done.
        INTERRUPT OFFSET(2) NUMBITS(1) []
    ]
];

register_bitfields! [u32,
    /// The interrupt status, raise and acknowledge registers (raise ORs bits in,
    /// acknowledge clears them).
    pub Interrupt [
        /// Set by a finished factorial computation.
        FACTORIAL OFFSET(0) NUMBITS(1) [],
        /// Set by a finished DMA whose command asked for an interrupt.
        DMA_DONE OFFSET(8) NUMBITS(1) []
    ]
];

register_structs! {
    /// The registers in edu's BAR 0. Registers below 0x80 answer 4-byte accesses only;
    /// the DMA registers are 8 bytes wide.
    pub EduRegisters {
        /// Identification: [`IDENT`].
        (0x00 => pub ident: ReadOnly<u32>),
        /// Liveness check: reads back the bitwise inverse of what was written.
        (0x04 => pub liveness: ReadWrite<u32>),
        /// Factorial: write n, read n! once the status says done.
        (0x08 => pub factorial: ReadWrite<u32>),
        (0x0c => _reserved0),
        /// Status: bit 0 computing, bit 7 interrupt after the factorial.
        (0x20 => pub status: ReadWrite<u32>),
        /// Interrupt status (read only).
        (0x24 => pub interrupt_status: ReadOnly<u32, Interrupt::Register>),
        (0x28 => _reserved1),
        /// Raise: ORs the written bits into the status and interrupts.
        (0x60 => pub interrupt_raise: WriteOnly<u32, Interrupt::Register>),
        /// Acknowledge: clears the written bits.
        (0x64 => pub interrupt_ack: WriteOnly<u32, Interrupt::Register>),
        (0x68 => _reserved2),
        /// DMA source address (an IOVA, or [`BUFFER_BASE`] + offset).
        (0x80 => pub dma_source: ReadWrite<u64>),
        /// DMA destination address.
        (0x88 => pub dma_destination: ReadWrite<u64>),
        /// DMA byte count.
        (0x90 => pub dma_count: ReadWrite<u64>),
        /// DMA command.
        (0x98 => pub dma_command: ReadWrite<u64, DmaCommand::Register>),
        (0xa0 => @END),
    }
}

impl EduRegisters {
    /// The register block mapped at `vaddr`.
    ///
    /// # Safety
    /// `vaddr` is an edu BAR 0 page mapped uncached in this address space, and it stays
    /// mapped for the rest of the program (the block is `'static`).
    pub unsafe fn at(vaddr: u64) -> &'static EduRegisters {
        // SAFETY: the caller promises a live uncached mapping of the device's registers,
        // which is what every field's volatile access expects; the block is 0xa0 bytes,
        // inside one 4 KiB page when `vaddr` is page aligned.
        unsafe { &*(vaddr as *const EduRegisters) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tock_registers::LocalRegisterCopy;

    #[test]
    fn the_block_matches_qemus_register_map() {
        assert_eq!(core::mem::offset_of!(EduRegisters, interrupt_status), 0x24);
        assert_eq!(core::mem::offset_of!(EduRegisters, interrupt_raise), 0x60);
        assert_eq!(core::mem::offset_of!(EduRegisters, dma_source), 0x80);
        assert_eq!(core::mem::offset_of!(EduRegisters, dma_command), 0x98);
        assert_eq!(core::mem::size_of::<EduRegisters>(), 0xa0);
    }

    #[test]
    fn command_and_interrupt_bits_are_edus() {
        let start_to_ram = DmaCommand::START::SET + DmaCommand::TO_RAM::SET + DmaCommand::INTERRUPT::SET;
        assert_eq!(start_to_ram.value, 0b111);
        let status: LocalRegisterCopy<u32, Interrupt::Register> = LocalRegisterCopy::new(0x100);
        assert!(status.is_set(Interrupt::DMA_DONE));
        assert!(!status.is_set(Interrupt::FACTORIAL));
    }
}
