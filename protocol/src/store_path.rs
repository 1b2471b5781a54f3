//! Nix store paths: `/nix/store/<32 nix32 chars>-<name>`.
//!
//! The rules are Nix 2.8's (`libstore/path.cc`): the hash part is 20 bytes in
//! nix32, the name is 1 to 211 characters from `[A-Za-z0-9+-._?=]` and does
//! not start with `.`. Only the default store directory `/nix/store` is
//! accepted; a chroot store (`--store /root`) still names its paths this way.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{hex_encode, nix32_decode_array, nix32_encode};
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;

/// The store directory every path lives in.
pub const STORE_DIR: &str = "/nix/store";
/// Characters in the hash part of a store path.
pub const HASH_PART_LEN: usize = 32;
/// Longest name Nix accepts.
pub const MAX_NAME_LEN: usize = 211;
/// Longest store path: directory, slash, hash, dash, name.
pub const MAX_STORE_PATH_LEN: usize = STORE_DIR.len() + 1 + HASH_PART_LEN + 1 + MAX_NAME_LEN;

/// Check a store-path name against Nix's rules.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidStorePath {
            reason: "empty name",
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidStorePath {
            reason: "name longer than 211 characters",
        });
    }
    if name.starts_with('.') {
        return Err(Error::InvalidStorePath {
            reason: "name starts with '.'",
        });
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c))
    {
        return Err(Error::InvalidStorePath {
            reason: "name has a character outside [A-Za-z0-9+-._?=]",
        });
    }
    Ok(())
}

/// A store path, checked.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath(String);

impl StorePath {
    /// Parse an absolute store path (`/nix/store/…`).
    pub fn parse(s: &str) -> Result<Self> {
        let base = s
            .strip_prefix(STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(Error::InvalidStorePath {
                reason: "not under /nix/store/",
            })?;
        Self::check_base_name(base)?;
        Ok(Self(String::from(s)))
    }

    /// Parse a base name (`<hash>-<name>`, as narinfo `References:` lists them).
    pub fn from_base_name(base: &str) -> Result<Self> {
        Self::check_base_name(base)?;
        let mut s = String::with_capacity(STORE_DIR.len() + 1 + base.len());
        s.push_str(STORE_DIR);
        s.push('/');
        s.push_str(base);
        Ok(Self(s))
    }

    fn check_base_name(base: &str) -> Result<()> {
        if base.len() > HASH_PART_LEN + 1 + MAX_NAME_LEN {
            return Err(Error::InvalidStorePath {
                reason: "name longer than 211 characters",
            });
        }
        let (hash, name) = match (base.get(..HASH_PART_LEN), base.get(HASH_PART_LEN..)) {
            (Some(h), Some(rest)) => (h, rest.strip_prefix('-')),
            _ => {
                return Err(Error::InvalidStorePath {
                    reason: "too short for a hash part",
                })
            }
        };
        if nix32_decode_array::<20>(hash).is_err() {
            return Err(Error::InvalidStorePath {
                reason: "hash part is not 32 nix32 characters",
            });
        }
        let name = name.ok_or(Error::InvalidStorePath {
            reason: "no '-' after the hash part",
        })?;
        check_name(name)
    }

    /// Nix's `makeStorePath`: the path for `type` (e.g. `text:<refs>`,
    /// `source`, `output:out`), an inner SHA-256 and a name.
    pub fn make(path_type: &str, inner: &Sha256Digest, name: &str) -> Result<Self> {
        check_name(name)?;
        let fingerprint = Sha256Digest::of_parts(&[
            path_type.as_bytes(),
            b":sha256:",
            inner.to_hex().as_bytes(),
            b":",
            STORE_DIR.as_bytes(),
            b":",
            name.as_bytes(),
        ]);
        let mut compressed = [0u8; 20];
        for (i, b) in fingerprint.0.iter().enumerate() {
            if let Some(c) = compressed.get_mut(i % 20) {
                *c ^= b;
            }
        }
        let mut s = String::with_capacity(STORE_DIR.len() + 34 + name.len());
        s.push_str(STORE_DIR);
        s.push('/');
        s.push_str(&nix32_encode(&compressed));
        s.push('-');
        s.push_str(name);
        Ok(Self(s))
    }

    /// The full path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<hash>-<name>`.
    pub fn base_name(&self) -> &str {
        self.0.get(STORE_DIR.len() + 1..).unwrap_or_default()
    }

    /// The 32-character hash part (what a `<hash>.narinfo` URL names).
    pub fn hash_part(&self) -> &str {
        self.base_name().get(..HASH_PART_LEN).unwrap_or_default()
    }

    /// The name after the hash part.
    pub fn name(&self) -> &str {
        self.base_name()
            .get(HASH_PART_LEN + 1..)
            .unwrap_or_default()
    }

    /// Whether this names a derivation (`.drv`).
    pub fn is_derivation(&self) -> bool {
        self.name().ends_with(".drv")
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.0)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StorePath {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StorePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        Self::parse(s).map_err(serde::de::Error::custom)
    }
}

/// The store path of a derivation (`…​.drv`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DrvPath(StorePath);

impl DrvPath {
    /// Parse a store path that names a derivation.
    pub fn parse(s: &str) -> Result<Self> {
        Self::try_from(StorePath::parse(s)?)
    }

    /// The underlying store path.
    pub fn store_path(&self) -> &StorePath {
        &self.0
    }

    /// The derivation's name without `.drv`.
    pub fn drv_name(&self) -> &str {
        self.0.name().strip_suffix(".drv").unwrap_or_default()
    }

    /// The full path.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<StorePath> for DrvPath {
    type Error = Error;
    fn try_from(p: StorePath) -> Result<Self> {
        if p.is_derivation() && p.name().len() > 4 {
            Ok(Self(p))
        } else {
            Err(Error::InvalidStorePath {
                reason: "not a derivation (name must end in .drv)",
            })
        }
    }
}

impl<'de> Deserialize<'de> for DrvPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let p = StorePath::deserialize(d)?;
        Self::try_from(p).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for DrvPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrvPath({})", self.0.as_str())
    }
}

impl fmt::Display for DrvPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Lowercase hex of a digest, as `makeStorePath` fingerprints use it (kept
/// here so callers building `text:`/`fixed:` fingerprints share one helper).
pub fn digest_hex(d: &Sha256Digest) -> String {
    hex_encode(&d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits() {
        let p = StorePath::parse("/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-v1-file");
        let p = p.ok();
        assert_eq!(
            p.as_ref().map(|p| p.hash_part()),
            Some("ny14prjvjzgglx8akwxjwqk3w0r0n8v1")
        );
        assert_eq!(p.as_ref().map(|p| p.name()), Some("v1-file"));
        assert_eq!(
            p.as_ref().map(|p| p.base_name()),
            Some("ny14prjvjzgglx8akwxjwqk3w0r0n8v1-v1-file")
        );
    }

    #[test]
    fn refusals_each_name_their_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "/usr/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-x",
                "not under /nix/store/",
            ),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v",
                "too short for a hash part",
            ),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8ve-x",
                "hash part is not 32 nix32 characters",
            ),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1_x",
                "no '-' after the hash part",
            ),
            ("/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-", "empty name"),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-.x",
                "name starts with '.'",
            ),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-a/b",
                "name has a character outside [A-Za-z0-9+-._?=]",
            ),
            (
                "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-a b",
                "name has a character outside [A-Za-z0-9+-._?=]",
            ),
        ];
        for (input, want) in cases {
            match StorePath::parse(input) {
                Err(Error::InvalidStorePath { reason }) => assert_eq!(reason, *want, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        let long = alloc::format!(
            "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-{}",
            "a".repeat(212)
        );
        assert!(matches!(
            StorePath::parse(&long),
            Err(Error::InvalidStorePath { .. })
        ));
        let max = alloc::format!(
            "/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-{}",
            "a".repeat(211)
        );
        assert!(StorePath::parse(&max).is_ok());
    }

    #[test]
    fn make_store_path_matches_nix() {
        // `nix-store --add` of the v1-file vector: type "source", inner = NAR hash.
        let nar = Sha256Digest::from_hex(
            "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
        );
        let p = nar.and_then(|n| StorePath::make("source", &n, "v1-file"));
        assert_eq!(
            p.ok().as_ref().map(StorePath::as_str),
            Some("/nix/store/ny14prjvjzgglx8akwxjwqk3w0r0n8v1-v1-file")
        );
    }

    #[test]
    fn drv_paths() {
        assert!(DrvPath::parse("/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv").is_ok());
        assert!(matches!(
            DrvPath::parse("/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello"),
            Err(Error::InvalidStorePath { .. })
        ));
    }
}
