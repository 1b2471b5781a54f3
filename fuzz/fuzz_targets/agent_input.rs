//! Fuzz target `agent_input`: the checks in agent/tests/support/fuzz_checks.rs.
#![no_main]

#[path = "../../agent/tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::agent_input(data));
