//! provenix-verifier: the auditor's side of provenix.
//!
//! ```text
//! builder log (dir or URL: checkpoint, entry bundles) ─ source
//!   ─ appraise: enrollment (AK, key bindings), entries (SK), batches (AK
//!     quotes, nonces, counters, chain, clock), checkpoint (LK, root,
//!     consistency with the one seen before) ─ Appraisal
//! policy + appraisals ─ admit (software TPM, witnesses, EK chain,
//!   deny-list, ROCA) ─ ballots (pinned AK, latest entry for the path)
//!   ─ decide M-of-N
//! checkpoints ─ witness: cosign the consistent ones
//! ```
//! Still to come (issue 6): activation records, event-log replay, reports,
//! and the substituter. The binary `provenix` also parses event
//! logs, predicts PCR values, checks raw quotes and NAR-hashes paths
//! (src/main.rs and its command modules).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod activate;
pub mod appraise;
pub mod decide;
pub mod ek;
pub mod policy;
pub mod reference;
pub mod report;
pub mod source;
pub mod state;
pub mod witness;

pub use provenix_io::unix_time;
