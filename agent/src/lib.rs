//! provenix-agent: the builder side of provenix.
//!
//! ```text
//! config (defaults < TOML < PROVENIX_* env < flags): TCTI, state dir, seal set, …
//!   └─ tpm::Tpm::open ── refuses a software TPM unless insecure_allow_swtpm
//!        ├─ identity: EK certificates (+ NV chain), EK, AK (endorsement hierarchy,
//!        │            persisted), quotes, TPM2_ActivateCredential
//!        ├─ keys:     K (PolicyPCR over the seal set) and L under the SRK;
//!        │            SK/LK = Ed25519 from TPM2_HMAC in a salted session; Certify
//!        ├─ enroll:   all of the above bound into protocol::enrollment::Enrollment,
//!        │            TPM blobs and the record in the state dir (crash-safe, 0600)
//!        ├─ measure:  init= toplevel, closure from the registration or Nix DB, re-hashed
//!        │            from content → SystemIdentity → system PCR + CEL-JSON log
//!        ├─ counter + batch: NV counter rollback check, increment, quote with
//!        │            extraData = batch nonce → protocol::batch::BatchAttestation
//!        └─ recorder: build facts from content (build) → Entry signed by SK →
//!                     attest_batch → LogWriter (tlog-tiles, checkpoint by LK)
//! hook ─ job over the Unix socket, or into the spool ─> daemon (run) ─> recorder
//! ```
//!
//! This crate is the only place that talks to a TPM (through tss-esapi,
//! which needs the tpm2-tss C libraries). Everything the verifier checks is
//! defined in `provenix-protocol`, which has no TPM dependency.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod batch;
pub mod build;
pub mod config;
pub mod counter;
pub mod daemon;
pub mod enroll;
pub mod error;
pub mod fsio;
pub mod identity;
pub mod job;
pub mod keys;
pub mod log;
pub mod measure;
pub mod reconcile;
pub mod recorder;
pub mod service;
pub mod sign_cache;
pub mod spool;
pub mod state;
pub mod status;
pub mod tpm;
pub mod witness;

pub use error::{AgentError, Result};

pub use provenix_io::unix_time;
