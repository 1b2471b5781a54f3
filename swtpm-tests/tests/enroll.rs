//! Enrollment on swtpm, appraised the way the verifier will (protocol::tpm
//! only), then reboots: the same boot state loads the same keys, another
//! cannot derive SK and says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use provenix_agent::enroll::{enroll, load_keys, ENROLLMENT_FILE};
use provenix_agent::state::StateDir;
use provenix_agent::AgentError;
use provenix_protocol::binding::key_binding_digest;
use provenix_protocol::enrollment::{EkKind, Enrollment, KeyBinding};
use provenix_protocol::tpm::{
    policy_pcr_with_digest, verify_attest, AttestType, HashAlg, Public, Signature,
};
use provenix_protocol::Error;
use provenix_swtpm_tests::{Swtpm, Template};

/// What the verifier checks of a key binding (DESIGN.md "Keys and trust chain").
fn appraise(swtpm: &Swtpm, ak_public: &[u8], b: &KeyBinding, sealed: bool) {
    let ak = &Public::from_bytes(ak_public).unwrap();
    let key = Public::from_bytes(&b.tpm_public).unwrap();
    let name = key.name().unwrap();
    let extra = key_binding_digest(&b.public_key, name.as_bytes()).0;
    let cert = verify_attest(
        ak,
        &b.certify_attest,
        &Signature::from_bytes(&b.certify_signature).unwrap(),
        AttestType::Certify,
    )
    .unwrap();
    assert_eq!(
        cert.certify().unwrap().name.as_bytes(),
        name.as_bytes(),
        "Certify names another key"
    );
    assert_eq!(cert.extra_data.as_bytes(), &extra);
    let quote = verify_attest(
        ak,
        &b.quote_attest,
        &Signature::from_bytes(&b.quote_signature).unwrap(),
        AttestType::Quote,
    )
    .unwrap();
    assert_eq!(quote.extra_data.as_bytes(), &extra);
    // The values read with the quote are the quoted ones.
    assert_eq!(
        provenix_protocol::Sha256Digest::of(&b.quote_pcr_values.concat()).as_bytes(),
        quote.quote().unwrap().pcr_digest.as_bytes(),
        "the binding's PCR values are not the quote's"
    );
    let a = key.attributes;
    assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin() && a.sign());
    assert!(!a.admin_with_policy());
    if sealed {
        // K.authPolicy = PolicyPCR digest of the binding quote's own PCRs.
        let q = quote.quote().unwrap();
        let expected =
            policy_pcr_with_digest(HashAlg::Sha256, None, &q.pcr_select, &q.pcr_digest).unwrap();
        assert_eq!(key.auth_policy.as_bytes(), expected.as_bytes());
        assert!(
            !a.user_with_auth(),
            "K must be usable only through its policy"
        );
    } else {
        assert!(key.auth_policy.as_bytes().is_empty() && a.user_with_auth());
    }
    // tpm2-tools agrees on the binding quote (PCRs unchanged since).
    checkquote(
        swtpm,
        ak_public,
        &b.quote_attest,
        &b.quote_signature,
        &extra,
    );
}

/// The record's log form: blob leaves then the tag-01 leaf, every leaf within
/// the tlog-tiles bound, read back by `LeafReader` to the same record; with
/// firmware-sized event logs (70 KB, two blobs) too; a changed blob byte is
/// refused.
fn log_leaves_round_trip(record: &Enrollment) {
    use provenix_protocol::leaf::{encode_bundle, LeafReader, Record, MAX_LEAF};
    let mut big = record.clone();
    big.firmware_event_log = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    for r in [record, &big] {
        let leaves = r.to_leaves().unwrap();
        assert!(leaves.iter().all(|l| l.len() <= MAX_LEAF));
        assert_eq!(leaves.last().unwrap()[0], 0x01);
        let mut reader = LeafReader::new();
        let mut got = None;
        for l in &leaves {
            got = reader.push(l).unwrap();
        }
        match got {
            Some(Record::Enrollment(back)) => assert_eq!(*back, *r),
            other => panic!("expected the enrollment, got {other:?}"),
        }
        // The seed of the `leaf` fuzz corpus ("enrollment") is this bundle.
        if let Some(dir) = std::env::var_os("PROVENIX_WRITE_LEAF_SEED") {
            std::fs::write(
                std::path::Path::new(&dir).join("enrollment"),
                encode_bundle(&leaves).unwrap(),
            )
            .unwrap();
        }
    }
    let mut leaves = big.to_leaves().unwrap();
    leaves[1][7] ^= 1;
    let mut reader = LeafReader::new();
    let results: Vec<_> = leaves.iter().map(|l| reader.push(l)).collect();
    assert!(matches!(
        results.last().unwrap(),
        Err(Error::InvalidValue {
            what: "enrollment leaf",
            ..
        })
    ));
}

#[test]
fn enroll_appraise_reboot_and_refuse_another_boot_state() {
    let t = Template::shared(0).unwrap();
    let mut swtpm = Swtpm::start(t).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let record = {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system A");
        enroll(&mut tpm, &enroll_options(), &state).unwrap()
    };
    // The record as stored decodes to what enroll returned, canonically.
    let bytes = state.read(ENROLLMENT_FILE).unwrap();
    assert_eq!(Enrollment::decode(&bytes).unwrap(), record);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Enrollment::decode(&trailing),
        Err(Error::TrailingBytes { .. })
    ));
    assert!(record.insecure_swtpm);
    assert_eq!(record.ek_kind, EkKind::Rsa2048);
    assert_eq!(record.seal_pcrs, vec![0, 2, 4, 7, 9, 12, 13, 14]);
    let ak = Public::from_bytes(&record.ak_public).unwrap();
    assert_eq!(record.builder_id().unwrap(), ak.builder_id().unwrap());
    appraise(&swtpm, &record.ak_public, &record.signing_key, true);
    appraise(&swtpm, &record.ak_public, &record.log_key, false);
    log_leaves_round_trip(&record);
    // Private blobs are 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.file("k.priv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Enrolling again into the same state directory is refused.
    assert!(matches!(
        enroll(&mut open(&swtpm), &enroll_options(), &state),
        Err(AgentError::AlreadyEnrolled(_))
    ));

    // Reboot into the same state: the same keys, checked against the record.
    swtpm.reboot().unwrap();
    {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system A");
        let keys = load_keys(&mut tpm, &state).unwrap();
        assert_eq!(
            keys.sk.verifying_key().to_bytes(),
            record.signing_key.public_key
        );
        assert_eq!(
            keys.lk.verifying_key().to_bytes(),
            record.log_key.public_key
        );
    }
    // Reboot into another system: SK refused with the operator's explanation.
    swtpm.reboot().unwrap();
    let mut tpm = open(&swtpm);
    boot(&mut tpm, b"system B (not enrolled)");
    match load_keys(&mut tpm, &state) {
        Err(e @ AgentError::Tpm { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("bound to a different boot state") && msg.contains("re-enroll"),
                "{msg}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("SK derived in another boot state"),
    }
}

#[test]
fn another_tpm_cannot_load_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let a = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    enroll(&mut open(&a), &enroll_options(), &state).unwrap();
    let b = Swtpm::start(Template::shared(1).unwrap()).unwrap();
    assert!(matches!(
        load_keys(&mut open(&b), &state),
        Err(AgentError::Tpm { .. })
    ));
}

#[test]
fn malformed_records_are_refused_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let s = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let good = enroll(&mut open(&s), &enroll_options(), &state).unwrap();
    let mut r = good.clone();
    r.ek_certificate.clear();
    assert!(matches!(
        r.encode(),
        Err(Error::InvalidValue {
            what: "EK certificate",
            ..
        })
    ));
    let mut r = good.clone();
    r.seal_pcrs = vec![14, 0];
    assert!(matches!(r.encode(), Err(Error::Unsorted { .. })));
    let mut r = good.clone();
    r.system_pcr = 15;
    assert!(matches!(
        r.encode(),
        Err(Error::InvalidValue {
            what: "system PCR",
            ..
        })
    ));
    let mut r = good.clone();
    r.signing_key.quote_attest[0] ^= 0xff;
    assert!(matches!(r.encode(), Err(Error::TpmBadMagic { .. })));
    let mut r = good.clone();
    r.signing_key.quote_pcr_values.pop();
    assert!(matches!(
        r.encode(),
        Err(Error::InvalidLength {
            what: "key binding quoted PCR values",
            ..
        })
    ));
    let mut r = good.clone();
    r.version = provenix_protocol::enrollment::ENROLLMENT_VERSION + 1;
    assert!(matches!(r.encode(), Err(Error::UnknownVersion { .. })));
}

#[test]
fn the_ek_chain_stored_in_nv_goes_into_the_record() {
    let t = Template::shared(0).unwrap();
    let s = Swtpm::start(t).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("issuer.der");
    let tool = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", s.tcti())
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs it)", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tool(&[
        "openssl",
        "x509",
        "-in",
        t.issuer_cert().to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let issuer = std::fs::read(&der).unwrap();
    let size = issuer.len().to_string();
    tool(&[
        "tpm2_nvdefine",
        "0x01c00100",
        "-C",
        "o",
        "-s",
        &size,
        "-a",
        "ownerwrite|ownerread|authread|authwrite",
    ]);
    tool(&[
        "tpm2_nvwrite",
        "0x01c00100",
        "-C",
        "o",
        "-i",
        der.to_str().unwrap(),
    ]);
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    let r = enroll(&mut open(&s), &enroll_options(), &state).unwrap();
    assert_eq!(r.ek_intermediates, vec![issuer]);
}

#[test]
fn rebind_after_an_upgrade_binds_a_new_sk_and_keeps_the_identity() {
    use provenix_agent::enroll::{rebind, REBINDING_FILE};
    use provenix_protocol::enrollment::KeyRebinding;
    let mut swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let record = {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system A");
        enroll(&mut tpm, &enroll_options(), &state).unwrap()
    };
    // In the enrolled state there is nothing to rebind.
    assert!(matches!(
        rebind(&mut open(&swtpm), &state, None, 1),
        Err(AgentError::Config(_))
    ));

    // Upgrade: boot system B. The old SK is refused; rebinding makes a new one.
    swtpm.reboot().unwrap();
    let new = {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system B");
        assert!(load_keys(&mut tpm, &state).is_err());
        let r = rebind(&mut tpm, &state, None, 2).unwrap();
        assert_eq!(
            KeyRebinding::decode(&state.read(REBINDING_FILE).unwrap()).unwrap(),
            r
        );
        {
            use provenix_protocol::leaf::{LeafReader, Record};
            let leaves = r.to_leaves().unwrap();
            assert_eq!(leaves.last().unwrap()[0], 0x02);
            let mut reader = LeafReader::new();
            let mut got = None;
            for l in &leaves {
                got = reader.push(l).unwrap();
            }
            assert!(matches!(got, Some(Record::KeyRebinding(b)) if *b == r));
        }
        let _ak = Public::from_bytes(&record.ak_public).unwrap();
        appraise(&swtpm, &record.ak_public, &r.signing_key, true);
        assert_ne!(r.signing_key.public_key, record.signing_key.public_key);
        let keys = load_keys(&mut tpm, &state).unwrap();
        assert_eq!(keys.sk.verifying_key().to_bytes(), r.signing_key.public_key);
        assert_eq!(keys.binding, r.signing_key);
        assert_eq!(
            keys.lk.verifying_key().to_bytes(),
            record.log_key.public_key,
            "LK is the builder's, unchanged"
        );
        r
    };
    // A reboot into B gives the new SK; into A it is refused now.
    swtpm.reboot().unwrap();
    {
        let mut tpm = open(&swtpm);
        boot(&mut tpm, b"system B");
        assert_eq!(
            load_keys(&mut tpm, &state)
                .unwrap()
                .sk
                .verifying_key()
                .to_bytes(),
            new.signing_key.public_key
        );
    }
    swtpm.reboot().unwrap();
    let mut tpm = open(&swtpm);
    boot(&mut tpm, b"system A");
    assert!(matches!(
        load_keys(&mut tpm, &state),
        Err(AgentError::Tpm { .. })
    ));
    // Another TPM cannot rebind this state.
    let other = Swtpm::start(Template::shared(1).unwrap()).unwrap();
    assert!(matches!(
        rebind(&mut open(&other), &state, None, 3),
        Err(AgentError::Tpm { .. } | AgentError::KeyMismatch { .. })
    ));
}
