//! The boot image format (header, entries, manifest) and its checked parser.
//!
//! The boot image: the one archive passed as the boot module (`-initrd`), holding the
//! user programs and a text manifest. Parsing never trusts a length it has not checked.
//!
//! Layout (little-endian): a [`Header`], then `entry_count` [`Entry`] records, then the
//! file data. Every entry's data lies inside `total_size`, and `total_size` must equal
//! the module's length, so a truncated module is detected before anything is loaded.
//!
//! The manifest entry is named [`MANIFEST_NAME`]; its lines are
//! `root <program>` (exactly one: the root task) and `program <program>` (extra programs
//! the root task may start), `#` starts a comment.

use core::fmt;

/// "CAPIMG01".
pub const IMAGE_MAGIC: [u8; 8] = *b"CAPIMG01";
/// Current format version.
pub const IMAGE_VERSION: u32 = 1;
/// Length of an entry name field; names are NUL-padded.
pub const NAME_LEN: usize = 32;
/// Most entries an image may hold.
pub const MAX_ENTRIES: u32 = 128;
/// Name of the manifest entry.
pub const MANIFEST_NAME: &str = "manifest";
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 24;
/// Size of one entry record in bytes.
pub const ENTRY_SIZE: usize = 48;

/// The image header as stored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// [`IMAGE_MAGIC`].
    pub magic: [u8; 8],
    /// [`IMAGE_VERSION`].
    pub version: u32,
    /// Number of entry records following the header.
    pub entry_count: u32,
    /// Length of the whole image in bytes.
    pub total_size: u64,
}

/// One entry record as stored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// NUL-padded name.
    pub name: [u8; NAME_LEN],
    /// Offset of the data from the start of the image.
    pub offset: u64,
    /// Length of the data.
    pub size: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<Header>(), HEADER_SIZE);
static_assertions::const_assert_eq!(core::mem::size_of::<Entry>(), ENTRY_SIZE);

/// Why an image or manifest was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than a header.
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// Magic bytes do not match.
    BadMagic,
    /// Unknown format version.
    BadVersion(u32),
    /// More entries than [`MAX_ENTRIES`].
    TooManyEntries(u32),
    /// The header's `total_size` differs from the module length (truncated or padded).
    SizeMismatch {
        /// Size the header declares.
        declared: u64,
        /// Size of the module actually present.
        actual: u64,
    },
    /// The entry table runs past the end.
    EntryTableTruncated,
    /// An entry's data lies outside the image.
    EntryOutOfBounds {
        /// Index of the bad entry.
        index: u32,
    },
    /// An entry name is empty, not UTF-8 or not NUL-padded.
    BadName {
        /// Index of the bad entry.
        index: u32,
    },
    /// No entry named [`MANIFEST_NAME`].
    NoManifest,
    /// The manifest is not UTF-8.
    ManifestNotUtf8,
    /// A manifest line is malformed.
    ManifestSyntax {
        /// 1-based line number.
        line: u32,
    },
    /// The manifest names no root task, or more than one.
    ManifestRoot {
        /// How many `root` lines there were.
        count: u32,
    },
    /// The manifest names a program that is not in the image.
    MissingProgram {
        /// 1-based line number.
        line: u32,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::TooShort { len } => write!(f, "boot image is {len} bytes, shorter than its header"),
            ImageError::BadMagic => write!(f, "boot image has a bad magic (not a CAPIMG01 archive)"),
            ImageError::BadVersion(v) => write!(f, "boot image version {v} is not supported (want {IMAGE_VERSION})"),
            ImageError::TooManyEntries(n) => write!(f, "boot image has {n} entries (at most {MAX_ENTRIES})"),
            ImageError::SizeMismatch { declared, actual } => {
                write!(f, "boot image declares {declared} bytes but the module has {actual}: truncated or corrupt")
            }
            ImageError::EntryTableTruncated => write!(f, "boot image entry table runs past its end"),
            ImageError::EntryOutOfBounds { index } => write!(f, "boot image entry {index} lies outside the image"),
            ImageError::BadName { index } => write!(f, "boot image entry {index} has an invalid name"),
            ImageError::NoManifest => write!(f, "boot image has no '{MANIFEST_NAME}' entry"),
            ImageError::ManifestNotUtf8 => write!(f, "manifest is not UTF-8"),
            ImageError::ManifestSyntax { line } => {
                write!(f, "manifest line {line}: expected 'root <name>' or 'program <name>'")
            }
            ImageError::ManifestRoot { count } => write!(f, "manifest has {count} 'root' lines, need exactly one"),
            ImageError::MissingProgram { line } => {
                write!(f, "manifest line {line} names a program that is not in the image")
            }
        }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// A validated boot image borrowed from the module's memory.
#[derive(Clone, Copy, Debug)]
pub struct BootImage<'a> {
    bytes: &'a [u8],
    entry_count: u32,
}

/// One file of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its contents.
    pub data: &'a [u8],
    /// Offset of the data from the start of the image.
    pub offset: u64,
}

impl<'a> BootImage<'a> {
    /// Checks the header and every entry record; afterwards lookups cannot fail on bounds.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        if bytes.len() < HEADER_SIZE {
            return Err(ImageError::TooShort { len: bytes.len() });
        }
        if bytes[..8] != IMAGE_MAGIC {
            return Err(ImageError::BadMagic);
        }
        let version = read_u32(bytes, 8).ok_or(ImageError::TooShort { len: bytes.len() })?;
        if version != IMAGE_VERSION {
            return Err(ImageError::BadVersion(version));
        }
        let entry_count = read_u32(bytes, 12).ok_or(ImageError::TooShort { len: bytes.len() })?;
        if entry_count > MAX_ENTRIES {
            return Err(ImageError::TooManyEntries(entry_count));
        }
        let total_size = read_u64(bytes, 16).ok_or(ImageError::TooShort { len: bytes.len() })?;
        if total_size != bytes.len() as u64 {
            return Err(ImageError::SizeMismatch { declared: total_size, actual: bytes.len() as u64 });
        }
        let table_end = HEADER_SIZE + entry_count as usize * ENTRY_SIZE;
        if table_end > bytes.len() {
            return Err(ImageError::EntryTableTruncated);
        }
        let image = BootImage { bytes, entry_count };
        for index in 0..entry_count {
            image.entry(index)?;
        }
        Ok(image)
    }

    /// Number of files.
    pub fn len(&self) -> u32 {
        self.entry_count
    }

    /// Whether the image holds no files.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    fn entry(&self, index: u32) -> Result<File<'a>, ImageError> {
        let at = HEADER_SIZE + index as usize * ENTRY_SIZE;
        let raw_name = self.bytes.get(at..at + NAME_LEN).ok_or(ImageError::EntryTableTruncated)?;
        let offset = read_u64(self.bytes, at + NAME_LEN).ok_or(ImageError::EntryTableTruncated)?;
        let size = read_u64(self.bytes, at + NAME_LEN + 8).ok_or(ImageError::EntryTableTruncated)?;
        let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if name_len == 0 || raw_name[name_len..].iter().any(|&b| b != 0) {
            return Err(ImageError::BadName { index });
        }
        let name = core::str::from_utf8(&raw_name[..name_len]).map_err(|_| ImageError::BadName { index })?;
        let end = offset.checked_add(size).ok_or(ImageError::EntryOutOfBounds { index })?;
        if end > self.bytes.len() as u64 || offset < (HEADER_SIZE + self.entry_count as usize * ENTRY_SIZE) as u64 {
            return Err(ImageError::EntryOutOfBounds { index });
        }
        Ok(File { name, data: &self.bytes[offset as usize..end as usize], offset })
    }

    /// Every file, in stored order.
    pub fn files(&self) -> impl Iterator<Item = File<'a>> + '_ {
        (0..self.entry_count).filter_map(move |i| self.entry(i).ok())
    }

    /// The file called `name`, if present.
    pub fn find(&self, name: &str) -> Option<File<'a>> {
        self.files().find(|f| f.name == name)
    }

    /// Parses and checks the manifest against the image's contents.
    pub fn manifest(&self) -> Result<Manifest<'a>, ImageError> {
        let file = self.find(MANIFEST_NAME).ok_or(ImageError::NoManifest)?;
        let text = core::str::from_utf8(file.data).map_err(|_| ImageError::ManifestNotUtf8)?;
        let mut roots = 0u32;
        let mut root = "";
        for (number, line) in text.lines().enumerate() {
            let line_no = number as u32 + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(kind), Some(name), None) = (words.next(), words.next(), words.next()) else {
                return Err(ImageError::ManifestSyntax { line: line_no });
            };
            match kind {
                "root" => {
                    roots += 1;
                    root = name;
                }
                "program" => {}
                _ => return Err(ImageError::ManifestSyntax { line: line_no }),
            }
            if self.find(name).is_none() {
                return Err(ImageError::MissingProgram { line: line_no });
            }
        }
        if roots != 1 {
            return Err(ImageError::ManifestRoot { count: roots });
        }
        Ok(Manifest { text, root })
    }
}

/// A checked manifest.
#[derive(Clone, Copy, Debug)]
pub struct Manifest<'a> {
    text: &'a str,
    root: &'a str,
}

impl<'a> Manifest<'a> {
    /// Name of the root task's program.
    pub fn root(&self) -> &'a str {
        self.root
    }

    /// Names of the extra programs, in manifest order.
    pub fn programs(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.text.lines().filter_map(|line| {
            let mut words = line.split('#').next().unwrap_or("").split_whitespace();
            match (words.next(), words.next()) {
                (Some("program"), Some(name)) => Some(name),
                _ => None,
            }
        })
    }
}

/// Builds an image from `(name, data)` pairs (host tools only).
#[cfg(any(test, feature = "std"))]
pub fn pack(files: &[(&str, &[u8])]) -> Result<std::vec::Vec<u8>, std::string::String> {
    if files.len() > MAX_ENTRIES as usize {
        return Err(format!("{} files, at most {MAX_ENTRIES}", files.len()));
    }
    let mut data_at = HEADER_SIZE + files.len() * ENTRY_SIZE;
    let mut table = std::vec::Vec::new();
    let mut data = std::vec::Vec::new();
    for (name, contents) in files {
        if name.is_empty() || name.len() > NAME_LEN || name.contains('\0') {
            return Err(format!("bad entry name {name:?} (1..={NAME_LEN} bytes, no NUL)"));
        }
        // Keep every file page-aligned so the kernel could map it in place.
        let page = crate::layout::PAGE_SIZE as usize;
        let pad = (page - data_at % page) % page;
        data.extend(std::iter::repeat_n(0u8, pad));
        data_at += pad;
        let mut raw_name = [0u8; NAME_LEN];
        raw_name[..name.len()].copy_from_slice(name.as_bytes());
        table.extend_from_slice(&raw_name);
        table.extend_from_slice(&(data_at as u64).to_le_bytes());
        table.extend_from_slice(&(contents.len() as u64).to_le_bytes());
        data.extend_from_slice(contents);
        data_at += contents.len();
    }
    let mut out = std::vec::Vec::with_capacity(data_at);
    out.extend_from_slice(&IMAGE_MAGIC);
    out.extend_from_slice(&IMAGE_VERSION.to_le_bytes());
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data_at as u64).to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&data);
    debug_assert_eq!(out.len(), data_at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> std::vec::Vec<u8> {
        pack(&[("manifest", b"# boot\nroot init\nprogram drv # a driver\n"), ("init", b"\x7fELF..."), ("drv", b"x")])
            .unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let image = BootImage::parse(&bytes).unwrap();
        assert_eq!(image.len(), 3);
        assert_eq!(image.find("init").unwrap().data, b"\x7fELF...");
        assert_eq!(image.find("init").unwrap().offset % 4096, 0);
        let manifest = image.manifest().unwrap();
        assert_eq!(manifest.root(), "init");
        assert_eq!(manifest.programs().collect::<std::vec::Vec<_>>(), ["drv"]);
    }

    #[test]
    fn truncation_and_corruption_are_rejected() {
        let bytes = sample();
        for cut in [0, 5, HEADER_SIZE, bytes.len() / 2, bytes.len() - 1] {
            assert!(BootImage::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(BootImage::parse(&bad).unwrap_err(), ImageError::BadMagic);
        let mut bad = bytes.clone();
        // Entry 1's offset far past the end.
        let at = HEADER_SIZE + ENTRY_SIZE + NAME_LEN;
        bad[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(BootImage::parse(&bad).unwrap_err(), ImageError::EntryOutOfBounds { index: 1 });
    }

    #[test]
    fn manifest_errors() {
        let no_root = pack(&[("manifest", b"program a\n"), ("a", b"")]).unwrap();
        assert_eq!(BootImage::parse(&no_root).unwrap().manifest().unwrap_err(), ImageError::ManifestRoot { count: 0 });
        let missing = pack(&[("manifest", b"root a\nroot b\n"), ("a", b"")]).unwrap();
        assert_eq!(BootImage::parse(&missing).unwrap().manifest().unwrap_err(), ImageError::MissingProgram { line: 2 });
        let syntax = pack(&[("manifest", b"start a\n"), ("a", b"")]).unwrap();
        assert_eq!(BootImage::parse(&syntax).unwrap().manifest().unwrap_err(), ImageError::ManifestSyntax { line: 1 });
        let none = pack(&[("a", b"")]).unwrap();
        assert_eq!(BootImage::parse(&none).unwrap().manifest().unwrap_err(), ImageError::NoManifest);
    }
}
