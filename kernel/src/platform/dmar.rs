//! The ACPI DMAR table parser (VT-d remapping units, RMRRs, device scopes).
//!
//! The ACPI DMAR table (Intel VT-d DMA remapping reporting): remapping units (DRHD),
//! reserved memory regions (RMRR) and their device scopes. The table comes from
//! firmware, so every length is checked before it is followed and nothing panics.

use core::fmt;

use acpi::sdt::{SdtHeader, Signature};
use acpi::AcpiTable;

/// Most DRHD units accepted.
pub const MAX_DRHD: usize = 8;
/// Most RMRRs accepted.
pub const MAX_RMRR: usize = 8;
/// Most device scopes per structure.
pub const MAX_SCOPES: usize = 64;
/// Most path elements per device scope.
pub const MAX_PATH: usize = 4;

/// Size of the ACPI header.
const SDT_HEADER_LEN: usize = 36;
/// Header + host address width + flags + 10 reserved bytes.
const DMAR_FIXED_LEN: usize = 48;
/// DRHD flag: the unit covers every PCI device of its segment not claimed by another.
pub const DRHD_INCLUDE_PCI_ALL: u8 = 1;

/// Remapping structure types.
mod kind {
    pub const DRHD: u16 = 0;
    pub const RMRR: u16 = 1;
    pub const ATSR: u16 = 2;
    pub const RHSA: u16 = 3;
    pub const ANDD: u16 = 4;
    pub const SATC: u16 = 5;
}

/// The DMAR header as the `acpi` crate sees it, so `AcpiTables::find_table` finds it.
#[repr(C, packed)]
pub struct Dmar {
    header: SdtHeader,
    host_address_width: u8,
    flags: u8,
    _reserved: [u8; 10],
}

// SAFETY: `Dmar` is the fixed prefix of the DMAR table as the ACPI/VT-d specifications
// lay it out, with the header first.
unsafe impl AcpiTable for Dmar {
    const SIGNATURE: Signature = Signature::DMAR;

    fn header(&self) -> &SdtHeader {
        &self.header
    }
}

impl Dmar {
    /// Length of the whole table in bytes, from its header.
    pub fn table_length(&self) -> u32 {
        self.header.length
    }
}

/// Why a DMAR table was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmarError {
    /// Shorter than the fixed part, or than its own length field.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// The signature is not "DMAR".
    BadSignature,
    /// The bytes do not sum to zero.
    BadChecksum,
    /// A remapping structure's length is too small or runs past the table.
    BadStructureLength {
        /// Offset of the structure.
        offset: usize,
        /// Its type.
        kind: u16,
        /// Its length field.
        length: u16,
    },
    /// A device scope's length is too small or runs past its structure.
    BadScopeLength {
        /// Offset of the scope.
        offset: usize,
    },
    /// More DRHD units than [`MAX_DRHD`].
    TooManyDrhd,
    /// More RMRRs than [`MAX_RMRR`].
    TooManyRmrr,
    /// More device scopes in one structure than [`MAX_SCOPES`], or a longer path than [`MAX_PATH`].
    TooManyScopes {
        /// Offset of the structure.
        offset: usize,
    },
    /// An RMRR's limit is below its base.
    BadRmrrRange {
        /// Offset of the structure.
        offset: usize,
    },
}

impl fmt::Display for DmarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmarError::Truncated { needed, present } => write!(f, "table truncated: needs {needed} bytes, has {present}"),
            DmarError::BadSignature => write!(f, "signature is not DMAR"),
            DmarError::BadChecksum => write!(f, "checksum does not match"),
            DmarError::BadStructureLength { offset, kind, length } => {
                write!(f, "structure type {kind} at offset {offset:#x} has bad length {length}")
            }
            DmarError::BadScopeLength { offset } => write!(f, "device scope at offset {offset:#x} has a bad length"),
            DmarError::TooManyDrhd => write!(f, "more than {MAX_DRHD} DRHD units"),
            DmarError::TooManyRmrr => write!(f, "more than {MAX_RMRR} RMRR regions"),
            DmarError::TooManyScopes { offset } => write!(
                f,
                "structure at offset {offset:#x} has more than {MAX_SCOPES} device scopes or a path longer than {MAX_PATH}"
            ),
            DmarError::BadRmrrRange { offset } => write!(f, "RMRR at offset {offset:#x} ends below its base"),
        }
    }
}

/// One device scope entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceScope {
    /// 1 PCI endpoint, 2 PCI sub-hierarchy, 3 IOAPIC, 4 HPET, 5 ACPI namespace device.
    pub kind: u8,
    /// IOAPIC / HPET / ACPI device id.
    pub enumeration_id: u8,
    /// Bus where the path starts.
    pub start_bus: u8,
    path: [(u8, u8); MAX_PATH],
    path_len: u8,
}

/// Scope types.
pub mod scope_kind {
    /// A PCI endpoint device.
    pub const PCI_ENDPOINT: u8 = 1;
    /// A PCI-PCI bridge and everything below it.
    pub const PCI_SUB_HIERARCHY: u8 = 2;
    /// An I/O APIC.
    pub const IOAPIC: u8 = 3;
    /// An HPET.
    pub const HPET: u8 = 4;
    /// An ACPI namespace device.
    pub const ACPI_NAMESPACE: u8 = 5;
}

impl DeviceScope {
    /// A scope of `kind` starting at `start_bus` through `path` (at most [`MAX_PATH`]
    /// hops are kept).
    pub fn new(kind: u8, start_bus: u8, path: &[(u8, u8)]) -> Self {
        let mut scope = DeviceScope { kind, start_bus, ..DeviceScope::default() };
        let n = path.len().min(MAX_PATH);
        scope.path[..n].copy_from_slice(&path[..n]);
        scope.path_len = n as u8;
        scope
    }

    /// The (device, function) hops from `start_bus`.
    pub fn path(&self) -> &[(u8, u8)] {
        &self.path[..usize::from(self.path_len)]
    }
    /// The requester (source) id of a device one hop from `start_bus`; longer paths
    /// cross bridges whose secondary bus numbers the table does not give.
    pub fn source_id(&self) -> Option<u16> {
        match self.path() {
            &[(device, function)] if device < 32 && function < 8 => {
                Some((u16::from(self.start_bus) << 8) | (u16::from(device) << 3) | u16::from(function))
            }
            _ => None,
        }
    }
}

impl fmt::Display for DeviceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            scope_kind::PCI_ENDPOINT => "pci-endpoint",
            scope_kind::PCI_SUB_HIERARCHY => "pci-bridge",
            scope_kind::IOAPIC => "ioapic",
            scope_kind::HPET => "hpet",
            scope_kind::ACPI_NAMESPACE => "acpi-device",
            _ => "unknown",
        };
        write!(f, "{name} id={} bus={:#04x} path=", self.enumeration_id, self.start_bus)?;
        for (i, (dev, func)) in self.path().iter().enumerate() {
            write!(f, "{}{dev:02x}.{func}", if i > 0 { "/" } else { "" })?;
        }
        Ok(())
    }
}

/// A list of device scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes {
    items: [DeviceScope; MAX_SCOPES],
    len: u8,
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes { items: [DeviceScope::default(); MAX_SCOPES], len: 0 }
    }
}

impl Scopes {
    /// The scopes.
    pub fn as_slice(&self) -> &[DeviceScope] {
        &self.items[..usize::from(self.len)]
    }
}

/// A DMA remapping hardware unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drhd {
    /// Flags (bit 0 INCLUDE_PCI_ALL).
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    /// Physical address of the register block.
    pub register_base: u64,
    /// Register block size field (2^(n+12) bytes), 0 on older tables.
    pub size: u8,
    scopes: Scopes,
}

impl Drhd {
    /// Whether the unit covers all otherwise unclaimed devices of its segment.
    pub fn include_pci_all(&self) -> bool {
        self.flags & DRHD_INCLUDE_PCI_ALL != 0
    }
    /// Its device scopes.
    pub fn scopes(&self) -> &[DeviceScope] {
        self.scopes.as_slice()
    }
}

/// A reserved memory region devices keep using (must stay identity-mapped for them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rmrr {
    /// PCI segment.
    pub segment: u16,
    /// First byte.
    pub base: u64,
    /// Last byte (inclusive).
    pub limit: u64,
    scopes: Scopes,
}

impl Rmrr {
    /// An RMRR of segment 0 covering `base..=limit` for the devices in `scopes` (at
    /// most [`MAX_SCOPES`] are kept).
    pub fn new(base: u64, limit: u64, scopes: &[DeviceScope]) -> Self {
        let mut r = Rmrr { segment: 0, base, limit, scopes: Scopes::default() };
        let n = scopes.len().min(MAX_SCOPES);
        r.scopes.items[..n].copy_from_slice(&scopes[..n]);
        r.scopes.len = n as u8;
        r
    }

    /// The devices that use it.
    pub fn scopes(&self) -> &[DeviceScope] {
        self.scopes.as_slice()
    }
}

/// A parsed DMAR table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmarInfo {
    /// DMA physical address width in bits (the table's field + 1).
    pub host_address_width: u8,
    /// Flags: bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN.
    pub flags: u8,
    drhds: [Drhd; MAX_DRHD],
    drhd_count: usize,
    rmrrs: [Rmrr; MAX_RMRR],
    rmrr_count: usize,
    /// ATSR, RHSA, ANDD, SATC and unknown structures seen (and skipped).
    pub other_structures: u32,
}

impl DmarInfo {
    /// The remapping units in table order.
    pub fn drhds(&self) -> &[Drhd] {
        &self.drhds[..self.drhd_count]
    }
    /// The reserved regions in table order.
    pub fn rmrrs(&self) -> &[Rmrr] {
        &self.rmrrs[..self.rmrr_count]
    }

    /// Adds an RMRR the table did not have (test scenarios); false if full.
    pub fn push_rmrr(&mut self, rmrr: Rmrr) -> bool {
        if self.rmrr_count == MAX_RMRR {
            return false;
        }
        self.rmrrs[self.rmrr_count] = rmrr;
        self.rmrr_count += 1;
        true
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parses the device scopes in `bytes[start..end]` (offsets are within the table).
/// Written in place: a `Scopes` is hundreds of bytes, and the boot stack is small.
fn parse_scopes(bytes: &[u8], start: usize, end: usize, owner: usize, scopes: &mut Scopes) -> Result<(), DmarError> {
    scopes.len = 0;
    let mut at = start;
    while at < end {
        if end - at < 6 {
            return Err(DmarError::BadScopeLength { offset: at });
        }
        let len = usize::from(bytes[at + 1]);
        if len < 6 || (len - 6) % 2 != 0 || at + len > end {
            return Err(DmarError::BadScopeLength { offset: at });
        }
        let hops = (len - 6) / 2;
        if usize::from(scopes.len) == MAX_SCOPES || hops > MAX_PATH {
            return Err(DmarError::TooManyScopes { offset: owner });
        }
        let mut scope = DeviceScope {
            kind: bytes[at],
            enumeration_id: bytes[at + 4],
            start_bus: bytes[at + 5],
            path: [(0, 0); MAX_PATH],
            path_len: hops as u8,
        };
        for h in 0..hops {
            scope.path[h] = (bytes[at + 6 + 2 * h], bytes[at + 7 + 2 * h]);
        }
        scopes.items[usize::from(scopes.len)] = scope;
        scopes.len += 1;
        at += len;
    }
    Ok(())
}

/// Parses a whole DMAR table (header included).
pub fn parse_dmar(bytes: &[u8]) -> Result<DmarInfo, DmarError> {
    let mut info = DmarInfo::default();
    parse_dmar_into(bytes, &mut info)?;
    Ok(info)
}

/// As [`parse_dmar`], into `info` (boot memory in the kernel: a `DmarInfo` is about
/// 12 KiB, too much to pass around on the boot stack).
pub fn parse_dmar_into(bytes: &[u8], info: &mut DmarInfo) -> Result<(), DmarError> {
    if bytes.len() < DMAR_FIXED_LEN {
        return Err(DmarError::Truncated { needed: DMAR_FIXED_LEN, present: bytes.len() });
    }
    if &bytes[0..4] != b"DMAR" {
        return Err(DmarError::BadSignature);
    }
    let length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if length < DMAR_FIXED_LEN || length > bytes.len() {
        return Err(DmarError::Truncated { needed: length.max(DMAR_FIXED_LEN), present: bytes.len() });
    }
    let bytes = &bytes[..length];
    if bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) != 0 {
        return Err(DmarError::BadChecksum);
    }
    info.host_address_width = bytes[SDT_HEADER_LEN].saturating_add(1);
    info.flags = bytes[SDT_HEADER_LEN + 1];
    (info.drhd_count, info.rmrr_count, info.other_structures) = (0, 0, 0);
    let mut at = DMAR_FIXED_LEN;
    while at < length {
        if length - at < 4 {
            return Err(DmarError::BadStructureLength { offset: at, kind: 0xffff, length: (length - at) as u16 });
        }
        let kind = u16_at(bytes, at);
        let len = u16_at(bytes, at + 2);
        let min = match kind {
            kind::DRHD => 16,
            kind::RMRR => 24,
            _ => 4,
        };
        if usize::from(len) < min || at + usize::from(len) > length {
            return Err(DmarError::BadStructureLength { offset: at, kind, length: len });
        }
        let end = at + usize::from(len);
        match kind {
            kind::DRHD => {
                if info.drhd_count == MAX_DRHD {
                    return Err(DmarError::TooManyDrhd);
                }
                let d = &mut info.drhds[info.drhd_count];
                (d.flags, d.size, d.segment) = (bytes[at + 4], bytes[at + 5], u16_at(bytes, at + 6));
                d.register_base = u64_at(bytes, at + 8);
                parse_scopes(bytes, at + 16, end, at, &mut d.scopes)?;
                info.drhd_count += 1;
            }
            kind::RMRR => {
                if info.rmrr_count == MAX_RMRR {
                    return Err(DmarError::TooManyRmrr);
                }
                let (base, limit) = (u64_at(bytes, at + 8), u64_at(bytes, at + 16));
                if limit < base {
                    return Err(DmarError::BadRmrrRange { offset: at });
                }
                let r = &mut info.rmrrs[info.rmrr_count];
                (r.segment, r.base, r.limit) = (u16_at(bytes, at + 6), base, limit);
                parse_scopes(bytes, at + 24, end, at, &mut r.scopes)?;
                info.rmrr_count += 1;
            }
            kind::ATSR | kind::RHSA | kind::ANDD | kind::SATC => info.other_structures += 1,
            _ => info.other_structures += 1,
        }
        at = end;
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    //! Synthetic tables, shared with the PCI tests.
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Builds a DMAR table from raw structures and fixes its checksum.
    pub fn table(width_minus_one: u8, flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(b"DMAR");
        t.extend_from_slice(&[0; 4]);
        t.push(1);
        t.push(0);
        t.extend_from_slice(b"BOCHS BXPC    ");
        t.extend_from_slice(&[0; 12]);
        assert_eq!(t.len(), SDT_HEADER_LEN);
        t.push(width_minus_one);
        t.push(flags);
        t.extend_from_slice(&[0; 10]);
        for s in structures {
            t.extend_from_slice(s);
        }
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    /// A device scope.
    pub fn scope(kind: u8, id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
        let mut s = std::vec![kind, (6 + 2 * path.len()) as u8, 0, 0, id, bus];
        for (d, f) in path {
            s.push(*d);
            s.push(*f);
        }
        s
    }

    /// A DRHD structure.
    pub fn drhd(flags: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = scopes.concat();
        let mut s = Vec::new();
        s.extend_from_slice(&kind::DRHD.to_le_bytes());
        s.extend_from_slice(&((16 + body.len()) as u16).to_le_bytes());
        s.push(flags);
        s.push(0);
        s.extend_from_slice(&segment.to_le_bytes());
        s.extend_from_slice(&base.to_le_bytes());
        s.extend_from_slice(&body);
        s
    }

    fn rmrr(base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = scopes.concat();
        let mut s = Vec::new();
        s.extend_from_slice(&kind::RMRR.to_le_bytes());
        s.extend_from_slice(&((24 + body.len()) as u16).to_le_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend_from_slice(&base.to_le_bytes());
        s.extend_from_slice(&limit.to_le_bytes());
        s.extend_from_slice(&body);
        s
    }

    /// What QEMU q35 with `-device intel-iommu` reports: one include-all unit at
    /// 0xfed90000 with the IOAPIC in scope, interrupt remapping flag set.
    pub fn qemu_q35() -> Vec<u8> {
        table(38, 1, &[drhd(1, 0, 0xfed9_0000, &[scope(scope_kind::IOAPIC, 0, 0xff, &[(0, 0)])])])
    }

    #[test]
    fn parses_qemu_table() {
        let info = parse_dmar(&qemu_q35()).unwrap();
        assert_eq!(info.host_address_width, 39);
        assert_eq!(info.flags, 1);
        assert_eq!(info.drhds().len(), 1);
        let d = &info.drhds()[0];
        assert!(d.include_pci_all());
        assert_eq!(d.register_base, 0xfed9_0000);
        assert_eq!(d.scopes().len(), 1);
        assert_eq!(d.scopes()[0].kind, scope_kind::IOAPIC);
        assert_eq!(d.scopes()[0].start_bus, 0xff);
        assert!(std::format!("{}", d.scopes()[0]).starts_with("ioapic"));
        assert_eq!(d.scopes()[0].source_id(), Some(0xff00), "the I/O APIC's requester id");
        assert!(info.rmrrs().is_empty());
    }

    #[test]
    fn source_id_needs_a_single_hop() {
        let two_hops = drhd(0, 0, 0x1000, &[scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(1, 0), (0, 1)])]);
        let one_hop = drhd(0, 0, 0x2000, &[scope(scope_kind::PCI_ENDPOINT, 0, 2, &[(3, 1)])]);
        let info = parse_dmar(&table(39, 0, &[two_hops, one_hop])).unwrap();
        assert_eq!(info.drhds()[0].scopes()[0].source_id(), None);
        assert_eq!(info.drhds()[1].scopes()[0].source_id(), Some(0x0219));
    }

    #[test]
    fn parses_rmrr_and_skips_others() {
        let other = std::vec![3u8, 0, 8, 0, 0, 0, 0, 0]; // RHSA-shaped, 8 bytes
        let t = table(
            47,
            0,
            &[
                drhd(0, 0, 0xfed9_1000, &[scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(2, 0)])]),
                rmrr(0xe_0000, 0xe_ffff, &[scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(0x1d, 0)])]),
                other,
            ],
        );
        let info = parse_dmar(&t).unwrap();
        assert_eq!(info.host_address_width, 48);
        assert_eq!(info.rmrrs()[0].limit, 0xe_ffff);
        assert_eq!(info.rmrrs()[0].scopes()[0].path(), &[(0x1d, 0)]);
        assert_eq!(info.other_structures, 1);
        let mut info = info;
        let scope = DeviceScope::new(scope_kind::PCI_ENDPOINT, 0, &[(3, 0)]);
        assert!(info.push_rmrr(Rmrr::new(0xf_0000, 0xf_ffff, &[scope])));
        assert_eq!((info.rmrrs()[1].base, info.rmrrs()[1].limit), (0xf_0000, 0xf_ffff));
        assert_eq!(info.rmrrs()[1].scopes(), &[scope]);
        assert_eq!(std::format!("{scope}"), "pci-endpoint id=0 bus=0x00 path=03.0");
        while info.push_rmrr(Rmrr::new(0, 0xfff, &[])) {}
        assert_eq!(info.rmrrs().len(), MAX_RMRR);
    }

    /// QEMU lists one scope per bus-0 device: a machine with dozens of them has a DRHD
    /// of dozens of scopes (16 used to be refused); past [`MAX_SCOPES`] the table is
    /// refused with an error that names the limit, never overflowed.
    #[test]
    fn many_scopes_up_to_the_limit() {
        let scopes = |n: usize| -> Vec<Vec<u8>> {
            (0..n).map(|i| scope(scope_kind::PCI_ENDPOINT, 0, 0, &[((i % 32) as u8, (i / 32) as u8)])).collect()
        };
        let info = parse_dmar(&table(38, 0, &[drhd(1, 0, 0xfed9_0000, &scopes(MAX_SCOPES))])).unwrap();
        assert_eq!(info.drhds()[0].scopes().len(), MAX_SCOPES);
        assert_eq!(info.drhds()[0].scopes()[40].path(), &[(8, 1)]);
        let err = parse_dmar(&table(38, 0, &[drhd(1, 0, 0xfed9_0000, &scopes(MAX_SCOPES + 1))])).unwrap_err();
        assert!(matches!(err, DmarError::TooManyScopes { .. }));
        assert!(std::format!("{err}").contains("more than 64 device scopes"), "{err}");
    }

    #[test]
    fn rejects_malformed_tables() {
        let good = qemu_q35();
        for cut in [0, 10, 47, good.len() - 1] {
            assert!(matches!(parse_dmar(&good[..cut]), Err(DmarError::Truncated { .. })), "cut {cut}");
        }
        let mut bad = good.clone();
        bad[60] ^= 1;
        assert_eq!(parse_dmar(&bad), Err(DmarError::BadChecksum));
        let mut sig = good.clone();
        sig[0] = b'X';
        assert_eq!(parse_dmar(&sig), Err(DmarError::BadSignature));
        // A zero-length structure.
        let zero = table(38, 0, &[std::vec![0, 0, 0, 0]]);
        assert!(matches!(parse_dmar(&zero), Err(DmarError::BadStructureLength { .. })));
        // A structure claiming to run past the end.
        let mut long = drhd(1, 0, 0xfed9_0000, &[]);
        long[2] = 0xff;
        assert!(matches!(parse_dmar(&table(38, 0, &[long])), Err(DmarError::BadStructureLength { .. })));
        // A scope running past its structure.
        let mut s = scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(1, 0)]);
        s[1] = 40;
        assert!(matches!(
            parse_dmar(&table(38, 0, &[drhd(0, 0, 0x1000, &[s])])),
            Err(DmarError::BadScopeLength { .. })
        ));
        let many: Vec<Vec<u8>> = (0..9).map(|i| drhd(0, 0, 0x1000 * i, &[])).collect();
        assert_eq!(parse_dmar(&table(38, 0, &many)), Err(DmarError::TooManyDrhd));
        assert!(matches!(parse_dmar(&table(38, 0, &[rmrr(0x2000, 0x1000, &[])])), Err(DmarError::BadRmrrRange { .. })));
    }
}
