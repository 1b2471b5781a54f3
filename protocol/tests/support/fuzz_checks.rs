//! The properties every fuzz target checks, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, nightly) and the stable corpus replay
//! (`protocol/tests/fuzz_corpora.rs`), so CI exercises the corpora even
//! without a nightly toolchain. A panic here is a finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use provenix_protocol::leaf::{LeafReader, Record};
use provenix_protocol::narinfo::NarInfo;
use provenix_protocol::nix_sig::{NixPublicKey, NixSecretKey, NixSignature};

/// Leaves: split the input at 0xff 0xff markers into leaves and feed them in
/// order; every decoded entry re-encodes to exactly the leaves it came from.
pub fn leaf(data: &[u8]) {
    let mut reader = LeafReader::new();
    let mut since_record: Vec<&[u8]> = Vec::new();
    for part in split_leaves(data) {
        since_record.push(part);
        match reader.push(part) {
            Ok(Some(Record::Entry(e))) => {
                let again: Vec<Vec<u8>> = e.to_leaves();
                let seen: Vec<Vec<u8>> = since_record.iter().map(|l| l.to_vec()).collect();
                assert_eq!(again, seen, "entry did not re-encode to its leaves");
                since_record.clear();
            }
            Ok(Some(_)) => since_record.clear(),
            Ok(None) => {}
            Err(_) => return,
        }
    }
    let _ = reader.finish();
}

fn split_leaves(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == [0xff, 0xff]) {
        out.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    out.push(rest);
    out
}

/// narinfo: whatever parses renders to text that parses to the same value.
pub fn narinfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(n) = NarInfo::parse(text) {
        let rendered = n.render();
        let again = NarInfo::parse(&rendered).expect("rendered narinfo must parse");
        let mut n = n;
        n.sigs.sort();
        n.sigs.dedup();
        assert_eq!(again, n);
        let _ = n.fingerprint();
    }
}

/// Nix key files and signatures: parse, print, parse again; verify never panics.
pub fn nix_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(k) = NixPublicKey::parse(text) {
        assert_eq!(NixPublicKey::parse(&k.to_string()).unwrap(), k);
        if let Ok(sig) = NixSignature::parse(text) {
            let _ = k.verify(text.as_bytes(), &sig);
        }
    }
    if let Ok(k) = NixSecretKey::parse(text) {
        let again = NixSecretKey::parse(&k.to_file_string()).unwrap();
        assert_eq!(again.public(), k.public());
    }
    if let Ok(s) = NixSignature::parse(text) {
        assert_eq!(NixSignature::parse(&s.to_string()).unwrap(), s);
    }
}
