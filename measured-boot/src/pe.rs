//! PE/COFF images (UEFI applications: the kernel's EFI stub, unified kernel
//! images) and their Authenticode hash, which is what UEFI firmware extends
//! into PCR 4 for every EFI application it starts.
//!
//! ```text
//! 0x00  DOS header: "MZ" … e_lfanew (u32 at 0x3C) ──┐
//! e_lfanew  "PE\0\0"                                 <┘
//!           COFF header (20 bytes): Machine, NumberOfSections,
//!             …, SizeOfOptionalHeader, Characteristics
//!           optional header: Magic 0x10B (PE32) | 0x20B (PE32+), …,
//!             +60 SizeOfHeaders, +64 CheckSum, …, NumberOfRvaAndSizes,
//!             data directories (8 bytes each; index 4 = certificate table,
//!             whose "RVA" is a file offset)
//!           section table (40 bytes per section)
//! SizeOfHeaders ...
//!           section raw data, certificate table (at the end of the file)
//! ```
//!
//! **Authenticode** (Microsoft, "Windows Authenticode Portable Executable
//! Signature Format", §"Calculating the PE Image Hash"; the same algorithm
//! as EDK2's `Tpm2MeasurePeImage`, which OVMF uses, and `pesign -h`):
//! 1. hash the headers from byte 0 to `SizeOfHeaders`, leaving out the
//!    CheckSum field and the certificate-table data directory entry (when
//!    `NumberOfRvaAndSizes` reaches index 4);
//! 2. hash the raw data of every section with `SizeOfRawData > 0`, in order
//!    of `PointerToRawData`; `SUM` = `SizeOfHeaders` + those sizes;
//! 3. if the file holds more than `SUM` + the certificate table's size,
//!    hash the `file size - certificate table size - SUM` bytes from offset
//!    `SUM` (data after the last section, the certificate table excluded).
//!
//! All integers are little-endian. What the parser refuses ([`Error::NotPe`],
//! [`Error::MalformedPe`], [`Error::Truncated`]): a missing `MZ` or
//! `PE\0\0` signature; headers, section table or section data beyond the
//! file; an unknown optional-header magic; an optional header too small for
//! its fields or its data directories; more than 16 data directories or
//! [`MAX_SECTIONS`] sections; a section table outside `SizeOfHeaders`;
//! section data inside the headers or overlapping another section's data;
//! a certificate table that is not the last thing in the file, overlaps
//! section data, or has a size but no offset.

use alloc::vec::Vec;
use core::fmt;

use crate::alg::{Digest, HashAlgorithm};
use crate::error::{Error, Result};
use crate::hasher::Hasher;

/// The most sections accepted (the PE/COFF specification's loader limit).
pub const MAX_SECTIONS: usize = 96;

/// The most data directories (the PE/COFF specification defines 16).
pub const MAX_DATA_DIRECTORIES: usize = 16;

/// Index of the certificate table among the data directories.
pub const CERTIFICATE_TABLE: usize = 4;

const DOS_HEADER_SIZE: usize = 64;
const COFF_HEADER_SIZE: usize = 20;
const SECTION_HEADER_SIZE: usize = 40;

/// The optional header's format.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PeFormat {
    /// Magic 0x10B: 32-bit images.
    Pe32,
    /// Magic 0x20B: 64-bit images (x86-64, AArch64 UEFI applications).
    Pe32Plus,
}

/// One data directory entry: an RVA (for the certificate table: a file
/// offset) and a size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DataDirectory {
    /// VirtualAddress.
    pub virtual_address: u32,
    /// Size.
    pub size: u32,
}

/// A section header, as the image writes it (checked: its raw data lies
/// inside the image).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Section {
    name: [u8; 8],
    virtual_size: u32,
    virtual_address: u32,
    size_of_raw_data: u32,
    pointer_to_raw_data: u32,
    characteristics: u32,
}

impl Section {
    /// The name field, NUL padding removed (`.linux`). Names longer than 8
    /// bytes (`/4` string-table references) are returned as written.
    pub fn name(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(self.name.len());
        self.name.get(..end).unwrap_or(&[])
    }

    /// VirtualSize (`Misc.VirtualSize`): the section's size in memory.
    pub fn virtual_size(&self) -> u32 {
        self.virtual_size
    }

    /// VirtualAddress (RVA).
    pub fn virtual_address(&self) -> u32 {
        self.virtual_address
    }

    /// SizeOfRawData: bytes of the section in the file.
    pub fn size_of_raw_data(&self) -> u32 {
        self.size_of_raw_data
    }

    /// PointerToRawData: file offset of the section's data.
    pub fn pointer_to_raw_data(&self) -> u32 {
        self.pointer_to_raw_data
    }

    /// Characteristics flags.
    pub fn characteristics(&self) -> u32 {
        self.characteristics
    }

    fn raw_range(&self) -> (usize, usize) {
        let start = self.pointer_to_raw_data as usize;
        (start, start.saturating_add(self.size_of_raw_data as usize))
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("name", &alloc::string::String::from_utf8_lossy(self.name()))
            .field("virtual_size", &self.virtual_size)
            .field("virtual_address", &self.virtual_address)
            .field("size_of_raw_data", &self.size_of_raw_data)
            .field("pointer_to_raw_data", &self.pointer_to_raw_data)
            .finish()
    }
}

/// A parsed PE/COFF image, borrowing its bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeImage<'a> {
    bytes: &'a [u8],
    machine: u16,
    format: PeFormat,
    checksum_offset: usize,
    size_of_headers: usize,
    directories_offset: usize,
    directories: Vec<DataDirectory>,
    sections: Vec<Section>,
    /// (file offset, size) of the certificate table, if the image has one.
    certificate_table: Option<(usize, usize)>,
}

/// A little-endian field reader over the whole image that reports
/// truncation at absolute offsets.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize, what: &'static str) -> Result<[u8; N]> {
        at.checked_add(N)
            .and_then(|end| self.0.get(at..end))
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(Error::Truncated {
                offset: at.min(self.0.len()),
                expected: what,
            })
    }

    fn u16(&self, at: usize, what: &'static str) -> Result<u16> {
        self.bytes::<2>(at, what).map(u16::from_le_bytes)
    }

    fn u32(&self, at: usize, what: &'static str) -> Result<u32> {
        self.bytes::<4>(at, what).map(u32::from_le_bytes)
    }
}

fn malformed(offset: usize, expected: &'static str) -> Error {
    Error::MalformedPe { offset, expected }
}

impl<'a> PeImage<'a> {
    /// Parses the headers and section table of `bytes` (see the module
    /// docs for what is refused).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let f = Fields(bytes);
        if bytes.get(..2) != Some(b"MZ".as_slice()) {
            return Err(Error::NotPe {
                offset: 0,
                expected: "the DOS signature \"MZ\"",
            });
        }
        if bytes.len() < DOS_HEADER_SIZE {
            return Err(Error::Truncated {
                offset: bytes.len(),
                expected: "a 64-byte DOS header",
            });
        }
        let pe = f.u32(0x3c, "e_lfanew")? as usize;
        if f.bytes::<4>(pe, "the PE signature \"PE\\0\\0\"")? != *b"PE\0\0" {
            return Err(Error::NotPe {
                offset: pe,
                expected: "the PE signature \"PE\\0\\0\" at e_lfanew",
            });
        }
        let coff = pe.saturating_add(4);
        let machine = f.u16(coff, "the COFF header's Machine")?;
        let section_count = usize::from(f.u16(coff + 2, "NumberOfSections")?);
        if section_count > MAX_SECTIONS {
            return Err(malformed(coff + 2, "NumberOfSections of at most 96"));
        }
        let optional_size = usize::from(f.u16(coff + 16, "SizeOfOptionalHeader")?);
        let opt = coff + COFF_HEADER_SIZE;
        let (format, count_at, directories_at) = match f.u16(opt, "the optional header's Magic")? {
            0x10b => (PeFormat::Pe32, 92, 96),
            0x20b => (PeFormat::Pe32Plus, 108, 112),
            _ => {
                return Err(malformed(
                    opt,
                    "optional header Magic 0x10B (PE32) or 0x20B (PE32+)",
                ))
            }
        };
        if optional_size < directories_at {
            return Err(malformed(
                coff + 16,
                "SizeOfOptionalHeader covering the optional header's fields up to NumberOfRvaAndSizes",
            ));
        }
        let optional_end = opt + optional_size;
        if optional_end > bytes.len() {
            return Err(Error::Truncated {
                offset: bytes.len(),
                expected: "the optional header (SizeOfOptionalHeader bytes)",
            });
        }
        let size_of_headers = f.u32(opt + 60, "SizeOfHeaders")? as usize;
        let directory_count = f.u32(opt + count_at, "NumberOfRvaAndSizes")? as usize;
        if directory_count > MAX_DATA_DIRECTORIES {
            return Err(malformed(
                opt + count_at,
                "NumberOfRvaAndSizes of at most 16",
            ));
        }
        let directories_offset = opt + directories_at;
        if directories_offset + directory_count * 8 > optional_end {
            return Err(malformed(
                coff + 16,
                "SizeOfOptionalHeader covering NumberOfRvaAndSizes data directories",
            ));
        }
        let mut directories = Vec::with_capacity(directory_count);
        for i in 0..directory_count {
            let at = directories_offset + i * 8;
            directories.push(DataDirectory {
                virtual_address: f.u32(at, "a data directory's VirtualAddress")?,
                size: f.u32(at + 4, "a data directory's Size")?,
            });
        }
        let table_end = optional_end + section_count * SECTION_HEADER_SIZE;
        if table_end > bytes.len() {
            return Err(Error::Truncated {
                offset: bytes.len(),
                expected: "the section table (NumberOfSections entries of 40 bytes)",
            });
        }
        if size_of_headers > bytes.len() {
            return Err(malformed(opt + 60, "SizeOfHeaders within the file"));
        }
        if size_of_headers < table_end {
            return Err(malformed(
                opt + 60,
                "SizeOfHeaders covering the headers and the section table",
            ));
        }
        let mut sections = Vec::with_capacity(section_count);
        for i in 0..section_count {
            let at = optional_end + i * SECTION_HEADER_SIZE;
            let s = Section {
                name: f.bytes::<8>(at, "a section name")?,
                virtual_size: f.u32(at + 8, "a section's VirtualSize")?,
                virtual_address: f.u32(at + 12, "a section's VirtualAddress")?,
                size_of_raw_data: f.u32(at + 16, "a section's SizeOfRawData")?,
                pointer_to_raw_data: f.u32(at + 20, "a section's PointerToRawData")?,
                characteristics: f.u32(at + 36, "a section's Characteristics")?,
            };
            if s.size_of_raw_data > 0 {
                let (start, end) = s.raw_range();
                if end > bytes.len() {
                    return Err(malformed(
                        at + 16,
                        "section data (PointerToRawData + SizeOfRawData) within the file",
                    ));
                }
                if start < size_of_headers {
                    return Err(malformed(
                        at + 20,
                        "section data after the headers (PointerToRawData >= SizeOfHeaders)",
                    ));
                }
            }
            sections.push(s);
        }
        let mut by_offset: Vec<(usize, usize, usize)> = sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.size_of_raw_data > 0)
            .map(|(i, s)| {
                let (a, b) = s.raw_range();
                (a, b, i)
            })
            .collect();
        by_offset.sort_unstable();
        for pair in by_offset.windows(2) {
            if let [(_, end, _), (start, _, i)] = pair {
                if start < end {
                    return Err(malformed(
                        optional_end + i * SECTION_HEADER_SIZE + 20,
                        "section data not overlapping another section's data",
                    ));
                }
            }
        }
        let certificate_table = match directories.get(CERTIFICATE_TABLE) {
            None => None,
            Some(d) if d.size == 0 => None,
            Some(d) => {
                let at = directories_offset + CERTIFICATE_TABLE * 8;
                let start = d.virtual_address as usize;
                let size = d.size as usize;
                if start == 0 {
                    return Err(malformed(
                        at,
                        "a certificate table with a size to have a file offset",
                    ));
                }
                if start.checked_add(size) != Some(bytes.len()) {
                    return Err(malformed(
                        at,
                        "the certificate table to end exactly at the end of the file",
                    ));
                }
                let data_end = by_offset.last().map_or(size_of_headers, |(_, e, _)| *e);
                if start < data_end.max(size_of_headers) {
                    return Err(malformed(
                        at,
                        "the certificate table after the headers and all section data",
                    ));
                }
                Some((start, size))
            }
        };
        Ok(Self {
            bytes,
            machine,
            format,
            checksum_offset: opt + 64,
            size_of_headers,
            directories_offset,
            directories,
            sections,
            certificate_table,
        })
    }

    /// The image's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The COFF Machine field (0x8664 = x86-64, 0xAA64 = AArch64).
    pub fn machine(&self) -> u16 {
        self.machine
    }

    /// PE32 or PE32+.
    pub fn format(&self) -> PeFormat {
        self.format
    }

    /// SizeOfHeaders.
    pub fn size_of_headers(&self) -> usize {
        self.size_of_headers
    }

    /// The data directories, in index order.
    pub fn data_directories(&self) -> &[DataDirectory] {
        &self.directories
    }

    /// The sections, in section-table order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section named `name` (without NUL padding).
    pub fn section(&self, name: &[u8]) -> Option<&Section> {
        self.sections.iter().find(|s| s.name() == name)
    }

    /// A section's raw data in the file (`SizeOfRawData` bytes).
    pub fn raw_data(&self, section: &Section) -> &'a [u8] {
        let (start, end) = section.raw_range();
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// The certificate table's (file offset, size), if the image is signed.
    pub fn certificate_table(&self) -> Option<(usize, usize)> {
        self.certificate_table
    }

    /// The Authenticode hash of the image with `algorithm` (see the module
    /// docs): what UEFI firmware measures for an EFI application, and what
    /// `pesign -h` prints.
    pub fn authenticode(&self, algorithm: HashAlgorithm) -> Result<Digest> {
        let mut h = Hasher::new(algorithm);
        let piece = |a: usize, b: usize| {
            self.bytes.get(a..b).ok_or(Error::MalformedPe {
                offset: a,
                expected: "a hashed range inside the image",
            })
        };
        h.update(piece(0, self.checksum_offset)?);
        let after_checksum = self.checksum_offset + 4;
        if self.directories.len() > CERTIFICATE_TABLE {
            let entry = self.directories_offset + CERTIFICATE_TABLE * 8;
            h.update(piece(after_checksum, entry)?);
            h.update(piece(entry + 8, self.size_of_headers)?);
        } else {
            h.update(piece(after_checksum, self.size_of_headers)?);
        }
        let mut sorted: Vec<&Section> = self
            .sections
            .iter()
            .filter(|s| s.size_of_raw_data > 0)
            .collect();
        sorted.sort_by_key(|s| s.pointer_to_raw_data);
        let mut sum = self.size_of_headers;
        for s in sorted {
            let (start, end) = s.raw_range();
            h.update(piece(start, end)?);
            sum += s.size_of_raw_data as usize;
        }
        let certificates = self.certificate_table.map_or(0, |(_, size)| size);
        let len = self.bytes.len();
        if len > sum.saturating_add(certificates) {
            h.update(piece(sum, len - certificates)?);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_pe() {
        assert!(matches!(
            PeImage::parse(b""),
            Err(Error::NotPe { offset: 0, .. })
        ));
        assert!(matches!(
            PeImage::parse(b"MZ"),
            Err(Error::Truncated { .. })
        ));
        let mut dos = vec![0u8; 64];
        dos[0] = b'M';
        dos[1] = b'Z';
        dos[0x3c] = 64;
        assert!(matches!(
            PeImage::parse(&dos),
            Err(Error::Truncated { offset: 64, .. })
        ));
        dos.extend_from_slice(b"NE\0\0");
        assert!(matches!(
            PeImage::parse(&dos),
            Err(Error::NotPe { offset: 64, .. })
        ));
    }
}
