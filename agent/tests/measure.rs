//! `provenix-agent measure` on a closure built by real Nix (offline, chroot
//! store): the identity comes from content, a file changed after
//! registration changes the identity (the database would not), and the
//! system PCR on swtpm holds the extend of the system digest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use provenix_agent::keys::PcrSet;
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::registration::{closure, parse_registration};
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{Sha256Digest, StorePath, SystemIdentity};
use provenix_swtpm_tests::{Swtpm, Template};

fn nix(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("NIX_CONF_DIR", dir.join("etc"))
        .env("XDG_CACHE_HOME", dir.join("xdg"))
        .env_remove("NIX_REMOTE")
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs nix-bin)", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A small system: a toplevel referring to two paths, built by Nix.
fn build(dir: &Path) -> (PathBuf, String, PathBuf) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("bb/bin")).unwrap();
    std::fs::write(dir.join("etc/nix.conf"), "experimental-features = nix-command\nsubstituters =\nsandbox = false\nbuild-users-group =\n").unwrap();
    let bb = which("busybox");
    std::fs::copy(bb, dir.join("bb/bin/busybox")).unwrap();
    std::fs::write(dir.join("sys.nix"), r#"
let bb = builtins.path { path = ./bb; name = "busybox-static"; };
  mk = name: script: builtins.derivation { inherit name; system = builtins.currentSystem; builder = "${bb}/bin/busybox"; args = [ "sh" "-c" script ]; };
in rec {
  etc = mk "etc" "mkdir -p $out/etc; echo builder > $out/etc/hostname";
  sw = mk "sw" "mkdir -p $out/bin; ln -s ${bb}/bin/busybox $out/bin/sh";
  top = mk "nixos-system-builder" "mkdir $out; ln -s ${etc} $out/etc; ln -s ${sw} $out/sw; echo '#!/bin/sh' > $out/init";
}"#).unwrap();
    let root = dir.join("store");
    let top = nix(
        dir,
        &[
            "nix-build",
            "--store",
            root.to_str().unwrap(),
            "--no-out-link",
            "sys.nix",
            "-A",
            "top",
        ],
    );
    let top = top.trim().to_owned();
    let paths = nix(
        dir,
        &["nix-store", "--store", root.to_str().unwrap(), "-qR", &top],
    );
    let mut args = vec!["nix-store", "--store", root.to_str().unwrap(), "--dump-db"];
    args.extend(paths.lines());
    let reg = dir.join("registration");
    std::fs::write(&reg, nix(dir, &args)).unwrap();
    (root, top, reg)
}

fn which(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} not found (scripts/test.sh installs busybox-static)"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn agent(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_provenix-agent"))
        .args(args)
        .env("TSS2_LOG", "all+none")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The identity the Nix database would claim (its hashes, not content).
fn claimed(reg: &Path, top: &str) -> Sha256Digest {
    let regs = parse_registration(&std::fs::read_to_string(reg).unwrap()).unwrap();
    let t = StorePath::parse(top).unwrap();
    let paths: Vec<ClosurePath> = closure(&regs, &t)
        .unwrap()
        .iter()
        .map(|r| ClosurePath {
            path: r.path.clone(),
            nar_hash: r.nar_hash,
            nar_size: r.nar_size,
        })
        .collect();
    SystemIdentity::from_closure(t, MeasurementMode::ContentRehash, &paths)
        .unwrap()
        .digest()
        .unwrap()
}

#[test]
fn measure_from_content_detects_changes_and_extends_the_system_pcr() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, top, reg) = build(tmp.path());
    let (r, g) = (root.to_str().unwrap(), reg.to_str().unwrap());

    // The toplevel comes from the measured command line's init=.
    let cmdline = tmp.path().join("cmdline");
    std::fs::write(&cmdline, format!("console=ttyS0 init={top}/init quiet\n")).unwrap();
    let m = agent(&[
        "measure",
        "--root",
        r,
        "--registration",
        g,
        "--cmdline",
        cmdline.to_str().unwrap(),
        "--no-extend",
        "--json",
    ]);
    assert_eq!(m["toplevel"], top.as_str());
    assert_eq!(m["paths"], 4, "toplevel, etc, sw and busybox");
    assert!(m["changed"].as_array().unwrap().is_empty());
    assert_eq!(
        m["system"],
        claimed(&reg, &top).to_hex(),
        "untouched: content equals the database"
    );

    // The same from the Nix database itself (no registration file).
    let db = root.join("nix/var/nix/db/db.sqlite");
    let d = agent(&[
        "measure",
        "--root",
        r,
        "--nix-db",
        db.to_str().unwrap(),
        "--insecure-test-toplevel",
        &top,
        "--no-extend",
        "--json",
    ]);
    assert_eq!(d["system"], m["system"]);
    assert_eq!(d["paths"], m["paths"]);

    // Change a file after registration: the database still claims the old
    // hash, the measurement does not.
    let etc = std::fs::read_link(root.join(top.trim_start_matches('/')).join("etc")).unwrap();
    let host = root
        .join(etc.to_str().unwrap().trim_start_matches('/'))
        .join("etc/hostname");
    let dir = host.parent().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&host, "attacker\n").unwrap();
    let t = agent(&[
        "measure",
        "--root",
        r,
        "--registration",
        g,
        "--insecure-test-toplevel",
        &top,
        "--no-extend",
        "--json",
    ]);
    let changed = t["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["path"], etc.to_str().unwrap());
    assert_ne!(t["system"], m["system"]);
    // The database claims the old content too, and so is caught the same way.
    let dt = agent(&[
        "measure",
        "--root",
        r,
        "--insecure-test-toplevel",
        &top,
        "--no-extend",
        "--json",
    ]);
    assert_eq!(
        dt["system"], t["system"],
        "default --nix-db is <root>/nix/var/nix/db/db.sqlite"
    );
    assert_eq!(dt["changed"].as_array().unwrap().len(), 1);
    assert_ne!(t["system"], claimed(&reg, &top).to_hex());

    // Extended into PCR 14 of an swtpm: PCR = SHA-256(0^32 || system digest).
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let state = tmp.path().join("agent-state");
    // `measure` on this TPM into `state`, as the initrd runs it each boot.
    let measure = |tcti: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_provenix-agent"))
            .args([
                "--tcti",
                tcti,
                "--insecure-allow-swtpm",
                "measure",
                "--root",
                r,
            ])
            .args(["--registration", g, "--insecure-test-toplevel", &top])
            .args(["--state-dir", state.to_str().unwrap(), "--json"])
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap()
    };
    let out = measure(&swtpm.tcti());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["extended_pcr"], 14);
    // The agent's CEL-JSON log holds the event a verifier replays.
    let cel = std::fs::read(state.join("cel.log")).unwrap();
    let log = provenix_measured_boot::CelLog::parse(&cel).unwrap();
    assert_eq!(log.records().len(), 1);
    let (_, sm) = log.system_measurements().next().unwrap();
    assert_eq!(sm.digest().to_hex(), e["system"].as_str().unwrap());
    let digest = Sha256Digest::from_hex(e["system"].as_str().unwrap()).unwrap();
    let mut tpm = Tpm::open(&TpmConfig {
        tcti: swtpm.tcti(),
        insecure_allow_swtpm: true,
    })
    .unwrap();
    let pcr = tpm.read_pcrs(&PcrSet::new(&[14]).unwrap()).unwrap();
    assert_eq!(pcr[0], Sha256Digest::of_parts(&[&[0u8; 32], &digest.0]).0);
    drop(tpm);

    let records = || {
        provenix_measured_boot::CelLog::parse(&std::fs::read(state.join("cel.log")).unwrap())
            .unwrap()
            .records()
            .len()
    };
    // Measured again in the same boot: the log goes on (two events, and it
    // replays to the PCR).
    let out = measure(&swtpm.tcti());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(records(), 2);
    // After a reboot (PCRs reset) the log starts again: this boot's log
    // holds this boot's event only.
    let mut swtpm = swtpm;
    swtpm.reboot().unwrap();
    assert!(measure(&swtpm.tcti()).status.success());
    assert_eq!(records(), 1);
    // After a reboot where something extended the system PCR without a log
    // entry, nothing could explain the PCR: refused, the log untouched.
    swtpm.reboot().unwrap();
    swtpm
        .tool(
            tmp.path(),
            &["tpm2_pcrextend", &format!("14:sha256={}", "11".repeat(32))],
        )
        .unwrap();
    let out = measure(&swtpm.tcti());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("extended without a log entry"), "{err}");
    assert_eq!(records(), 1);
}
