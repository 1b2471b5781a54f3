//! `provenix-agent` on its own swtpm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_swtpm_tests::{Swtpm, Template};

#[test]
fn cli_info_on_swtpm() {
    let tpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_provenix-agent");
    let out = std::process::Command::new(bin)
        .args(["--tcti", &tpm.tcti(), "info", "--json"])
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "swtpm must be refused without the flag"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-allow-swtpm"));
    let out = std::process::Command::new(bin)
        .args([
            "--tcti",
            &tpm.tcti(),
            "--insecure-allow-swtpm",
            "info",
            "--json",
        ])
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["software"], true);
}

#[test]
fn cli_enroll_keys_and_activate_by_files() {
    use provenix_protocol::enrollment::Enrollment;
    use provenix_protocol::tpm::{
        make_credential, CredentialAnswer, CredentialChallenge, Digest, Public,
    };
    use rand_core::{OsRng, RngCore};

    let tpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_provenix-agent"))
            .args(["--tcti", &tpm.tcti(), "--insecure-allow-swtpm"])
            .args(args)
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap()
    };
    let s = state.to_str().unwrap();
    let out = run(&["enroll", "--state-dir", s, "--no-event-log"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("builder (AK name)"));
    let out = run(&["keys", "--json", "--state-dir", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = Enrollment::decode(&std::fs::read(state.join("enrollment.bin")).unwrap()).unwrap();
    assert_eq!(keys["builder"], record.builder_id().unwrap().to_hex());

    // The auditor's side: a challenge for the enrolled EK and AK, by file.
    let ek = Public::from_bytes(&record.ek_public).unwrap();
    let ak_name = Public::from_bytes(&record.ak_public)
        .unwrap()
        .name()
        .unwrap();
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let made = make_credential(&ek, &ak_name, &Digest::new(&secret).unwrap(), &mut OsRng).unwrap();
    let challenge = dir.path().join("challenge.bin");
    std::fs::write(
        &challenge,
        CredentialChallenge::new(ak_name, made).to_bytes(),
    )
    .unwrap();
    let answer = dir.path().join("answer.bin");
    let out = run(&[
        "activate",
        "--state-dir",
        s,
        "--challenge",
        challenge.to_str().unwrap(),
        "--answer-out",
        answer.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = CredentialAnswer::from_bytes(&std::fs::read(&answer).unwrap()).unwrap();
    assert!(a.matches(&Digest::new(&secret).unwrap()));

    // Enrolling twice into one state directory: refused, exit 2.
    let out = run(&["enroll", "--state-dir", s, "--no-event-log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds an enrollment"));
}

#[test]
fn configuration_file_env_and_flags_in_that_order() {
    let tpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("agent.toml");
    std::fs::write(
        &conf,
        format!("tcti = \"{}\"\ninsecure_allow_swtpm = true\n", tpm.tcti()),
    )
    .unwrap();
    let run = |args: &[&str], env_tcti: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_provenix-agent"));
        c.arg("--config")
            .arg(&conf)
            .args(args)
            .env("TSS2_LOG", "all+none")
            .env_remove("PROVENIX_TCTI");
        if let Some(t) = env_tcti {
            c.env("PROVENIX_TCTI", t);
        }
        c.output().unwrap()
    };
    // The file alone is enough.
    let out = run(&["info", "--json"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The environment beats the file.
    let out = run(&["info"], Some("nonsense-tcti:x"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonsense-tcti"));
    // A flag beats the environment.
    let out = run(&["--tcti", &tpm.tcti(), "info"], Some("nonsense-tcti:x"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A typo in the file is refused, naming the file.
    std::fs::write(&conf, "tcit = \"x\"\n").unwrap();
    let out = run(&["info"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml") && err.contains("tcit"), "{err}");
}
