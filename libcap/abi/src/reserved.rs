//! What the kernel never hands to user level (physical ranges, I/O ports).
//!
//! What the kernel never hands to user level, because a device behind it can write
//! memory or raise interrupts outside the IOMMU's control (or the kernel owns it).
//!
//! Physical ranges are kept out of device untyped (the kernel adds the platform's own
//! ranges found in ACPI: LAPIC, IOAPICs, HPET, VT-d register pages, PCI ECAM, and logs
//! each at boot); I/O ports are refused by `IOPortControl::Issue`.

/// The MSI window `[start, end)`: a CPU store or DMA write here is an interrupt
/// message (any destination, any vector), not a memory write; remapping does not
/// apply to CPU stores.
pub const MSI_WINDOW: (u64, u64) = (0xfee0_0000, 0xfef0_0000);

/// QEMU's HPET register page (fixed on pc and q35, also when the ACPI HPET table is
/// absent). Its FSB interrupt write goes straight to system memory, outside VT-d.
pub const QEMU_HPET_PAGE: u64 = 0xfed0_0000;

/// An inclusive range of I/O ports that is never issued, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedPorts {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
    /// Why it is reserved (logged at boot, listed in docs/boot.md).
    pub reason: &'static str,
}

/// Every reserved I/O port range, ascending.
pub const RESERVED_IO_PORTS: [ReservedPorts; 12] = [
    ReservedPorts {
        first: 0x00,
        last: 0x1f,
        reason: "ISA DMA controller 1 (8237): DMA below 16 MiB outside the IOMMU",
    },
    ReservedPorts { first: 0x20, last: 0x21, reason: "master PIC (the kernel keeps it masked)" },
    ReservedPorts { first: 0x60, last: 0x60, reason: "i8042 data: its output port drives the A20 gate and CPU reset" },
    ReservedPorts { first: 0x64, last: 0x64, reason: "i8042 command: A20 gate and CPU reset" },
    ReservedPorts { first: 0x80, last: 0x9f, reason: "ISA DMA page registers; 0x92 (port A): A20 gate and reset" },
    ReservedPorts { first: 0xa0, last: 0xa1, reason: "slave PIC (the kernel keeps it masked)" },
    ReservedPorts { first: 0xb2, last: 0xb3, reason: "APM control/status: raises an SMI (firmware with all memory)" },
    ReservedPorts { first: 0xc0, last: 0xdf, reason: "ISA DMA controller 2 (8237): DMA outside the IOMMU" },
    ReservedPorts {
        first: crate::exit::DEBUG_EXIT_PORT,
        last: crate::exit::DEBUG_EXIT_PORT + 3,
        reason: "QEMU isa-debug-exit: a write stops the whole system (only the debug-console cap may)",
    },
    ReservedPorts { first: 0x4d0, last: 0x4d1, reason: "PIC edge/level control (ELCR)" },
    ReservedPorts { first: 0x510, last: 0x51b, reason: "QEMU fw_cfg: its DMA interface reads and writes any memory" },
    ReservedPorts { first: 0xcf8, last: 0xcff, reason: "PCI configuration mechanism #1 and reset control (0xcf9)" },
];

/// The first reserved range overlapping `first..=last`, if any.
pub fn reserved_port_overlap(first: u16, last: u16) -> Option<&'static ReservedPorts> {
    RESERVED_IO_PORTS.iter().find(|r| first <= r.last && r.first <= last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_list_is_sorted_and_disjoint() {
        for w in RESERVED_IO_PORTS.windows(2) {
            assert!(w[0].first <= w[0].last && w[0].last < w[1].first, "{:?} / {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn overlap_finds_every_reserved_port_and_nothing_else() {
        for port in 0..=u16::MAX {
            let reserved = RESERVED_IO_PORTS.iter().any(|r| (r.first..=r.last).contains(&port));
            assert_eq!(reserved_port_overlap(port, port).is_some(), reserved, "port {port:#x}");
        }
        assert_eq!(reserved_port_overlap(0x500, 0x510).map(|r| r.first), Some(0x510));
        assert_eq!(reserved_port_overlap(0x51b, 0x600).map(|r| r.first), Some(0x510));
        assert_eq!(reserved_port_overlap(0, u16::MAX).map(|r| r.first), Some(0));
        assert!(reserved_port_overlap(0x3f8, 0x3ff).is_none(), "COM1 stays available");
        assert!(reserved_port_overlap(0x40, 0x43).is_none(), "the PIT stays available");
        assert_eq!(reserved_port_overlap(0xf0, 0xff).map(|r| r.first), Some(crate::exit::DEBUG_EXIT_PORT));
        assert!(reserved_port_overlap(0xf8, 0xff).is_none() && reserved_port_overlap(0xe0, 0xf3).is_none());
    }
}
