//! Intel TDX Confidential Computing Event Logs (CCEL), kept apart from TPM
//! logs on purpose: their registers are not PCRs.
//!
//! A CCEL (the ACPI CCEL table's log area, or
//! `/sys/firmware/acpi/tables/data/CCEL`) uses the crypto-agile record
//! layout of a TPM log (see [`crate::log`]), but:
//! - the PCRIndex field holds the CC measurement-register index: 1-4 are
//!   RTMR0-3 (0 would be MRTD, which no log event extends), and even the
//!   Spec ID header record may carry a non-zero index (TDVF writes 1);
//! - the log area is pre-filled with 0xFF, so the log is followed by 0xFF
//!   padding up to the area's size. This parser accepts a run of 0xFF
//!   bytes after the last record as padding (and reports its length), and
//!   nothing else;
//! - RTMRs start at zero (SHA-384), and there is no StartupLocality.

use alloc::vec::Vec;

use crate::alg::{AlgorithmId, Digest, HashAlgorithm};
use crate::error::Result;
use crate::event::Event;
use crate::log::{banks, encode_records, parse_records, split_banks, LogFormat, Mode, SpecIdEvent};

/// How many RTMRs a TD has (RTMR0-3, MR indices 1-4).
pub const RTMR_COUNT: usize = 4;

/// A CC measurement-register index as a CCEL writes it: 1-4 for RTMR0-3.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MrIndex(u8);

impl MrIndex {
    /// A checked index (1-4).
    pub fn new(index: u8) -> Option<Self> {
        (1..=4).contains(&index).then_some(Self(index))
    }

    /// The MR index (1-4).
    pub fn get(self) -> u8 {
        self.0
    }

    /// The RTMR number (0-3): the MR index minus one.
    pub fn rtmr(self) -> u8 {
        self.0.saturating_sub(1)
    }
}

/// A parsed TDX CCEL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CcelLog {
    spec_id: SpecIdEvent,
    events: Vec<Event>,
    padding: usize,
}

impl CcelLog {
    /// Parses a CCEL: a Spec ID Event03 header, crypto-agile records whose
    /// measured events name MR index 1-4, and optional 0xFF padding.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let p = parse_records(bytes, Mode::Ccel)?;
        let spec_id = p.spec_id.ok_or(crate::error::Error::InvalidHeader {
            offset: 0,
            expected: "a Spec ID Event03 header",
        })?;
        Ok(Self {
            spec_id,
            events: p.events,
            padding: p.padding,
        })
    }

    /// The Spec ID Event03 header.
    pub fn spec_id(&self) -> &SpecIdEvent {
        &self.spec_id
    }

    /// Every record, header included, in file order. [`Event::pcr`] is
    /// `None` for all of them: use [`CcelLog::mr_index`].
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The RTMR a record extends (`None` for EV_NO_ACTION).
    pub fn mr_index(event: &Event) -> Option<MrIndex> {
        if !event.is_measured() {
            return None;
        }
        u8::try_from(event.pcr_index().0)
            .ok()
            .and_then(MrIndex::new)
    }

    /// How many 0xFF padding bytes followed the last record.
    pub fn padding_len(&self) -> usize {
        self.padding
    }

    /// The banks every record carries.
    pub fn banks(&self) -> Vec<AlgorithmId> {
        banks(Some(&self.spec_id))
    }

    /// The log's bytes without the padding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_records(LogFormat::CryptoAgile, &self.events)
    }

    /// Replays the RTMRs in every bank this crate can compute (TDX uses
    /// SHA-384).
    pub fn replay_rtmrs(&self) -> Vec<RtmrBank> {
        let (known, _) = split_banks(&self.banks());
        let mut out: Vec<RtmrBank> = known
            .into_iter()
            .map(|algorithm| RtmrBank {
                algorithm,
                values: [algorithm.filled(0); RTMR_COUNT],
                extended: [false; RTMR_COUNT],
            })
            .collect();
        for e in &self.events {
            let Some(mr) = Self::mr_index(e) else {
                continue;
            };
            let i = usize::from(mr.rtmr());
            for bank in &mut out {
                let (Some(d), Some(v), Some(x)) = (
                    e.digest(bank.algorithm.id()),
                    bank.values.get_mut(i),
                    bank.extended.get_mut(i),
                ) else {
                    continue;
                };
                if let Ok(next) = bank.algorithm.extend(v, d) {
                    *v = next;
                    *x = true;
                }
            }
        }
        out
    }
}

/// One bank's RTMR values after replaying a CCEL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RtmrBank {
    algorithm: HashAlgorithm,
    values: [Digest; RTMR_COUNT],
    extended: [bool; RTMR_COUNT],
}

impl RtmrBank {
    /// The bank's algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The value of the RTMR with MR index `mr`.
    pub fn value(&self, mr: MrIndex) -> Digest {
        self.values
            .get(usize::from(mr.rtmr()))
            .copied()
            .unwrap_or_else(|| self.algorithm.filled(0))
    }

    /// The RTMRs the log extended, by MR index, with their values.
    pub fn extended(&self) -> impl Iterator<Item = (MrIndex, Digest)> + '_ {
        (1..=4u8)
            .filter_map(MrIndex::new)
            .filter(|m| {
                self.extended
                    .get(usize::from(m.rtmr()))
                    .copied()
                    .unwrap_or(false)
            })
            .map(|m| (m, self.value(m)))
    }
}
