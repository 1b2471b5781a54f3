//! The per-entry floor of log verification, in process: for entry leaves
//! taken from a real log (scripts/bench-log.sh writes it), the leaf hash
//! (inclusion) and the entry's decode and SK signature check, nothing else:
//! no I/O, no tree, no quotes. `provenix verify` on the whole log is timed
//! beside it by the script.
//!
//! Run: `LOG_DIR=DIR SK_HEX=HEX cargo bench -p provenix-verifier --bench entries`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use provenix_protocol::leaf::{decode_bundle, Leaf, LeafReader, Record};
use provenix_protocol::merkle::leaf_hash;

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("LOG_DIR").expect("LOG_DIR"));
    let sk = provenix_protocol::encoding::hex_decode_array::<32>(
        &std::env::var("SK_HEX").expect("SK_HEX"),
    )
    .unwrap();
    let sk = ed25519_dalek::VerifyingKey::from_bytes(&sk).unwrap();
    // The entry leaves of the first full bundles (up to 80: 20,480 leaves).
    let mut leaves = Vec::new();
    for i in 0..80 {
        let Ok(bytes) = std::fs::read(dir.join(format!("tile/entries/{i:03}"))) else {
            break;
        };
        for l in decode_bundle(&bytes).unwrap() {
            if matches!(Leaf::decode(l), Ok(Leaf::Entry(_))) {
                leaves.push(l.to_vec());
            }
        }
    }
    let mut per = Vec::new();
    for _ in 0..5 {
        let mut reader = LeafReader::new();
        let t = Instant::now();
        for l in &leaves {
            std::hint::black_box(leaf_hash(l));
            let Ok(Some(Record::Entry(e))) = reader.push(l) else {
                panic!("an inline entry")
            };
            e.verify(&sk).unwrap();
        }
        per.push(t.elapsed().as_secs_f64() / leaves.len() as f64);
    }
    per.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let floor = per[per.len() / 2];
    println!(
        "per-entry floor (leaf hash + decode + SK verify; {} entries, median of 5 rounds): {:.1} µs, {:.0} entries/s per core",
        leaves.len(),
        floor * 1e6,
        1.0 / floor
    );
    println!("BENCH floor_seconds {floor:.9}");
}
