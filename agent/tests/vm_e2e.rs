//! A builder's measured boot, end to end, that runs here: `images/vm/e2e.sh`
//! boots a UKI (Debian's kernel, an initramfs holding provenix-agent and a
//! tiny Nix closure as the new root) under QEMU (TCG) with OVMF and an
//! EK-certified swtpm. In the guest the agent measures the closure the UKI's
//! `init=` names, enrolls with the firmware event log and records a build;
//! the records come out over the serial console.
//!
//! Then, on the host, as an auditor: swtpm restarted on the VM's state
//! answers a credential activation by files; `provenix predict` computes PCR
//! 4, 9, 12/13 and the system PCR from the same artifacts; `provenix verify`
//! accepts the evidence under the default policy plus that prediction (PCRs
//! 0, 2 and 7 pinned on first use, software TPMs allowed, swtpm's local CA
//! as the EK root), and `provenix decide` trusts the build. The same
//! evidence against a prediction made with one byte of the initrd changed
//! is refused, naming the PCRs and events that differ.
//!
//! One boot, about 30 s under TCG. A host package missing fails the test,
//! naming it (the harness exits 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn provenix(args: &[&str]) -> (i32, String) {
    run(Command::new(common::provenix()).args(args))
}

fn ok(r: (i32, String)) -> String {
    assert_eq!(r.0, 0, "{}", r.1);
    r.1
}

#[test]
fn a_measured_boot_in_qemu_verifies_and_a_changed_initrd_is_refused() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-e2e");
    let _ = std::fs::remove_dir_all(&out);
    let (code, log) = run(Command::new(repo().join("images/vm/e2e.sh"))
        .arg(common::AGENT)
        .arg(&out));
    assert_ne!(code, 3, "a host package is missing: {log}");
    assert_eq!(code, 0, "{log}");
    let o = |p: &str| out.join(p);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let read = |p: &str| std::fs::read_to_string(o(p)).unwrap().trim().to_string();
    let (top, greeting) = (read("toplevel"), read("greeting"));

    // The auditor's reference values, from the artifacts alone.
    let predict = |uki: &Path, file: &str| {
        let json = ok(provenix(&[
            "predict",
            "--json",
            "--uki",
            &s(uki),
            "--toplevel",
            &top,
            "--store-root",
            &s(&o("store")),
        ]));
        std::fs::write(o(file), json).unwrap();
    };
    predict(&o("uki.efi"), "approved.json");
    let vkey = ok(provenix(&[
        "activate",
        "init",
        "--name",
        "auditor.test",
        "--key",
        &s(&o("auditor.key")),
    ]))
    .trim()
    .to_string();
    let cp = std::fs::read_to_string(o("guest/log/checkpoint")).unwrap();
    let ak = cp.lines().next().unwrap().trim_start_matches("provenix/");
    std::fs::create_dir_all(o("activations")).unwrap();
    let policy = |name: &str, approved: &str| {
        std::fs::write(
            o(name),
            format!(
                "insecure_allow_swtpm = true\nquorum = 1\napproved_systems = [\"{approved}\"]\n\
                 trusted_activators = [\"{vkey}\"]\nactivations = [\"activations\"]\n\
                 ek_roots = [\"ca/swtpm-localca-rootca-cert.pem\"]\n\
                 ek_intermediates = [\"ca/issuercert.pem\"]\n\
                 [[builder]]\nname = \"vm\"\nlog = \"{}\"\nak_name = \"{ak}\"\n",
                s(&o("guest/log"))
            ),
        )
        .unwrap();
        s(&o(name))
    };
    let p = policy("policy.toml", "approved.json");
    let verify = |policy: &str, state: &str| {
        provenix(&[
            "verify",
            "--policy",
            policy,
            "--state-dir",
            &s(&o(state)),
            &s(&o("guest/log")),
        ])
    };

    // Credential activation is mandatory: refused before it.
    let (code, text) = verify(&p, "state-0");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no credential activation record"), "{text}");
    // After power-off: swtpm on the VM's TPM state answers by files.
    let tpm = provenix_swtpm_tests::Swtpm::from_state(&o("tpm")).unwrap();
    ok(provenix(&[
        "activate",
        "challenge",
        "--policy",
        &p,
        "--enrollment",
        &s(&o("guest/state/enrollment.bin")),
        "--challenge-out",
        &s(&o("c.bin")),
    ]));
    ok(run(Command::new(common::AGENT)
        .args(["--tcti", &tpm.tcti(), "--insecure-allow-swtpm", "activate"])
        .arg("--state-dir")
        .arg(o("guest/state"))
        .arg("--challenge")
        .arg(o("c.bin"))
        .arg("--answer-out")
        .arg(o("a.bin"))
        .env("PROVENIX_CONFIG", "/dev/null")
        .env("TSS2_LOG", "all+none")));
    ok(provenix(&[
        "activate",
        "answer",
        "--challenge",
        &s(&o("c.bin")),
        "--answer",
        &s(&o("a.bin")),
        "--key",
        &s(&o("auditor.key")),
        "--out",
        &s(&o("activations/vm.activation")),
    ]));
    drop(tpm);

    // Accepted: the boot replays to its quote, PCR 4/9/12/13/14 as
    // predicted, 0/2/7 pinned, one entry attested.
    let text = ok(verify(&p, "state"));
    assert!(text.contains("verified"), "{text}");
    assert!(text.contains("1 entries"), "{text}");
    let pins = std::fs::read_to_string(o(&format!("state/{ak}.pins"))).unwrap();
    assert_eq!(pins.lines().count(), 3, "PCRs 0, 2 and 7 pinned: {pins}");
    let text = ok(provenix(&["decide", "--policy", &p, &greeting]));
    assert!(text.starts_with("TRUSTED"), "{text}");

    // One byte of the initrd changed: the UKI predicted from it is not the
    // one that booted. PCR 4 (the UKI's Authenticode) and PCR 9 (the
    // initrd) are named, each with the event that differs.
    let tampered = o("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    let mut initrd = std::fs::read(o("uki/initrd")).unwrap();
    let mid = initrd.len() / 2;
    initrd[mid] ^= 1;
    std::fs::write(tampered.join("initrd"), initrd).unwrap();
    let cmdline = std::fs::read_to_string(o("uki/cmdline")).unwrap();
    ok(run(Command::new(repo().join("images/vm/mkuki.sh"))
        .arg(&tampered)
        .arg(o("uki/linux"))
        .arg(tampered.join("initrd"))
        .arg(&cmdline)
        .arg(o("uki/osrel"))));
    predict(&tampered.join("uki.efi"), "tampered.json");
    let p2 = policy("tampered.toml", "tampered.json");
    let (code, text) = verify(&p2, "state-tampered");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not an approved system"), "{text}");
    assert!(
        text.contains("PCR 4 is") && text.contains("event 3 on PCR 4 differs"),
        "{text}"
    );
    assert!(
        text.contains("PCR 9 is") && text.contains("event 2 on PCR 9 differs"),
        "{text}"
    );
}
