//! Latency of the agent's TPM operations on swtpm (docs/BENCHMARKS.md):
//! quote, SK derivation (load K + salted PolicyPCR session + HMAC), NV
//! counter increment, PCR extend, and attested entries per second at batch
//! sizes 1, 16 and 256. `cargo run --release -p
//! provenix-swtpm-tests --example tpm_latency [ROUNDS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use provenix_agent::batch::{attest_batch, LogPosition};
use provenix_agent::counter::{DEFAULT_COUNTER_INDEX, DEFAULT_ORDERLY_JUMP};
use provenix_agent::enroll::{enroll, load_keys, EnrollOptions};
use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::{PcrSet, SK_LABEL};
use provenix_agent::state::StateDir;
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::{Counter, PcrIndex, Sha256Digest};
use provenix_swtpm_tests::{Swtpm, Template};

fn median_ms(mut f: impl FnMut(), rounds: usize) -> (f64, f64) {
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[t.len() / 2], t[t.len() * 9 / 10])
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let mut tpm = Tpm::open(&TpmConfig {
        tcti: swtpm.tcti(),
        insecure_allow_swtpm: true,
    })
    .unwrap();
    let ak = tpm.create_ak(EkKind::Rsa2048).unwrap();
    tpm.persist_ak(EkKind::Rsa2048, &ak, DEFAULT_AK_HANDLE)
        .unwrap();
    let akh = tpm.ak_handle(DEFAULT_AK_HANDLE).unwrap();
    tpm.define_counter(DEFAULT_COUNTER_INDEX).unwrap();
    let set = PcrSet::default_seal_set();
    let k = tpm.create_derivation_key(Some(&set)).unwrap();
    let extra = [7u8; 32];
    println!("swtpm, {rounds} rounds each, release build; median and 90th percentile in ms");
    println!("| operation | median (ms) | p90 (ms) |\n|---|---:|---:|");
    let row = |name: &str, (m, p): (f64, f64)| println!("| {name} | {m:.2} | {p:.2} |");
    row(
        "quote (ECC P-256 AK, 8 PCRs)",
        median_ms(
            || {
                tpm.quote(akh, &set, &extra).unwrap();
            },
            rounds,
        ),
    );
    row(
        "SK derivation (SRK + load K + salted PolicyPCR session + HMAC)",
        median_ms(
            || {
                tpm.derive_key(&k, Some(&set), SK_LABEL).unwrap();
            },
            rounds,
        ),
    );
    row(
        "NV counter increment + read",
        median_ms(
            || {
                tpm.increment_counter(DEFAULT_COUNTER_INDEX).unwrap();
            },
            rounds,
        ),
    );
    row(
        "PCR extend",
        median_ms(
            || {
                tpm.extend_pcr(PcrIndex::new(16).unwrap(), [1; 32]).unwrap();
            },
            rounds,
        ),
    );

    // Attested entries per second: sign N entries with the TPM-derived SK,
    // then one batch attestation (counter check + increment + quote).
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let swtpm2 = Swtpm::start(Template::shared(1).unwrap()).unwrap();
    let mut tpm2 = Tpm::open(&TpmConfig {
        tcti: swtpm2.tcti(),
        insecure_allow_swtpm: true,
    })
    .unwrap();
    let opts = EnrollOptions {
        seal: set.clone(),
        ..common::enroll_options()
    };
    enroll(&mut tpm2, &opts, &state).unwrap();
    let keys = load_keys(&mut tpm2, &state).unwrap();
    let builder = keys.enrollment.builder_id().unwrap();
    let mut at = LogPosition {
        last_counter: None,
        previous_batch: Sha256Digest([0; 32]),
        first_leaf: 0,
    };
    println!("\n| batch size | median per batch (ms) | attested entries/s |\n|---:|---:|---:|");
    for size in [1usize, 16, 256] {
        let batch_rounds = (rounds / 4).max(5);
        let (m, _) = median_ms(
            || {
                let mut leaves = Vec::new();
                for i in 0..size as u64 {
                    leaves.extend(
                        common::sample_entry(builder, at.first_leaf + i)
                            .sign(&keys.sk)
                            .unwrap()
                            .to_leaves(),
                    );
                }
                let b = attest_batch(
                    &mut tpm2,
                    &keys.enrollment,
                    at,
                    DEFAULT_ORDERLY_JUMP,
                    &leaves,
                )
                .unwrap();
                let leaf = b.to_leaf().unwrap();
                at = LogPosition {
                    last_counter: Some(Counter(b.counter)),
                    previous_batch: provenix_protocol::merkle::leaf_hash(&leaf),
                    first_leaf: at.first_leaf + leaves.len() as u64 + 1,
                };
            },
            batch_rounds,
        );
        println!("| {size} | {m:.2} | {:.0} |", size as f64 / (m / 1e3));
    }
}
