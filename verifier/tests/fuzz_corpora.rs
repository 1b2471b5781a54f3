//! Replays the verifier's fuzz corpus through the same checks as the fuzz
//! target, on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;
#[path = "../../protocol/tests/support/replay.rs"]
mod replay;

#[test]
fn witness_request_corpus() {
    replay::replay("witness_request", fuzz_checks::witness_request);
}

#[test]
fn prediction_corpus() {
    replay::replay("prediction", fuzz_checks::prediction);
}

#[test]
fn appraiser_state_corpus() {
    replay::replay("appraiser_state", fuzz_checks::appraiser_state);
}
