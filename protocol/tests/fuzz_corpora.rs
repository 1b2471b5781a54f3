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
#[path = "support/replay.rs"]
mod replay;

use replay::replay;

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

#[test]
fn tiles_corpus() {
    replay("tiles", fuzz_checks::tiles);
}
