//! The edu driver: DMA between an IOVA and the device buffer, completion by MSI.
//!
//! The device's registers are reached through their mapped BAR ([`EduRegisters`]);
//! completion arrives as an MSI through an IRQHandler cap. Transfers QEMU would abort on
//! (empty, or outside the device buffer) are refused before the device sees them.

use libcap::cap::{IrqHandler, Notification};
use libcap::deadline::Deadline;
use libcap::{ipc, println};
use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{Readable, Writeable};

use crate::registers::{DmaCommand, EduRegisters, Interrupt, BUFFER_BASE, BUFFER_SIZE, IDENT};

/// Why the driver refused or failed a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EduError {
    /// A zero-byte transfer (QEMU aborts on it).
    Empty,
    /// The range leaves the device's 4 KiB buffer (QEMU aborts on it).
    OutsideBuffer,
    /// A previous transfer is still running.
    Busy,
    /// The interrupt arrived but the device does not report a finished DMA.
    NotDone,
    /// Waiting on the notification failed.
    Wait,
    /// The completion MSI did not arrive within [`libcap::deadline::WAIT_TICKS`].
    NoInterrupt,
}

/// One edu function whose registers are `regs` and whose MSI is bound to `ntfn`.
pub struct Edu {
    regs: &'static EduRegisters,
    irq: IrqHandler,
    ntfn: Notification,
}

impl Edu {
    /// A driver over the registers `regs`, with the MSI handler `irq` signalling `ntfn`.
    pub const fn new(regs: &'static EduRegisters, irq: IrqHandler, ntfn: Notification) -> Self {
        Edu { regs, irq, ntfn }
    }

    /// The device's registers.
    pub fn registers(&self) -> &'static EduRegisters {
        self.regs
    }

    /// Whether the device identifies as edu.
    pub fn present(&self) -> bool {
        self.regs.ident.get() == IDENT
    }

    /// The interrupt-status register.
    pub fn interrupt_status(&self) -> u32 {
        self.regs.interrupt_status.get()
    }

    /// Asks the device to raise an interrupt with status bits `bits`.
    pub fn raise(&self, bits: u32) {
        self.regs.interrupt_raise.set(bits);
    }

    /// Clears status bits `bits` on the device and acknowledges the IRQHandler.
    pub fn acknowledge(&self, bits: u32) {
        self.regs.interrupt_ack.set(bits);
        let _ = self.irq.ack();
    }

    /// The notification word if an interrupt arrived within `polls` polls, else 0.
    pub fn poll_interrupt(&self, polls: u32) -> u64 {
        ipc::poll_within(self.ntfn.0, polls)
    }

    /// Whether a `len`-byte transfer at `offset` of the device buffer is one QEMU accepts.
    pub fn check_range(offset: u64, len: u64) -> Result<(), EduError> {
        if len == 0 {
            return Err(EduError::Empty);
        }
        match offset.checked_add(len) {
            Some(end) if end <= BUFFER_SIZE => Ok(()),
            _ => Err(EduError::OutsideBuffer),
        }
    }

    /// Copies `len` bytes from IOVA `iova` to the device buffer at `offset`.
    pub fn to_device(&self, iova: u64, offset: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.transfer(iova, BUFFER_BASE + offset, len, DmaCommand::TO_RAM::CLEAR)
    }

    /// Copies `len` bytes from the device buffer at `offset` to IOVA `iova`.
    pub fn to_ram(&self, offset: u64, iova: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.transfer(BUFFER_BASE + offset, iova, len, DmaCommand::TO_RAM::SET)
    }

    /// As [`Edu::to_ram`], but spins in user mode polling the notification instead of
    /// blocking in the kernel (so interrupts meanwhile strike user mode).
    pub fn to_ram_polling(&self, offset: u64, iova: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.start(BUFFER_BASE + offset, iova, len, DmaCommand::TO_RAM::SET)?;
        let mut polls = 0u64;
        while ipc::poll(self.ntfn.0).map_err(|_| EduError::Wait)? == 0 {
            polls += 1;
            if polls > 50_000_000 {
                return Err(EduError::Wait);
            }
        }
        self.finish()
    }

    /// Starts a device -> RAM transfer with completion interrupt and returns at once;
    /// [`Edu::busy`] says when it is done, [`Edu::complete`] waits for its MSI.
    pub fn start_to_ram(&self, offset: u64, iova: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.start(BUFFER_BASE + offset, iova, len, DmaCommand::TO_RAM::SET)
    }

    /// Whether the DMA engine is still busy.
    pub fn busy(&self) -> bool {
        self.regs.dma_command.is_set(DmaCommand::START)
    }

    /// Waits for the completion MSI of a transfer begun with [`Edu::start_to_ram`].
    pub fn complete(&self) -> Result<(), EduError> {
        self.wait_interrupt()?;
        self.finish()
    }

    /// Waits, bounded, for the completion MSI; says so on the console if none comes.
    fn wait_interrupt(&self) -> Result<(), EduError> {
        match ipc::wait_until(self.ntfn.0, Deadline::default_wait()) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                println!("edu: FAIL the completion interrupt (MSI) did not arrive");
                Err(EduError::NoInterrupt)
            }
            Err(_) => Err(EduError::Wait),
        }
    }

    fn start(
        &self,
        source: u64,
        destination: u64,
        len: u64,
        direction: FieldValue<u64, DmaCommand::Register>,
    ) -> Result<(), EduError> {
        if self.regs.dma_command.is_set(DmaCommand::START) {
            return Err(EduError::Busy);
        }
        self.regs.dma_source.set(source);
        self.regs.dma_destination.set(destination);
        self.regs.dma_count.set(len);
        self.regs.dma_command.write(DmaCommand::START::SET + DmaCommand::INTERRUPT::SET + direction);
        Ok(())
    }

    /// Starts one DMA with completion interrupt and blocks on the notification until
    /// the MSI arrives (edu finishes on a 100 ms virtual timer).
    fn transfer(
        &self,
        source: u64,
        destination: u64,
        len: u64,
        direction: FieldValue<u64, DmaCommand::Register>,
    ) -> Result<(), EduError> {
        self.start(source, destination, len, direction)?;
        self.wait_interrupt()?;
        self.finish()
    }

    /// Acknowledges the completion interrupt and checks the DMA is done.
    pub fn finish(&self) -> Result<(), EduError> {
        let status = self.regs.interrupt_status.extract();
        self.acknowledge(status.get());
        if !status.is_set(Interrupt::DMA_DONE) || self.regs.dma_command.is_set(DmaCommand::START) {
            return Err(EduError::NotDone);
        }
        Ok(())
    }
}
