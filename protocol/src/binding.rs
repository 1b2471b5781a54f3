//! The 32-byte qualifying data (TPM `extraData`) of provenix quotes: one
//! definition for the agent that requests them and the verifier that checks
//! them.
//!
//! Byte rules (CONVENTIONS.md): integers are u64 big-endian; variable-length
//! byte strings (a TPM Name) are a u32 big-endian length and the bytes;
//! fixed 32-byte values (keys, digests) are written as they are; domain
//! strings as written, without NUL.
//!
//! ```text
//! key binding = SHA-256("provenix/key-binding/v1" || public_key[32] || u32be(len) || tpm_name)
//! batch nonce = SHA-256("provenix/batch/v1" || u64be(counter) || previous_batch[32] || merkle_root[32])
//! ```

use crate::hash::Sha256Digest;
use crate::ids::Counter;

/// Domain of the key-binding digest.
pub const KEY_BINDING_DOMAIN: &[u8] = b"provenix/key-binding/v1";
/// Domain of the batch nonce.
pub const BATCH_DOMAIN: &[u8] = b"provenix/batch/v1";

/// The extraData of a key binding's quote and certification: binds the
/// Ed25519 public key (SK or LK) to the TPM key (K or L) it was derived
/// from, by that key's TPM Name (`0x000b || SHA-256(TPMT_PUBLIC)`).
pub fn key_binding_digest(public_key: &[u8; 32], tpm_name: &[u8]) -> Sha256Digest {
    // A TPM Name is at most 2 + 64 bytes; the cast cannot truncate.
    let len = u32::try_from(tpm_name.len()).unwrap_or(u32::MAX);
    Sha256Digest::of_parts(&[KEY_BINDING_DOMAIN, public_key, &len.to_be_bytes(), tpm_name])
}

/// The extraData of a batch quote: the counter-based nonce that chains the
/// batch to the previous one and commits to its entries.
pub fn batch_nonce(
    counter: Counter,
    previous_batch: &Sha256Digest,
    merkle_root: &Sha256Digest,
) -> Sha256Digest {
    Sha256Digest::of_parts(&[
        BATCH_DOMAIN,
        &counter.0.to_be_bytes(),
        previous_batch.as_bytes(),
        merkle_root.as_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors cross-checked with Python's hashlib (see docs/wire-format.md).
    #[test]
    fn vectors() {
        let mut name = vec![0x00, 0x0b];
        name.extend_from_slice(&[0x22; 32]);
        assert_eq!(
            key_binding_digest(&[0x11; 32], &name).to_hex(),
            "43f44dbac67dda3dd5feba59bd2657a2b8f7c05fdc566ab29d66a0014a2197b9"
        );
        assert_eq!(
            batch_nonce(
                Counter(7),
                &Sha256Digest([0x33; 32]),
                &Sha256Digest([0x44; 32])
            )
            .to_hex(),
            "8bfa2cfb27214c0184a6fea143132244234481acab3c93c8be6357c9c9c516b0"
        );
    }
}
