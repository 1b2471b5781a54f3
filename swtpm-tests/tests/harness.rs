//! The harness itself: EK certificates present, tpm2-tools talks to our
//! swtpm, a reboot resets PCRs but keeps NV.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_swtpm_tests::{Swtpm, Template};

fn tpm2(tpm: &Swtpm, args: &[&str]) -> String {
    let out = tpm.tool(tpm.state_dir(), args).unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ek_certificates_are_in_nv_and_the_ca_files_exist() {
    let t = Template::shared(0).unwrap();
    assert!(t.root_ca_cert().is_file());
    assert!(t.issuer_cert().is_file());
    let tpm = Swtpm::start(t).unwrap();
    let list = tpm2(&tpm, &["tpm2_nvreadpublic"]);
    assert!(
        list.contains("0x1c00002"),
        "RSA EK cert index missing: {list}"
    );
    assert!(
        list.contains("0x1c00016"),
        "ECC P-384 EK cert index missing: {list}"
    );
}

#[test]
fn reboot_resets_pcrs_and_tpms_are_independent() {
    let t = Template::shared(0).unwrap();
    let mut a = Swtpm::start(t).unwrap();
    let b = Swtpm::start(t).unwrap();
    assert_ne!(a.tcti(), b.tcti());
    tpm2(
        &a,
        &[
            "tpm2_pcrextend",
            "14:sha256=0000000000000000000000000000000000000000000000000000000000000001",
        ],
    );
    let zero = "0x0000000000000000000000000000000000000000000000000000000000000000";
    assert!(!tpm2(&a, &["tpm2_pcrread", "sha256:14"]).contains(zero));
    assert!(
        tpm2(&b, &["tpm2_pcrread", "sha256:14"]).contains(zero),
        "TPMs share state"
    );
    a.reboot().unwrap();
    assert!(
        tpm2(&a, &["tpm2_pcrread", "sha256:14"]).contains(zero),
        "reboot kept PCR 14"
    );
}

#[test]
fn different_templates_have_different_eks() {
    let read_ek = |i| {
        let tpm = Swtpm::start(Template::shared(i).unwrap()).unwrap();
        let f = tpm.state_dir().join("ek.der");
        tpm2(
            &tpm,
            &["tpm2_nvread", "0x1c00002", "-o", f.to_str().unwrap()],
        );
        std::fs::read(f).unwrap()
    };
    assert_ne!(read_ek(0), read_ek(1));
}
