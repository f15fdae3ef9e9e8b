//! Identify Controller and Namespace data, parsed with every field bounded.

use crate::NvmeError;

/// What the driver uses of Identify Controller (CNS 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerId {
    /// PCI vendor id.
    pub vid: u16,
    /// Serial number (ASCII, space padded).
    pub serial: [u8; 20],
    /// Model number (ASCII, space padded).
    pub model: [u8; 40],
    /// Maximum Data Transfer Size: 2 ^ MDTS pages, 0 = no limit.
    pub mdts: u8,
    /// Number of namespaces.
    pub namespaces: u32,
}

/// What the driver uses of Identify Namespace (CNS 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceId {
    /// Namespace size in logical blocks.
    pub blocks: u64,
    /// Logical block size in bytes (512..=4096).
    pub block_size: u32,
}

/// Text of an ASCII Identify field, trailing spaces cut; `?` for non-printable bytes.
pub fn text(field: &[u8]) -> impl Iterator<Item = char> + '_ {
    let end = field.iter().rposition(|&b| b != b' ' && b != 0).map_or(0, |i| i + 1);
    field[..end].iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' })
}

impl ControllerId {
    /// Parses the 4 KiB Identify Controller page.
    pub fn parse(page: &[u8; 4096]) -> Result<Self, NvmeError> {
        let mut serial = [0; 20];
        serial.copy_from_slice(&page[4..24]);
        let mut model = [0; 40];
        model.copy_from_slice(&page[24..64]);
        let namespaces = u32::from_le_bytes([page[516], page[517], page[518], page[519]]);
        if namespaces == 0 {
            return Err(NvmeError::BadIdentify("NN (no namespace)"));
        }
        Ok(ControllerId { vid: u16::from_le_bytes([page[0], page[1]]), serial, model, mdts: page[77], namespaces })
    }

    /// Most bytes one command may move (MDTS; at least a page when MDTS is 0 = none).
    pub fn max_transfer(&self) -> u64 {
        match self.mdts {
            0 => u64::MAX,
            m if m >= 20 => u64::MAX,
            m => crate::PAGE << m,
        }
    }
}

impl NamespaceId {
    /// Parses the 4 KiB Identify Namespace page: NSZE, and FLBAS naming one of the NLBAF
    /// + 1 LBA formats, whose LBADS must be 9..=12 (512 B to 4 KiB blocks).
    pub fn parse(page: &[u8; 4096]) -> Result<Self, NvmeError> {
        let mut size = [0; 8];
        size.copy_from_slice(&page[0..8]);
        let blocks = u64::from_le_bytes(size);
        if blocks == 0 {
            return Err(NvmeError::BadIdentify("NSZE"));
        }
        let formats = usize::from(page[25]) + 1;
        let format = usize::from(page[26] & 0xf);
        if format >= formats.min(16) {
            return Err(NvmeError::BadIdentify("FLBAS"));
        }
        let lbads = page[128 + 4 * format + 2];
        if !(9..=12).contains(&lbads) {
            return Err(NvmeError::BadIdentify("LBADS"));
        }
        Ok(NamespaceId { blocks, block_size: 1 << lbads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(nsze: u64, nlbaf: u8, flbas: u8, lbads: u8) -> [u8; 4096] {
        let mut p = [0u8; 4096];
        p[0..8].copy_from_slice(&nsze.to_le_bytes());
        p[25] = nlbaf;
        p[26] = flbas;
        p[128 + 4 * usize::from(flbas & 0xf) + 2] = lbads;
        p
    }

    #[test]
    fn namespace_parses_and_is_bounded() {
        assert_eq!(NamespaceId::parse(&namespace(2048, 0, 0, 9)), Ok(NamespaceId { blocks: 2048, block_size: 512 }));
        assert_eq!(NamespaceId::parse(&namespace(256, 1, 1, 12)).unwrap().block_size, 4096);
        assert_eq!(NamespaceId::parse(&namespace(0, 0, 0, 9)), Err(NvmeError::BadIdentify("NSZE")));
        assert_eq!(NamespaceId::parse(&namespace(8, 0, 1, 9)), Err(NvmeError::BadIdentify("FLBAS")));
        assert_eq!(NamespaceId::parse(&namespace(8, 0, 0, 30)), Err(NvmeError::BadIdentify("LBADS")));
        assert_eq!(NamespaceId::parse(&namespace(8, 0, 0, 8)), Err(NvmeError::BadIdentify("LBADS")));
    }

    #[test]
    fn controller_parses() {
        let mut p = [0u8; 4096];
        p[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
        p[4..24].copy_from_slice(b"nvme0               ");
        p[24..64].copy_from_slice(b"QEMU NVMe Ctrl                          ");
        p[77] = 7;
        assert_eq!(ControllerId::parse(&p), Err(NvmeError::BadIdentify("NN (no namespace)")));
        p[516] = 1;
        let c = ControllerId::parse(&p).unwrap();
        assert_eq!((c.vid, c.mdts, c.namespaces, c.max_transfer()), (0x1b36, 7, 1, 512 * 1024));
        assert!(text(&c.serial).eq("nvme0".chars()));
        assert!(text(b"a\x01b \0").eq("a?b".chars()));
    }
}
