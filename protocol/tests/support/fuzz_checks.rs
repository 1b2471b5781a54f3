//! The properties every fuzz target checks, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, nightly) and the stable corpus replay
//! (`protocol/tests/fuzz_corpora.rs`), so CI exercises the corpora even
//! without a nightly toolchain. A panic here is a finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use provenix_protocol::leaf::{decode_bundle, encode_bundle, LeafReader, Record};
use provenix_protocol::narinfo::NarInfo;
use provenix_protocol::nix_sig::{NixPublicKey, NixSecretKey, NixSignature};

/// Entry bundles and leaves: split the input as a tlog-tiles entry bundle and
/// feed its leaves in order; the bundle re-encodes to the same bytes, and
/// every decoded entry re-encodes to exactly the leaves it came from.
pub(crate) fn leaf(data: &[u8]) {
    let Ok(leaves) = decode_bundle(data) else {
        return;
    };
    assert_eq!(encode_bundle(&leaves).unwrap(), data);
    let mut reader = LeafReader::new();
    let mut since_record: Vec<&[u8]> = Vec::new();
    for part in leaves {
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

/// narinfo: whatever parses renders to text that parses to the same value.
pub(crate) fn narinfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
pub(crate) fn nix_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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

/// Signed notes and checkpoints: whatever parses renders back to the same
/// bytes; a checkpoint body round-trips; key strings round-trip.
pub(crate) fn note(data: &[u8]) {
    use provenix_protocol::note::{Checkpoint, CosignerKey, Note, NoteVerifierKey};
    if let Ok(n) = Note::parse(data) {
        assert_eq!(
            n.render().as_bytes(),
            data,
            "note did not render to its bytes"
        );
        if let Ok(c) = Checkpoint::parse_body(n.text()) {
            assert_eq!(c.to_note_text().unwrap(), n.text());
        }
        let _ = n.verify(&[]);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = NoteVerifierKey::parse(text) {
        assert_eq!(
            NoteVerifierKey::parse(&k.to_string()).unwrap().to_string(),
            k.to_string()
        );
    }
    if let Ok(k) = CosignerKey::parse(text) {
        assert_eq!(
            CosignerKey::parse(&k.to_string()).unwrap().to_string(),
            k.to_string()
        );
    }
}

/// Derivations: whatever parses prints back to the same bytes, and hashing
/// it (with no input derivations available) never panics.
pub(crate) fn drv(data: &[u8]) {
    use provenix_protocol::drv::Derivation;
    if let Ok(d) = Derivation::parse(data) {
        assert_eq!(
            d.to_aterm().as_bytes(),
            data,
            "derivation did not print to its bytes"
        );
        let _ = d.hash_modulo("x", &mut |p| {
            Err(provenix_protocol::Error::MissingInputDerivation(
                p.to_string(),
            ))
        });
    }
}
