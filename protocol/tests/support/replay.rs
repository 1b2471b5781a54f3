//! Replays a committed fuzz corpus (`fuzz/corpus/<target>/`) through a
//! check function on stable Rust. Shared by the protocol and measured-boot
//! corpus tests (each includes this file by path).
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>/` (at least three).
pub(crate) fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 3, "corpus {target} has only {n} inputs");
}
