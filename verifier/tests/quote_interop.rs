//! `provenix quote verify` against quotes made by tpm2-tools on swtpm:
//! several PCR selections, ECC and RSA AKs, the AK as PEM and as
//! TPM2B_PUBLIC. tpm2_checkquote agrees on every valid one; a changed
//! nonce, a changed PCR value, another AK and unreadable files are refused
//! with their exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

use provenix_swtpm_tests::{Swtpm, Template};

fn verify(dir: &Path, ak: &str, nonce: &str, pcrs: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provenix"))
        .current_dir(dir)
        .args([
            "quote", "verify", "--ak", ak, "--msg", "q.msg", "--sig", "q.sig",
        ])
        .args(["--pcrs", pcrs, "--nonce", nonce])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn tpm2_quote_output_verifies_and_tampering_is_refused() {
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = |args: &[&str]| swtpm.tool(d, args).unwrap();
    t(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
    for pcr in ["1", "16", "23"] {
        t(&[
            "tpm2_pcrextend",
            &format!("{pcr}:sha256=01{}", "23".repeat(31)),
        ]);
    }
    for (alg, scheme) in [("ecc", "ecdsa"), ("rsa", "rsassa")] {
        t(&[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            alg,
            "-g",
            "sha256",
            "-s",
            scheme,
            "-u",
            "ak.pem",
            "-f",
            "pem",
            "-n",
            "ak.name",
        ]);
        t(&["tpm2_readpublic", "-c", "ak.ctx", "-o", "ak.tpm2b"]);
        for (i, selection) in [
            "sha256:0,1,2",
            "sha256:0,1,2,3,4,5,6,7,8,9,10,16,23",
            "sha256:16",
        ]
        .iter()
        .enumerate()
        {
            let nonce = format!("{:02x}{}", i, "ab".repeat(15));
            t(&[
                "tpm2_quote",
                "-c",
                "ak.ctx",
                "-l",
                selection,
                "-q",
                &nonce,
                "-m",
                "q.msg",
                "-s",
                "q.sig",
                "-o",
                "q.pcrs",
                "-g",
                "sha256",
            ]);
            // The reference verifier agrees.
            t(&[
                "tpm2_checkquote",
                "-u",
                "ak.pem",
                "-m",
                "q.msg",
                "-s",
                "q.sig",
                "-f",
                "q.pcrs",
                "-g",
                "sha256",
                "-q",
                &nonce,
            ]);
            for ak in ["ak.pem", "ak.tpm2b"] {
                let (code, out) = verify(d, ak, &nonce, "q.pcrs");
                assert_eq!(code, 0, "{alg} {selection} {ak}: {out}");
                assert!(out.contains("valid quote"), "{out}");
            }
            // Another nonce: invalid (1), the nonce named.
            let (code, out) = verify(d, "ak.pem", &"00".repeat(16), "q.pcrs");
            assert_eq!((code, out.contains("nonce")), (1, true), "{out}");
            // One PCR value changed: invalid, the digest named.
            let mut pcrs = std::fs::read(d.join("q.pcrs")).unwrap();
            let first_value = 132 + 4 + 4 + 2;
            pcrs[first_value] ^= 1;
            std::fs::write(d.join("q-changed.pcrs"), &pcrs).unwrap();
            let (code, out) = verify(d, "ak.pem", &nonce, "q-changed.pcrs");
            assert_eq!((code, out.contains("pcr digest")), (1, true), "{out}");
        }
        std::fs::rename(d.join("ak.pem"), d.join(format!("ak-{alg}.pem"))).unwrap();
    }
    // The last quote (RSA AK) checked against the ECC AK: invalid signature.
    let (code, out) = verify(d, "ak-ecc.pem", &format!("02{}", "ab".repeat(15)), "q.pcrs");
    assert_eq!((code, out.contains("signature")), (1, true), "{out}");
    // Unreadable inputs: 2.
    std::fs::write(d.join("junk"), b"not a key").unwrap();
    let nonce = format!("02{}", "ab".repeat(15));
    assert_eq!(verify(d, "junk", &nonce, "q.pcrs").0, 2);
    assert_eq!(verify(d, "ak-rsa.pem", &nonce, "junk").0, 2);
    assert_eq!(verify(d, "ak-rsa.pem", "not-hex", "q.pcrs").0, 2);
    assert_eq!(verify(d, "missing.pem", &nonce, "q.pcrs").0, 2);
    assert_eq!(verify(d, "ak-rsa.pem", &nonce, "q.pcrs").0, 0);
}
