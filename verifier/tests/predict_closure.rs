//! `provenix predict` for the system PCR against real Nix 2.8: a small
//! closure built offline into a chroot store, its manifest from
//! `nix path-info --json --recursive` (and the same in newer Nix's object
//! form), the closure found by Nix itself from `--toplevel`; the identity
//! must equal protocol's `SystemIdentity` over the NAR hashes `nix-hash`
//! computes, and tampering with one file must be reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use provenix_protocol::hash::NarHash;
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{StorePath, SystemIdentity};
use serde_json::Value;

fn need(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            p.to_str()?
                .split(':')
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: install the Debian package {package} (scripts/test.sh lists it)"
            )
        })
}

/// A private chroot store with a two-path closure built by real Nix.
struct Store {
    dir: tempfile::TempDir,
    root: PathBuf,
    toplevel: String,
    lib: String,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Store paths are read-only; make them removable.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.dir.path())
            .status();
    }
}

impl Store {
    fn nix(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("NIX_CONF_DIR", self.dir.path().join("etc"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg"))
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_CONFIG");
        c
    }

    fn provenix(&self, args: &[&str]) -> Output {
        self.nix(env!("CARGO_BIN_EXE_provenix"))
            .arg("predict")
            .args(args)
            .output()
            .unwrap()
    }

    fn path(&self, store_path: &str) -> PathBuf {
        self.root.join(store_path.trim_start_matches('/'))
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn build() -> Store {
    need("nix-build", "nix-bin");
    let busybox = need("busybox", "busybox-static");
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().to_path_buf();
    let w = w.as_path();
    for d in ["etc", "xdg", "bb/bin"] {
        std::fs::create_dir_all(w.join(d)).unwrap();
    }
    std::fs::write(
        w.join("etc/nix.conf"),
        "experimental-features = nix-command\nsubstituters =\nsandbox = false\nbuild-users-group =\n",
    )
    .unwrap();
    std::fs::copy(&busybox, w.join("bb/bin/busybox")).unwrap();
    std::fs::write(
        w.join("system.nix"),
        r#"
let
  bb = builtins.path { path = ./bb; name = "busybox-static"; };
  mk = name: script: builtins.derivation {
    inherit name; system = builtins.currentSystem;
    builder = "${bb}/bin/busybox"; args = [ "sh" "-c" script ];
  };
in rec {
  lib = mk "lib" "mkdir -p $out/lib; echo libdata > $out/lib/data; ln -s data $out/lib/link; printf '#!/bin/sh\n' > $out/lib/run; chmod +x $out/lib/run";
  toplevel = mk "toplevel" "mkdir -p $out; echo ${lib} > $out/lib-path; printf '#!/bin/sh\n' > $out/init; chmod +x $out/init";
}
"#,
    )
    .unwrap();
    let mut store = Store {
        root: w.join("store"),
        dir,
        toplevel: String::new(),
        lib: String::new(),
    };
    let build = |attr: &str| {
        let out = ok(store
            .nix("nix-build")
            .arg("--store")
            .arg(&store.root)
            .arg("--no-out-link")
            .arg(w.join("system.nix"))
            .args(["-A", attr])
            .output()
            .unwrap());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (toplevel, lib) = (build("toplevel"), build("lib"));
    store.toplevel = toplevel;
    store.lib = lib;
    store
}

fn manifest(store: &Store) -> Value {
    let out = ok(store
        .nix("nix")
        .args(["path-info", "--json", "--recursive", "--store"])
        .arg(&store.root)
        .arg(&store.toplevel)
        .output()
        .unwrap());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The expected identity, from `nix-hash` of every path's content (Nix's
/// own NAR hashing) and protocol's one `SystemIdentity`.
fn expected(store: &Store, manifest: &Value, mode: MeasurementMode) -> SystemIdentity {
    let mut paths = Vec::new();
    for e in manifest.as_array().unwrap() {
        let path = e["path"].as_str().unwrap();
        let out = ok(store
            .nix("nix-hash")
            .args(["--type", "sha256", "--base32"])
            .arg(store.path(path))
            .output()
            .unwrap());
        let nix32 = String::from_utf8(out.stdout).unwrap();
        let nar_hash = NarHash::parse(&format!("sha256:{}", nix32.trim())).unwrap();
        assert_eq!(
            nar_hash,
            NarHash::parse(e["narHash"].as_str().unwrap()).unwrap(),
            "the untampered store agrees with Nix's database"
        );
        paths.push(ClosurePath {
            path: StorePath::parse(path).unwrap(),
            nar_hash,
            nar_size: e["narSize"].as_u64().unwrap(),
        });
    }
    SystemIdentity::from_closure(StorePath::parse(&store.toplevel).unwrap(), mode, &paths).unwrap()
}

fn predict_json(store: &Store, args: &[&str]) -> Value {
    let out = ok(store.provenix(&[&["--json"], args].concat()));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn system_identity_from_a_real_closure() {
    let store = build();
    let m = manifest(&store);
    assert_eq!(m.as_array().unwrap().len(), 2);
    let w = store.dir.path();
    let array = w.join("manifest-2.8.json");
    std::fs::write(&array, m.to_string()).unwrap();
    // Newer Nix's form: an object keyed by path.
    let object = w.join("manifest-object.json");
    let obj: serde_json::Map<String, Value> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let p = e.as_object_mut().unwrap().remove("path").unwrap();
            (p.as_str().unwrap().to_string(), e)
        })
        .collect();
    std::fs::write(&object, Value::Object(obj).to_string()).unwrap();

    let want = expected(&store, &m, MeasurementMode::ContentRehash);
    let root = store.root.to_str().unwrap();
    let runs = [
        predict_json(
            &store,
            &[
                "--closure-manifest",
                array.to_str().unwrap(),
                "--store-root",
                root,
            ],
        ),
        predict_json(
            &store,
            &[
                "--closure-manifest",
                object.to_str().unwrap(),
                "--store-root",
                root,
            ],
        ),
        predict_json(
            &store,
            &[
                "--closure-manifest",
                array.to_str().unwrap(),
                "--store-root",
                root,
                "--toplevel",
                &store.toplevel,
            ],
        ),
        // No manifest: Nix is asked for the closure.
        predict_json(
            &store,
            &[
                "--toplevel",
                &store.toplevel,
                "--store-root",
                root,
                "-j",
                "1",
            ],
        ),
    ];
    for p in &runs {
        let s = &p["system"];
        assert_eq!(s["toplevel"], store.toplevel.as_str());
        assert_eq!(s["mode"], "content-rehash");
        assert_eq!(s["paths"], 2);
        assert_eq!(s["closure_digest"], want.closure_digest.to_hex());
        assert_eq!(s["digest"], want.digest().unwrap().to_hex());
        assert_eq!(s["pcr"], 14);
        assert!(s["manifest_mismatches"].as_array().unwrap().is_empty());
        // PCR 14 = SHA-256(0^32 || system digest); nothing else predicted.
        let mut pre = vec![0u8; 32];
        pre.extend_from_slice(want.digest().unwrap().as_bytes());
        let pcr14 = provenix_measured_boot::HashAlgorithm::Sha256
            .hash(&pre)
            .to_hex();
        assert_eq!(p["pcrs"]["sha256"].as_object().unwrap().len(), 1);
        assert_eq!(p["pcrs"]["sha256"]["14"], pcr14.as_str());
        let events = p["events"].as_array().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["log"], "userspace");
        assert_eq!(events[0]["content_type"], "provenix");
    }

    // Another system PCR and dm-verity mode.
    let verity = "ab".repeat(32);
    let p = predict_json(
        &store,
        &[
            "--closure-manifest",
            array.to_str().unwrap(),
            "--store-root",
            root,
            "--system-pcr",
            "15",
            "--dm-verity-root-hash",
            &verity,
        ],
    );
    let want_verity = expected(
        &store,
        &m,
        MeasurementMode::DmVerity {
            root_hash: provenix_protocol::hash::Sha256Digest::from_hex(&verity).unwrap(),
        },
    );
    assert_eq!(p["system"]["mode"], "dm-verity");
    assert_eq!(p["system"]["verity_root_hash"], verity.as_str());
    assert_eq!(
        p["system"]["digest"],
        want_verity.digest().unwrap().to_hex()
    );
    assert!(p["pcrs"]["sha256"]["15"].is_string());

    // Tamper with one file of the library: the manifest (Nix's database)
    // still says the old hash; the prediction follows the content, names
    // the path and exits 1.
    let data = store.path(&store.lib).join("lib/data");
    let dir = data.parent().unwrap().to_path_buf();
    ok(Command::new("chmod")
        .arg("u+w")
        .arg(&dir)
        .arg(&data)
        .output()
        .unwrap());
    std::fs::write(&data, "patched\n").unwrap();
    let out = store.provenix(&[
        "--json",
        "--closure-manifest",
        array.to_str().unwrap(),
        "--store-root",
        root,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&store.lib), "{stderr}");
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mism = p["system"]["manifest_mismatches"].as_array().unwrap();
    assert_eq!(mism.len(), 1);
    assert_eq!(mism[0]["path"], store.lib.as_str());
    assert_ne!(p["system"]["digest"], want.digest().unwrap().to_hex());

    // A store path missing on disk is an IO error: exit 2, nothing printed.
    std::fs::remove_file(&data).unwrap();
    ok(Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(store.path(&store.lib))
        .output()
        .unwrap());
    std::fs::remove_dir_all(store.path(&store.lib)).unwrap();
    let out = store.provenix(&[
        "--json",
        "--closure-manifest",
        array.to_str().unwrap(),
        "--store-root",
        root,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
