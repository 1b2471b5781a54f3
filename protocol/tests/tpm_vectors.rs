//! protocol::tpm against vectors made by real tools (swtpm + tpm2-tools,
//! `tests/vectors/tpm/make.sh`): every file parses and re-marshals to its
//! bytes, fields equal what the tools printed, signatures verify, Names and
//! qualified names match, PCR and policy digests recompute; and one-field
//! negative tests each expect one error kind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use provenix_protocol::encoding::hex_encode;
use provenix_protocol::tpm::{
    policy_pcr, policy_pcr_with_digest, verify_attest, Attest, AttestType, Digest, EccCurve,
    EccScheme, HashAlg, KeyedHashScheme, MadeCredential, Name, PcrSelectionList, PcrValues, Public,
    PublicKey, RsaScheme, Signature, SymAlg, SymMode,
};
use provenix_protocol::{BuilderId, Error, PcrIndex};

/// TPM_RH_ENDORSEMENT: the qualified name of the endorsement hierarchy.
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000b;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/tpm")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

/// The `key: value` lines of tpm2-tools' YAML output, keyed by their
/// dotted path (`clockInfo.clock`, `pcrs.sha256.14`). Enough for what
/// tpm2-tools prints; not a YAML parser.
fn yaml(name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in text(name).lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let mut key: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        let k = k.trim().to_string();
        key.push(&k);
        let full = key.join(".");
        let v = v.trim();
        if v.is_empty() {
            stack.push((indent, k.clone()));
        } else {
            out.insert(full, v.to_string());
        }
    }
    out
}

fn field<'a>(y: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    y.get(key)
        .unwrap_or_else(|| panic!("no {key} in {y:?}"))
        .as_str()
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim().trim_start_matches("0x");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// tpm2_print (5.4) writes firmwareVersion as the hex of the u64's bytes in
/// host (little-endian) order, not as a number: the marshalled value
/// 0x2019102300163636 shows as `3636160023101920`.
fn tpm2_print_u64(v: u64) -> String {
    hex_encode(&v.to_le_bytes())
}

fn hash_named(s: &str) -> HashAlg {
    match s {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        _ => panic!("bank {s}"),
    }
}

/// tpm2-tools' PCR list syntax, `sha1:0,1+sha256:0,4,14`.
fn selection(spec: &str) -> PcrSelectionList {
    let banks = spec
        .trim()
        .split('+')
        .map(|bank| {
            let (alg, pcrs) = bank.split_once(':').unwrap();
            let set: BTreeSet<PcrIndex> = pcrs
                .split(',')
                .map(|p| PcrIndex::new(p.parse().unwrap()).unwrap())
                .collect();
            provenix_protocol::tpm::PcrSelection::new(hash_named(alg), set)
        })
        .collect();
    PcrSelectionList::new(banks).unwrap()
}

fn public(name: &str) -> Public {
    let bytes = read(name);
    let p = Public::from_tpm2b_bytes(&bytes).unwrap();
    assert_eq!(p.to_tpm2b_bytes(), bytes, "{name} re-marshals");
    p
}

fn ek_qualified_name(ek: &Public) -> Name {
    Name::qualify(&Name::from_handle(TPM_RH_ENDORSEMENT), &ek.name().unwrap()).unwrap()
}

struct QuoteCase {
    quote: &'static str,
    ak: &'static str,
    ek: &'static str,
}

const QUOTES: [QuoteCase; 4] = [
    QuoteCase {
        quote: "quote_ecc",
        ak: "ak_ecc",
        ek: "ek_ecc256.pub",
    },
    QuoteCase {
        quote: "quote_ecc384",
        ak: "ak_ecc384",
        ek: "ek_ecc384.pub",
    },
    QuoteCase {
        quote: "quote_rsa",
        ak: "ak_rsa",
        ek: "ek_rsa.pub",
    },
    QuoteCase {
        quote: "quote_rsapss",
        ak: "ak_rsapss",
        ek: "ek_rsa.pub",
    },
];

#[test]
fn ak_names_and_qualified_names_match_tpm2_tools() {
    for c in QUOTES {
        let ak = public(&format!("{}.pub", c.ak));
        let name = ak.name().unwrap();
        assert_eq!(name.as_bytes(), read(&format!("{}.name", c.ak)), "{}", c.ak);
        let y = yaml(&format!("{}.yaml", c.ak));
        assert_eq!(name.to_hex(), field(&y, "loaded-key.name"));
        let ek = public(c.ek);
        let qn = Name::qualify(&ek_qualified_name(&ek), &name).unwrap();
        assert_eq!(
            qn.to_hex(),
            field(&y, "loaded-key.qualified name"),
            "{}",
            c.ak
        );
    }
    let y = yaml("ak_ecc.readpublic.yaml");
    assert_eq!(
        public("ak_ecc.pub").name().unwrap().to_hex(),
        field(&y, "name")
    );
}

#[test]
fn ak_builder_id_is_its_sha256_name() {
    let ak = public("ak_ecc.pub");
    let id = ak.builder_id().unwrap();
    let file: [u8; 34] = read("ak_ecc.name").try_into().unwrap();
    assert_eq!(id, BuilderId::from_bytes(file).unwrap());
    assert_eq!(ak.name().unwrap().to_builder_id().unwrap(), id);
    // The P-384 AK under the P-384 EK has a SHA-384 Name: no builder id.
    assert!(matches!(
        public("ak_ecc384.pub").builder_id(),
        Err(Error::TpmUnsupportedAlgorithm { alg: 0x000c, .. })
    ));
}

#[test]
fn ak_attributes_are_those_of_an_attestation_key() {
    for c in QUOTES {
        let a = public(&format!("{}.pub", c.ak)).attributes;
        assert!(
            a.fixed_tpm()
                && a.fixed_parent()
                && a.sensitive_data_origin()
                && a.restricted()
                && a.sign()
                && a.user_with_auth(),
            "{}: {a:?}",
            c.ak
        );
        assert!(!a.decrypt() && !a.admin_with_policy(), "{}: {a:?}", c.ak);
    }
    match public("ak_ecc.pub").key {
        PublicKey::Ecc { params, point } => {
            assert_eq!(params.curve, EccCurve::NistP256);
            assert_eq!(params.scheme, EccScheme::EcDsa(HashAlg::Sha256));
            let y = yaml("ak_ecc.readpublic.yaml");
            assert_eq!(point.x.to_hex(), field(&y, "x"));
            assert_eq!(point.y.to_hex(), field(&y, "y"));
        }
        other => panic!("{other:?}"),
    }
    match public("ak_rsapss.pub").key {
        PublicKey::Rsa { params, modulus } => {
            assert_eq!(params.scheme, RsaScheme::RsaPss(HashAlg::Sha256));
            assert_eq!(params.key_bits, 2048);
            assert_eq!(params.effective_exponent(), 65_537);
            assert_eq!(modulus.len(), 256);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ek_templates_are_read() {
    let rsa = public("ek_rsa.pub");
    assert_eq!(rsa.name_alg, HashAlg::Sha256);
    let a = rsa.attributes;
    assert!(a.restricted() && a.decrypt() && a.admin_with_policy() && !a.user_with_auth());
    // TCG EK Credential Profile PolicyA (PolicySecret(TPM_RH_ENDORSEMENT)).
    assert_eq!(
        rsa.auth_policy.to_hex(),
        "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa"
    );
    match &rsa.key {
        PublicKey::Rsa { params, modulus } => {
            let s = params.symmetric.unwrap();
            assert_eq!(
                (s.alg, s.key_bits, s.mode),
                (SymAlg::Aes, 128, SymMode::Cfb)
            );
            assert_eq!(params.key_bits, 2048);
            assert_eq!(modulus.len(), 256);
        }
        other => panic!("{other:?}"),
    }
    let ecc = public("ek_ecc384.pub");
    assert_eq!(ecc.name_alg, HashAlg::Sha384);
    assert!(ecc.attributes.user_with_auth() && ecc.attributes.decrypt());
    match &ecc.key {
        PublicKey::Ecc { params, point } => {
            assert_eq!(params.curve, EccCurve::NistP384);
            let s = params.symmetric.unwrap();
            assert_eq!(
                (s.alg, s.key_bits, s.mode),
                (SymAlg::Aes, 256, SymMode::Cfb)
            );
            assert_eq!((point.x.len(), point.y.len()), (48, 48));
        }
        other => panic!("{other:?}"),
    }
    match public("ek_ecc256.pub").key {
        PublicKey::Ecc { params, .. } => assert_eq!(params.curve, EccCurve::NistP256),
        other => panic!("{other:?}"),
    }
}

#[test]
fn quotes_parse_verify_and_match_tpm2_print() {
    for c in QUOTES {
        let q = c.quote;
        let attest_bytes = read(&format!("{q}.attest"));
        let sig_bytes = read(&format!("{q}.sig"));
        let ak = public(&format!("{}.pub", c.ak));
        let sig = Signature::from_bytes(&sig_bytes).unwrap();
        assert_eq!(sig.to_bytes(), sig_bytes, "{q}: signature re-marshals");
        let attest = verify_attest(&ak, &attest_bytes, &sig, AttestType::Quote)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(attest.to_bytes(), attest_bytes, "{q}: attest re-marshals");

        // Every field against tpm2_print.
        let y = yaml(&format!("{q}.attest.yaml"));
        assert_eq!(field(&y, "magic"), "ff544347");
        assert_eq!(field(&y, "type"), "8018");
        assert_eq!(
            attest.qualified_signer.to_hex(),
            field(&y, "qualifiedSigner")
        );
        assert_eq!(attest.extra_data.to_hex(), field(&y, "extraData"));
        let ci = attest.clock_info;
        assert_eq!(ci.clock.to_string(), field(&y, "clockInfo.clock"));
        assert_eq!(
            ci.reset_count.to_string(),
            field(&y, "clockInfo.resetCount")
        );
        assert_eq!(
            ci.restart_count.to_string(),
            field(&y, "clockInfo.restartCount")
        );
        assert_eq!(u8::from(ci.safe).to_string(), field(&y, "clockInfo.safe"));
        assert_eq!(
            tpm2_print_u64(attest.firmware_version),
            field(&y, "firmwareVersion")
        );
        let quote = attest.quote().unwrap();
        let sels = quote.pcr_select.selections();
        assert_eq!(
            sels.len().to_string(),
            field(&y, "attested.quote.pcrSelect.count")
        );
        for (i, s) in sels.iter().enumerate() {
            let base = format!("attested.quote.pcrSelect.pcrSelections.{i}");
            let hash = field(&y, &format!("{base}.hash"));
            assert!(hash.starts_with(&format!("{} ", s.hash().id())), "{hash}");
            assert_eq!(
                s.size_of_select().to_string(),
                field(&y, &format!("{base}.sizeofSelect"))
            );
            let bits = unhex(field(&y, &format!("{base}.pcrSelect")));
            let from_bits: BTreeSet<PcrIndex> = (0..24u8)
                .filter(|i| bits[usize::from(i / 8)] & (1 << (i % 8)) != 0)
                .map(|i| PcrIndex::new(i).unwrap())
                .collect();
            assert_eq!(s.to_set(), from_bits);
        }
        assert_eq!(
            quote.pcr_digest.to_hex(),
            field(&y, "attested.quote.pcrDigest")
        );
        // The selection is the one asked for.
        assert_eq!(
            quote.pcr_select,
            selection(&text(&format!("{q}.selection")))
        );
        // The AK's qualified name signed it.
        let ek = public(c.ek);
        assert_eq!(
            attest.qualified_signer,
            Name::qualify(&ek_qualified_name(&ek), &ak.name().unwrap()).unwrap()
        );

        // PCR values: the -o file, in selection order; tpm2-tools' own
        // listing agrees; the digest recomputes with the signing hash.
        let values =
            PcrValues::from_selection_order(&quote.pcr_select, &read(&format!("{q}.pcrs")))
                .unwrap();
        let qy = yaml(&format!("{q}.yaml"));
        for (bank, index, v) in values.iter() {
            let bank_name = match bank {
                HashAlg::Sha1 => "sha1",
                HashAlg::Sha256 => "sha256",
                other => panic!("{other:?}"),
            };
            assert_eq!(
                v.as_bytes(),
                unhex(field(&qy, &format!("pcrs.{bank_name}.{index}"))),
                "{q}: PCR {bank_name}:{index}"
            );
        }
        quote.check_pcr_values(sig.hash(), &values).unwrap();
        assert_eq!(quote.pcr_digest.to_hex(), field(&qy, "calcDigest"));
    }
}

#[test]
fn certify_of_k_verifies_and_names_k() {
    let bytes = read("certify_ecc.attest");
    let sig = Signature::from_bytes(&read("certify_ecc.sig")).unwrap();
    let ak = public("ak_ecc.pub");
    let attest = verify_attest(&ak, &bytes, &sig, AttestType::Certify).unwrap();
    assert_eq!(attest.to_bytes(), bytes);
    let y = yaml("certify_ecc.attest.yaml");
    assert_eq!(field(&y, "type"), "8017");
    assert_eq!(
        attest.qualified_signer.to_hex(),
        field(&y, "qualifiedSigner")
    );
    assert_eq!(attest.extra_data.to_hex(), "00ff55aa");
    assert_eq!(attest.extra_data.to_hex(), field(&y, "extraData"));
    assert_eq!(
        attest.clock_info.clock.to_string(),
        field(&y, "clockInfo.clock")
    );
    assert_eq!(
        tpm2_print_u64(attest.firmware_version),
        field(&y, "firmwareVersion")
    );

    let k = public("k.pub");
    let info = attest.certify().unwrap();
    assert_eq!(info.name, k.name().unwrap());
    assert_eq!(info.name.as_bytes(), read("k.name"));
    // K as DESIGN.md wants it: TPM-born HMAC key, use only by policy.
    let a = k.attributes;
    assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin() && a.sign());
    assert!(!a.user_with_auth() && !a.admin_with_policy() && !a.decrypt());
    assert!(matches!(
        k.key,
        PublicKey::KeyedHash {
            scheme: KeyedHashScheme::Hmac(HashAlg::Sha256),
            ..
        }
    ));
    assert_eq!(k.auth_policy.as_bytes(), read("policy_pcr.digest"));
    assert!(matches!(
        attest.quote(),
        Err(Error::TpmAttestTypeMismatch {
            expected: 0x8018,
            found: 0x8017
        })
    ));
}

#[test]
fn policy_pcr_equals_the_trial_session() {
    let sel = selection(&text("policy_pcr.selection"));
    let values = PcrValues::from_selection_order(&sel, &read("policy_pcr.pcrs")).unwrap();
    let y = yaml("policy_pcr.yaml");
    for (_, index, v) in values.iter() {
        assert_eq!(
            v.as_bytes(),
            unhex(field(&y, &format!("sha256.{index}"))),
            "PCR {index}"
        );
    }
    let expected = Digest::new(&read("policy_pcr.digest")).unwrap();
    assert_eq!(
        policy_pcr(HashAlg::Sha256, None, &sel, &values).unwrap(),
        expected
    );
    // The key-binding check of DESIGN.md: K.authPolicy from the binding
    // quote's own selection and pcrDigest (same PCRs, same boot).
    let quote = Attest::from_bytes(&read("quote_ecc.attest")).unwrap();
    let q = quote.quote().unwrap();
    assert_eq!(
        policy_pcr_with_digest(HashAlg::Sha256, None, &q.pcr_select, &q.pcr_digest).unwrap(),
        expected
    );
}

#[test]
fn tpm2_tools_credentials_parse() {
    let secret = read("credential.secret");
    assert_eq!(secret.len(), 16);
    for (file, digest, secret_len) in [
        ("credential_rsa.bin", 32, 256),
        ("credential_ecc384.bin", 48, 2 + 48 + 2 + 48),
    ] {
        let bytes = read(file);
        let made = MadeCredential::from_tpm2_tools_file(&bytes).unwrap();
        assert_eq!(made.to_tpm2_tools_file(), bytes, "{file} re-marshals");
        assert_eq!(
            made.credential_blob.integrity_hmac().len(),
            digest,
            "{file}"
        );
        assert_eq!(made.credential_blob.enc_identity().len(), 2 + secret.len());
        assert_eq!(made.secret.len(), secret_len, "{file}");
    }
    let ecc = MadeCredential::from_tpm2_tools_file(&read("credential_ecc384.bin")).unwrap();
    let point = provenix_protocol::tpm::EccPoint::from_bytes(ecc.secret.as_bytes()).unwrap();
    assert_eq!((point.x.len(), point.y.len()), (48, 48));
}

// ---- one-field negative tests: each expects one error kind ----

fn ecc_quote() -> (Public, Vec<u8>, Vec<u8>) {
    (
        public("ak_ecc.pub"),
        read("quote_ecc.attest"),
        read("quote_ecc.sig"),
    )
}

#[test]
fn flipped_signature_byte_is_a_bad_signature() {
    let (ak, attest, sig) = ecc_quote();
    // TPMT_SIGNATURE: sigAlg(2) hash(2) r.size(2) r... : flip inside r.
    let mut bad = sig.clone();
    bad[10] ^= 0x01;
    let bad = Signature::from_bytes(&bad).unwrap();
    assert!(matches!(
        verify_attest(&ak, &attest, &bad, AttestType::Quote),
        Err(Error::TpmBadSignature)
    ));
    for (q, ak) in [("quote_rsa", "ak_rsa"), ("quote_rsapss", "ak_rsapss")] {
        let mut bad = read(&format!("{q}.sig"));
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        let bad = Signature::from_bytes(&bad).unwrap();
        assert!(matches!(
            bad.verify(&public(&format!("{ak}.pub")), &read(&format!("{q}.attest"))),
            Err(Error::TpmBadSignature)
        ));
    }
}

#[test]
fn flipped_attest_byte_is_a_bad_signature() {
    let (ak, mut attest, sig) = ecc_quote();
    let last = attest.len() - 1; // inside pcrDigest
    attest[last] ^= 0x01;
    let sig = Signature::from_bytes(&sig).unwrap();
    assert!(matches!(
        verify_attest(&ak, &attest, &sig, AttestType::Quote),
        Err(Error::TpmBadSignature)
    ));
}

#[test]
fn wrong_key_or_scheme_is_a_scheme_mismatch() {
    let (_, attest, sig) = ecc_quote();
    let sig = Signature::from_bytes(&sig).unwrap();
    // An ECDSA signature under an RSA key.
    assert!(matches!(
        sig.verify(&public("ak_rsa.pub"), &attest),
        Err(Error::TpmSchemeMismatch { .. })
    ));
    // A SHA-256 ECDSA signature under a key fixed to ECDSA-SHA384.
    assert!(matches!(
        sig.verify(&public("ak_ecc384.pub"), &attest),
        Err(Error::TpmSchemeMismatch { .. })
    ));
    // An RSASSA signature under the RSA-PSS AK.
    let rsa_sig = Signature::from_bytes(&read("quote_rsa.sig")).unwrap();
    assert!(matches!(
        rsa_sig.verify(&public("ak_rsapss.pub"), &read("quote_rsa.attest")),
        Err(Error::TpmSchemeMismatch { .. })
    ));
}

#[test]
fn another_ak_of_the_same_kind_is_a_bad_signature() {
    // Two RSA AKs (RSASSA and RSA-PSS) differ in scheme; compare instead the
    // ECC quote against the P-256 EK's point dressed as a signing key.
    let (_, attest, sig) = ecc_quote();
    let sig = Signature::from_bytes(&sig).unwrap();
    let mut other = public("ak_ecc.pub");
    if let (
        PublicKey::Ecc { point, .. },
        PublicKey::Ecc {
            point: ek_point, ..
        },
    ) = (&mut other.key, public("ek_ecc256.pub").key)
    {
        *point = ek_point;
    }
    assert!(matches!(
        sig.verify(&other, &attest),
        Err(Error::TpmBadSignature)
    ));
}

#[test]
fn changed_magic_is_refused() {
    let (ak, mut attest, sig) = ecc_quote();
    attest[3] = 0x48;
    assert!(matches!(
        Attest::from_bytes(&attest),
        Err(Error::TpmBadMagic { found: 0xff54_4348 })
    ));
    // Verification fails first: nothing is parsed from unsigned bytes.
    let sig = Signature::from_bytes(&sig).unwrap();
    assert!(matches!(
        verify_attest(&ak, &attest, &sig, AttestType::Quote),
        Err(Error::TpmBadSignature)
    ));
}

#[test]
fn attest_type_mismatch_and_unknown_type() {
    let ak = public("ak_ecc.pub");
    let certify = read("certify_ecc.attest");
    let sig = Signature::from_bytes(&read("certify_ecc.sig")).unwrap();
    assert!(matches!(
        verify_attest(&ak, &certify, &sig, AttestType::Quote),
        Err(Error::TpmAttestTypeMismatch {
            expected: 0x8018,
            found: 0x8017
        })
    ));
    assert!(matches!(
        Attest::from_bytes_expecting(&read("quote_ecc.attest"), AttestType::Certify),
        Err(Error::TpmAttestTypeMismatch {
            expected: 0x8017,
            found: 0x8018
        })
    ));
    let mut audit = read("quote_ecc.attest");
    audit[4..6].copy_from_slice(&0x8015u16.to_be_bytes()); // TPM_ST_ATTEST_SESSION_AUDIT
    assert!(matches!(
        Attest::from_bytes(&audit),
        Err(Error::TpmUnsupportedAttestType { found: 0x8015 })
    ));
}

#[test]
fn trailing_and_truncated_are_refused() {
    for name in ["quote_ecc.attest", "certify_ecc.attest", "quote_rsa.attest"] {
        let mut b = read(name);
        b.push(0);
        assert!(
            matches!(
                Attest::from_bytes(&b),
                Err(Error::TrailingBytes { extra: 1, .. })
            ),
            "{name}"
        );
        b.truncate(b.len() - 2);
        assert!(
            matches!(Attest::from_bytes(&b), Err(Error::Truncated { .. })),
            "{name}"
        );
    }
    for name in ["quote_ecc.sig", "quote_rsa.sig", "quote_ecc384.sig"] {
        let mut b = read(name);
        b.push(0);
        assert!(matches!(
            Signature::from_bytes(&b),
            Err(Error::TrailingBytes { .. })
        ));
        b.truncate(b.len() - 2);
        assert!(matches!(
            Signature::from_bytes(&b),
            Err(Error::Truncated { .. })
        ));
    }
    for name in ["ak_ecc.pub", "ek_rsa.pub", "k.pub"] {
        let mut b = read(name);
        b.push(0);
        assert!(matches!(
            Public::from_tpm2b_bytes(&b),
            Err(Error::TrailingBytes { .. })
        ));
        // One byte inside the TPM2B past the TPMT_PUBLIC.
        let mut inner = read(name)[2..].to_vec();
        inner.push(0);
        let mut sized = u16::try_from(inner.len()).unwrap().to_be_bytes().to_vec();
        sized.extend_from_slice(&inner);
        assert!(matches!(
            Public::from_tpm2b_bytes(&sized),
            Err(Error::TrailingBytes { .. })
        ));
        b.truncate(b.len() - 2);
        assert!(matches!(
            Public::from_tpm2b_bytes(&b),
            Err(Error::Truncated { .. })
        ));
    }
    let mut cred = read("credential_rsa.bin");
    cred.push(0);
    assert!(matches!(
        MadeCredential::from_tpm2_tools_file(&cred),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn clock_safe_must_be_yes_or_no() {
    let mut b = read("quote_ecc.attest");
    // magic(4) type(2) signer(2+34) extraData(2+32) clock(8) reset(4) restart(4) safe
    let safe = 4 + 2 + 2 + 34 + 2 + 32 + 8 + 4 + 4;
    assert_eq!(b[safe], 1);
    b[safe] = 2;
    assert!(matches!(
        Attest::from_bytes(&b),
        Err(Error::InvalidValue {
            what: "TPMS_CLOCK_INFO safe",
            ..
        })
    ));
}

#[test]
fn changed_pcr_value_is_a_digest_mismatch() {
    let attest = Attest::from_bytes(&read("quote_ecc.attest")).unwrap();
    let q = attest.quote().unwrap();
    let mut pcrs = read("quote_ecc.pcrs");
    pcrs[0] ^= 1;
    let values = PcrValues::from_selection_order(&q.pcr_select, &pcrs).unwrap();
    assert!(matches!(
        q.check_pcr_values(HashAlg::Sha256, &values),
        Err(Error::TpmPcrDigestMismatch)
    ));
    // A missing value is its own kind.
    let only_some = PcrValues::from_selection_order(&selection("sha256:0"), &pcrs[..32]).unwrap();
    assert!(matches!(
        q.check_pcr_values(HashAlg::Sha256, &only_some),
        Err(Error::TpmMissingPcrValue {
            bank: 0x000b,
            index: 2
        })
    ));
}

#[test]
fn reserved_attribute_bit_is_refused() {
    let mut b = read("ak_ecc.pub");
    // size(2) type(2) nameAlg(2) objectAttributes(4): set reserved bit 0.
    b[9] |= 0x01;
    assert!(matches!(
        Public::from_tpm2b_bytes(&b),
        Err(Error::InvalidValue {
            what: "TPMA_OBJECT",
            ..
        })
    ));
    let mut b = read("ak_ecc.pub");
    b[2..4].copy_from_slice(&0x0025u16.wrapping_add(1).to_be_bytes()); // no such type
    assert!(matches!(
        Public::from_tpm2b_bytes(&b),
        Err(Error::TpmUnsupportedAlgorithm { alg: 0x0026, .. })
    ));
}

#[test]
fn tpm2_tools_serialized_pcr_files() {
    use provenix_protocol::tpm::PcrValues;
    let pcr = |i| PcrIndex::new(i).unwrap();
    let bytes = read("pcrread_serialized_sha256.bin");
    let (sel, values) = PcrValues::from_tpm2_tools_serialized(&bytes).unwrap();
    assert_eq!(
        sel.bank(HashAlg::Sha256).into_iter().collect::<Vec<_>>(),
        vec![pcr(0), pcr(1), pcr(2)]
    );
    assert_eq!(values.len(), 3);
    assert_eq!(
        provenix_protocol::encoding::hex_encode(
            values.get(HashAlg::Sha256, pcr(1)).unwrap().as_bytes()
        ),
        "5c85955f709283ecce2b74f1b1552918819f390911816e7bb466805a38ab87f3"
    );
    assert_eq!(
        values.get(HashAlg::Sha256, pcr(0)).unwrap().as_bytes(),
        &[0; 32]
    );

    let (sel, values) =
        PcrValues::from_tpm2_tools_serialized(&read("pcrread_serialized_two_banks.bin")).unwrap();
    assert_eq!(sel.banks().len(), 2);
    assert_eq!(
        values.get(HashAlg::Sha1, pcr(2)).unwrap().as_bytes(),
        &[0; 20]
    );
    assert!(values.get(HashAlg::Sha256, pcr(1)).is_some());

    // A byte more or less, a digest count beyond 8, a digest of the wrong
    // size for its bank, values missing: each refused.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        PcrValues::from_tpm2_tools_serialized(&longer),
        Err(Error::InvalidLength { .. })
    ));
    assert!(PcrValues::from_tpm2_tools_serialized(&bytes[..bytes.len() - 1]).is_err());
    let mut many = bytes.clone();
    many[136] = 9;
    assert!(matches!(
        PcrValues::from_tpm2_tools_serialized(&many),
        Err(Error::TooLarge { .. })
    ));
    let mut short_digest = bytes.clone();
    short_digest[140] = 0x1f;
    assert!(PcrValues::from_tpm2_tools_serialized(&short_digest).is_err());
    let mut fewer = bytes.clone();
    fewer[136] = 2;
    assert!(matches!(
        PcrValues::from_tpm2_tools_serialized(&fewer),
        Err(Error::InvalidLength { .. })
    ));
}
