//! The one error type of the measured-boot crate.

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
}

impl Error {
    /// The byte offset in the log the error refers to, where there is one.
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
            | Error::MalformedEventData { offset, .. } => Some(*offset),
            Error::DigestMismatch { .. } => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
