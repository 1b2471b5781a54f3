//! provenix measured boot: what firmware measured, and what it must have measured.
//!
//! This crate is pure (bytes in, typed results out; `no_std` with `alloc`).
//! Today it reads TCG PC Client binary event logs (SHA-1 and crypto-agile,
//! as Linux exposes them in `/sys/kernel/security/tpm0/binary_bios_measurements`)
//! and Intel TDX CCEL logs, and replays them per bank. TCG Canonical Event
//! Logs and PCR prediction from boot artifacts are still to come (issue 3).
//!
//! ```text
//!  log bytes ──EventLog::parse──> EventLog ──replay──> Replay (per bank: PCR 0-23)
//!                                   │                      │
//!                                   │ events(): index, PCR, type, digests
//!                                   │                      └─ compare with a TPM quote
//!                                   └─ Event::decode_unverified_data()
//!                                        └─> UnverifiedEventData (NOT authenticated)
//!
//!  CCEL bytes ──CcelLog::parse──> CcelLog ──replay_rtmrs──> RTMR0-3 (MR index 1-4)
//! ```
//!
//! **What a quote authenticates.** A TPM quote signs PCR values. Replaying
//! a log ties those values to the log's *digests* and nothing else: the
//! event data beside each digest is whatever the log writer put there. So
//! the API keeps the two apart: [`Event::digests`] is what replay uses, and
//! event data is only reachable through names that say it is unauthenticated
//! ([`Event::unauthenticated_data`], [`Event::decode_unverified_data`],
//! [`UnverifiedEventData`]).
//!
//! Specifications: TCG PC Client Platform Firmware Profile (PFP) 1.05/1.06,
//! §3.3.3 (PCR reset values), §9.4.5 (StartupLocality), §10.2 (event log
//! structures: `TCG_PCClientPCREvent`, `TCG_EfiSpecIDEventStruct`,
//! `TCG_PCR_EVENT2`), §10.4 (event types and their data); TCG EFI Protocol
//! 2.0 §5 (crypto-agile log); TPM 2.0 Part 1 §17 (PCR extend); Intel TDX
//! Virtual Firmware Design Guide and the ACPI CCEL table (CCEL logs).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

pub mod alg;
pub mod ccel;
pub mod data;
pub mod error;
pub mod event;
pub mod log;
mod reader;
pub mod replay;

pub use alg::{AlgorithmId, Digest, HashAlgorithm};
pub use ccel::{CcelLog, MrIndex, RtmrBank};
pub use data::UnverifiedEventData;
pub use error::{Error, Result};
pub use event::{Event, EventType, Locality, PcrIndexField};
pub use log::{EventLog, LogFormat, SpecIdEvent};
pub use provenix_protocol::{PcrIndex, SystemIdentity};
pub use replay::{PcrBank, Replay};
