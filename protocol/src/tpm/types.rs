//! Algorithm identifiers, bounded `TPM2B_*` byte strings and TPM Names.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::codec::{Reader, Writer};
use crate::encoding::hex_encode;
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;
use crate::ids::BuilderId;

/// TPM_ALG_NULL: "no algorithm" where a TPM structure allows it.
pub const TPM_ALG_NULL: u16 = 0x0010;

/// A hash algorithm (TPMI_ALG_HASH, Part 2 §9.27).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// TPM_ALG_SHA1 (0x0004). Parsed, never computed here.
    Sha1,
    /// TPM_ALG_SHA256 (0x000b).
    Sha256,
    /// TPM_ALG_SHA384 (0x000c).
    Sha384,
    /// TPM_ALG_SHA512 (0x000d).
    Sha512,
    /// TPM_ALG_SM3_256 (0x0012). Parsed, never computed here.
    Sm3_256,
    /// TPM_ALG_SHA3_256 (0x0027). Parsed, never computed here.
    Sha3_256,
    /// TPM_ALG_SHA3_384 (0x0028). Parsed, never computed here.
    Sha3_384,
    /// TPM_ALG_SHA3_512 (0x0029). Parsed, never computed here.
    Sha3_512,
}

/// Every hash algorithm this module knows, in identifier order.
pub const HASH_ALGS: [HashAlg; 8] = [
    HashAlg::Sha1,
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
    HashAlg::Sm3_256,
    HashAlg::Sha3_256,
    HashAlg::Sha3_384,
    HashAlg::Sha3_512,
];

impl HashAlg {
    /// The TPM_ALG_ID.
    pub const fn id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000b,
            Self::Sha384 => 0x000c,
            Self::Sha512 => 0x000d,
            Self::Sm3_256 => 0x0012,
            Self::Sha3_256 => 0x0027,
            Self::Sha3_384 => 0x0028,
            Self::Sha3_512 => 0x0029,
        }
    }

    /// The algorithm with TPM_ALG_ID `id`; `what` names the field for the
    /// error.
    pub fn from_id(id: u16, what: &'static str) -> Result<Self> {
        HASH_ALGS
            .iter()
            .copied()
            .find(|a| a.id() == id)
            .ok_or(Error::TpmUnsupportedAlgorithm { what, alg: id })
    }

    /// Digest size in bytes.
    pub const fn digest_size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 | Self::Sm3_256 | Self::Sha3_256 => 32,
            Self::Sha384 | Self::Sha3_384 => 48,
            Self::Sha512 | Self::Sha3_512 => 64,
        }
    }

    /// The hash of the concatenation of `parts`. Only SHA-256, SHA-384 and
    /// SHA-512 are computed; any other algorithm is refused.
    pub fn hash(self, parts: &[&[u8]]) -> Result<Digest> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Digest {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            Digest(h.finalize().to_vec())
        }
        match self {
            Self::Sha256 => Ok(run::<Sha256>(parts)),
            Self::Sha384 => Ok(run::<Sha384>(parts)),
            Self::Sha512 => Ok(run::<Sha512>(parts)),
            _ => Err(self.not_computed("hash computation")),
        }
    }

    /// HMAC with this hash over the concatenation of `parts`.
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>> {
        macro_rules! mac {
            ($d:ty) => {{
                let mut mac =
                    <Hmac<$d> as Mac>::new_from_slice(key).map_err(|_| Error::InvalidValue {
                        what: "HMAC key",
                        reason: "refused by HMAC",
                    })?;
                for p in parts {
                    mac.update(p);
                }
                Ok(mac.finalize().into_bytes().to_vec())
            }};
        }
        match self {
            Self::Sha256 => mac!(Sha256),
            Self::Sha384 => mac!(Sha384),
            Self::Sha512 => mac!(Sha512),
            _ => Err(self.not_computed("HMAC computation")),
        }
    }

    /// The error for an algorithm this module parses but does not compute.
    pub(crate) fn not_computed(self, what: &'static str) -> Error {
        Error::TpmUnsupportedAlgorithm {
            what,
            alg: self.id(),
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self> {
        Self::from_id(r.u16(what)?, what)
    }

    pub(crate) fn write(self, w: &mut Writer) {
        w.u16(self.id());
    }
}

macro_rules! bounded_bytes {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Largest size in bytes.
            pub const MAX: usize = $max;

            /// Checked: at most [`Self::MAX`] bytes.
            pub fn new(bytes: &[u8]) -> Result<Self> {
                if bytes.len() > Self::MAX {
                    return Err(Error::TooLarge {
                        what: $what,
                        len: bytes.len(),
                        max: Self::MAX,
                    });
                }
                Ok(Self(bytes.to_vec()))
            }

            /// The bytes (without the size).
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Size in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether it holds no bytes.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Lowercase hex of the bytes.
            pub fn to_hex(&self) -> String {
                hex_encode(&self.0)
            }

            pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
                r.tpm2b($what, Self::MAX).map(|b| Self(b.to_vec()))
            }

            pub(crate) fn write(&self, w: &mut Writer) {
                w.tpm2b_bounded(&self.0);
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

bounded_bytes!(
    /// A TPM2B_DIGEST: a digest, or a value up to the size of the largest
    /// digest (64 bytes).
    Digest,
    64,
    "TPM2B_DIGEST"
);

bounded_bytes!(
    /// A TPM2B_DATA: up to `sizeof(TPMT_HA)` = 66 bytes (a quote's extraData).
    Data,
    66,
    "TPM2B_DATA"
);

bounded_bytes!(
    /// A TPM2B_ECC_PARAMETER: a coordinate or scalar, big-endian, at most
    /// 128 bytes here (the largest TPM curve, BN P638, needs 80).
    EccParameter,
    128,
    "TPM2B_ECC_PARAMETER"
);

bounded_bytes!(
    /// A TPM2B_PUBLIC_KEY_RSA: an RSA modulus or signature, big-endian, at most
    /// 512 bytes (4096 bits).
    PublicKeyRsa,
    512,
    "TPM2B_PUBLIC_KEY_RSA"
);

bounded_bytes!(
    /// A TPM2B_ENCRYPTED_SECRET: a seed encrypted to a key (an RSA-OAEP
    /// ciphertext, or a marshalled ephemeral TPMS_ECC_POINT), at most 512
    /// bytes.
    EncryptedSecret,
    512,
    "TPM2B_ENCRYPTED_SECRET"
);

impl Digest {
    /// Whether `self` equals `other`, in time independent of where they
    /// differ (for secrets such as a credential).
    pub fn ct_eq(&self, other: &Self) -> bool {
        if self.0.len() != other.0.len() {
            return false;
        }
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl From<Sha256Digest> for Digest {
    fn from(d: Sha256Digest) -> Self {
        Self(d.0.to_vec())
    }
}

/// A TPM Name (TPM2B_NAME body, Part 1 §16): empty, a 4-byte handle (for
/// PCRs, sessions, hierarchies), or `nameAlg (u16 BE) || H_nameAlg(public
/// area)`; the digest length must match the algorithm.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Name(Vec<u8>);

impl Name {
    /// Largest Name: `sizeof(TPMU_NAME)` = 2 + 64 bytes.
    pub const MAX: usize = 66;

    /// Parse the body of a TPM2B_NAME.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > Self::MAX {
            return Err(Error::TooLarge {
                what: "TPM2B_NAME",
                len: bytes.len(),
                max: Self::MAX,
            });
        }
        match bytes {
            [] | [_, _, _, _] => {}
            [hi, lo, digest @ ..] => {
                let alg = HashAlg::from_id(u16::from_be_bytes([*hi, *lo]), "TPM2B_NAME")?;
                if digest.len() != alg.digest_size() {
                    return Err(Error::InvalidLength {
                        what: "TPM2B_NAME digest",
                        expected: alg.digest_size(),
                        found: digest.len(),
                    });
                }
            }
            [_] => {
                return Err(Error::InvalidLength {
                    what: "TPM2B_NAME",
                    expected: 4,
                    found: 1,
                })
            }
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The Name of an object whose public area hashes (under `alg`) to
    /// `digest`.
    pub fn from_digest(alg: HashAlg, digest: &Digest) -> Result<Self> {
        let mut b = Vec::with_capacity(2 + digest.len());
        b.extend_from_slice(&alg.id().to_be_bytes());
        b.extend_from_slice(digest.as_bytes());
        Self::from_bytes(&b)
    }

    /// The Name of an entity that is named by its handle (a hierarchy, such
    /// as TPM_RH_ENDORSEMENT 0x4000000b; a PCR; a session).
    pub fn from_handle(handle: u32) -> Self {
        Self(handle.to_be_bytes().to_vec())
    }

    /// A builder's AK Name as a [`Name`].
    pub fn from_builder_id(id: &BuilderId) -> Self {
        Self(id.as_bytes().to_vec())
    }

    /// The Name as a [`BuilderId`]: only SHA-256 Names qualify.
    pub fn to_builder_id(&self) -> Result<BuilderId> {
        let bytes: [u8; 34] = self
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidLength {
                what: "builder id (TPM Name)",
                expected: 34,
                found: self.0.len(),
            })?;
        BuilderId::from_bytes(bytes)
    }

    /// The qualified name of `child` under a parent whose qualified name is
    /// `parent_qualified` (Part 1 §16: `QN_B = nameAlg_B || H_nameAlg_B(QN_A
    /// || Name_B)`; a primary object's parent QN is its hierarchy's handle).
    pub fn qualify(parent_qualified: &Name, child: &Name) -> Result<Name> {
        let alg = child.hash_alg().ok_or(Error::InvalidValue {
            what: "qualified name",
            reason: "the child's Name carries no hash algorithm",
        })?;
        let d = alg.hash(&[parent_qualified.as_bytes(), child.as_bytes()])?;
        Self::from_digest(alg, &d)
    }

    /// The hash algorithm, for a digest Name.
    pub fn hash_alg(&self) -> Option<HashAlg> {
        match self.0.as_slice() {
            [hi, lo, _, _, _, ..] => HashAlg::from_id(u16::from_be_bytes([*hi, *lo]), "").ok(),
            _ => None,
        }
    }

    /// The digest part, for a digest Name.
    pub fn digest(&self) -> Option<&[u8]> {
        self.hash_alg().and_then(|_| self.0.get(2..))
    }

    /// The handle, for a handle Name.
    pub fn handle(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.0.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }

    /// The bytes (the body of the TPM2B_NAME).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the Name is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    pub(crate) fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self> {
        Self::from_bytes(r.tpm2b(what, Self::MAX)?)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.tpm2b_bounded(&self.0);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({})", self.to_hex())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ids_round_trip_and_unknown_is_refused() {
        for a in HASH_ALGS {
            assert_eq!(HashAlg::from_id(a.id(), "t").ok(), Some(a));
        }
        assert!(matches!(
            HashAlg::from_id(0x0010, "t"),
            Err(Error::TpmUnsupportedAlgorithm { alg: 0x0010, .. })
        ));
        assert!(matches!(
            HashAlg::Sha1.hash(&[b"x"]),
            Err(Error::TpmUnsupportedAlgorithm { alg: 0x0004, .. })
        ));
    }

    #[test]
    fn hashes_and_hmac_match_known_values() {
        let d = HashAlg::Sha256.hash(&[b"a", b"bc"]).unwrap();
        assert_eq!(d.as_bytes(), Sha256Digest::of(b"abc").as_bytes());
        assert_eq!(HashAlg::Sha384.hash(&[]).unwrap().len(), 48);
        // RFC 4231 test case 2.
        let mac = HashAlg::Sha256
            .hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"])
            .unwrap();
        assert_eq!(
            hex_encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn names_are_checked() {
        let id = BuilderId::from_public_digest(&Sha256Digest::of(b"ak"));
        let n = Name::from_builder_id(&id);
        assert_eq!(Name::from_bytes(n.as_bytes()).unwrap(), n);
        assert_eq!(n.to_builder_id().unwrap(), id);
        assert_eq!(n.hash_alg(), Some(HashAlg::Sha256));
        assert_eq!(Name::from_handle(0x4000_000b).handle(), Some(0x4000_000b));
        assert!(Name::from_bytes(&[]).is_ok());
        assert!(matches!(
            Name::from_bytes(&n.as_bytes()[..33]),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            Name::from_bytes(&[0x00, 0x99, 1, 2, 3]),
            Err(Error::TpmUnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            Name::from_bytes(&[0u8; 67]),
            Err(Error::TooLarge { .. })
        ));
    }
}
