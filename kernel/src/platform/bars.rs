//! Every function's memory BARs, sized at boot, reported by `PciDeviceBarInfo`.
//!
//! BARs never move after boot (a PciDevice cannot write them), so one measurement at
//! boot (memory decoding off for the moment, as for the MSI-X tables) serves every later
//! question: the root task learns how much of a BAR to give a driver without touching
//! the device while some driver may be using it.

use super::msix::{self, Bar};
use super::msix_table::size_bar;
use super::pci::PciDevice;
use super::pci_config::{config_read, function_base};
use crate::object::kcell::KernelCell;
use crate::warn;

/// Functions whose BARs are recorded.
pub const MAX_FUNCTIONS: usize = 64;

/// One function's six BARs (size 0: no memory BAR there, or the top half of a 64-bit one).
#[derive(Clone, Copy)]
struct Function {
    requester_id: u16,
    bars: [Bar; 6],
}

const NO_BAR: Bar = Bar { base: 0, size: 0 };

static FUNCTIONS: KernelCell<[Option<Function>; MAX_FUNCTIONS]> = KernelCell::new([None; MAX_FUNCTIONS]);

/// At boot, after ECAM is known: sizes every memory BAR of every function (segment 0).
pub fn boot(devices: &[PciDevice]) {
    let mut functions = FUNCTIONS.borrow_mut();
    let mut recorded = 0;
    for dev in devices.iter().filter(|d| d.desc.segment == 0) {
        let Some(fb) = function_base(dev.requester_id()) else { continue };
        if recorded == MAX_FUNCTIONS {
            warn!("pci: more than {MAX_FUNCTIONS} functions: BAR sizes of the rest not recorded");
            break;
        }
        let last_bar = if dev.is_bridge() { 1 } else { 5 };
        let mut bars = [NO_BAR; 6];
        let mut n = 0u8;
        while n <= last_bar {
            let low = config_read(fb, 0x10 + 4 * u64::from(n), 4) as u32;
            let wide = msix::memory_bar_kind(low) == Some(true);
            // I/O BARs, and a 64-bit BAR without its top half, stay size 0.
            bars[usize::from(n)] = size_bar(fb, n, last_bar).unwrap_or(NO_BAR);
            n += if wide { 2 } else { 1 };
        }
        functions[recorded] = Some(Function { requester_id: dev.requester_id(), bars });
        recorded += 1;
    }
}

/// BAR `n` (0..6) of function `requester_id` as measured at boot; size 0 if it is no
/// memory BAR, unassigned, or the function was not recorded.
pub fn lookup(requester_id: u16, n: usize) -> Bar {
    let functions = FUNCTIONS.borrow_mut();
    let found = functions.iter().flatten().find(|f| f.requester_id == requester_id);
    let bar = found.and_then(|f| f.bars.get(n).copied()).unwrap_or(NO_BAR);
    if bar.base == 0 {
        NO_BAR
    } else {
        bar
    }
}
