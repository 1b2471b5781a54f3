//! Fuzz target `prediction`: the checks in verifier/tests/support/fuzz_checks.rs.
#![no_main]

#[path = "../../verifier/tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::prediction(data));
