//! Small identifiers: builders, counters, PCR indices.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::encoding::{hex_decode_array, hex_encode};
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;

/// TPM_ALG_SHA256, the name algorithm every provenix TPM object uses.
pub const TPM_ALG_SHA256: u16 = 0x000b;

/// A builder's identity: the TPM Name of its attestation key (AK), i.e.
/// `0x000b || SHA-256(TPMT_PUBLIC of the AK)` — 34 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuilderId([u8; 34]);

impl BuilderId {
    /// The Name of an object whose public area hashes to `digest`.
    pub fn from_public_digest(digest: &Sha256Digest) -> Self {
        let mut b = [0u8; 34];
        let [hi, lo] = TPM_ALG_SHA256.to_be_bytes();
        let mut it = b.iter_mut();
        for (dst, src) in it.by_ref().zip([hi, lo].iter().chain(digest.0.iter())) {
            *dst = *src;
        }
        Self(b)
    }

    /// The SHA-256 part of the Name (what the wire format stores; the
    /// algorithm is always SHA-256).
    pub fn digest(&self) -> Sha256Digest {
        let mut d = [0u8; 32];
        for (dst, src) in d.iter_mut().zip(self.0.iter().skip(2)) {
            *dst = *src;
        }
        Sha256Digest(d)
    }

    /// Parse a 34-byte TPM Name; only SHA-256 names are accepted.
    pub fn from_bytes(bytes: [u8; 34]) -> Result<Self> {
        if bytes.get(..2) != Some(&TPM_ALG_SHA256.to_be_bytes()[..]) {
            return Err(Error::InvalidValue {
                what: "builder id",
                reason: "TPM name algorithm is not SHA-256 (0x000b)",
            });
        }
        Ok(Self(bytes))
    }

    /// Parse 68 hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        Self::from_bytes(hex_decode_array(s)?)
    }

    /// The Name's bytes.
    pub fn as_bytes(&self) -> &[u8; 34] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }
}

impl fmt::Debug for BuilderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuilderId({})", self.to_hex())
    }
}

impl fmt::Display for BuilderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A TPM NV counter value (the counter-based nonce of a batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Counter(pub u64);

/// A PCR index, 0 to 23 (the PC Client platform's PCRs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PcrIndex(u8);

impl PcrIndex {
    /// Highest PCR index on a PC Client TPM.
    pub const MAX: u8 = 23;

    /// A checked PCR index.
    pub fn new(index: u8) -> Result<Self> {
        if index > Self::MAX {
            return Err(Error::InvalidValue {
                what: "PCR index",
                reason: "greater than 23",
            });
        }
        Ok(Self(index))
    }

    /// The index.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for PcrIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        Self::new(u8::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PcrIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_id_round_trip_and_refusal() {
        let id = BuilderId::from_public_digest(&Sha256Digest::of(b"ak"));
        assert_eq!(&id.as_bytes()[..2], &[0x00, 0x0b]);
        assert_eq!(BuilderId::from_hex(&id.to_hex()).ok(), Some(id));
        assert_eq!(BuilderId::from_public_digest(&id.digest()), id);
        let mut bad = *id.as_bytes();
        bad[1] = 0x04;
        assert!(matches!(
            BuilderId::from_bytes(bad),
            Err(Error::InvalidValue { .. })
        ));
    }

    #[test]
    fn pcr_index_bounds() {
        assert_eq!(PcrIndex::new(23).map(PcrIndex::get).ok(), Some(23));
        assert!(matches!(PcrIndex::new(24), Err(Error::InvalidValue { .. })));
    }
}
