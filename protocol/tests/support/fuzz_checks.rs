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
/// every decoded record (entry, enrollment, rebinding) re-encodes to exactly
/// the leaves it came from.
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
            Ok(Some(Record::Enrollment(r))) => {
                let seen: Vec<Vec<u8>> = since_record.iter().map(|l| l.to_vec()).collect();
                assert_eq!(r.to_leaves().unwrap(), seen, "enrollment did not re-encode");
                since_record.clear();
            }
            Ok(Some(Record::KeyRebinding(r))) => {
                let seen: Vec<Vec<u8>> = since_record.iter().map(|l| l.to_vec()).collect();
                assert_eq!(r.to_leaves().unwrap(), seen, "rebinding did not re-encode");
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

/// TPM structures (protocol::tpm): whatever parses as a TPMS_ATTEST,
/// TPM2B_ATTEST, TPMT_PUBLIC, TPM2B_PUBLIC, TPMT_SIGNATURE,
/// TPML_PCR_SELECTION, TPM2B_ID_OBJECT, tpm2-tools credential file,
/// credential challenge or answer marshals back to exactly its bytes;
/// opening a parsed credential blob never panics. Then the input read as
/// `u16 n || TPMT_PUBLIC (n bytes) || u16 m || TPMT_SIGNATURE (m bytes) ||
/// message`: verifying never panics.
pub(crate) fn tpm(data: &[u8]) {
    // Enrollment records and EK chains (what the agent stores and reads from NV).
    if let Ok(e) = provenix_protocol::enrollment::Enrollment::decode(data) {
        assert_eq!(
            e.encode().unwrap(),
            data,
            "enrollment did not re-encode to its bytes"
        );
    }
    if let Ok(r) = provenix_protocol::enrollment::KeyRebinding::decode(data) {
        assert_eq!(
            r.encode().unwrap(),
            data,
            "rebinding did not re-encode to its bytes"
        );
    }
    if let Ok(certs) = provenix_protocol::enrollment::split_der_certificates(data) {
        assert!(data.starts_with(&certs.concat()));
    }
    use provenix_protocol::tpm::credential::{unprotect_credential, StorageParams};
    use provenix_protocol::tpm::{
        Attest, CredentialAnswer, CredentialChallenge, HashAlg, IdObject, MadeCredential, Name,
        PcrSelectionList, Public, Signature,
    };
    if let Ok(a) = Attest::from_bytes(data) {
        assert_eq!(a.to_bytes(), data, "TPMS_ATTEST did not re-marshal");
        let _ = a.quote();
        let _ = a.certify();
    }
    if let Ok(a) = Attest::from_tpm2b_bytes(data) {
        assert_eq!(&data[2..], a.to_bytes(), "TPM2B_ATTEST did not re-marshal");
    }
    if let Ok(p) = Public::from_bytes(data) {
        assert_eq!(p.to_bytes(), data, "TPMT_PUBLIC did not re-marshal");
        let _ = p.name();
        let _ = p.builder_id();
    }
    if let Ok(p) = Public::from_tpm2b_bytes(data) {
        assert_eq!(p.to_tpm2b_bytes(), data, "TPM2B_PUBLIC did not re-marshal");
    }
    if let Ok(s) = Signature::from_bytes(data) {
        assert_eq!(s.to_bytes(), data, "TPMT_SIGNATURE did not re-marshal");
    }
    if let Ok((sel, values)) = provenix_protocol::tpm::PcrValues::from_tpm2_tools_serialized(data) {
        assert_eq!(values.len(), sel.selected().count());
        assert!(sel.concat_values(&values).is_ok());
    }
    if let Ok(l) = PcrSelectionList::from_bytes(data) {
        assert_eq!(l.to_bytes(), data, "TPML_PCR_SELECTION did not re-marshal");
        assert_eq!(
            PcrSelectionList::from_banks(&l.banks()).unwrap().banks(),
            l.banks()
        );
    }
    if let Ok(id) = IdObject::from_tpm2b_bytes(data) {
        assert_eq!(
            id.to_tpm2b_bytes(),
            data,
            "TPM2B_ID_OBJECT did not re-marshal"
        );
        for aes_bits in [128, 256] {
            let params = StorageParams {
                name_alg: HashAlg::Sha256,
                aes_bits,
            };
            let _ = unprotect_credential(params, b"seed", &Name::default(), &id);
        }
    }
    if let Ok(m) = MadeCredential::from_tpm2_tools_file(data) {
        assert_eq!(
            m.to_tpm2_tools_file(),
            data,
            "credential file did not re-marshal"
        );
    }
    if let Ok(c) = CredentialChallenge::from_bytes(data) {
        assert_eq!(c.to_bytes(), data, "credential challenge did not re-encode");
    }
    if let Ok(a) = CredentialAnswer::from_bytes(data) {
        assert_eq!(a.to_bytes(), data, "credential answer did not re-encode");
    }
    // u16 n || key || u16 m || signature || message
    let split = |d: &[u8]| -> Option<(usize, usize)> {
        let n = usize::from(u16::from_be_bytes([*d.first()?, *d.get(1)?]));
        Some((n, 2 + n))
    };
    let Some((n, after_key)) = split(data) else {
        return;
    };
    let (Some(key), Some(rest)) = (data.get(2..2 + n), data.get(after_key..)) else {
        return;
    };
    let Some((m, after_sig)) = split(rest) else {
        return;
    };
    let (Some(sig), Some(message)) = (rest.get(2..2 + m), rest.get(after_sig..)) else {
        return;
    };
    if let (Ok(key), Ok(sig)) = (Public::from_bytes(key), Signature::from_bytes(sig)) {
        let _ = sig.verify(&key, message);
    }
}

/// Store registrations (`nix-store --dump-db`): whatever parses renders to
/// text that parses to the same value; closures never panic.
pub(crate) fn registration(data: &[u8]) {
    use provenix_protocol::registration::{closure, parse_registration, render_registration};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(regs) = parse_registration(text) {
        let again = parse_registration(&render_registration(&regs))
            .expect("rendered registration must parse");
        assert_eq!(again, regs);
        if let Some(first) = regs.first() {
            let _ = closure(&regs, &first.path);
        }
    }
}

/// Tile paths and hash tiles: a path that parses prints back to itself;
/// tile bytes that parse re-encode to themselves.
pub(crate) fn tiles(data: &[u8]) {
    use provenix_protocol::tiles::{parse_tile, tile_bytes, TileId};
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = TileId::parse(text) {
            assert_eq!(id.path(), text);
            assert!(id.width >= 1 && id.width <= 256);
        }
    }
    if let Ok(hashes) = parse_tile(data) {
        assert_eq!(tile_bytes(&hashes), data);
    }
}
