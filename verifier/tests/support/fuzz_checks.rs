//! The checks behind the verifier's fuzz targets, shared by the fuzz
//! target (`fuzz/fuzz_targets/witness_request.rs`, nightly) and the stable
//! corpus replay (`verifier/tests/fuzz_corpora.rs`). A panic is a finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use provenix_protocol::encoding::base64_encode;
use provenix_protocol::note::{CosignerSigningKey, KeyName, NoteSigningKey};
use provenix_verifier::witness::{parse_request, AddError, Witness};

/// A witness following one log whose key nobody else has: requests from
/// the fuzzer are refused before any state is written.
fn witness() -> &'static Witness {
    static W: OnceLock<(Witness, tempfile::TempDir)> = OnceLock::new();
    &W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = CosignerSigningKey::new(
            KeyName::new("fuzz.witness").unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        );
        let log = NoteSigningKey::new(
            KeyName::new("provenix/fuzz").unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
        );
        let w = Witness::new(key, vec![log.verifier_key()], dir.path()).unwrap();
        (w, dir)
    })
    .0
}

/// An add-checkpoint body: what parses re-encodes to the same parts; the
/// witness answers with a refusal or a cosignature, never a panic, and
/// never a state error.
pub(crate) fn witness_request(data: &[u8]) {
    if let Ok((old, proof, rest)) = parse_request(data) {
        let mut again = format!("old {old}\n");
        for h in &proof {
            again.push_str(&base64_encode(&h.0));
            again.push('\n');
        }
        again.push('\n');
        let mut again = again.into_bytes();
        again.extend_from_slice(rest);
        let (o2, p2, r2) = parse_request(&again).unwrap();
        assert_eq!((o2, &p2, r2), (old, &proof, rest));
    }
    match witness().add_checkpoint(data, 0) {
        Ok(line) => assert!(line.starts_with("— fuzz.witness ")),
        Err(AddError::State(e)) => panic!("state error on input: {e}"),
        Err(_) => {}
    }
}
