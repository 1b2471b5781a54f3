//! The batch counter across reboots, and TPM2_Certify of the derivation keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use provenix_agent::counter::{
    check_counter, CounterCheck, DEFAULT_COUNTER_INDEX, DEFAULT_ORDERLY_JUMP,
};
use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::{PcrSet, SK_LABEL};
use provenix_protocol::binding::key_binding_digest;
use provenix_protocol::tpm::{verify_attest, AttestType, Public, Signature};
use provenix_protocol::{Counter, Sha256Digest};
use provenix_swtpm_tests::{Swtpm, Template};

#[test]
fn counter_strictly_increases_across_reboots_and_rollback_is_detected() {
    let mut swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let mut seen = Vec::new();
    {
        let mut tpm = open(&swtpm);
        tpm.define_counter(DEFAULT_COUNTER_INDEX).unwrap();
        seen.push(tpm.read_counter(DEFAULT_COUNTER_INDEX).unwrap());
        for _ in 0..3 {
            seen.push(tpm.increment_counter(DEFAULT_COUNTER_INDEX).unwrap());
        }
    }
    // An unclean power cycle (swtpm killed without TPM2_Shutdown), twice.
    for _ in 0..2 {
        swtpm.reboot().unwrap();
        let mut tpm = open(&swtpm);
        let now = tpm.read_counter(DEFAULT_COUNTER_INDEX).unwrap();
        let last = *seen.last().unwrap();
        assert!(
            now >= last,
            "counter went back across a reboot: {now:?} < {last:?}"
        );
        assert_eq!(
            check_counter(now, Some(last), DEFAULT_ORDERLY_JUMP),
            CounterCheck::Consistent
        );
        seen.push(tpm.increment_counter(DEFAULT_COUNTER_INDEX).unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // A log restored from an old copy remembers an older counter.
    let mut tpm = open(&swtpm);
    for _ in 0..300 {
        tpm.increment_counter(DEFAULT_COUNTER_INDEX).unwrap();
    }
    let now = tpm.read_counter(DEFAULT_COUNTER_INDEX).unwrap();
    assert!(matches!(
        check_counter(now, Some(seen[1]), DEFAULT_ORDERLY_JUMP),
        CounterCheck::LogRolledBack { .. }
    ));
    // A log from a TPM that counted further: this is another (or a cleared) TPM.
    assert!(matches!(
        check_counter(now, Some(Counter(now.0 + 1)), DEFAULT_ORDERLY_JUMP),
        CounterCheck::TpmBehindLog { .. }
    ));
}

#[test]
fn certify_names_the_key_it_certifies() {
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let mut tpm = open(&swtpm);
    let ak = tpm.create_ak(EkKind::Rsa2048).unwrap();
    tpm.persist_ak(EkKind::Rsa2048, &ak, DEFAULT_AK_HANDLE)
        .unwrap();
    let handle = tpm.ak_handle(DEFAULT_AK_HANDLE).unwrap();
    let set = PcrSet::default_seal_set();
    let k = tpm.create_derivation_key(Some(&set)).unwrap();
    let sk = tpm.derive_key(&k, Some(&set), SK_LABEL).unwrap();
    let mut k_name = vec![0x00, 0x0b];
    k_name.extend_from_slice(&Sha256Digest::of(&k.public).0);
    let extra = key_binding_digest(sk.verifying_key().as_bytes(), &k_name).0;
    let att = tpm.certify(&k, handle, &extra).unwrap();
    // Verified in process: certify type, certified Name = 0x000b || SHA-256(K's
    // TPMT_PUBLIC) = what protocol::tpm computes, extraData = the key binding.
    let akp = Public::from_bytes(&ak.public).unwrap();
    let sig = Signature::from_bytes(&att.signature).unwrap();
    let a = verify_attest(&akp, &att.attest, &sig, AttestType::Certify).unwrap();
    assert_eq!(a.certify().unwrap().name.as_bytes(), k_name.as_slice());
    let k_public = Public::from_bytes(&k.public).unwrap();
    assert_eq!(k_public.name().unwrap().as_bytes(), k_name.as_slice());
    assert_eq!(a.extra_data.as_bytes(), &extra);
    // A certification is not a quote.
    assert!(matches!(
        verify_attest(&akp, &att.attest, &sig, AttestType::Quote),
        Err(provenix_protocol::Error::TpmAttestTypeMismatch { .. })
    ));
}
