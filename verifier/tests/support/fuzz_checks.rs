//! The checks behind the verifier's fuzz targets, shared by the fuzz
//! targets (`fuzz/fuzz_targets/{witness_request, prediction,
//! appraiser_state}.rs`, nightly) and the stable corpus replay
//! (`verifier/tests/fuzz_corpora.rs`). A panic is a finding.
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

/// A prediction file (`provenix predict --json`): what parses describes a
/// boot that it matches; comparing it with another boot never panics.
pub(crate) fn prediction(data: &[u8]) {
    use provenix_verifier::appraise::{Boot, BootEvent};
    use provenix_verifier::reference::ApprovedSystem;
    let Ok(p) = ApprovedSystem::parse(data, "fuzz") else {
        return;
    };
    let own = Boot {
        what: "fuzz".into(),
        pcrs: p.pcrs.clone(),
        events: p
            .events
            .iter()
            .map(|e| BootEvent {
                pcr: e.pcr,
                sha256: Some(e.sha256),
                kind: e.description.clone(),
            })
            .collect(),
        system: p.system.map(|(_, d)| d),
    };
    assert_eq!(
        p.mismatch(&own, &[]),
        None,
        "a prediction matches its own boot"
    );
    let mut other = own.clone();
    other
        .pcrs
        .insert(23, provenix_protocol::Sha256Digest([1; 32]));
    for pcr in other.pcrs.values_mut() {
        pcr.0[0] ^= 1;
    }
    let _ = p.mismatch(&other, &[0, 2, 7]);
}

/// A saved appraisal (the verifier's state directory): what loads saves
/// again to a state that loads to the same checkpoint.
pub(crate) fn appraiser_state(data: &[u8]) {
    use provenix_verifier::appraise::Appraiser;
    let Ok(a) = Appraiser::from_json(data, "fuzz") else {
        return;
    };
    let json = a.to_json().unwrap();
    let b = Appraiser::from_json(json.as_bytes(), "again").unwrap();
    assert_eq!(a.seen(), b.seen());
    assert_eq!(b.to_json().unwrap(), json);
}
