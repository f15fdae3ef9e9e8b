//! The 8254 PIT channel 0: a boot-time interrupt source for the CFI probe.
//!
//! The 8254 PIT's channel 0, used once at boot as an interrupt source the kernel can
//! trigger (ISA IRQ 0) for the compatibility-format probe (`crate::iommu::cfi_probe`). The
//! kernel's own timer is the LAPIC's; user level may drive the PIT through an IOPort cap.

use x86_64::instructions::port::Port;

/// Channel 0 data port.
const CHANNEL0: u16 = 0x40;
/// Mode/command port.
const COMMAND: u16 = 0x43;
/// Channel 0, low then high count byte, mode 0 (interrupt on terminal count), binary.
const ONE_SHOT: u8 = 0x30;
/// Read-back command: latch channel 0's status only (bit 5 set: not its count).
const READ_BACK_STATUS0: u8 = 0xe2;
/// Status byte bit: the channel's OUT pin.
const STATUS_OUT: u8 = 0x80;

/// Starts a one-shot on channel 0: OUT goes low now and rises (one IRQ 0 edge) after
/// `count` input clocks (1.193182 MHz), then stays high.
pub fn start_one_shot(count: u16) {
    let [low, high] = count.to_le_bytes();
    // SAFETY: the PIT's fixed ports; channel 0 drives only ISA IRQ 0, whose I/O APIC
    // line the caller routes; nothing in the kernel depends on the PIT's state.
    unsafe {
        Port::<u8>::new(COMMAND).write(ONE_SHOT);
        Port::<u8>::new(CHANNEL0).write(low);
        Port::<u8>::new(CHANNEL0).write(high);
    }
}

/// Whether channel 0's OUT pin is high (a one-shot reached its terminal count).
pub fn output_high() -> bool {
    // SAFETY: as in `start_one_shot`; the read-back command latches only the status,
    // which the next read of the data port returns.
    let status = unsafe {
        Port::<u8>::new(COMMAND).write(READ_BACK_STATUS0);
        Port::<u8>::new(CHANNEL0).read()
    };
    status & STATUS_OUT != 0
}
