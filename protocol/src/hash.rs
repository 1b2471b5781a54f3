//! SHA-256 digests and the forms Nix writes them in.
//!
//! A [`NarHash`] is the SHA-256 of a NAR serialisation. Nix prints it as
//! `sha256:<nix32>` (narinfo, path-info), and accepts `sha256:<hex>` and the
//! SRI form `sha256-<base64>`; [`NarHash::parse`] takes all three and
//! [`core::fmt::Display`] writes the first.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::encoding::{
    base64_decode_array, base64_encode, hex_decode_array, hex_encode, nix32_decode_array,
    nix32_encode,
};
use crate::error::{Error, Result};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// SHA-256 over the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Self(h.finalize().into())
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        hex_decode_array(s).map(Self)
    }

    /// Nix base32 (52 characters).
    pub fn to_nix32(&self) -> String {
        nix32_encode(&self.0)
    }

    /// Parse 52 nix32 characters.
    pub fn from_nix32(s: &str) -> Result<Self> {
        nix32_decode_array(s).map(Self)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The SHA-256 hash of a NAR serialisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NarHash(pub Sha256Digest);

impl NarHash {
    /// Parse `sha256:<nix32>`, `sha256:<hex>` or SRI `sha256-<base64>`.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("sha256:") {
            let digest = match rest.len() {
                52 => Sha256Digest::from_nix32(rest)?,
                64 => Sha256Digest::from_hex(rest)?,
                found => {
                    return Err(Error::InvalidLength {
                        what: "sha256 hash (52 nix32 or 64 hex characters)",
                        expected: 52,
                        found,
                    })
                }
            };
            return Ok(Self(digest));
        }
        if let Some(rest) = s.strip_prefix("sha256-") {
            return base64_decode_array(rest).map(|b| Self(Sha256Digest(b)));
        }
        let algo = s
            .split_once([':', '-'])
            .map_or(s, |(a, _)| a)
            .chars()
            .take(16)
            .collect();
        Err(Error::UnsupportedHashAlgorithm(algo))
    }

    /// `sha256:<nix32>`, the form in narinfo files and signature fingerprints.
    pub fn to_nix_string(&self) -> String {
        let mut s = String::from("sha256:");
        s.push_str(&self.0.to_nix32());
        s
    }

    /// SRI form `sha256-<base64>`.
    pub fn to_sri(&self) -> String {
        let mut s = String::from("sha256-");
        s.push_str(&base64_encode(&self.0 .0));
        s
    }

    /// The digest.
    pub fn digest(&self) -> &Sha256Digest {
        &self.0
    }
}

impl fmt::Debug for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NarHash({})", self.to_nix_string())
    }
}

impl fmt::Display for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nix_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256() {
        assert_eq!(
            Sha256Digest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Sha256Digest::of_parts(&[b"ab", b"c"]),
            Sha256Digest::of(b"abc")
        );
    }

    #[test]
    fn nar_hash_forms_agree() {
        // v1-file from the shared Nix 2.8 vectors.
        let hex = "sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13";
        let nix32 = "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw";
        let sri = "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=";
        let a = NarHash::parse(hex).ok();
        assert!(a.is_some());
        assert_eq!(a, NarHash::parse(nix32).ok());
        assert_eq!(a, NarHash::parse(sri).ok());
        assert_eq!(a.map(|h| h.to_nix_string()).as_deref(), Some(nix32));
        assert_eq!(a.map(|h| h.to_sri()).as_deref(), Some(sri));
    }

    #[test]
    fn nar_hash_refusals() {
        assert!(matches!(
            NarHash::parse("sha1:0123"),
            Err(Error::UnsupportedHashAlgorithm(a)) if a == "sha1"
        ));
        assert!(matches!(
            NarHash::parse("sha256:0123"),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            NarHash::parse("sha256-AAAA"),
            Err(Error::InvalidLength { .. })
        ));
    }
}
