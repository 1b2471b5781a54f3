//! Latency of the agent's TPM operations on swtpm (docs/BENCHMARKS.md):
//! quote, SK derivation (load K + salted PolicyPCR session + HMAC), NV
//! counter increment, PCR extend. `cargo run --release -p
//! provenix-swtpm-tests --example tpm_latency [ROUNDS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use provenix_agent::counter::DEFAULT_COUNTER_INDEX;
use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::{PcrSet, SK_LABEL};
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::PcrIndex;
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
    let mut row = |name: &str, (m, p): (f64, f64)| println!("| {name} | {m:.2} | {p:.2} |");
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
}
