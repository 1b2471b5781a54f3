//! Prediction: the events and PCR values a boot *must* produce, computed
//! from the artifacts an auditor rebuilt from source, so that a verifier
//! can compare them with a builder's replayed event logs and quoted PCRs.
//!
//! ```text
//!  UKI bytes ──Uki::parse──> Uki ──events::uki_boot──┐   PCR 4: "Calling EFI Application from
//!                             (sections, stub        │          Boot Option", separator,
//!                              version, kernel PE)   │          Authenticode(UKI), Authenticode(.linux)
//!                                                    │   PCR 11: per section: name+NUL, contents
//!                                                    │   PCR 9: load options (UTF-16LE + NUL), initrd
//!  phase "enter-initrd:…" ──events::pcrphase─────────┤   PCR 11: one event per phase word
//!  manifest + content hashes ──closure::predict_system──> SystemMeasurement ──> system PCR (CEL)
//!                                                    v
//!                        Prediction (banks, events in log order, PCRs expected empty: 12, 13)
//!                          └─ value(bank, pcr): reset value extended with the PCR's events
//! ```
//!
//! Everything here is pure: bytes in, events out. Reading files, hashing
//! a store from disk and running Nix are the caller's (the verifier's
//! `provenix predict`).
//!
//! What each prediction follows (and was checked against, see the tests):
//! - PCR 4: EDK2/OVMF booting a UKI from an ESP boot option, which then
//!   starts its embedded kernel with `LoadImage` (TCG PC Client PFP §10.4.4;
//!   EDK2 `Tpm2MeasurePeImage`), as in `testdata/eventlogs/ovmf-uki`.
//! - PCR 11: systemd-stub's section measurements (systemd
//!   `src/fundamental/uki.h`: the canonical section order; `.pcrsig` is not
//!   measured), equal to `systemd-measure calculate`; plus one extend per
//!   systemd-pcrphase word.
//! - PCR 9: the Linux EFI stub's `EV_EVENT_TAG` measurements of its load
//!   options and of the initrd it loads through `LINUX_EFI_INITRD_MEDIA`.
//! - PCR 12 and 13: no events (the value a builder must show: no command
//!   line override, credentials, system or configuration extensions).
//! - The system PCR: the provenix agent's CEL record (see [`crate::cel`]).

use alloc::string::String;
use alloc::vec::Vec;

use provenix_protocol::PcrIndex;

use crate::alg::{Digest, HashAlgorithm};
use crate::error::{Error, Result};
use crate::event::EventType;
use crate::replay::reset_value;

pub mod closure;
pub mod events;
pub mod uki;

pub use closure::{ClosureManifest, ManifestEntry, ManifestMismatch, SystemPrediction};
pub use uki::{PcrPhase, SystemdStub, Uki, UkiSection};

/// Where a predicted event is logged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventSource {
    /// The firmware's TCG event log (`binary_bios_measurements`), with
    /// this event type.
    Firmware(EventType),
    /// A userspace CEL-JSON log, with this `content_type` (`"systemd"` for
    /// systemd-pcrphase, `"provenix"` for the agent's system measurement).
    Userspace(&'static str),
}

/// One event a boot must log: which PCR, where it is logged, and the digest
/// it extends in every bank of its [`Prediction`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PredictedEvent {
    pcr: PcrIndex,
    source: EventSource,
    digests: Vec<Digest>,
    event_data: Option<Vec<u8>>,
    description: String,
}

impl PredictedEvent {
    /// An event extending `pcr` with `digests` (one per bank), e.g. a
    /// digest taken from a log or pinned by policy rather than computed
    /// here. The constructors in [`events`] compute them from artifacts.
    pub fn new(
        pcr: PcrIndex,
        source: EventSource,
        digests: Vec<Digest>,
        event_data: Option<Vec<u8>>,
        description: String,
    ) -> Self {
        Self {
            pcr,
            source,
            digests,
            event_data,
            description,
        }
    }

    /// The PCR extended.
    pub fn pcr(&self) -> PcrIndex {
        self.pcr
    }

    /// Where the event is logged.
    pub fn source(&self) -> EventSource {
        self.source
    }

    /// The digests extended, one per bank, in the prediction's bank order.
    pub fn digests(&self) -> &[Digest] {
        &self.digests
    }

    /// The digest for one bank.
    pub fn digest(&self, bank: HashAlgorithm) -> Option<&Digest> {
        self.digests.iter().find(|d| d.algorithm() == bank.id())
    }

    /// The event data the log will carry beside the digest, where it is
    /// fixed (an action string, a separator, a tagged event); `None` where
    /// it depends on the boot (an image's load address).
    pub fn event_data(&self) -> Option<&[u8]> {
        self.event_data.as_deref()
    }

    /// What was measured, for people.
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// A set of predicted events over some banks, and the PCRs they determine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Prediction {
    banks: Vec<HashAlgorithm>,
    events: Vec<PredictedEvent>,
    /// Bit `i`: PCR `i` is predicted (by events, or as having none).
    predicted: u32,
}

impl Prediction {
    /// An empty prediction over `banks` (at least one, none twice).
    pub fn new(banks: &[HashAlgorithm]) -> Result<Self> {
        let dup = banks
            .iter()
            .enumerate()
            .any(|(i, b)| banks.iter().take(i).any(|c| c == b));
        if banks.is_empty() || dup {
            return Err(Error::InvalidInput {
                what: "prediction banks",
                expected: "at least one bank, none twice",
            });
        }
        Ok(Self {
            banks: banks.to_vec(),
            events: Vec::new(),
            predicted: 0,
        })
    }

    /// The banks predicted.
    pub fn banks(&self) -> &[HashAlgorithm] {
        &self.banks
    }

    /// Appends `event` (after every event already pushed for its PCR). The
    /// event must carry a digest for every bank of the prediction.
    pub fn push(&mut self, event: PredictedEvent) -> Result<()> {
        if self.banks.iter().any(|b| event.digest(*b).is_none()) {
            return Err(Error::InvalidInput {
                what: "predicted event",
                expected: "a digest for every bank of the prediction",
            });
        }
        self.predicted |= 1 << event.pcr.get();
        self.events.push(event);
        Ok(())
    }

    /// Appends every event of `events`, in order.
    pub fn extend(&mut self, events: impl IntoIterator<Item = PredictedEvent>) -> Result<()> {
        for e in events {
            self.push(e)?;
        }
        Ok(())
    }

    /// Predicts that `pcr` holds no events (stays at its reset value), as
    /// PCR 12 and 13 must on a builder.
    pub fn expect_no_events(&mut self, pcr: PcrIndex) -> Result<()> {
        if self.events.iter().any(|e| e.pcr == pcr) {
            return Err(Error::InvalidInput {
                what: "PCR expected to hold no events",
                expected: "a PCR no predicted event extends",
            });
        }
        self.predicted |= 1 << pcr.get();
        Ok(())
    }

    /// Every event, in the order pushed (log order within each PCR).
    pub fn events(&self) -> &[PredictedEvent] {
        &self.events
    }

    /// The predicted PCRs, in index order.
    pub fn pcrs(&self) -> impl Iterator<Item = PcrIndex> + '_ {
        (0..=PcrIndex::MAX)
            .filter(|i| self.predicted & (1 << i) != 0)
            .filter_map(|i| PcrIndex::new(i).ok())
    }

    /// The value `pcr` must hold in `bank`: its reset value extended with
    /// the PCR's predicted events in order. `None` if the bank or the PCR
    /// is not predicted.
    pub fn value(&self, bank: HashAlgorithm, pcr: PcrIndex) -> Result<Option<Digest>> {
        if !self.banks.contains(&bank) || self.predicted & (1 << pcr.get()) == 0 {
            return Ok(None);
        }
        let mut v = reset_value(bank, pcr, None);
        for e in self.events.iter().filter(|e| e.pcr == pcr) {
            let d = e.digest(bank).ok_or(Error::InvalidInput {
                what: "predicted event",
                expected: "a digest for every bank of the prediction",
            })?;
            v = bank.extend(&v, d)?;
        }
        Ok(Some(v))
    }
}
