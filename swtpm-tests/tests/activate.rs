//! Credential activation (DESIGN.md "Keys and trust chain": mandatory):
//! the verifier's software TPM2_MakeCredential (protocol::tpm) against the
//! agent's TPM2_ActivateCredential on swtpm, for RSA and P-384 EKs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use provenix_agent::enroll::{enroll, EnrollOptions};
use provenix_agent::identity::DEFAULT_AK_HANDLE;
use provenix_agent::state::StateDir;
use provenix_agent::AgentError;
use provenix_protocol::enrollment::{EkKind, Enrollment};
use provenix_protocol::tpm::{make_credential, CredentialChallenge, Digest, Public};
use provenix_swtpm_tests::{Swtpm, Template};
use rand_core::{OsRng, RngCore};

fn enrolled(template: usize, kind: EkKind) -> (Swtpm, tempfile::TempDir, Enrollment) {
    let s = Swtpm::start(Template::shared(template).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = EnrollOptions {
        ek_kind: Some(kind),
        now: 0,
        ..enroll_options()
    };
    let r = enroll(&mut open(&s), &opts, &StateDir::open(dir.path()).unwrap()).unwrap();
    (s, dir, r)
}

/// What the verifier does: a challenge for the enrolled EK and AK.
fn challenge_for(ek_public: &[u8], ak_public: &[u8]) -> (CredentialChallenge, Vec<u8>) {
    let ek = Public::from_bytes(ek_public).unwrap();
    let ak_name = Public::from_bytes(ak_public).unwrap().name().unwrap();
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let made = make_credential(&ek, &ak_name, &Digest::new(&secret).unwrap(), &mut OsRng).unwrap();
    let c = CredentialChallenge::new(ak_name, made);
    // Through its wire form, as it travels between the two.
    (
        CredentialChallenge::from_bytes(&c.to_bytes()).unwrap(),
        secret.to_vec(),
    )
}

#[test]
fn activation_round_trip_for_rsa_and_p384_eks() {
    for kind in [EkKind::Rsa2048, EkKind::EccP384] {
        let (s, _dir, r) = enrolled(0, kind);
        assert_eq!(r.ek_kind, kind);
        let (c, secret) = challenge_for(&r.ek_public, &r.ak_public);
        let got = open(&s)
            .activate_credential(kind, DEFAULT_AK_HANDLE, &c)
            .unwrap();
        assert_eq!(got, secret, "{kind:?}: the TPM recovered another secret");
    }
}

#[test]
fn a_challenge_for_another_tpm_fails() {
    let (a, _da, ra) = enrolled(0, EkKind::Rsa2048);
    let (b, _db, rb) = enrolled(1, EkKind::Rsa2048);
    // Made for B's EK (with A's AK name): A cannot recover it.
    let (c, _) = challenge_for(&rb.ek_public, &ra.ak_public);
    assert!(matches!(
        open(&a).activate_credential(EkKind::Rsa2048, DEFAULT_AK_HANDLE, &c),
        Err(AgentError::Tpm { .. })
    ));
    // Made for B's EK and B's AK: B recovers it; A still cannot.
    let (c, secret) = challenge_for(&rb.ek_public, &rb.ak_public);
    assert!(open(&a)
        .activate_credential(EkKind::Rsa2048, DEFAULT_AK_HANDLE, &c)
        .is_err());
    assert_eq!(
        open(&b)
            .activate_credential(EkKind::Rsa2048, DEFAULT_AK_HANDLE, &c)
            .unwrap(),
        secret
    );
}
