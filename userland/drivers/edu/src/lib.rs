//! QEMU's `edu` teaching device: its register block and a user-level driver.
//!
//! `registers` is the one definition of the device's register map (QEMU
//! docs/specs/edu.txt); the test programs that poke edu directly (dmatest forging DMA and
//! interrupts) use it as well as the driver in `driver`.
#![no_std]

pub mod driver;
pub mod registers;

pub use driver::{Edu, EduError};
pub use registers::{is_edu, EduRegisters, BUFFER_BASE, BUFFER_SIZE, DEVICE_ID, IDENT, VENDOR_ID};
