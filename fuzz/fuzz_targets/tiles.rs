//! Fuzz target `tiles`: the checks in protocol/tests/support/fuzz_checks.rs.
#![no_main]

#[path = "../../protocol/tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::tiles(data));
