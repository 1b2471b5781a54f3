//! provenix-verifier: the auditor's side of provenix.
//!
//! ```text
//! builder logs (tiles, checkpoints) ─ witness: cosign consistent checkpoints
//! ```
//! Today the library holds the witness (`provenix witness`); appraisal,
//! log sync, M-of-N decisions and the substituter follow. The binary
//! `provenix` also parses event logs, predicts PCR values and NAR-hashes
//! paths (src/main.rs and its command modules).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod witness;
