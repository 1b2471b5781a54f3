//! Fuzz target `pe`: PE/COFF images, Authenticode and UKIs, the checks in
//! measured-boot/tests/support/fuzz_checks.rs.
#![no_main]

#[path = "../../measured-boot/tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::pe(data));
