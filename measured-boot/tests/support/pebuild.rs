//! Builds small PE32+ images byte by byte for tests, independently of the
//! crate's parser, with the offsets of the fields tests break.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest as _, Sha256};

/// e_lfanew's offset in the DOS header.
pub(crate) const E_LFANEW: usize = 0x3c;
/// Where the builder puts "PE\0\0".
pub(crate) const PE: usize = 0x40;
/// NumberOfSections.
pub(crate) const NUMBER_OF_SECTIONS: usize = PE + 4 + 2;
/// SizeOfOptionalHeader.
pub(crate) const SIZE_OF_OPTIONAL_HEADER: usize = PE + 4 + 16;
/// The optional header (its Magic).
pub(crate) const OPT: usize = PE + 24;
/// SizeOfHeaders.
pub(crate) const SIZE_OF_HEADERS: usize = OPT + 60;
/// CheckSum.
pub(crate) const CHECKSUM: usize = OPT + 64;
/// NumberOfRvaAndSizes (PE32+).
pub(crate) const NUMBER_OF_RVA_AND_SIZES: usize = OPT + 108;
/// The data directories (PE32+).
pub(crate) const DIRECTORIES: usize = OPT + 112;
/// The certificate table's directory entry.
pub(crate) const CERT_DIRECTORY: usize = DIRECTORIES + 4 * 8;
/// The optional header's size with 16 directories.
pub(crate) const OPTIONAL_SIZE: usize = 112 + 16 * 8;
/// The section table.
pub(crate) const SECTION_TABLE: usize = OPT + OPTIONAL_SIZE;
/// File alignment used for headers and section data.
pub(crate) const ALIGN: usize = 0x200;

/// One section to lay out.
#[derive(Clone, Debug)]
pub(crate) struct Sec {
    pub(crate) name: String,
    pub(crate) data: Vec<u8>,
    /// VirtualSize; default: the data's length.
    pub(crate) virtual_size: Option<u32>,
}

impl Sec {
    pub(crate) fn new(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            data: data.to_vec(),
            virtual_size: None,
        }
    }
}

/// An image to build.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pe {
    pub(crate) sections: Vec<Sec>,
    /// Bytes after the last section (before any certificate table).
    pub(crate) trailing: Vec<u8>,
    /// A certificate table (its bytes), appended 8-aligned at the end.
    pub(crate) certificates: Option<Vec<u8>>,
    /// A checksum value (Authenticode ignores it).
    pub(crate) checksum: u32,
}

fn align(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

impl Pe {
    /// The file offset of each section's raw data.
    pub(crate) fn layout(&self) -> (usize, Vec<usize>) {
        let headers = align(SECTION_TABLE + 40 * self.sections.len(), ALIGN);
        let mut at = headers;
        let mut offsets = Vec::new();
        for s in &self.sections {
            offsets.push(at);
            at += align(s.data.len(), ALIGN);
        }
        (headers, offsets)
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let (headers, offsets) = self.layout();
        let mut out = vec![0u8; headers];
        out[0] = b'M';
        out[1] = b'Z';
        out[E_LFANEW..E_LFANEW + 4].copy_from_slice(&(PE as u32).to_le_bytes());
        out[PE..PE + 4].copy_from_slice(b"PE\0\0");
        out[PE + 4..PE + 6].copy_from_slice(&0x8664u16.to_le_bytes());
        out[NUMBER_OF_SECTIONS..NUMBER_OF_SECTIONS + 2]
            .copy_from_slice(&(self.sections.len() as u16).to_le_bytes());
        out[SIZE_OF_OPTIONAL_HEADER..SIZE_OF_OPTIONAL_HEADER + 2]
            .copy_from_slice(&(OPTIONAL_SIZE as u16).to_le_bytes());
        out[OPT..OPT + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        out[SIZE_OF_HEADERS..SIZE_OF_HEADERS + 4].copy_from_slice(&(headers as u32).to_le_bytes());
        out[CHECKSUM..CHECKSUM + 4].copy_from_slice(&self.checksum.to_le_bytes());
        out[NUMBER_OF_RVA_AND_SIZES..NUMBER_OF_RVA_AND_SIZES + 4]
            .copy_from_slice(&16u32.to_le_bytes());
        for (i, s) in self.sections.iter().enumerate() {
            let at = SECTION_TABLE + 40 * i;
            let name = s.name.as_bytes();
            out[at..at + name.len().min(8)].copy_from_slice(&name[..name.len().min(8)]);
            let vsize = s.virtual_size.unwrap_or(s.data.len() as u32);
            out[at + 8..at + 12].copy_from_slice(&vsize.to_le_bytes());
            out[at + 12..at + 16].copy_from_slice(&((0x1000 * (i + 1)) as u32).to_le_bytes());
            let raw = align(s.data.len(), ALIGN) as u32;
            out[at + 16..at + 20].copy_from_slice(&raw.to_le_bytes());
            let ptr = if raw == 0 { 0 } else { offsets[i] as u32 };
            out[at + 20..at + 24].copy_from_slice(&ptr.to_le_bytes());
            out[at + 36..at + 40].copy_from_slice(&0x4000_0040u32.to_le_bytes());
        }
        for s in &self.sections {
            let mut d = s.data.clone();
            d.resize(align(d.len(), ALIGN), 0);
            out.extend_from_slice(&d);
        }
        out.extend_from_slice(&self.trailing);
        if let Some(c) = &self.certificates {
            out.resize(align(out.len(), 8), 0);
            let at = out.len() as u32;
            out[CERT_DIRECTORY..CERT_DIRECTORY + 4].copy_from_slice(&at.to_le_bytes());
            out[CERT_DIRECTORY + 4..CERT_DIRECTORY + 8]
                .copy_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    /// Authenticode SHA-256 written from the layout this builder chose:
    /// headers without the checksum and the certificate directory entry,
    /// each section's padded data, the bytes between the last section and
    /// the certificate table.
    pub(crate) fn reference_authenticode(&self, image: &[u8]) -> [u8; 32] {
        let (headers, _) = self.layout();
        let mut h = Sha256::new();
        h.update(&image[..CHECKSUM]);
        h.update(&image[CHECKSUM + 4..CERT_DIRECTORY]);
        h.update(&image[CERT_DIRECTORY + 8..headers]);
        let cert_len = self.certificates.as_ref().map_or(0, |c| c.len());
        h.update(&image[headers..image.len() - cert_len]);
        h.finalize().into()
    }
}

/// A minimal PE image with one `.text` section: what a `.linux` section
/// of a test UKI holds.
pub(crate) fn tiny_kernel() -> Vec<u8> {
    Pe {
        sections: vec![Sec::new(".text", b"\xc3kernel")],
        ..Pe::default()
    }
    .build()
}

/// The `.sdmagic` contents systemd-stub `version` carries.
pub(crate) fn sdmagic(version: &str) -> Vec<u8> {
    format!("#### LoaderInfo: systemd-stub {version} ####\0").into_bytes()
}
