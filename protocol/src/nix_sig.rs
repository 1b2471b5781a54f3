//! Nix signing keys, `Sig:` lines and the narinfo signature fingerprint.
//!
//! Formats as Nix 2.8 reads and writes them (`libutil/util.cc`,
//! `libstore/crypto.cc`, `libstore/path-info.cc`):
//! - secret key file: `<name>:<base64(seed32 || public32)>`
//! - public key: `<name>:<base64(public32)>`
//! - signature (a narinfo `Sig:` value): `<name>:<base64(signature64)>`
//! - fingerprint: `1;<store path>;sha256:<nix32>;<nar size>;<refs joined by ,>`
//!
//! Nix verifies with libsodium's `crypto_sign_verify_detached`, which refuses
//! small-order or non-canonical public keys, small-order `R` and
//! non-canonical `S`. [`NixPublicKey::verify`] applies the same rules
//! (ed25519-dalek's `verify_strict` plus a canonical-encoding check of the
//! public key), so a signature verifies here exactly when it verifies in Nix.

use alloc::collections::BTreeSet;
use alloc::string::String;
use core::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::encoding::{base64_decode_array, base64_encode};
use crate::error::{Error, Result};
use crate::hash::NarHash;
use crate::store_path::StorePath;

/// Longest key name accepted (Nix sets none; this bounds hostile input).
pub const MAX_KEY_NAME: usize = 256;

fn split_named<'a>(what: &'static str, s: &'a str) -> Result<(&'a str, &'a str)> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let (name, rest) = s.split_once(':').ok_or(Error::Syntax {
        what,
        line: 1,
        reason: "expected <name>:<base64>",
    })?;
    if name.is_empty() {
        return Err(Error::Syntax {
            what,
            line: 1,
            reason: "empty key name",
        });
    }
    if name.len() > MAX_KEY_NAME {
        return Err(Error::TooLarge {
            what: "key name",
            len: name.len(),
            max: MAX_KEY_NAME,
        });
    }
    if name.chars().any(char::is_whitespace) {
        return Err(Error::Syntax {
            what,
            line: 1,
            reason: "white space in key name",
        });
    }
    Ok((name, rest))
}

/// A Nix secret signing key (`nix key generate-secret`).
#[derive(Clone)]
pub struct NixSecretKey {
    name: String,
    key: SigningKey,
}

impl NixSecretKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self> {
        split_named("Nix secret key", &alloc::format!("{name}:"))?;
        Ok(Self {
            name: String::from(name),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Parse a secret key file's contents (one trailing newline allowed).
    /// The embedded public half must match the seed.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, b64) = split_named("Nix secret key", s)?;
        let bytes: [u8; 64] = base64_decode_array(b64)?;
        let (seed, public) = bytes.split_at(32);
        let seed: [u8; 32] = seed.try_into().map_err(|_| Error::InvalidLength {
            what: "Nix secret key",
            expected: 64,
            found: bytes.len(),
        })?;
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes() != public {
            return Err(Error::InvalidValue {
                what: "Nix secret key",
                reason: "public half does not match the seed",
            });
        }
        Ok(Self {
            name: String::from(name),
            key,
        })
    }

    /// The key file's contents, as Nix writes them (no trailing newline).
    pub fn to_file_string(&self) -> String {
        let mut bytes = [0u8; 64];
        for (dst, src) in bytes.iter_mut().zip(
            self.key
                .to_bytes()
                .iter()
                .chain(self.key.verifying_key().as_bytes()),
        ) {
            *dst = *src;
        }
        alloc::format!("{}:{}", self.name, base64_encode(&bytes))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching public key.
    pub fn public(&self) -> NixPublicKey {
        NixPublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key().to_bytes(),
        }
    }

    /// Sign a fingerprint (or any message) as Nix does.
    pub fn sign(&self, message: &[u8]) -> NixSignature {
        NixSignature {
            key_name: self.name.clone(),
            signature: self.key.sign(message).to_bytes(),
        }
    }
}

impl fmt::Debug for NixSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NixSecretKey({}, <secret>)", self.name)
    }
}

/// A Nix public key (`trusted-public-keys` entry).
#[derive(Clone, PartialEq, Eq)]
pub struct NixPublicKey {
    name: String,
    key: [u8; 32],
}

impl NixPublicKey {
    /// A public key from its parts.
    pub fn new(name: &str, key: [u8; 32]) -> Result<Self> {
        split_named("Nix public key", &alloc::format!("{name}:"))?;
        Ok(Self {
            name: String::from(name),
            key,
        })
    }

    /// Parse `<name>:<base64(32 bytes)>` (one trailing newline allowed).
    pub fn parse(s: &str) -> Result<Self> {
        let (name, b64) = split_named("Nix public key", s)?;
        Ok(Self {
            name: String::from(name),
            key: base64_decode_array(b64)?,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw Ed25519 public key.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Verify `sig` over `message` as Nix (libsodium) does.
    pub fn verify(&self, message: &[u8], sig: &NixSignature) -> Result<()> {
        if sig.key_name != self.name {
            return Err(Error::KeyMismatch {
                what: "Nix signature",
                expected: self.name.clone(),
                found: sig.key_name.clone(),
            });
        }
        let bad = Error::BadSignature {
            what: "Nix signature",
        };
        // libsodium refuses public keys whose y coordinate is not reduced.
        let canonical = CompressedEdwardsY(self.key)
            .decompress()
            .is_some_and(|p| p.compress().to_bytes() == self.key);
        if !canonical {
            return Err(bad);
        }
        let vk = VerifyingKey::from_bytes(&self.key).map_err(|_| Error::BadSignature {
            what: "Nix signature",
        })?;
        vk.verify_strict(message, &Signature::from_bytes(&sig.signature))
            .map_err(|_| bad)
    }
}

impl fmt::Display for NixPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, base64_encode(&self.key))
    }
}

impl fmt::Debug for NixPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NixPublicKey({self})")
    }
}

/// A detached Nix signature: the value of a narinfo `Sig:` line.
#[derive(Clone, PartialEq, Eq)]
pub struct NixSignature {
    key_name: String,
    signature: [u8; 64],
}

impl NixSignature {
    /// Parse `<name>:<base64(64 bytes)>`.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, b64) = split_named("Nix signature", s)?;
        Ok(Self {
            key_name: String::from(name),
            signature: base64_decode_array(b64)?,
        })
    }

    /// The name of the key that made it.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The raw signature.
    pub fn bytes(&self) -> &[u8; 64] {
        &self.signature
    }
}

impl fmt::Display for NixSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.key_name, base64_encode(&self.signature))
    }
}

impl fmt::Debug for NixSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NixSignature({self})")
    }
}

/// The string Nix signs for a store path (`ValidPathInfo::fingerprint`).
/// `references` are full store paths; a set keeps them sorted as Nix does.
/// Nix refuses a fingerprint for an unknown (zero) NAR size, and so does this.
pub fn fingerprint(
    path: &StorePath,
    nar_hash: &NarHash,
    nar_size: u64,
    references: &BTreeSet<StorePath>,
) -> Result<String> {
    if nar_size == 0 {
        return Err(Error::InvalidValue {
            what: "fingerprint",
            reason: "NAR size is zero (unknown)",
        });
    }
    let mut s = alloc::format!("1;{};{};{};", path, nar_hash.to_nix_string(), nar_size);
    for (i, r) in references.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(r.as_str());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: &str = "test-1:ZIoEyoxrDaaH+SRqHqHaUhgOIsS7INZWzHkM8sPlGdCACbkin0OQLWTqridJD21b+EOpsCLoO/gepZkIqC3UeQ==";
    const PUB: &str = "test-1:gAm5Ip9DkC1k6q4nSQ9tW/hDqbAi6Dv4HqWZCKgt1Hk=";

    #[test]
    fn key_files_round_trip() {
        let sk = NixSecretKey::parse(SEC).unwrap();
        assert_eq!(sk.to_file_string(), SEC);
        assert_eq!(sk.public().to_string(), PUB);
        assert_eq!(
            NixPublicKey::parse(&alloc::format!("{PUB}\n"))
                .unwrap()
                .to_string(),
            PUB
        );
    }

    #[test]
    fn secret_key_with_wrong_public_half_is_refused() {
        let mut bytes = crate::encoding::base64_decode(SEC.split_once(':').unwrap().1).unwrap();
        bytes[40] ^= 1;
        let s = alloc::format!("test-1:{}", base64_encode(&bytes));
        assert!(matches!(
            NixSecretKey::parse(&s),
            Err(Error::InvalidValue { .. })
        ));
    }

    #[test]
    fn key_parse_refusals() {
        assert!(matches!(
            NixPublicKey::parse("nocolon"),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            NixPublicKey::parse(":AAAA"),
            Err(Error::Syntax { .. })
        ));
        assert!(matches!(
            NixPublicKey::parse("k:AAAA"),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            NixPublicKey::parse("k:!!!!"),
            Err(Error::InvalidEncoding { .. })
        ));
        assert!(matches!(
            NixPublicKey::parse("a b:AAAA"),
            Err(Error::Syntax { .. })
        ));
    }

    #[test]
    fn sign_and_verify() {
        let sk = NixSecretKey::parse(SEC).unwrap();
        let sig = sk.sign(b"msg");
        assert_eq!(NixSignature::parse(&sig.to_string()).unwrap(), sig);
        assert!(sk.public().verify(b"msg", &sig).is_ok());
        assert!(matches!(
            sk.public().verify(b"msh", &sig),
            Err(Error::BadSignature { .. })
        ));
        let other = NixPublicKey::new("test-2", *sk.public().key_bytes()).unwrap();
        assert!(matches!(
            other.verify(b"msg", &sig),
            Err(Error::KeyMismatch { .. })
        ));
    }

    #[test]
    fn non_canonical_public_key_is_refused() {
        // y = p + 1 (non-reduced encoding of y = 1, the identity): libsodium refuses it.
        let mut key = [0xffu8; 32];
        key[0] = 0xee;
        key[31] = 0x7f;
        let pk = NixPublicKey::new("k", key).unwrap();
        let sig = NixSignature {
            key_name: "k".into(),
            signature: [0; 64],
        };
        assert!(matches!(
            pk.verify(b"", &sig),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn fingerprint_refuses_zero_size() {
        let p = StorePath::parse("/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-v1-file").unwrap();
        let h = NarHash(crate::hash::Sha256Digest::of(b""));
        assert!(matches!(
            fingerprint(&p, &h, 0, &BTreeSet::new()),
            Err(Error::InvalidValue { .. })
        ));
    }
}
