//! Counter-based batch attestation (DESIGN.md "Keys and trust chain"):
//! before each batch, compare the TPM's NV counter with the log's last
//! counter (refusing another/cleared TPM or a restored state directory),
//! increment it, and quote the seal set with
//! extraData = batch_nonce(counter, previous batch, Merkle root of the batch's leaves).

use provenix_protocol::batch::{BatchAttestation, BATCH_VERSION};
use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::merkle::{leaf_hash, root};
use provenix_protocol::{Counter, Sha256Digest};

use crate::counter::{check_counter, CounterCheck};
use crate::error::{AgentError, Result};
use crate::keys::PcrSet;
use crate::tpm::Tpm;

/// Where the log stands before a batch.
#[derive(Clone, Copy, Debug)]
pub struct LogPosition {
    /// The counter of the log's last batch (None before the first).
    pub last_counter: Option<Counter>,
    /// Leaf hash of the log's last batch attestation (zeros before the first).
    pub previous_batch: Sha256Digest,
    /// Index of the batch's first leaf in the log.
    pub first_leaf: u64,
}

/// Attest `leaves` (the batch's entry and blob leaves, in log order).
pub fn attest_batch(
    tpm: &mut Tpm,
    enrollment: &Enrollment,
    at: LogPosition,
    orderly_jump: u64,
    leaves: &[Vec<u8>],
) -> Result<BatchAttestation> {
    if leaves.is_empty() {
        return Err(AgentError::Config("a batch needs at least one leaf".into()));
    }
    let now = tpm.read_counter(enrollment.counter_index)?;
    match check_counter(now, at.last_counter, orderly_jump) {
        CounterCheck::Consistent => {}
        CounterCheck::TpmBehindLog { tpm, log } => {
            return Err(AgentError::CounterRollback(format!(
                "the TPM's batch counter ({tpm}) is below the log's last counter ({log}): \
                 this log was written with another TPM, or this TPM was cleared; refusing to \
                 attest"
            )))
        }
        CounterCheck::LogRolledBack { tpm, log, allowed } => {
            return Err(AgentError::CounterRollback(format!(
                "the TPM's batch counter ({tpm}) is ahead of the log's last counter ({log}) by \
                 more than a crash explains ({allowed}): the state directory was restored from \
                 an older copy; refusing to attest (witnesses hold the later checkpoints)"
            )))
        }
    }
    let counter = tpm.increment_counter(enrollment.counter_index)?;
    let hashes: Vec<Sha256Digest> = leaves.iter().map(|l| leaf_hash(l)).collect();
    let entries_root = root(&hashes);
    let nonce = provenix_protocol::binding::batch_nonce(counter, &at.previous_batch, &entries_root);
    let ak = tpm.ak_handle(enrollment.ak_handle)?;
    let seal = PcrSet::new(&enrollment.seal_pcrs)?;
    let quote = tpm.quote(ak, &seal, &nonce.0)?;
    let batch = BatchAttestation {
        version: BATCH_VERSION,
        counter: counter.0,
        previous_batch: at.previous_batch.0,
        first_leaf: at.first_leaf,
        leaf_count: leaves.len() as u64,
        entries_root: entries_root.0,
        quote_attest: quote.attest,
        quote_signature: quote.signature,
    };
    batch.validate()?;
    Ok(batch)
}
