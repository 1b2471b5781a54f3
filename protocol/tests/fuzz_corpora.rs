//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run, on stable Rust.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    assert!(n >= 3, "corpus {target} has only {n} inputs");
}

#[test]
fn leaf_corpus() {
    replay("leaf", fuzz_checks::leaf);
}

#[test]
fn narinfo_corpus() {
    replay("narinfo", fuzz_checks::narinfo);
}

#[test]
fn nix_keys_corpus() {
    replay("nix_keys", fuzz_checks::nix_keys);
}

#[test]
fn note_corpus() {
    replay("note", fuzz_checks::note);
}

#[test]
fn drv_corpus() {
    replay("drv", fuzz_checks::drv);
}

#[test]
fn tpm_corpus() {
    replay("tpm", fuzz_checks::tpm);
}

#[test]
fn registration_corpus() {
    replay("registration", fuzz_checks::registration);
}
