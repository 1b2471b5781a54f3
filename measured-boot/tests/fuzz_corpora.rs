//! Replays the committed `eventlog` fuzz corpus (`fuzz/corpus/eventlog/`)
//! through the same checks the fuzz target runs, on stable Rust.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

#[test]
fn eventlog_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/eventlog");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        fuzz_checks::eventlog(&data);
        n += 1;
    }
    assert!(n >= 3, "corpus eventlog has only {n} inputs");
}
