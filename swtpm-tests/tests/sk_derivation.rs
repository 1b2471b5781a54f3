//! SK and LK derived inside the TPM (DESIGN.md "Keys and trust chain"), on swtpm:
//! the same boot state gives the same SK after a reboot; a different one
//! cannot derive it and says so; LK does not depend on the boot state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use provenix_agent::keys::{PcrSet, LK_LABEL, SK_LABEL};
use provenix_agent::AgentError;
use provenix_protocol::tpm::{
    policy_pcr, HashAlg, PcrSelection, PcrSelectionList, PcrValues, Public,
};
use provenix_swtpm_tests::{Swtpm, Template};

/// PolicyPCR computed in software by `protocol::tpm` (what a verifier does).
fn software_policy(set: &PcrSet, values: &[[u8; 32]]) -> [u8; 32] {
    let sel =
        PcrSelectionList::new(vec![PcrSelection::new(HashAlg::Sha256, set.indices())]).unwrap();
    let mut vals = PcrValues::new();
    for (i, v) in set.indices().zip(values) {
        vals.insert(HashAlg::Sha256, i, v).unwrap();
    }
    policy_pcr(HashAlg::Sha256, None, &sel, &vals)
        .unwrap()
        .as_bytes()
        .try_into()
        .unwrap()
}

#[test]
fn sk_survives_a_reboot_into_the_same_state_and_nothing_else() {
    let mut swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let set = PcrSet::default_seal_set();
    let (k, l, sk, lk) = {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system A");
        let values = tpm.read_pcrs(&set).unwrap();
        let trial = tpm.pcr_policy_digest(&set).unwrap();
        assert_eq!(
            trial,
            software_policy(&set, &values),
            "trial session != software PolicyPCR"
        );
        let k = tpm.create_derivation_key(Some(&set)).unwrap();
        // K's public area carries that policy as its authPolicy, and only a
        // policy session can use it (DESIGN.md: userWithAuth and
        // adminWithPolicy clear, sensitiveDataOrigin, fixedTPM).
        let kp = Public::from_bytes(&k.public).unwrap();
        assert_eq!(kp.auth_policy.as_bytes(), trial);
        let a = kp.attributes;
        assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin() && a.sign());
        assert!(!a.user_with_auth() && !a.admin_with_policy() && !a.decrypt());
        let l = tpm.create_derivation_key(None).unwrap();
        let sk = tpm.derive_key(&k, Some(&set), SK_LABEL).unwrap();
        assert_eq!(
            tpm.derive_key(&k, Some(&set), SK_LABEL).unwrap().to_bytes(),
            sk.to_bytes()
        );
        let lk = tpm.derive_key(&l, None, LK_LABEL).unwrap();
        assert_ne!(sk.to_bytes(), lk.to_bytes());
        (k, l, sk, lk)
    };

    // Reboot into the same measurements: the same SK comes back.
    swtpm.reboot().unwrap();
    {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system A");
        assert_eq!(
            tpm.derive_key(&k, Some(&set), SK_LABEL).unwrap().to_bytes(),
            sk.to_bytes()
        );
        assert_eq!(
            tpm.derive_key(&l, None, LK_LABEL).unwrap().to_bytes(),
            lk.to_bytes()
        );
    }

    // Reboot into a different system: SK cannot be derived, LK still can.
    swtpm.reboot().unwrap();
    let mut tpm = open(&swtpm);
    boot(&mut tpm, b"system B");
    match tpm.derive_key(&k, Some(&set), SK_LABEL) {
        Err(AgentError::Tpm { hint: Some(h), .. }) => {
            assert!(h.contains("bound to a different boot state"), "{h}")
        }
        other => panic!(
            "expected a policy failure, got {:?}",
            other.map(|k| k.to_bytes())
        ),
    }
    assert_eq!(
        tpm.derive_key(&l, None, LK_LABEL).unwrap().to_bytes(),
        lk.to_bytes()
    );
    // Without the policy session K refuses outright (userWithAuth is clear).
    assert!(matches!(
        tpm.derive_key(&k, None, SK_LABEL),
        Err(AgentError::Tpm { .. })
    ));
}

#[test]
fn another_tpm_cannot_use_the_blobs() {
    let a = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let b = Swtpm::start(Template::shared(1).unwrap()).unwrap();
    let l = open(&a).create_derivation_key(None).unwrap();
    assert!(matches!(
        open(&b).derive_key(&l, None, LK_LABEL),
        Err(AgentError::Tpm { .. })
    ));
}
