//! provenix measured boot: what firmware measured, and what it must have measured.
//!
//! This crate is pure (bytes in, typed results out; `no_std` with `alloc`).
//! It reads TCG PC Client binary event logs (SHA-1 and crypto-agile, as
//! Linux exposes them in `/sys/kernel/security/tpm0/binary_bios_measurements`),
//! Intel TDX CCEL logs and userspace CEL-JSON logs (systemd's
//! `/run/log/systemd/tpm2-measure.log`, the provenix agent's system
//! measurement), replays them per bank, and predicts from boot artifacts
//! (UKI, kernel, initrd, command line, system closure) what they must hold.
//!
//! ```text
//!  log bytes ──EventLog::parse──> EventLog ──replay──> Replay (per bank: PCR 0-23)
//!                                   │                      │ apply_cel(CelLog)  <── CelLog::parse <── CEL-JSON bytes
//!                                   │ events(): index, PCR, type, digests       (systemd, provenix records)
//!                                   │                      └─ compare with a TPM quote
//!                                   └─ Event::decode_unverified_data()
//!                                        └─> UnverifiedEventData (NOT authenticated)
//!
//!  CCEL bytes ──CcelLog::parse──> CcelLog ──replay_rtmrs──> RTMR0-3 (MR index 1-4)
//!
//!  UKI / kernel bytes ──PeImage::parse, predict::Uki::parse──┐
//!  initrd, command line, systemd-pcrphase phase ─────────────┤ predict::events
//!  closure manifest + NAR hashes of the content ─────────────┤ predict::closure
//!                                                            v
//!                          predict::Prediction: events, PCR values (compare with Replay)
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
//! Virtual Firmware Design Guide and the ACPI CCEL table (CCEL logs); TCG
//! Canonical Event Log Format 1.0 (CEL-JSON) and RFC 7464 (JSON text
//! sequences); Microsoft PE/COFF and Authenticode PE signature format;
//! systemd `docs/TPM2_PCR_MEASUREMENTS.md` and `src/fundamental/uki.h`.
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
pub mod cel;
pub mod data;
pub mod error;
pub mod event;
mod hasher;
mod json;
pub mod log;
pub mod pe;
pub mod predict;
mod reader;
pub mod replay;

pub use alg::{AlgorithmId, Digest, HashAlgorithm};
pub use ccel::{CcelLog, MrIndex, RtmrBank};
pub use cel::{CelContent, CelLog, CelRecord, SystemMeasurement};
pub use data::UnverifiedEventData;
pub use error::{Error, Result};
pub use event::{Event, EventType, Locality, PcrIndexField};
pub use log::{EventLog, LogFormat, SpecIdEvent};
pub use pe::PeImage;
pub use provenix_protocol::{PcrIndex, SystemIdentity};
pub use replay::{PcrBank, Replay};
