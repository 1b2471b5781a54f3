//! The one error type of the measured-boot crate.

use alloc::string::String;

use crate::alg::AlgorithmId;
use crate::event::EventType;

/// Everything that can go wrong while reading an event log or decoding its
/// event data. Kinds are meant to be branched on: a test that breaks one
/// field expects one kind. Every kind that comes from reading bytes carries
/// the byte offset in the log (from its first byte) and what was expected
/// there; [`Error::offset`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input holds no bytes at all.
    #[error("byte 0: empty input, expected a TCG event log (its first record)")]
    Empty,
    /// The input, or a length or count inside it, exceeds a bound of this
    /// parser.
    #[error("byte {offset}: {what} of {len} exceeds the limit of {max}")]
    TooLarge {
        /// Where the oversized value (or the input) starts.
        offset: usize,
        /// What was too large.
        what: &'static str,
        /// Its size (bytes or items).
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The input ended in the middle of a record.
    #[error("byte {offset}: input ends early, expected {expected}")]
    Truncated {
        /// Where the missing value would start.
        offset: usize,
        /// What was being read.
        expected: &'static str,
    },
    /// The first record looks like a crypto-agile log header (Spec ID
    /// Event03) but is not a valid one.
    #[error("byte {offset}: invalid log header (Spec ID Event03): expected {expected}")]
    InvalidHeader {
        /// Where the offending field starts.
        offset: usize,
        /// What the header must hold there.
        expected: &'static str,
    },
    /// A record is structurally invalid (a field holds a value the format
    /// does not allow).
    #[error("byte {offset}: malformed record: expected {expected}")]
    MalformedRecord {
        /// Where the offending field starts.
        offset: usize,
        /// What the record must hold there.
        expected: &'static str,
    },
    /// A crypto-agile record carries a digest of an algorithm the Spec ID
    /// event does not declare (its size is unknown, so the record cannot be
    /// read further).
    #[error(
        "byte {offset}: digest of algorithm {algorithm}, expected one of the banks the Spec ID event declares"
    )]
    UndeclaredAlgorithm {
        /// Where the digest's algorithm field starts.
        offset: usize,
        /// The algorithm named.
        algorithm: AlgorithmId,
    },
    /// A measured record (anything but EV_NO_ACTION) names a PCR outside
    /// 0-23.
    #[error("byte {offset}: PCR index {index}, expected 0-23 for a measured event")]
    PcrIndexOutOfRange {
        /// Where the record (its PCRIndex field) starts.
        offset: usize,
        /// The index found.
        index: u32,
    },
    /// A measured record of a TDX CCEL log names a measurement register
    /// other than RTMR0-3 (MR index 1-4).
    #[error(
        "byte {offset}: CC measurement register index {index}, expected 1-4 (RTMR0-3) for a measured event"
    )]
    MrIndexOutOfRange {
        /// Where the record (its MR index field) starts.
        offset: usize,
        /// The index found.
        index: u32,
    },
    /// Bytes remain after the last complete record (and, for CCEL logs,
    /// they are not all 0xFF padding).
    #[error("byte {offset}: {count} byte(s) after the last record, expected the end of the log")]
    TrailingBytes {
        /// Where the left-over bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// An event's (unauthenticated) data does not have the layout its event
    /// type defines. This comes only from decoding event data, never from
    /// reading the log: the records and their digests are still valid.
    #[error("byte {offset}: {event_type} event data: expected {expected}")]
    MalformedEventData {
        /// Where the offending field starts.
        offset: usize,
        /// The event's type.
        event_type: EventType,
        /// What the data must hold there.
        expected: &'static str,
    },
    /// A digest does not fit the bank it is used with (wrong algorithm or
    /// length).
    #[error("digest of {found} ({len} bytes) used with the {expected} bank")]
    DigestMismatch {
        /// The bank's algorithm.
        expected: AlgorithmId,
        /// The digest's algorithm.
        found: AlgorithmId,
        /// The digest's length.
        len: usize,
    },
    /// A CEL-JSON log is not a JSON text sequence of records as systemd
    /// writes it (RFC 7464: each record is 0x1E, one JSON text, 0x0A).
    #[error("byte {offset}: CEL-JSON record {record}: expected {expected}")]
    CelFraming {
        /// Where the record (its 0x1E) starts, or where the stray bytes are.
        offset: usize,
        /// The record's position in the log (from 0).
        record: usize,
        /// What the framing requires there.
        expected: &'static str,
    },
    /// A CEL-JSON record is not valid JSON (or an object repeats a key).
    #[error("byte {offset}: CEL-JSON record {record}: invalid JSON: {detail}")]
    CelJson {
        /// Where the record (its 0x1E) starts.
        offset: usize,
        /// The record's position in the log (from 0).
        record: usize,
        /// The JSON parser's message (line and column within the record).
        detail: String,
    },
    /// A field of a CEL-JSON record is missing, unknown, or holds a value
    /// of the wrong type or range.
    #[error("byte {offset}: CEL-JSON record {record}: field \"{field}\": expected {expected}")]
    CelField {
        /// Where the record (its 0x1E) starts.
        offset: usize,
        /// The record's position in the log (from 0).
        record: usize,
        /// The field (for nested fields, its path, e.g. `digests.hashAlg`).
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
    },
    /// A CEL-JSON record's `recnum` is not its position in the log.
    #[error("byte {offset}: CEL-JSON record {record}: recnum {found}, expected {record}")]
    CelRecnum {
        /// Where the record (its 0x1E) starts.
        offset: usize,
        /// The record's position in the log (from 0).
        record: usize,
        /// The recnum written.
        found: u64,
    },
    /// A provenix system-measurement event whose content does not hash to
    /// its digests (or whose `system` field is not the identity's digest).
    #[error("provenix system event: {what}")]
    SystemEventMismatch {
        /// Which value disagrees.
        what: &'static str,
    },
    /// The input is not a PE/COFF image: a signature is missing.
    #[error("byte {offset}: not a PE/COFF image: expected {expected}")]
    NotPe {
        /// Where the signature should be.
        offset: usize,
        /// The signature expected there.
        expected: &'static str,
    },
    /// A PE/COFF header field holds a value the format does not allow, or
    /// one that places a structure outside the image or over another.
    #[error("byte {offset}: malformed PE/COFF image: expected {expected}")]
    MalformedPe {
        /// Where the offending field starts.
        offset: usize,
        /// What the field must hold.
        expected: &'static str,
    },
    /// A unified kernel image this crate cannot predict the measurements
    /// of (rather than predict them wrongly).
    #[error("unsupported UKI: {reason}")]
    UnsupportedUki {
        /// Why.
        reason: &'static str,
    },
    /// An argument of a prediction is not valid (e.g. a phase string).
    #[error("{what}: expected {expected}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A closure manifest (`nix path-info --json --recursive`) is not JSON
    /// of either form Nix writes.
    #[error("closure manifest: {detail}")]
    ManifestJson {
        /// The JSON parser's message, or what the top level must be.
        detail: String,
    },
    /// An entry of a closure manifest lacks a field or holds a bad value.
    #[error("closure manifest entry {entry}: field \"{field}\": expected {expected}")]
    ManifestField {
        /// The entry's position in the manifest (from 0).
        entry: usize,
        /// The field.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
    },
    /// A closure manifest (as a whole) or the measured closure does not
    /// describe one system: no single toplevel, a path twice, a path not
    /// measured.
    #[error("closure: {expected}")]
    Closure {
        /// What is required.
        expected: &'static str,
    },
    /// `provenix_protocol` refused a value (store path, hash, identity).
    #[error("{what}: {detail}")]
    Protocol {
        /// Which value.
        what: &'static str,
        /// The protocol crate's message.
        detail: String,
    },
}

impl Error {
    /// The byte offset in the input (log or image) the error refers to,
    /// where there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Error::Empty => Some(0),
            Error::TooLarge { offset, .. }
            | Error::Truncated { offset, .. }
            | Error::InvalidHeader { offset, .. }
            | Error::MalformedRecord { offset, .. }
            | Error::UndeclaredAlgorithm { offset, .. }
            | Error::PcrIndexOutOfRange { offset, .. }
            | Error::MrIndexOutOfRange { offset, .. }
            | Error::TrailingBytes { offset, .. }
            | Error::MalformedEventData { offset, .. }
            | Error::CelFraming { offset, .. }
            | Error::CelJson { offset, .. }
            | Error::CelField { offset, .. }
            | Error::CelRecnum { offset, .. }
            | Error::NotPe { offset, .. }
            | Error::MalformedPe { offset, .. } => Some(*offset),
            Error::DigestMismatch { .. }
            | Error::SystemEventMismatch { .. }
            | Error::UnsupportedUki { .. }
            | Error::InvalidInput { .. }
            | Error::ManifestJson { .. }
            | Error::ManifestField { .. }
            | Error::Closure { .. }
            | Error::Protocol { .. } => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
