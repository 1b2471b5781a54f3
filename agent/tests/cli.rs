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
