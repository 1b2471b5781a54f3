//! provenix-verifier: the auditor's side of provenix.
//!
//! ```text
//! builder log (dir or URL: checkpoint, entry bundles) ─ source
//!   ─ appraise: enrollment (AK, key bindings), each bound boot's event
//!     logs replayed to its quote, entries (SK, system), batches (AK
//!     quotes, nonces, counters, chain, clock), checkpoint (LK, root,
//!     consistency with the one seen before) ─ Appraisal
//! policy + appraisal ─ admit: PCR 12/13 events, pinned PCRs and approved
//!   systems (reference), software TPM, witnesses, EK chain, deny-list,
//!   ROCA, activation records (activate) ─ pins recorded (state)
//! admitted logs ─ indexed by output path (decide::Builders) ─ ballots
//!   (pinned AK, built locally, sandboxed, trusted inputs) ─ M-of-N
//!   ─ report: the reproducibility table
//! checkpoints ─ witness: cosign the consistent ones
//! builders' logs, followed ─ substituter: a Nix binary cache serving
//!   only trusted outputs, re-signed, NARs checked on the way
//! ```
//! The binary `provenix` also parses event logs, predicts PCR values,
//! checks raw quotes and NAR-hashes paths (src/main.rs and its command
//! modules).

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
pub mod substituter;
pub mod witness;

pub use provenix_io::unix_time;
