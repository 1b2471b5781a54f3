//! provenix measured boot: what firmware measured, and what it must have measured.
//!
//! This crate is pure (bytes in, typed results out). It will parse TCG PC
//! Client binary event logs and TCG Canonical Event Logs, replay them per PCR
//! bank, and predict PCR values from boot artifacts (UKI, initrd, system
//! closure). The work is tracked in issue 3; until then the crate only
//! re-exports the protocol definitions it will build on.
//!
//! ```text
//! event log bytes ──parse──> events ──replay──> PCR values  <── compare ──> quote
//! artifacts (UKI, initrd, closure) ──predict──> expected PCR values
//! ```
#![no_std]

pub use provenix_protocol::SystemIdentity;
