//! Replays the agent's fuzz corpus through the same checks as the fuzz
//! target, on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;
#[path = "../../protocol/tests/support/replay.rs"]
mod replay;

#[test]
fn agent_input_corpus() {
    replay::replay("agent_input", fuzz_checks::agent_input);
}
