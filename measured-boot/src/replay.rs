//! Replay: what the PCRs hold after the firmware extended every measured
//! event of a log.
//!
//! Reset values (TCG PC Client Platform Firmware Profile §3.3.3; TPM 2.0
//! Part 1 §17): PCRs 0-16 and 23 start at all zeros, PCRs 17-22 (the
//! dynamic-launch PCRs) at all ones. A StartupLocality event with locality
//! `L` makes PCR 0 start at `00…00 0L`. Each measured event then extends its
//! PCR in every bank: `PCR = H(PCR || digest)`. EV_NO_ACTION records are
//! never extended.

use alloc::vec::Vec;

use provenix_protocol::PcrIndex;

use crate::alg::{AlgorithmId, Digest, HashAlgorithm};
use crate::error::Result;
use crate::event::{Event, Locality};
use crate::log::split_banks;

/// PCRs on a PC Client TPM.
pub const PCR_COUNT: usize = 24;

/// The value PCR `pcr` of bank `algorithm` holds after TPM2_Startup, given
/// the startup locality a log reports.
pub fn reset_value(
    algorithm: HashAlgorithm,
    pcr: PcrIndex,
    startup_locality: Option<Locality>,
) -> Digest {
    match (pcr.get(), startup_locality) {
        (17..=22, _) => algorithm.filled(0xff),
        (0, Some(l)) => {
            let mut bytes = [0u8; crate::alg::MAX_DIGEST_SIZE];
            let size = algorithm.digest_size();
            if let Some(last) = bytes.get_mut(size.saturating_sub(1)) {
                *last = l.get();
            }
            Digest::new(algorithm.id(), bytes.get(..size).unwrap_or(&[]))
                .unwrap_or_else(|_| algorithm.filled(0))
        }
        _ => algorithm.filled(0),
    }
}

fn pcr_indices() -> impl Iterator<Item = PcrIndex> {
    (0..=PcrIndex::MAX).filter_map(|i| PcrIndex::new(i).ok())
}

/// One bank's 24 PCRs, and which of them a log set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PcrBank {
    algorithm: HashAlgorithm,
    values: Vec<Digest>,
    /// Bit `i`: PCR `i` was extended, or set by a StartupLocality event.
    reported: u32,
}

impl PcrBank {
    /// Every PCR at its reset value ([`reset_value`]). With a startup
    /// locality, PCR 0 counts as set by the log.
    pub fn reset(algorithm: HashAlgorithm, startup_locality: Option<Locality>) -> Self {
        Self {
            algorithm,
            values: pcr_indices()
                .map(|i| reset_value(algorithm, i, startup_locality))
                .collect(),
            reported: u32::from(startup_locality.is_some()),
        }
    }

    /// Extends `pcr` with `measurement` (a digest of this bank).
    pub fn extend(&mut self, pcr: PcrIndex, measurement: &Digest) -> Result<()> {
        let i = usize::from(pcr.get());
        if let Some(v) = self.values.get_mut(i) {
            *v = self.algorithm.extend(v, measurement)?;
            self.reported |= 1 << i;
        }
        Ok(())
    }

    /// The bank's algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The value of `pcr` (its reset value if the log never extended it).
    pub fn value(&self, pcr: PcrIndex) -> Digest {
        self.values
            .get(usize::from(pcr.get()))
            .copied()
            .unwrap_or_else(|| self.algorithm.filled(0))
    }

    /// Whether the log extended `pcr` (or, for PCR 0, set it through a
    /// StartupLocality event).
    pub fn is_reported(&self, pcr: PcrIndex) -> bool {
        self.reported & (1 << pcr.get()) != 0
    }

    /// The PCRs the log extended (plus PCR 0 when a StartupLocality event
    /// set it), in index order, with their values.
    pub fn reported(&self) -> impl Iterator<Item = (PcrIndex, Digest)> + '_ {
        pcr_indices()
            .filter(|i| self.is_reported(*i))
            .map(|i| (i, self.value(i)))
    }
}

/// The replayed PCR values of a log: one [`PcrBank`] per declared bank that
/// this crate can compute and that every measured record carries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Replay {
    banks: Vec<PcrBank>,
    unsupported: Vec<AlgorithmId>,
    incomplete: Vec<AlgorithmId>,
    startup_locality: Option<Locality>,
}

impl Replay {
    /// Replays `events` (already checked by the parser: every measured event
    /// names a PCR 0-23, and its digests have the declared sizes).
    pub(crate) fn tpm(
        banks: &[AlgorithmId],
        events: &[Event],
        startup_locality: Option<Locality>,
    ) -> Self {
        let (known, unsupported) = split_banks(banks);
        let (complete, incomplete): (Vec<HashAlgorithm>, Vec<HashAlgorithm>) =
            known.into_iter().partition(|a| {
                events
                    .iter()
                    .filter(|e| e.pcr().is_some())
                    .all(|e| e.digest(a.id()).is_some())
            });
        let mut banks: Vec<PcrBank> = complete
            .into_iter()
            .map(|a| PcrBank::reset(a, startup_locality))
            .collect();
        for e in events {
            let Some(pcr) = e.pcr() else { continue };
            for bank in &mut banks {
                if let Some(d) = e.digest(bank.algorithm.id()) {
                    // The parser guarantees the digest's size; a mismatch
                    // cannot happen, and would leave the PCR untouched.
                    let _ = bank.extend(pcr, d);
                }
            }
        }
        Self {
            banks,
            unsupported,
            incomplete: incomplete.into_iter().map(HashAlgorithm::id).collect(),
            startup_locality,
        }
    }

    /// Every bank of `banks` at its reset value, no startup locality: the
    /// starting point for replaying a userspace (CEL) log on its own.
    pub(crate) fn reset(banks: &[HashAlgorithm]) -> Self {
        Self {
            banks: banks.iter().map(|a| PcrBank::reset(*a, None)).collect(),
            unsupported: Vec::new(),
            incomplete: Vec::new(),
            startup_locality: None,
        }
    }

    /// Extends `pcr` in every replayed bank that `digests` holds a digest
    /// for, as TPM2_PCR_Extend does: a bank without a digest in the list is
    /// left as it is.
    pub(crate) fn extend_listed_banks(&mut self, pcr: PcrIndex, digests: &[Digest]) -> Result<()> {
        for bank in &mut self.banks {
            if let Some(d) = digests
                .iter()
                .find(|d| d.algorithm() == bank.algorithm.id())
            {
                bank.extend(pcr, d)?;
            }
        }
        Ok(())
    }

    /// Declared banks that some measured record carries no digest for: the
    /// log does not say what the TPM extended there, so they are not
    /// replayed.
    pub fn incomplete_banks(&self) -> &[AlgorithmId] {
        &self.incomplete
    }

    /// The bank of `algorithm`, if the log carries it.
    pub fn bank(&self, algorithm: HashAlgorithm) -> Option<&PcrBank> {
        self.banks.iter().find(|b| b.algorithm == algorithm)
    }

    /// Every replayed bank, in the log's declared order.
    pub fn banks(&self) -> &[PcrBank] {
        &self.banks
    }

    /// Banks the log carries but this crate cannot compute (not replayed).
    pub fn unsupported_banks(&self) -> &[AlgorithmId] {
        &self.unsupported
    }

    /// The startup locality the replay honoured.
    pub fn startup_locality(&self) -> Option<Locality> {
        self.startup_locality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcr(i: u8) -> PcrIndex {
        PcrIndex::new(i).unwrap()
    }

    #[test]
    fn reset_values() {
        let three = Locality::new(3);
        for alg in HashAlgorithm::ALL {
            let size = alg.digest_size();
            let zero = vec![0u8; size];
            let ones = vec![0xffu8; size];
            assert_eq!(reset_value(alg, pcr(0), None).as_bytes(), zero);
            let mut l3 = zero.clone();
            l3[size - 1] = 3;
            assert_eq!(reset_value(alg, pcr(0), three).as_bytes(), l3);
            assert_eq!(reset_value(alg, pcr(1), three).as_bytes(), zero);
            assert_eq!(reset_value(alg, pcr(16), None).as_bytes(), zero);
            for i in 17..=22 {
                assert_eq!(reset_value(alg, pcr(i), None).as_bytes(), ones);
            }
            assert_eq!(reset_value(alg, pcr(23), None).as_bytes(), zero);
        }
    }

    #[test]
    fn extend_refuses_another_bank() {
        let mut bank = PcrBank::reset(HashAlgorithm::Sha256, None);
        let sha1 = HashAlgorithm::Sha1.hash(b"x");
        assert!(matches!(
            bank.extend(pcr(4), &sha1),
            Err(crate::Error::DigestMismatch { .. })
        ));
        assert!(!bank.is_reported(pcr(4)));
        bank.extend(pcr(4), &HashAlgorithm::Sha256.hash(b"x"))
            .unwrap();
        assert!(bank.is_reported(pcr(4)));
        assert_eq!(bank.reported().count(), 1);
    }
}
