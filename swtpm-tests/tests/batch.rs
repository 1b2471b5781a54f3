//! Counter-based batch attestation on swtpm: entries signed with the
//! TPM-derived SK, batches quoted by the AK, across an unclean reboot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use provenix_agent::batch::{attest_batch, LogPosition};
use provenix_agent::counter::{DEFAULT_COUNTER_INDEX, DEFAULT_ORDERLY_JUMP};
use provenix_agent::enroll::{enroll, load_keys};
use provenix_agent::state::StateDir;
use provenix_agent::AgentError;
use provenix_protocol::batch::BatchAttestation;
use provenix_protocol::leaf::{LeafReader, Record};
use provenix_protocol::merkle::{leaf_hash, root};
use provenix_protocol::tpm::{verify_attest, AttestType, Public, Signature};
use provenix_protocol::{Counter, Sha256Digest};
use provenix_swtpm_tests::{Swtpm, Template};

#[test]
fn batches_chain_counters_increase_and_rollback_is_refused() {
    let mut swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let opts = enroll_options();
    {
        let mut t = open(&swtpm);
        boot(&mut t, b"system");
        enroll(&mut t, &opts, &state).unwrap();
    }
    let mut log: Vec<Vec<u8>> = Vec::new();
    let mut batches: Vec<BatchAttestation> = Vec::new();
    let mut at = LogPosition {
        last_counter: None,
        previous_batch: Sha256Digest([0; 32]),
        first_leaf: 0,
    };
    for round in 0..3 {
        if round == 2 {
            swtpm.reboot().unwrap(); // unclean: swtpm killed, no TPM2_Shutdown
        }
        let mut t = open(&swtpm);
        if round == 2 {
            boot(&mut t, b"system"); // the same measurements after the reboot
        }
        let keys = load_keys(&mut t, &state).unwrap();
        let builder = keys.enrollment.builder_id().unwrap();
        let mut leaves = Vec::new();
        for i in 0..(round + 2) as u64 {
            let e = sample_entry(builder, log.len() as u64 + i);
            leaves.extend(e.sign(&keys.sk).unwrap().to_leaves());
        }
        let b = attest_batch(&mut t, &keys.enrollment, at, DEFAULT_ORDERLY_JUMP, &leaves).unwrap();
        // What a verifier checks of it.
        let ak = Public::from_bytes(&keys.enrollment.ak_public).unwrap();
        let q = verify_attest(
            &ak,
            &b.quote_attest,
            &Signature::from_bytes(&b.quote_signature).unwrap(),
            AttestType::Quote,
        )
        .unwrap();
        assert_eq!(q.extra_data.as_bytes(), b.nonce().as_bytes());
        // And tpm2-tools agrees (serialized PCR file: 8 PCRs, tpm2-tools bug #3542).
        checkquote(
            &swtpm,
            &keys.enrollment.ak_public,
            &b.quote_attest,
            &b.quote_signature,
            &b.nonce().0,
        );
        let hashes: Vec<Sha256Digest> = leaves.iter().map(|l| leaf_hash(l)).collect();
        assert_eq!(b.entries_root, root(&hashes).0);
        let binding =
            provenix_protocol::tpm::Attest::from_bytes(&keys.binding.quote_attest).unwrap();
        assert_eq!(
            q.quote().unwrap().pcr_digest,
            binding.quote().unwrap().pcr_digest,
            "batch quoted another boot state"
        );
        log.extend(leaves);
        let leaf = b.to_leaf().unwrap();
        at = LogPosition {
            last_counter: Some(Counter(b.counter)),
            previous_batch: leaf_hash(&leaf),
            first_leaf: log.len() as u64 + 1,
        };
        log.push(leaf);
        batches.push(b);
    }
    assert!(
        batches.windows(2).all(|w| w[0].counter < w[1].counter),
        "counters must strictly increase"
    );
    assert_eq!(batches[0].previous_batch, [0; 32]);
    for w in batches.windows(2) {
        assert_eq!(
            w[1].previous_batch,
            leaf_hash(&w[0].to_leaf().unwrap()).0,
            "batch chain broken"
        );
    }
    // The whole log reads back: entries verify under SK, batches decode.
    let mut reader = LeafReader::new();
    let (mut entries, mut seen_batches) = (0, 0);
    let sk_public = {
        let mut t = open(&swtpm);
        load_keys(&mut t, &state).unwrap().sk.verifying_key()
    };
    for l in &log {
        match reader.push(l).unwrap() {
            Some(Record::Entry(e)) => {
                e.verify(&sk_public).unwrap();
                entries += 1;
            }
            Some(Record::Batch(b)) => {
                assert_eq!(*b, batches[seen_batches]);
                seen_batches += 1;
            }
            _ => {}
        }
    }
    assert_eq!((entries, seen_batches), (2 + 3 + 4, 3));

    // A state directory restored from after the first batch: refused.
    let mut t = open(&swtpm);
    for _ in 0..300 {
        t.increment_counter(DEFAULT_COUNTER_INDEX).unwrap();
    }
    let keys = load_keys(&mut t, &state).unwrap();
    let old = LogPosition {
        last_counter: Some(Counter(batches[0].counter)),
        previous_batch: Sha256Digest([9; 32]),
        first_leaf: 3,
    };
    match attest_batch(
        &mut t,
        &keys.enrollment,
        old,
        DEFAULT_ORDERLY_JUMP,
        &log[..1],
    ) {
        Err(AgentError::CounterRollback(m)) => {
            assert!(m.contains("restored from an older copy"), "{m}")
        }
        other => panic!("expected a rollback refusal, got {other:?}"),
    }
    // A log that counted further than this TPM: another or a cleared TPM.
    let ahead = LogPosition {
        last_counter: Some(Counter(u64::MAX / 2)),
        ..old
    };
    match attest_batch(
        &mut t,
        &keys.enrollment,
        ahead,
        DEFAULT_ORDERLY_JUMP,
        &log[..1],
    ) {
        Err(AgentError::CounterRollback(m)) => assert!(m.contains("another TPM"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
