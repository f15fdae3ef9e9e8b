//! The ACPI DMAR table parser (VT-d remapping units, RMRRs, device scopes).
//!
//! The ACPI DMAR table (Intel VT-d DMA remapping reporting): remapping units (DRHD),
//! reserved memory regions (RMRR) and their device scopes. The table comes from
//! firmware, so every length is checked before it is followed and nothing panics.
//!
//! Nothing is limited by a count: [`count_dmar`] walks the checked table once and
//! counts DRHDs, RMRRs and device scopes; the caller provides exactly that storage (boot
//! memory in the kernel, `Vec`s on the host) and [`parse_dmar_into`] fills it. The
//! scopes of every structure live in one shared pool; each structure holds a
//! [`ScopeRange`] into it.

use core::fmt;

use acpi::sdt::{SdtHeader, Signature};
use acpi::AcpiTable;

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
    /// A device scope with a longer path than [`MAX_PATH`].
    PathTooLong {
        /// Offset of the scope.
        offset: usize,
    },
    /// The storage given to [`parse_dmar_into`] is smaller than [`count_dmar`] said
    /// (cannot happen when it was sized from that count).
    NoRoom,
    /// An RMRR's limit is below its base.
    BadRmrrRange {
        /// Offset of the structure.
        offset: usize,
    },
}

impl fmt::Display for DmarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmarError::Truncated { needed, present } => {
                write!(f, "table truncated: needs {needed} bytes, has {present}")
            }
            DmarError::BadSignature => write!(f, "signature is not DMAR"),
            DmarError::BadChecksum => write!(f, "checksum does not match"),
            DmarError::BadStructureLength { offset, kind, length } => {
                write!(f, "structure type {kind} at offset {offset:#x} has bad length {length}")
            }
            DmarError::BadScopeLength { offset } => write!(f, "device scope at offset {offset:#x} has a bad length"),
            DmarError::PathTooLong { offset } => {
                write!(f, "device scope at offset {offset:#x} has a path longer than {MAX_PATH} hops")
            }
            DmarError::NoRoom => write!(f, "storage smaller than the counted structures"),
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

/// Where a structure's device scopes lie in the [`DmarInfo`] scope pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeRange {
    /// First scope (index into the pool).
    pub start: u32,
    /// Number of scopes.
    pub len: u32,
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
    /// Its device scopes ([`DmarInfo::scopes`]).
    pub scopes: ScopeRange,
}

impl Drhd {
    /// Whether the unit covers all otherwise unclaimed devices of its segment.
    pub fn include_pci_all(&self) -> bool {
        self.flags & DRHD_INCLUDE_PCI_ALL != 0
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
    /// The devices that use it ([`DmarInfo::scopes`]).
    pub scopes: ScopeRange,
}

/// Storage for parsed structures: boot memory for the kernel's life on bare metal.
#[cfg(target_os = "none")]
pub type Store<T> = &'static mut [T];
/// Storage for parsed structures: `Vec`s on the host (tests, fuzzing).
#[cfg(not(target_os = "none"))]
pub type Store<T> = alloc::vec::Vec<T>;

#[cfg(not(target_os = "none"))]
extern crate alloc;

/// How many structures a DMAR table holds, from [`count_dmar`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmarCounts {
    /// DRHD units.
    pub drhds: usize,
    /// RMRRs.
    pub rmrrs: usize,
    /// Device scopes of all DRHDs and RMRRs together.
    pub scopes: usize,
}

/// A parsed DMAR table, in storage sized from [`count_dmar`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DmarInfo {
    /// DMA physical address width in bits (the table's field + 1).
    pub host_address_width: u8,
    /// Flags: bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN.
    pub flags: u8,
    drhds: Store<Drhd>,
    drhd_count: usize,
    rmrrs: Store<Rmrr>,
    rmrr_count: usize,
    scopes: Store<DeviceScope>,
    scope_count: usize,
    /// ATSR, RHSA, ANDD, SATC and unknown structures seen (and skipped).
    pub other_structures: u32,
}

impl DmarInfo {
    /// An empty table over this storage (see [`count_dmar`] for how much to give).
    pub fn with_storage(drhds: Store<Drhd>, rmrrs: Store<Rmrr>, scopes: Store<DeviceScope>) -> Self {
        DmarInfo { drhds, rmrrs, scopes, ..DmarInfo::default() }
    }

    /// The remapping units in table order.
    pub fn drhds(&self) -> &[Drhd] {
        &self.drhds[..self.drhd_count]
    }
    /// The reserved regions in table order.
    pub fn rmrrs(&self) -> &[Rmrr] {
        &self.rmrrs[..self.rmrr_count]
    }
    /// The device scopes `range` names (a [`Drhd`]'s or an [`Rmrr`]'s).
    pub fn scopes(&self, range: ScopeRange) -> &[DeviceScope] {
        let start = (range.start as usize).min(self.scope_count);
        let end = start.saturating_add(range.len as usize).min(self.scope_count);
        &self.scopes[start..end]
    }

    /// Adds an RMRR of segment 0 covering `base..=limit` for the devices in `scopes`
    /// that the table did not have (test scenarios); false if the storage has no room.
    pub fn push_rmrr(&mut self, base: u64, limit: u64, scopes: &[DeviceScope]) -> bool {
        let start = self.scope_count;
        let (Some(slot), Some(pool)) =
            (self.rmrrs.get_mut(self.rmrr_count), self.scopes.get_mut(start..start.saturating_add(scopes.len())))
        else {
            return false;
        };
        pool.copy_from_slice(scopes);
        *slot = Rmrr { segment: 0, base, limit, scopes: ScopeRange { start: start as u32, len: scopes.len() as u32 } };
        self.rmrr_count += 1;
        self.scope_count += scopes.len();
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

/// Walks the device scopes in `bytes[start..end]` (offsets are within the table),
/// appending each to `out` when given; returns how many there are.
fn parse_scopes(bytes: &[u8], start: usize, end: usize, mut out: Option<&mut DmarInfo>) -> Result<usize, DmarError> {
    let mut at = start;
    let mut count = 0;
    while at < end {
        if end - at < 6 {
            return Err(DmarError::BadScopeLength { offset: at });
        }
        let len = usize::from(bytes[at + 1]);
        if len < 6 || (len - 6) % 2 != 0 || at + len > end {
            return Err(DmarError::BadScopeLength { offset: at });
        }
        let hops = (len - 6) / 2;
        if hops > MAX_PATH {
            return Err(DmarError::PathTooLong { offset: at });
        }
        if let Some(info) = out.as_deref_mut() {
            let slot = info.scopes.get_mut(info.scope_count).ok_or(DmarError::NoRoom)?;
            *slot = DeviceScope {
                kind: bytes[at],
                enumeration_id: bytes[at + 4],
                start_bus: bytes[at + 5],
                path: [(0, 0); MAX_PATH],
                path_len: hops as u8,
            };
            for h in 0..hops {
                slot.path[h] = (bytes[at + 6 + 2 * h], bytes[at + 7 + 2 * h]);
            }
            info.scope_count += 1;
        }
        count += 1;
        at += len;
    }
    Ok(count)
}

/// Parses a whole DMAR table (header included) into `Vec`s sized by [`count_dmar`].
#[cfg(not(target_os = "none"))]
pub fn parse_dmar(bytes: &[u8]) -> Result<DmarInfo, DmarError> {
    let counts = count_dmar(bytes)?;
    let mut info = DmarInfo::with_storage(
        alloc::vec![Drhd::default(); counts.drhds],
        alloc::vec![Rmrr::default(); counts.rmrrs],
        alloc::vec![DeviceScope::default(); counts.scopes],
    );
    parse_dmar_into(bytes, &mut info)?;
    Ok(info)
}

/// Checks a whole DMAR table (header, checksum, every length) and counts its DRHDs,
/// RMRRs and device scopes: the storage [`parse_dmar_into`] needs. The counts are
/// bounded by the table's length (a structure takes at least 16 bytes, a scope 6).
pub fn count_dmar(bytes: &[u8]) -> Result<DmarCounts, DmarError> {
    walk(bytes, None)
}

/// Fills `info`, whose storage holds at least what [`count_dmar`] counted (else
/// [`DmarError::NoRoom`]), from the table; anything in it before is replaced.
pub fn parse_dmar_into(bytes: &[u8], info: &mut DmarInfo) -> Result<(), DmarError> {
    walk(bytes, Some(info)).map(|_| ())
}

/// Counts a skipped structure.
fn skip(out: Option<&mut DmarInfo>) {
    if let Some(info) = out {
        info.other_structures += 1;
    }
}

/// Checks the table and counts its structures, filling `out` when given.
fn walk(bytes: &[u8], mut out: Option<&mut DmarInfo>) -> Result<DmarCounts, DmarError> {
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
    if let Some(info) = out.as_deref_mut() {
        info.host_address_width = bytes[SDT_HEADER_LEN].saturating_add(1);
        info.flags = bytes[SDT_HEADER_LEN + 1];
        (info.drhd_count, info.rmrr_count, info.scope_count, info.other_structures) = (0, 0, 0, 0);
    }
    let mut counts = DmarCounts::default();
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
        let first = out.as_deref().map_or(0, |info| info.scope_count as u32);
        match kind {
            kind::DRHD => {
                let n = parse_scopes(bytes, at + 16, end, out.as_deref_mut())?;
                if let Some(info) = out.as_deref_mut() {
                    let d = info.drhds.get_mut(info.drhd_count).ok_or(DmarError::NoRoom)?;
                    (d.flags, d.size, d.segment) = (bytes[at + 4], bytes[at + 5], u16_at(bytes, at + 6));
                    d.register_base = u64_at(bytes, at + 8);
                    d.scopes = ScopeRange { start: first, len: n as u32 };
                    info.drhd_count += 1;
                }
                counts.drhds += 1;
                counts.scopes += n;
            }
            kind::RMRR => {
                let (base, limit) = (u64_at(bytes, at + 8), u64_at(bytes, at + 16));
                if limit < base {
                    return Err(DmarError::BadRmrrRange { offset: at });
                }
                let n = parse_scopes(bytes, at + 24, end, out.as_deref_mut())?;
                if let Some(info) = out.as_deref_mut() {
                    let r = info.rmrrs.get_mut(info.rmrr_count).ok_or(DmarError::NoRoom)?;
                    (r.segment, r.base, r.limit) = (u16_at(bytes, at + 6), base, limit);
                    r.scopes = ScopeRange { start: first, len: n as u32 };
                    info.rmrr_count += 1;
                }
                counts.rmrrs += 1;
                counts.scopes += n;
            }
            // ATSR, RHSA, ANDD, SATC and unknown types are skipped.
            kind::ATSR | kind::RHSA | kind::ANDD | kind::SATC => skip(out.as_deref_mut()),
            _ => skip(out.as_deref_mut()),
        }
        at = end;
    }
    Ok(counts)
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    //! Synthetic DMAR tables for tests and the fuzzer's seed corpus.
    //!
    //! Shared by the DMAR and PCI host tests and by `parser-fuzz` (feature `fixtures`).
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

    /// An RMRR structure.
    pub fn rmrr(base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
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
}

#[cfg(test)]
pub mod tests {
    extern crate std;
    use std::vec::Vec;

    pub use super::fixtures::*;
    use super::*;

    #[test]
    fn parses_qemu_table() {
        let info = parse_dmar(&qemu_q35()).unwrap();
        assert_eq!(info.host_address_width, 39);
        assert_eq!(info.flags, 1);
        assert_eq!(info.drhds().len(), 1);
        let d = &info.drhds()[0];
        assert!(d.include_pci_all());
        assert_eq!(d.register_base, 0xfed9_0000);
        let scopes = info.scopes(d.scopes);
        assert_eq!(scopes.len(), 1);
        assert_eq!(scopes[0].kind, scope_kind::IOAPIC);
        assert_eq!(scopes[0].start_bus, 0xff);
        assert!(std::format!("{}", scopes[0]).starts_with("ioapic"));
        assert_eq!(scopes[0].source_id(), Some(0xff00), "the I/O APIC's requester id");
        assert!(info.rmrrs().is_empty());
    }

    #[test]
    fn source_id_needs_a_single_hop() {
        let two_hops = drhd(0, 0, 0x1000, &[scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(1, 0), (0, 1)])]);
        let one_hop = drhd(0, 0, 0x2000, &[scope(scope_kind::PCI_ENDPOINT, 0, 2, &[(3, 1)])]);
        let info = parse_dmar(&table(39, 0, &[two_hops, one_hop])).unwrap();
        assert_eq!(info.scopes(info.drhds()[0].scopes)[0].source_id(), None);
        assert_eq!(info.scopes(info.drhds()[1].scopes)[0].source_id(), Some(0x0219));
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
        assert_eq!(info.scopes(info.rmrrs()[0].scopes)[0].path(), &[(0x1d, 0)]);
        assert_eq!(info.other_structures, 1);
        let scope = DeviceScope::new(scope_kind::PCI_ENDPOINT, 0, &[(3, 0)]);
        assert_eq!(std::format!("{scope}"), "pci-endpoint id=0 bus=0x00 path=03.0");
        // Exactly sized: no room for an RMRR the table did not have.
        let mut info = info;
        assert!(!info.push_rmrr(0xf_0000, 0xf_ffff, &[scope]));
        // With room for one more RMRR and its scope (what boot gives for `test_rmrr=`).
        let counts = count_dmar(&t).unwrap();
        assert_eq!(counts, DmarCounts { drhds: 1, rmrrs: 1, scopes: 2 });
        let mut info = DmarInfo::with_storage(
            std::vec![Drhd::default(); 1],
            std::vec![Rmrr::default(); 2],
            std::vec![DeviceScope::default(); 3],
        );
        parse_dmar_into(&t, &mut info).unwrap();
        assert!(info.push_rmrr(0xf_0000, 0xf_ffff, &[scope]));
        assert_eq!((info.rmrrs()[1].base, info.rmrrs()[1].limit), (0xf_0000, 0xf_ffff));
        assert_eq!(info.scopes(info.rmrrs()[1].scopes), &[scope]);
        assert_eq!(info.scopes(info.rmrrs()[0].scopes)[0].path(), &[(0x1d, 0)]);
        assert!(!info.push_rmrr(0, 0xfff, &[]), "full");
        // Storage smaller than counted is refused, never overflowed.
        let mut small = DmarInfo::with_storage(std::vec![Drhd::default(); 1], std::vec![], std::vec![]);
        assert_eq!(parse_dmar_into(&t, &mut small), Err(DmarError::NoRoom));
    }

    /// QEMU lists one scope per bus-0 device, and firmware may list many RMRRs: the
    /// storage is sized from the table, so 300 scopes in one DRHD and 20 RMRRs (beyond
    /// the old fixed 64 scopes and 8 RMRRs) parse, each structure with its own range of
    /// the shared pool.
    #[test]
    fn hundreds_of_scopes_and_many_rmrrs() {
        let scopes = |n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| scope(scope_kind::PCI_ENDPOINT, 0, (i / 256) as u8, &[((i % 32) as u8, ((i / 32) % 8) as u8)]))
                .collect()
        };
        let mut structures = std::vec![drhd(1, 0, 0xfed9_0000, &scopes(300))];
        for i in 0..20u64 {
            structures.push(rmrr(0x100_0000 + i * 0x1000, 0x100_0fff + i * 0x1000, &scopes(i as usize % 3 + 1)));
        }
        let t = table(38, 0, &structures);
        let counts = count_dmar(&t).unwrap();
        assert_eq!(counts, DmarCounts { drhds: 1, rmrrs: 20, scopes: 300 + (0..20).map(|i| i % 3 + 1).sum::<usize>() });
        let info = parse_dmar(&t).unwrap();
        let unit = info.scopes(info.drhds()[0].scopes);
        assert_eq!(unit.len(), 300);
        assert_eq!(unit[40].path(), &[(8, 1)]);
        assert_eq!((unit[299].start_bus, unit[299].path()), (1, &[(11, 1)][..]));
        assert_eq!(info.rmrrs().len(), 20);
        for (i, r) in info.rmrrs().iter().enumerate() {
            assert_eq!(r.base, 0x100_0000 + i as u64 * 0x1000);
            let s = info.scopes(r.scopes);
            assert_eq!(s.len(), i % 3 + 1, "rmrr {i}");
            assert_eq!(s[s.len() - 1].path(), &[((s.len() - 1) as u8, 0)]);
        }
        // A path longer than MAX_PATH is still refused, naming the scope.
        let long = scope(scope_kind::PCI_ENDPOINT, 0, 0, &[(1, 0); MAX_PATH + 1]);
        let err = parse_dmar(&table(38, 0, &[drhd(1, 0, 0xfed9_0000, &[long])])).unwrap_err();
        assert_eq!(err, DmarError::PathTooLong { offset: DMAR_FIXED_LEN + 16 });
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
        assert_eq!(parse_dmar(&table(38, 0, &many)).unwrap().drhds().len(), 9, "no fixed unit limit");
        assert!(matches!(parse_dmar(&table(38, 0, &[rmrr(0x2000, 0x1000, &[])])), Err(DmarError::BadRmrrRange { .. })));
    }
}
