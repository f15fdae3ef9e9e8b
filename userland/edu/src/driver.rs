//! The edu driver proper: the device's registers through its mapped BAR, DMA between an
//! IOVA the driver mapped and the device's 4 KiB buffer, completion by MSI through an
//! IRQHandler cap. Transfers QEMU would abort on (empty, or outside the device buffer)
//! are refused before the device sees them.

use libcap::cap::{IrqHandler, Notification};
use libcap::deadline::Deadline;
use libcap::{ipc, println};

/// Register offsets (QEMU docs/specs/edu.txt).
mod reg {
    /// Identification: 0x010000ed.
    pub const IDENT: u64 = 0x00;
    /// Interrupt status (read); bits set by raise and by DMA completion.
    pub const INTERRUPT_STATUS: u64 = 0x24;
    /// Raise interrupt: ORs the value into the status and interrupts.
    pub const INTERRUPT_RAISE: u64 = 0x60;
    /// Acknowledge interrupt: clears the written bits.
    pub const INTERRUPT_ACK: u64 = 0x64;
    /// DMA source address.
    pub const DMA_SOURCE: u64 = 0x80;
    /// DMA destination address.
    pub const DMA_DESTINATION: u64 = 0x88;
    /// DMA byte count.
    pub const DMA_COUNT: u64 = 0x90;
    /// DMA command.
    pub const DMA_COMMAND: u64 = 0x98;
}

/// DMA command bits.
mod command {
    /// Start (reads back set until the transfer is done).
    pub const START: u64 = 1;
    /// Direction: from the device buffer to RAM.
    pub const TO_RAM: u64 = 2;
    /// Raise an interrupt when done.
    pub const INTERRUPT: u64 = 4;
}

/// The identification value.
pub const IDENT: u32 = 0x0100_00ed;
/// The device buffer's address on the device side (the CPU cannot reach it through the BAR).
pub const BUFFER_BASE: u64 = 0x40000;
/// The device buffer's size.
pub const BUFFER_SIZE: u64 = 0x1000;
/// Interrupt-status bit of a completed DMA.
pub const DMA_DONE: u32 = 0x100;

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

/// One edu function whose BAR page is mapped at `regs` and whose MSI is bound to `ntfn`.
pub struct Edu {
    regs: u64,
    irq: IrqHandler,
    ntfn: Notification,
}

impl Edu {
    /// A driver over registers mapped (uncached) at `regs`, with the MSI handler `irq`
    /// signalling `ntfn`.
    pub const fn new(regs: u64, irq: IrqHandler, ntfn: Notification) -> Self {
        Edu { regs, irq, ntfn }
    }

    fn read32(&self, offset: u64) -> u32 {
        // SAFETY: `regs` is the device's BAR page, mapped uncached by the program for
        // this driver; offsets are edu registers (4-byte ones below 0x80).
        unsafe { core::ptr::read_volatile((self.regs + offset) as *const u32) }
    }

    fn write32(&self, offset: u64, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.regs + offset) as *mut u32, value) }
    }

    fn read64(&self, offset: u64) -> u64 {
        // SAFETY: as in `read32`; the DMA registers are 8 bytes wide.
        unsafe { core::ptr::read_volatile((self.regs + offset) as *const u64) }
    }

    fn write64(&self, offset: u64, value: u64) {
        // SAFETY: as in `read64`.
        unsafe { core::ptr::write_volatile((self.regs + offset) as *mut u64, value) }
    }

    /// Whether the device identifies as edu.
    pub fn present(&self) -> bool {
        self.read32(reg::IDENT) == IDENT
    }

    /// The interrupt-status register.
    pub fn interrupt_status(&self) -> u32 {
        self.read32(reg::INTERRUPT_STATUS)
    }

    /// Asks the device to raise an interrupt with status bits `bits`.
    pub fn raise(&self, bits: u32) {
        self.write32(reg::INTERRUPT_RAISE, bits);
    }

    /// Clears status bits `bits` on the device and acknowledges the IRQHandler.
    pub fn acknowledge(&self, bits: u32) {
        self.write32(reg::INTERRUPT_ACK, bits);
        let _ = self.irq.ack();
    }

    /// The notification word if an interrupt arrived within `polls` polls, else 0.
    pub fn poll_interrupt(&self, polls: u32) -> u64 {
        for _ in 0..polls {
            match ipc::poll(self.ntfn.0) {
                Ok(0) => core::hint::spin_loop(),
                Ok(word) => return word,
                Err(_) => return 0,
            }
        }
        0
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
        self.transfer(iova, BUFFER_BASE + offset, len, 0)
    }

    /// Copies `len` bytes from the device buffer at `offset` to IOVA `iova`.
    pub fn to_ram(&self, offset: u64, iova: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.transfer(BUFFER_BASE + offset, iova, len, command::TO_RAM)
    }

    /// As [`Edu::to_ram`], but spins in user mode polling the notification instead of
    /// blocking in the kernel (so interrupts meanwhile strike user mode).
    pub fn to_ram_polling(&self, offset: u64, iova: u64, len: u64) -> Result<(), EduError> {
        Self::check_range(offset, len)?;
        self.start(BUFFER_BASE + offset, iova, len, command::TO_RAM)?;
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
        self.start(BUFFER_BASE + offset, iova, len, command::TO_RAM)
    }

    /// Whether the DMA engine is still busy.
    pub fn busy(&self) -> bool {
        self.read64(reg::DMA_COMMAND) & command::START != 0
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

    fn start(&self, source: u64, destination: u64, len: u64, direction: u64) -> Result<(), EduError> {
        if self.read64(reg::DMA_COMMAND) & command::START != 0 {
            return Err(EduError::Busy);
        }
        self.write64(reg::DMA_SOURCE, source);
        self.write64(reg::DMA_DESTINATION, destination);
        self.write64(reg::DMA_COUNT, len);
        self.write64(reg::DMA_COMMAND, command::START | command::INTERRUPT | direction);
        Ok(())
    }

    /// Starts one DMA with completion interrupt and blocks on the notification until
    /// the MSI arrives (edu finishes on a 100 ms virtual timer).
    fn transfer(&self, source: u64, destination: u64, len: u64, direction: u64) -> Result<(), EduError> {
        self.start(source, destination, len, direction)?;
        self.wait_interrupt()?;
        self.finish()
    }

    /// Acknowledges the completion interrupt and checks the DMA is done.
    pub fn finish(&self) -> Result<(), EduError> {
        let status = self.interrupt_status();
        self.acknowledge(status);
        if status & DMA_DONE == 0 || self.read64(reg::DMA_COMMAND) & command::START != 0 {
            return Err(EduError::NotDone);
        }
        Ok(())
    }
}
