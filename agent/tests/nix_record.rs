//! `provenix-agent record` as Nix's post-build hook, against a private Nix
//! daemon (sandboxed builds, chroot store) and an enrolled swtpm: the log
//! then holds the enrollment and exactly one entry per build, whose NAR
//! hashes, sizes and references equal what Nix recorded, signed by SK and
//! attested by batch quotes that verify with protocol::tpm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::process::Command;

mod common;
use common::read_log;
use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::leaf::Record;
use provenix_protocol::merkle::{leaf_hash, root};
use provenix_protocol::tpm::{verify_attest, AttestType, Public, Signature};
use provenix_protocol::{NarHash, SignedEntry};
use provenix_swtpm_tests::nix::NixDaemon;
use provenix_swtpm_tests::{Swtpm, Template};

fn agent(tpm: &Swtpm) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_provenix-agent"));
    c.args(["--tcti", &tpm.tcti(), "--insecure-allow-swtpm"])
        .env("TSS2_LOG", "all+none");
    c
}

use common::ok;

#[test]
fn record_as_post_build_hook_matches_nix() {
    let swtpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, log) = (work.path().join("state"), work.path().join("log"));
    let gate = work.path().join("record-enabled");
    let hook = work.path().join("hook.sh");
    let nix = {
        // The hook records only once the builder is enrolled (the system
        // toplevel is built first, before enrollment).
        let n = NixDaemon::start(&format!("post-build-hook = {}", hook.display())).unwrap();
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n[ -e {gate} ] || exit 0\nexec {bin} --tcti {tcti} --insecure-allow-swtpm record \
                 --state-dir {state} --log-dir {log} --store-root {root} >>{out} 2>&1\n",
                gate = gate.display(),
                bin = env!("CARGO_BIN_EXE_provenix-agent"),
                tcti = swtpm.tcti(),
                state = state.display(),
                log = log.display(),
                root = n.store_root().display(),
                out = work.path().join("hook.out").display(),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        n
    };
    // Boot: the system is a closure in this store, measured from content.
    let system = nix
        .build_expr("(import ./test.nix).salted \"system\"")
        .unwrap();
    let store_root = nix.store_root();
    ok(agent(&swtpm)
        .args(["measure", "--root"])
        .arg(&store_root)
        .args(["--insecure-test-toplevel", &system[0], "--state-dir"])
        .arg(&state)
        .output()
        .unwrap());
    ok(agent(&swtpm)
        .args(["enroll", "--no-event-log", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap());
    std::fs::write(&gate, "").unwrap();

    // hello, multi (two outputs) and dependent: three builds, three hooks.
    let dependent = nix.build("dependent", &[]).unwrap();
    let hook_out = std::fs::read_to_string(work.path().join("hook.out")).unwrap_or_default();
    assert_eq!(hook_out.matches("recorded: ").count(), 3, "{hook_out}");

    let (cp, leaves, records) = read_log(&log);
    let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();
    assert_eq!(cp.root, root(&hashes));
    let Record::Enrollment(enrollment) = &records[0] else {
        panic!("the log starts with the enrollment")
    };
    let enrollment: &Enrollment = enrollment;
    let sk = ed25519_dalek::VerifyingKey::from_bytes(&enrollment.signing_key.public_key).unwrap();
    let ak = Public::from_bytes(&enrollment.ak_public).unwrap();
    let mut entries: Vec<&SignedEntry> = Vec::new();
    let mut previous = [0u8; 32];
    let mut last_counter = 0;
    for (i, r) in records.iter().enumerate().skip(1) {
        match r {
            Record::Entry(e) => {
                e.verify(&sk).unwrap();
                assert!(
                    e.entry().built_locally,
                    "sandboxed, local, root-only settings"
                );
                assert!(e.entry().build_env.sandbox);
                entries.push(e);
            }
            Record::Batch(b) => {
                assert_eq!(b.previous_batch, previous, "batch chain (record {i})");
                assert!(b.counter > last_counter);
                last_counter = b.counter;
                let attest = verify_attest(
                    &ak,
                    &b.quote_attest,
                    &Signature::from_bytes(&b.quote_signature).unwrap(),
                    AttestType::Quote,
                )
                .unwrap();
                assert_eq!(attest.extra_data.as_bytes(), b.nonce().as_bytes());
                let range = b.first_leaf as usize..(b.first_leaf + b.leaf_count) as usize;
                assert_eq!(b.entries_root, root(&hashes[range]).0);
                previous = leaf_hash(&b.to_leaf().unwrap()).0;
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert_eq!(entries.len(), 3, "one entry per build");
    // Each entry's seq is its leaf index.
    for e in &entries {
        let leaf = &leaves[e.entry().seq as usize];
        assert_eq!(leaf, e.to_leaves().last().unwrap());
    }

    // NAR hash, size and references equal Nix's own records.
    let mut outputs: BTreeMap<String, (NarHash, u64, Vec<String>)> = BTreeMap::new();
    for e in &entries {
        for o in &e.entry().outputs {
            outputs.insert(
                o.store_path.as_str().to_string(),
                (
                    o.nar_hash,
                    o.nar_size,
                    o.references
                        .iter()
                        .map(|r| r.as_str().to_string())
                        .collect(),
                ),
            );
        }
    }
    assert_eq!(outputs.len(), 4, "hello, multi.out, multi.dev, dependent");
    assert!(outputs.contains_key(&dependent[0]));
    let paths: Vec<String> = outputs.keys().cloned().collect();
    let info: serde_json::Value =
        serde_json::from_str(&ok(nix.path_info(&paths).unwrap())).unwrap();
    for p in info.as_array().unwrap() {
        let path = p["path"].as_str().unwrap();
        let (hash, size, refs) = &outputs[path];
        assert_eq!(
            *hash,
            NarHash::parse(p["narHash"].as_str().unwrap()).unwrap(),
            "{path}"
        );
        assert_eq!(*size, p["narSize"].as_u64().unwrap(), "{path}");
        let mut want: Vec<String> = p["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(*refs, want, "references of {path}");
    }
    // The dependent build's inputs: hello and multi.dev (and busybox), hashed from content.
    let dep = entries
        .iter()
        .find(|e| e.entry().drv_path.drv_name() == "dependent")
        .unwrap();
    let inputs: Vec<&str> = dep
        .entry()
        .resolved_inputs
        .iter()
        .map(|i| i.store_path.name())
        .collect();
    assert_eq!(inputs.len(), 3, "{inputs:?}");
    assert!(inputs.contains(&"hello") && inputs.contains(&"multi-dev"));

    // Recording the same build again adds nothing.
    let drv = nix.instantiate("hello", &[]).unwrap();
    let out = agent(&swtpm)
        .args(["record", "--json", "--drv", &drv, "--state-dir"])
        .arg(&state)
        .arg("--log-dir")
        .arg(&log)
        .arg("--store-root")
        .arg(&store_root)
        .env("NIX_CONFIG", "")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(v["status"], "already recorded");
    assert_eq!(v["log_size"].as_u64().unwrap(), cp.size);
}
