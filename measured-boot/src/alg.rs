//! Hash algorithms (PCR banks) and digests.
//!
//! A log names algorithms by their TCG algorithm identifier
//! ([`AlgorithmId`], any `u16`: a log may declare a bank this crate cannot
//! compute); the banks this crate can replay are [`HashAlgorithm`].

use alloc::string::String;
use core::fmt;

use crate::error::{Error, Result};

/// The largest digest this crate handles (SHA-512): larger digest sizes
/// in a log are refused.
pub const MAX_DIGEST_SIZE: usize = 64;

/// A TCG algorithm identifier (`TPM_ALG_ID`, TCG Algorithm Registry), as a
/// log writes it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AlgorithmId(pub u16);

impl AlgorithmId {
    /// TPM_ALG_SHA1.
    pub const SHA1: Self = Self(0x0004);
    /// TPM_ALG_SHA256.
    pub const SHA256: Self = Self(0x000b);
    /// TPM_ALG_SHA384.
    pub const SHA384: Self = Self(0x000c);
    /// TPM_ALG_SHA512.
    pub const SHA512: Self = Self(0x000d);
    /// TPM_ALG_SM3_256.
    pub const SM3_256: Self = Self(0x0012);

    /// The bank this crate can compute, if it is one.
    pub fn hash_algorithm(self) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL.into_iter().find(|a| a.id() == self)
    }
}

impl fmt::Display for AlgorithmId {
    /// The bank name (`sha256`) for known algorithms, else `0x` and four hex
    /// digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hash_algorithm() {
            Some(a) => f.write_str(a.name()),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

/// A PCR bank this crate can replay.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
    /// SM3-256 (32 bytes).
    Sm3_256,
}

impl HashAlgorithm {
    /// Every supported bank, in algorithm-identifier order.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sm3_256,
    ];

    /// The TCG algorithm identifier.
    pub fn id(self) -> AlgorithmId {
        match self {
            HashAlgorithm::Sha1 => AlgorithmId::SHA1,
            HashAlgorithm::Sha256 => AlgorithmId::SHA256,
            HashAlgorithm::Sha384 => AlgorithmId::SHA384,
            HashAlgorithm::Sha512 => AlgorithmId::SHA512,
            HashAlgorithm::Sm3_256 => AlgorithmId::SM3_256,
        }
    }

    /// The bank's name as tpm2-tools writes it: `sha1`, `sha256`, `sha384`,
    /// `sha512`, `sm3_256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sm3_256 => "sm3_256",
        }
    }

    /// The bank named `name` (as [`HashAlgorithm::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Digest size in bytes.
    pub fn digest_size(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 | HashAlgorithm::Sm3_256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The hash of the concatenation of `parts`.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Digest {
        fn run<H: sha2::Digest>(id: AlgorithmId, parts: &[&[u8]]) -> Digest {
            let mut h = H::new();
            for p in parts {
                h.update(p);
            }
            Digest::filled(id, &h.finalize())
        }
        match self {
            HashAlgorithm::Sha1 => run::<sha1::Sha1>(self.id(), parts),
            HashAlgorithm::Sha256 => run::<sha2::Sha256>(self.id(), parts),
            HashAlgorithm::Sha384 => run::<sha2::Sha384>(self.id(), parts),
            HashAlgorithm::Sha512 => run::<sha2::Sha512>(self.id(), parts),
            HashAlgorithm::Sm3_256 => run::<sm3::Sm3>(self.id(), parts),
        }
    }

    /// The hash of `data`.
    pub fn hash(self, data: &[u8]) -> Digest {
        self.hash_parts(&[data])
    }

    /// A digest of this bank with every byte set to `byte`.
    pub fn filled(self, byte: u8) -> Digest {
        let mut d = Digest::filled(self.id(), &[]);
        d.len = self.digest_size();
        for b in d.bytes.iter_mut().take(d.len) {
            *b = byte;
        }
        d
    }

    /// TPM2_PCR_Extend: `H(value || measurement)`. Refuses a value or
    /// measurement of another bank or length.
    pub fn extend(self, value: &Digest, measurement: &Digest) -> Result<Digest> {
        for d in [value, measurement] {
            if d.algorithm != self.id() || d.len != self.digest_size() {
                return Err(Error::DigestMismatch {
                    expected: self.id(),
                    found: d.algorithm,
                    len: d.len,
                });
            }
        }
        Ok(self.hash_parts(&[value.as_bytes(), measurement.as_bytes()]))
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One digest as a log carries it: its algorithm and up to
/// [`MAX_DIGEST_SIZE`] bytes.
#[derive(Clone, Copy)]
pub struct Digest {
    algorithm: AlgorithmId,
    len: usize,
    bytes: [u8; MAX_DIGEST_SIZE],
}

impl Digest {
    /// A digest of `algorithm`. Refuses more than [`MAX_DIGEST_SIZE`] bytes,
    /// and a length other than the algorithm's digest size for a known
    /// algorithm.
    pub fn new(algorithm: AlgorithmId, bytes: &[u8]) -> Result<Self> {
        let size_ok = match algorithm.hash_algorithm() {
            Some(a) => bytes.len() == a.digest_size(),
            None => bytes.len() <= MAX_DIGEST_SIZE,
        };
        if !size_ok {
            return Err(Error::DigestMismatch {
                expected: algorithm,
                found: algorithm,
                len: bytes.len(),
            });
        }
        Ok(Self::filled(algorithm, bytes))
    }

    /// Copies up to `MAX_DIGEST_SIZE` bytes (callers check the length).
    fn filled(algorithm: AlgorithmId, bytes: &[u8]) -> Self {
        let mut out = [0u8; MAX_DIGEST_SIZE];
        let mut len = 0;
        for (dst, src) in out.iter_mut().zip(bytes) {
            *dst = *src;
            len += 1;
        }
        Self {
            algorithm,
            len,
            bytes: out,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        provenix_protocol::encoding::hex_encode(self.as_bytes())
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Digest {}

impl core::hash::Hash for Digest {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}:{})", self.algorithm, self.to_hex())
    }
}

impl fmt::Display for Digest {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
