//! The agent's TPM identity on swtpm, cross-checked with tpm2-tools and
//! openssl: EK certificates, EK keys matching their certificates, AK
//! attributes, and quotes that `tpm2_checkquote` accepts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::PcrSet;
use provenix_protocol::binding::batch_nonce;
use provenix_protocol::tpm::{verify_attest, AttestType, HashAlg, PcrValues, Public, Signature};
use provenix_protocol::{Counter, PcrIndex, Sha256Digest};
use provenix_swtpm_tests::{Swtpm, Template};

fn tool(tcti: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]).env("TSS2_LOG", "all+none");
    if let Some(t) = tcti {
        c.env("TPM2TOOLS_TCTI", t);
    }
    c.output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs it)", args[0]))
}

fn ok(out: std::process::Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn ek_certificates_match_nv_and_the_eks_we_create() {
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = swtpm.state_dir();
    let mut tpm = open(&swtpm);
    let certs = tpm.ek_certificates().unwrap();
    let kinds: Vec<EkKind> = certs.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![EkKind::Rsa2048, EkKind::EccP384],
        "swtpm provisions RSA and P-384"
    );
    for (kind, der) in &certs {
        let f = dir.join(format!("{kind:?}.der"));
        let idx = format!("{:#x}", kind.cert_nv_index());
        ok(
            tool(
                Some(&swtpm.tcti()),
                &["tpm2_nvread", &idx, "-o", f.to_str().unwrap()],
            ),
            "nvread",
        );
        assert_eq!(
            &std::fs::read(&f).unwrap(),
            der,
            "{kind:?}: certificate bytes differ"
        );
    }
    // The RSA EK we create has the certificate's modulus.
    let f = dir.join("Rsa2048.der");
    let m = ok(
        tool(
            None,
            &[
                "openssl",
                "x509",
                "-inform",
                "DER",
                "-in",
                f.to_str().unwrap(),
                "-noout",
                "-modulus",
            ],
        ),
        "openssl",
    );
    let modulus = String::from_utf8(m)
        .unwrap()
        .trim()
        .trim_start_matches("Modulus=")
        .to_lowercase();
    let public = tpm.ek_public(EkKind::Rsa2048).unwrap();
    assert_eq!(
        hex(&public[public.len() - 256..]),
        modulus,
        "RSA EK is not the certified key"
    );
    // The P-384 EK we create has the certificate's point.
    let f = dir.join("EccP384.der");
    let pem = dir.join("p384.pem");
    ok(
        tool(
            None,
            &[
                "openssl",
                "x509",
                "-inform",
                "DER",
                "-in",
                f.to_str().unwrap(),
                "-noout",
                "-pubkey",
                "-out",
                pem.to_str().unwrap(),
            ],
        ),
        "openssl",
    );
    let spki = ok(
        tool(
            None,
            &[
                "openssl",
                "pkey",
                "-pubin",
                "-in",
                pem.to_str().unwrap(),
                "-outform",
                "DER",
            ],
        ),
        "openssl",
    );
    let point = &spki[spki.len() - 97..];
    assert_eq!(point[0], 0x04);
    let public = tpm.ek_public(EkKind::EccP384).unwrap();
    let (x, y) = (&point[1..49], &point[49..]);
    let n = public.len();
    assert_eq!(
        &public[n - 48..],
        y,
        "P-384 EK y differs from the certificate"
    );
    assert_eq!(
        &public[n - 48 - 2 - 48..n - 48 - 2],
        x,
        "P-384 EK x differs from the certificate"
    );
}

fn write_tpm2b(path: &Path, bytes: &[u8]) {
    let mut v = (bytes.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    std::fs::write(path, v).unwrap();
}

#[test]
fn ak_quotes_verify_with_tpm2_checkquote() {
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = swtpm.state_dir();
    let mut tpm = open(&swtpm);
    let ak = tpm.create_ak(EkKind::Rsa2048).unwrap();
    // DESIGN.md: fixedTPM | fixedParent | sensitiveDataOrigin | restricted | sign, not decrypt.
    let akp = Public::from_bytes(&ak.public).unwrap();
    let a = akp.attributes;
    assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin());
    assert!(a.restricted() && a.sign() && !a.decrypt(), "{a:?}");
    assert!(
        akp.builder_id().is_ok(),
        "the AK's Name must be a SHA-256 Name (a BuilderId)"
    );
    tpm.persist_ak(EkKind::Rsa2048, &ak, DEFAULT_AK_HANDLE)
        .unwrap();
    let handle = tpm.ak_handle(DEFAULT_AK_HANDLE).unwrap();

    let set = PcrSet::default_seal_set();
    tpm.extend_pcr(PcrIndex::new(14).unwrap(), Sha256Digest::of(b"system").0)
        .unwrap();
    let root = provenix_protocol::merkle::root(&[provenix_protocol::merkle::leaf_hash(b"entry")]);
    let extra = batch_nonce(Counter(1), &Sha256Digest([0; 32]), &root).0;
    let q = tpm.quote(handle, &set, &extra).unwrap();
    // In process, with protocol::tpm (what the verifier uses): signature,
    // attest type, extraData, and the PCR digest of the values read now.
    let sig = Signature::from_bytes(&q.signature).unwrap();
    let att = verify_attest(&akp, &q.attest, &sig, AttestType::Quote).unwrap();
    assert_eq!(att.extra_data.as_bytes(), &extra);
    let mut vals = PcrValues::new();
    for (i, v) in set.indices().zip(tpm.read_pcrs(&set).unwrap()) {
        vals.insert(HashAlg::Sha256, i, &v).unwrap();
    }
    att.quote()
        .unwrap()
        .check_pcr_values(HashAlg::Sha256, &vals)
        .unwrap();
    let mut tampered = q.attest.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    assert!(matches!(
        verify_attest(&akp, &tampered, &sig, AttestType::Quote),
        Err(provenix_protocol::Error::TpmBadSignature)
    ));
    drop(tpm);

    let (akf, msg, sig, pcrs) = (
        dir.join("ak.pub"),
        dir.join("quote.msg"),
        dir.join("quote.sig"),
        dir.join("pcrs.bin"),
    );
    write_tpm2b(&akf, &ak.public);
    std::fs::write(&msg, &q.attest).unwrap();
    std::fs::write(&sig, &q.signature).unwrap();
    ok(
        tool(
            Some(&swtpm.tcti()),
            &[
                "tpm2_pcrread",
                "sha256:0,2,4,7,9,12,13,14",
                "-o",
                pcrs.to_str().unwrap(),
                "-F",
                "serialized",
            ],
        ),
        "pcrread",
    );
    let check = |q: &str| {
        tool(
            None,
            &[
                "tpm2_checkquote",
                "-u",
                akf.to_str().unwrap(),
                "-m",
                msg.to_str().unwrap(),
                "-s",
                sig.to_str().unwrap(),
                "-f",
                pcrs.to_str().unwrap(),
                "-F",
                "serialized",
                "-g",
                "sha256",
                "-q",
                q,
            ],
        )
    };
    ok(check(&hex(&extra)), "tpm2_checkquote must accept our quote");
    let mut wrong = extra;
    wrong[0] ^= 1;
    assert!(
        !check(&hex(&wrong)).status.success(),
        "tpm2_checkquote accepted the wrong qualifying data"
    );
}
