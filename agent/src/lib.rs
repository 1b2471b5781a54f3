//! provenix-agent: the builder side of provenix.
//!
//! ```text
//! TCTI (config / --tcti / PROVENIX_TCTI, default device:/dev/tpmrm0)
//!   └─ tpm::Tpm::open ── refuses a software TPM unless insecure_allow_swtpm
//!        ├─ enrollment: EK cert, AK, NV counter, K/L keys      (in progress)
//!        ├─ measure: closure → SystemIdentity → system PCR     (in progress)
//!        └─ hook + daemon: entries → batches → quotes → log    (in progress)
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
pub mod config;
pub mod counter;
pub mod enroll;
pub mod error;
pub mod identity;
pub mod keys;
pub mod measure;
pub mod state;
pub mod tpm;

pub use error::{AgentError, Result};
