//! An incremental hash of any bank this crate computes, for inputs fed in
//! pieces (Authenticode hashes a PE image in up to a hundred ranges).

use sha2::Digest as _;

use crate::alg::{Digest, HashAlgorithm};
use crate::error::Result;

/// One running hash.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sm3(sm3::Sm3),
}

impl Hasher {
    pub(crate) fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Sm3_256 => Self::Sm3(sm3::Sm3::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
            Self::Sm3(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Result<Digest> {
        match self {
            Self::Sha1(h) => Digest::new(HashAlgorithm::Sha1.id(), &h.finalize()),
            Self::Sha256(h) => Digest::new(HashAlgorithm::Sha256.id(), &h.finalize()),
            Self::Sha384(h) => Digest::new(HashAlgorithm::Sha384.id(), &h.finalize()),
            Self::Sha512(h) => Digest::new(HashAlgorithm::Sha512.id(), &h.finalize()),
            Self::Sm3(h) => Digest::new(HashAlgorithm::Sm3_256.id(), &h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_equal_whole() {
        for alg in HashAlgorithm::ALL {
            let mut h = Hasher::new(alg);
            h.update(b"provenix/");
            h.update(b"");
            h.update(b"system/v1");
            assert_eq!(h.finish().unwrap(), alg.hash(b"provenix/system/v1"));
        }
    }
}
