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
#[path = "../../protocol/tests/support/replay.rs"]
mod replay;

use replay::replay;

use std::path::Path;

#[test]
fn eventlog_corpus() {
    replay("eventlog", fuzz_checks::eventlog);
}

#[test]
fn cel_corpus() {
    replay("cel", fuzz_checks::cel);
}

#[test]
fn pe_corpus() {
    replay("pe", fuzz_checks::pe);
}

/// The hand-made seeds of the `cel` and `pe` corpora are what their names
/// say: `bad-*` seeds are refused, the others accepted.
#[test]
fn cel_and_pe_seeds_are_what_they_say() {
    use provenix_measured_boot::predict::{ClosureManifest, Uki};
    use provenix_measured_boot::{CelLog, PeImage};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
    for ok in [
        "cel/empty",
        "cel/systemd-phase",
        "cel/provenix-system",
        "cel/two-records-numbered",
        "cel/other-content-type",
    ] {
        CelLog::parse(&read(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["cel/bad-no-line-feed", "cel/bad-duplicate-key"] {
        assert!(CelLog::parse(&read(bad)).is_err(), "{bad}");
    }
    for m in ["cel/manifest-nix-2.8", "cel/manifest-object-form"] {
        let m = ClosureManifest::parse(&read(m)).unwrap();
        assert_eq!(m.entries().len(), 2);
    }
    for ok in [
        "pe/minimal-no-sections",
        "pe/sections-and-certificates",
        "pe/pe32",
    ] {
        PeImage::parse(&read(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for uki in ["pe/uki-systemd-252", "pe/uki-systemd-257"] {
        Uki::parse(&read(uki), None).unwrap_or_else(|e| panic!("{uki}: {e}"));
    }
    for bad in ["pe/bad-magic", "pe/bad-truncated"] {
        assert!(PeImage::parse(&read(bad)).is_err(), "{bad}");
    }
}
