//! The compatibility-format probe's verdict from what it observed (host-tested).
//!
//! The boot probe (`cfi_probe`, bare metal only) fires the PIT with its I/O APIC line
//! in the compatibility format and, if that interrupt does not arrive, once more with
//! the same line in the remappable format through an IRTE the kernel owns (the
//! positive control). Only "the control arrived and the compatibility-format one did
//! not" shows that the remapping unit blocks compatibility-format interrupts; any other
//! silence (the PIT not wired to that pin, a lost edge, a misprogrammed entry) proves
//! nothing and must not let devices master the bus.

use core::fmt;

/// What the boot probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The control interrupt through an IRTE arrived, the compatibility-format one did
    /// not: the unit refuses compatibility-format interrupts.
    Blocked,
    /// The compatibility-format interrupt arrived: the unit does not enforce CFI clear.
    Passed,
    /// No verdict (treated as not blocked).
    Inconclusive(Unverified),
}

/// Why the probe reached no verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unverified {
    /// The probed IRQ has no I/O APIC line.
    NoLine,
    /// The PIT never reached its terminal count.
    PitSilent,
    /// The control interrupt through an IRTE did not arrive either.
    NoControl,
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unverified::NoLine => "the probed IRQ has no I/O APIC line",
            Unverified::PitSilent => "the PIT never reached its terminal count",
            Unverified::NoControl => {
                "the control interrupt through an IRTE did not arrive either, so the missing compatibility-format one proves nothing (is the PIT wired to that I/O APIC pin?)"
            }
        })
    }
}

/// The verdict: `compat_arrived` (the compatibility-format interrupt reached the LAPIC,
/// however late), `control_arrived` (the remappable one through the kernel's IRTE did),
/// `pit_fired` (the PIT reached its count every time it was started).
pub const fn verdict(control_arrived: bool, compat_arrived: bool, pit_fired: bool) -> Probe {
    if compat_arrived {
        Probe::Passed
    } else if !pit_fired {
        Probe::Inconclusive(Unverified::PitSilent)
    } else if !control_arrived {
        Probe::Inconclusive(Unverified::NoControl)
    } else {
        Probe::Blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_needs_the_control_and_a_firing_pit() {
        assert_eq!(verdict(true, false, true), Probe::Blocked);
        assert_eq!(verdict(false, false, true), Probe::Inconclusive(Unverified::NoControl), "nothing arrived");
        assert_eq!(verdict(true, false, false), Probe::Inconclusive(Unverified::PitSilent));
        assert_eq!(verdict(false, false, false), Probe::Inconclusive(Unverified::PitSilent));
    }

    #[test]
    fn an_arriving_compatibility_format_interrupt_always_means_passed() {
        for control in [false, true] {
            for pit in [false, true] {
                assert_eq!(verdict(control, true, pit), Probe::Passed, "control {control} pit {pit}");
            }
        }
    }

    #[test]
    fn only_blocked_lets_devices_master_the_bus() {
        let blocked = (0..8u8).filter(|b| verdict(b & 1 != 0, b & 2 != 0, b & 4 != 0) == Probe::Blocked).count();
        assert_eq!(blocked, 1, "exactly one observation (control yes, compat no, PIT yes) is 'blocked'");
    }
}
