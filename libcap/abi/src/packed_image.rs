//! The packed boot image: a boot image carried in the kernel ELF.
//!
//! The packed boot image: the boot image carried in the kernel ELF as its own load segment.
//!
//! `mksystem` (tests/src/bin/mksystem.rs) appends one `PT_LOAD` segment holding the boot
//! image at [`PACKED_IMAGE_PADDR`] to the kernel ELF and fills in the kernel's
//! [`DESCRIPTOR_SYMBOL`] (a [`DESCRIPTOR_SIZE`]-byte static, all zero in a plain kernel)
//! with a [`Descriptor`]. Any loader that loads ELF segments (QEMU's PVH `-kernel`, GRUB's
//! `multiboot2`) then delivers the image, at an address no loader picks on its own.

/// Physical (and ELF virtual) address of the packed boot image: 16 MiB. Above the
/// kernel (linked at 2 MiB, ending well below 15 MiB) and above the ISA hole at
/// 15..16 MiB that some chipsets reserve; far below the top of low RAM, where firmware
/// reserves memory (SeaBIOS more so with an NVMe drive attached).
pub const PACKED_IMAGE_PADDR: u64 = 0x100_0000;
/// Name of the kernel's descriptor static in the ELF symbol table.
pub const DESCRIPTOR_SYMBOL: &str = "BOOT_IMAGE_DESC";
/// `Descriptor::magic` of a filled-in descriptor ("CAPPACK1", little-endian).
pub const DESCRIPTOR_MAGIC: u64 = u64::from_le_bytes(*b"CAPPACK1");
/// Bytes of an encoded descriptor: magic, paddr, len, checksum (little-endian u64s).
pub const DESCRIPTOR_SIZE: usize = 32;
/// Largest packed image accepted (the kernel refuses more).
pub const MAX_PACKED_IMAGE: u64 = 256 << 20;

/// Where the packed image is and how to check it arrived intact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// [`DESCRIPTOR_MAGIC`], or 0 when nothing is packed.
    pub magic: u64,
    /// Physical address of the image's first byte.
    pub paddr: u64,
    /// The image's length in bytes.
    pub len: u64,
    /// [`checksum`] of the image's bytes.
    pub checksum: u64,
}

impl Descriptor {
    /// The little-endian encoding patched into the kernel ELF.
    pub fn encode(&self) -> [u8; DESCRIPTOR_SIZE] {
        let mut out = [0u8; DESCRIPTOR_SIZE];
        for (i, v) in [self.magic, self.paddr, self.len, self.checksum].iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8; DESCRIPTOR_SIZE]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Descriptor { magic: word(0), paddr: word(1), len: word(2), checksum: word(3) }
    }

    /// Whether the descriptor was filled in (a plain kernel's is all zero).
    pub fn is_set(&self) -> bool {
        *self != Descriptor::default()
    }
}

/// 64-bit FNV-1a of `bytes`: catches a segment the loader did not load or truncated.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trips() {
        let d = Descriptor { magic: DESCRIPTOR_MAGIC, paddr: PACKED_IMAGE_PADDR, len: 12345, checksum: 7 };
        assert_eq!(Descriptor::decode(&d.encode()), d);
        assert!(d.is_set());
        assert!(!Descriptor::decode(&[0; DESCRIPTOR_SIZE]).is_set());
        assert_eq!(&d.encode()[..8], b"CAPPACK1");
    }

    #[test]
    fn checksum_is_fnv1a() {
        assert_eq!(checksum(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(checksum(b"ab"), checksum(b"ba"));
    }
}
