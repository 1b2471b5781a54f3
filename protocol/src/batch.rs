//! Batch attestations: the log leaf (tag `04`) that follows each batch of
//! entries and carries the AK's quote over them.
//!
//! ```text
//! BatchAttestation { version 1, counter, previous_batch[32], first_leaf, leaf_count,
//!                    entries_root[32], quote_attest, quote_signature }
//! quote extraData = binding::batch_nonce(counter, previous_batch, entries_root)
//! entries_root    = RFC 6962 root over the leaf hashes of the batch's leaves
//! previous_batch  = RFC 6962 leaf hash of the previous BatchAttestation leaf
//!                   (32 zero bytes for a log's first batch)
//! ```
//! The quoted PCR digest must equal that of the binding quote of the SK that
//! signed the batch's entries; that and the signatures are the verifier's
//! appraisal. This module checks form.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::binding::batch_nonce;
use crate::entry::{decode_exact, encode};
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;
use crate::ids::Counter;
use crate::leaf::{LeafTag, MAX_LEAF};
use crate::tpm::{Attest, AttestType, Signature};

/// Encoding version of [`BatchAttestation`].
pub const BATCH_VERSION: u8 = 1;
/// Most leaves one batch may cover.
pub const MAX_BATCH_LEAVES: u64 = 1 << 20;

/// A batch attestation record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAttestation {
    /// [`BATCH_VERSION`].
    pub version: u8,
    /// The NV counter value after this batch's increment.
    pub counter: u64,
    /// Leaf hash of the previous batch attestation (zeros for the first).
    pub previous_batch: [u8; 32],
    /// Index of the first leaf the batch covers.
    pub first_leaf: u64,
    /// Number of leaves covered (entries and their blobs), at least one.
    pub leaf_count: u64,
    /// RFC 6962 root over the covered leaves' leaf hashes.
    pub entries_root: [u8; 32],
    /// TPMS_ATTEST of the AK's quote.
    pub quote_attest: Vec<u8>,
    /// TPMT_SIGNATURE over it.
    pub quote_signature: Vec<u8>,
}

impl BatchAttestation {
    /// The nonce the quote must carry.
    pub fn nonce(&self) -> Sha256Digest {
        batch_nonce(
            Counter(self.counter),
            &Sha256Digest(self.previous_batch),
            &Sha256Digest(self.entries_root),
        )
    }

    /// Check form: version, range, and that the quote parses as a quote and
    /// its signature as a signature. What a reader needs to go on; the
    /// verifier checks the nonce and the signature itself, each as its own
    /// finding.
    pub fn validate_form(&self) -> Result<()> {
        if self.version != BATCH_VERSION {
            return Err(Error::UnknownVersion {
                what: "batch attestation",
                found: u32::from(self.version),
            });
        }
        if self.leaf_count == 0 || self.leaf_count > MAX_BATCH_LEAVES {
            return Err(Error::InvalidValue {
                what: "batch attestation",
                reason: "leaf count is zero or above the limit",
            });
        }
        if self.first_leaf.checked_add(self.leaf_count).is_none() {
            return Err(Error::InvalidValue {
                what: "batch attestation",
                reason: "leaf range overflows",
            });
        }
        Attest::from_bytes_expecting(&self.quote_attest, AttestType::Quote)?;
        Signature::from_bytes(&self.quote_signature)?;
        Ok(())
    }

    /// [`Self::validate_form`], and that the quote's extraData is
    /// [`Self::nonce`]: what a writer must never get wrong.
    pub fn validate(&self) -> Result<()> {
        self.validate_form()?;
        let q = Attest::from_bytes_expecting(&self.quote_attest, AttestType::Quote)?;
        if q.extra_data.as_bytes() != self.nonce().as_bytes() {
            return Err(Error::InvalidValue {
                what: "batch attestation",
                reason: "the quote's extraData is not the batch nonce",
            });
        }
        Ok(())
    }

    /// The log leaf: tag `04` and the canonical encoding.
    pub fn to_leaf(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut leaf = alloc::vec![LeafTag::BatchAttestation as u8];
        leaf.extend_from_slice(&encode("batch attestation", self)?);
        if leaf.len() > MAX_LEAF {
            return Err(Error::TooLarge {
                what: "batch attestation leaf",
                len: leaf.len(),
                max: MAX_LEAF,
            });
        }
        Ok(leaf)
    }

    /// Decode the bytes after the leaf tag (form only: a batch whose nonce
    /// does not match still decodes, for the verifier to name the finding).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let b: Self = decode_exact("batch attestation", bytes)?;
        b.validate_form()?;
        Ok(b)
    }
}
