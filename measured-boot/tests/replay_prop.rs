//! Property: replaying a generated log equals extending the PCRs directly
//! (with the hash crates, not the crate's own extend), in every bank, for
//! SHA-1-format and crypto-agile logs, with and without StartupLocality.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/logbuild.rs"]
mod logbuild;

use std::collections::BTreeSet;

use proptest::prelude::*;
use provenix_measured_boot::{AlgorithmId, EventLog, PcrIndex};

/// (TPM_ALG_ID, digest size) of every bank the crate computes.
const BANKS: [(u16, u16); 5] = [(0x04, 20), (0x0b, 32), (0x0c, 48), (0x0d, 64), (0x12, 32)];

fn hash(alg: u16, parts: &[&[u8]]) -> Vec<u8> {
    fn run<H: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut h = H::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().to_vec()
    }
    match alg {
        0x04 => run::<sha1::Sha1>(parts),
        0x0b => run::<sha2::Sha256>(parts),
        0x0c => run::<sha2::Sha384>(parts),
        0x0d => run::<sha2::Sha512>(parts),
        0x12 => run::<sm3::Sm3>(parts),
        _ => unreachable!(),
    }
}

#[derive(Clone, Debug)]
struct GenEvent {
    /// false: an EV_NO_ACTION record (any PCR index field, zero digests).
    measured: bool,
    pcr: u32,
    event_type: u32,
    data: Vec<u8>,
    seed: Vec<u8>,
}

fn event() -> impl Strategy<Value = GenEvent> {
    let measured = (
        0u32..24,
        prop::sample::select(vec![
            0x1u32,
            0x4,
            0x5,
            0x6,
            0x8,
            0xd,
            0x8000_0001,
            0x8000_0003,
            0x8000_0007,
            0x1234_5678,
        ]),
    )
        .prop_map(|(pcr, t)| (true, pcr, t));
    let no_action = prop_oneof![0u32..24, Just(0xffff_ffffu32)].prop_map(|pcr| (false, pcr, 3));
    (
        prop_oneof![4 => measured, 1 => no_action],
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|((measured, pcr, event_type), data, seed)| GenEvent {
            measured,
            pcr,
            event_type,
            data,
            seed,
        })
}

fn digest(e: &GenEvent, alg: u16, size: u16) -> Vec<u8> {
    if e.measured {
        hash(alg, &[&e.seed, &alg.to_le_bytes()])
    } else {
        vec![0; usize::from(size)]
    }
}

fn sha1_of(e: &GenEvent) -> [u8; 20] {
    digest(e, 0x04, 20).try_into().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replay_equals_direct_extension(
        agile in any::<bool>(),
        banks in prop::sample::subsequence(BANKS.to_vec(), 1..=5).prop_shuffle(),
        locality in prop::option::of(0u8..=4),
        events in prop::collection::vec(event(), 0..40),
    ) {
        let banks = if agile { banks } else { vec![BANKS[0]] };
        prop_assume!(agile || locality.is_some() || !events.is_empty());
        let mut bytes = Vec::new();
        let mut records = 0;
        if agile {
            bytes.extend(logbuild::header(&banks));
            records += 1;
        }
        let mut all: Vec<GenEvent> = Vec::new();
        if let Some(l) = locality {
            all.push(GenEvent {
                measured: false,
                pcr: 0,
                event_type: 3,
                data: logbuild::startup_locality(l),
                seed: vec![],
            });
        }
        all.extend(events);
        for e in &all {
            records += 1;
            if agile {
                let ds: Vec<(u16, Vec<u8>)> =
                    banks.iter().map(|(a, s)| (*a, digest(e, *a, *s))).collect();
                bytes.extend(logbuild::agile_record(e.pcr, e.event_type, &ds, &e.data));
            } else {
                bytes.extend(logbuild::sha1_record(e.pcr, e.event_type, &sha1_of(e), &e.data));
            }
        }

        let log = EventLog::parse(&bytes).unwrap();
        prop_assert_eq!(log.events().len(), records);
        prop_assert_eq!(log.to_bytes(), bytes);
        prop_assert_eq!(log.startup_locality().map(|l| l.get()), locality);
        let replay = log.replay();
        prop_assert_eq!(replay.banks().len(), banks.len());
        for (alg, size) in &banks {
            let size = usize::from(*size);
            let mut want: Vec<Vec<u8>> = (0..24u32)
                .map(|i| vec![if (17..=22).contains(&i) { 0xff } else { 0 }; size])
                .collect();
            let mut reported = BTreeSet::new();
            if let Some(l) = locality {
                want[0][size - 1] = l;
                reported.insert(0u8);
            }
            for e in all.iter().filter(|e| e.measured) {
                let i = e.pcr as usize;
                want[i] = hash(*alg, &[&want[i], &digest(e, *alg, size as u16)]);
                reported.insert(e.pcr as u8);
            }
            let bank = replay
                .bank(AlgorithmId(*alg).hash_algorithm().unwrap())
                .unwrap();
            for (i, w) in want.iter().enumerate() {
                let pcr = PcrIndex::new(i as u8).unwrap();
                let got = bank.value(pcr);
                prop_assert_eq!(got.as_bytes(), w.as_slice(), "bank {:#06x} PCR {}", alg, i);
            }
            let got: BTreeSet<u8> = bank.reported().map(|(i, _)| i.get()).collect();
            prop_assert_eq!(got, reported);
        }
    }
}
