//! The identity of a booted NixOS system: one definition for agent and verifier.
//!
//! ```text
//! closure_digest = SHA-256( "provenix/closure/v1"
//!                           || u64be(count)
//!                           || for each path, sorted by path:
//!                                str(path) || nar_hash[32] || u64be(nar_size) )
//! identity bytes = str(toplevel) || mode || closure_digest[32]
//!     mode       = 0x00                      content re-hashed at boot
//!                | 0x01 || root_hash[32]     store on dm-verity
//! system digest  = SHA-256( "provenix/system/v1" || identity bytes )
//! ```
//! `str(x)` is a u32 big-endian length and the bytes (CONVENTIONS.md). The
//! system digest is both what the agent extends into the system PCR and the
//! `system` field of every entry.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::hash::{NarHash, Sha256Digest};
use crate::store_path::StorePath;

/// Domain string of the closure digest.
pub const CLOSURE_DOMAIN: &[u8] = b"provenix/closure/v1";
/// Domain string of the system digest.
pub const SYSTEM_DOMAIN: &[u8] = b"provenix/system/v1";
/// Most paths in one closure (a large NixOS system has a few thousand).
pub const MAX_CLOSURE_PATHS: usize = 1 << 20;

/// How the closure was measured at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementMode {
    /// Every path's NAR hash was computed from the store's content.
    ContentRehash,
    /// The store is on dm-verity; the root hash is on the measured command line.
    DmVerity {
        /// The verity root hash.
        root_hash: Sha256Digest,
    },
}

/// One path of a closure as measured.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClosurePath {
    /// The store path.
    pub path: StorePath,
    /// Its NAR hash, computed from content.
    pub nar_hash: NarHash,
    /// Its NAR size.
    pub nar_size: u64,
}

/// What the system PCR and every entry's `system` field commit to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The system's toplevel store path (the measured `init=` names it).
    pub toplevel: StorePath,
    /// How the closure was measured.
    pub mode: MeasurementMode,
    /// Digest of the whole runtime closure (see the module docs).
    pub closure_digest: Sha256Digest,
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| Error::TooLarge {
        what: "string in a hash preimage",
        len: s.len(),
        max: u32::MAX as usize,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
    Ok(())
}

/// The closure digest of `paths`, which must contain no path twice. Order
/// does not matter: paths are sorted here.
pub fn closure_digest(paths: &[ClosurePath]) -> Result<Sha256Digest> {
    if paths.len() > MAX_CLOSURE_PATHS {
        return Err(Error::TooLarge {
            what: "closure",
            len: paths.len(),
            max: MAX_CLOSURE_PATHS,
        });
    }
    let mut sorted: Vec<&ClosurePath> = paths.iter().collect();
    sorted.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    if sorted.windows(2).any(|w| match w {
        [a, b] => a.path == b.path,
        _ => false,
    }) {
        return Err(Error::Unsorted {
            what: "closure (duplicate store path)",
        });
    }
    let mut pre = Vec::with_capacity(CLOSURE_DOMAIN.len() + 8 + sorted.len() * 120);
    pre.extend_from_slice(CLOSURE_DOMAIN);
    pre.extend_from_slice(&(sorted.len() as u64).to_be_bytes());
    for p in sorted {
        put_str(&mut pre, p.path.as_str().as_bytes())?;
        pre.extend_from_slice(p.nar_hash.digest().as_bytes());
        pre.extend_from_slice(&p.nar_size.to_be_bytes());
    }
    Ok(Sha256Digest::of(&pre))
}

impl SystemIdentity {
    /// The identity of `toplevel` with the measured closure `paths`.
    pub fn from_closure(
        toplevel: StorePath,
        mode: MeasurementMode,
        paths: &[ClosurePath],
    ) -> Result<Self> {
        if !paths.iter().any(|p| p.path == toplevel) {
            return Err(Error::InvalidValue {
                what: "system closure",
                reason: "does not contain the toplevel",
            });
        }
        Ok(Self {
            toplevel,
            mode,
            closure_digest: closure_digest(paths)?,
        })
    }

    /// The canonical identity bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        put_str(&mut out, self.toplevel.as_str().as_bytes())?;
        match &self.mode {
            MeasurementMode::ContentRehash => out.push(0),
            MeasurementMode::DmVerity { root_hash } => {
                out.push(1);
                out.extend_from_slice(root_hash.as_bytes());
            }
        }
        out.extend_from_slice(self.closure_digest.as_bytes());
        Ok(out)
    }

    /// SHA-256("provenix/system/v1" || identity bytes): the value extended
    /// into the system PCR and carried by entries.
    pub fn digest(&self) -> Result<Sha256Digest> {
        Ok(Sha256Digest::of_parts(&[SYSTEM_DOMAIN, &self.encode()?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(path: &str, byte: u8, size: u64) -> ClosurePath {
        ClosurePath {
            path: StorePath::parse(path).unwrap(),
            nar_hash: NarHash(Sha256Digest([byte; 32])),
            nar_size: size,
        }
    }

    fn sample() -> Vec<ClosurePath> {
        vec![
            cp("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello", 1, 128),
            cp(
                "/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev",
                2,
                456,
            ),
        ]
    }

    /// Pinned vector: any change to the encoding changes these digests, and
    /// the agent and every verifier must change together.
    #[test]
    fn vector() {
        let paths = sample();
        let id = SystemIdentity::from_closure(
            paths[0].path.clone(),
            MeasurementMode::ContentRehash,
            &paths,
        )
        .unwrap();
        // Preimage assembled by hand, independently of `closure_digest`.
        let mut pre = b"provenix/closure/v1".to_vec();
        pre.extend_from_slice(&2u64.to_be_bytes());
        for (p, b, s) in [
            (
                "/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev",
                2u8,
                456u64,
            ),
            ("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello", 1, 128),
        ] {
            pre.extend_from_slice(&(p.len() as u32).to_be_bytes());
            pre.extend_from_slice(p.as_bytes());
            pre.extend_from_slice(&[b; 32]);
            pre.extend_from_slice(&s.to_be_bytes());
        }
        assert_eq!(id.closure_digest, Sha256Digest::of(&pre));
        assert_eq!(
            id.closure_digest.to_hex(),
            "8fbc8a8b4cb190c7dc35de7ce9f9ee82baddd18e1c20d17fb51bf42fa1587d50",
            "update docs/wire-format.md together with this vector"
        );
        let top = b"/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello";
        let mut sys = b"provenix/system/v1".to_vec();
        sys.extend_from_slice(&(top.len() as u32).to_be_bytes());
        sys.extend_from_slice(top);
        sys.push(0);
        sys.extend_from_slice(id.closure_digest.as_bytes());
        assert_eq!(id.digest().unwrap(), Sha256Digest::of(&sys));
        assert_eq!(
            id.digest().unwrap().to_hex(),
            "c657ab981b619c365a4f0cc1afdc349fcc0af822bd007066ae01d1f7c22aea71"
        );
    }

    #[test]
    fn order_does_not_matter_duplicates_refused() {
        let mut paths = sample();
        let a = closure_digest(&paths).unwrap();
        paths.reverse();
        assert_eq!(closure_digest(&paths).unwrap(), a);
        paths.push(paths[0].clone());
        assert!(matches!(
            closure_digest(&paths),
            Err(Error::Unsorted { .. })
        ));
    }

    #[test]
    fn mode_and_toplevel_change_the_digest() {
        let paths = sample();
        let t = paths[0].path.clone();
        let a = SystemIdentity::from_closure(t.clone(), MeasurementMode::ContentRehash, &paths)
            .unwrap();
        let b = SystemIdentity::from_closure(
            t,
            MeasurementMode::DmVerity {
                root_hash: Sha256Digest([9; 32]),
            },
            &paths,
        )
        .unwrap();
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
        let c = SystemIdentity::from_closure(
            paths[1].path.clone(),
            MeasurementMode::ContentRehash,
            &paths,
        )
        .unwrap();
        assert_ne!(a.digest().unwrap(), c.digest().unwrap());
        let missing =
            StorePath::parse("/nix/store/fmf8731hf6vl8p1jly0qn7xc50msji5k-dependent").unwrap();
        assert!(matches!(
            SystemIdentity::from_closure(missing, MeasurementMode::ContentRehash, &paths),
            Err(Error::InvalidValue { .. })
        ));
    }
}
