//! Real Nix writes `.drv` files; provenix parses, re-prints and re-hashes them.
//!
//! `nix-instantiate` (Nix 2.8, Debian's `nix-bin`) evaluates a small
//! expression (`builtins.derivation` only, no nixpkgs) into a private chroot
//! store in a temporary directory. Every `.drv` it writes must print back byte
//! for byte, its `.drv` path must follow from its bytes, and its output paths
//! from [`Derivation::hash_modulo`]. `nix show-derivation` is a second,
//! independent reading of the same files (Nix's own parser, and for fixed
//! outputs Nix's own `makeFixedOutputPath`).
//!
//! Without `nix-instantiate` these tests fail (they do not skip):
//! `scripts/test.sh` installs `nix-bin`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use provenix_protocol::drv::{
    output_path, Derivation, DerivationKind, DerivationOutput, DrvHash, MAX_DRV_SIZE,
};
use provenix_protocol::{DrvPath, Error, Sha256Digest};

/// Every kind of output Nix 2.8 writes, odd strings, and the dependencies
/// whose hashes are the interesting part.
const EXPR: &str = r#"
let
  mk = attrs: builtins.derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
  plain = mk { name = "plain"; args = [ "-c" "echo plain > $out" ]; };
  multi = mk { name = "multi"; outputs = [ "out" "dev" "lib" ];
    args = [ "-c" "echo > $out; echo > $dev; echo > $lib" ]; };
  flat = mk { name = "flat.txt"; args = [ "-c" "printf hello > $out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = hello; };
  # The same content fetched another way: another .drv, the same output.
  flat2 = mk { name = "flat.txt"; args = [ "-c" "echo -n hello > $out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = hello; };
  recursive = mk { name = "recursive"; args = [ "-c" "printf hello > $out" ];
    outputHashMode = "recursive"; outputHashAlgo = "sha256";
    outputHash = "0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"; };
  sha1 = mk { name = "sha1"; args = [ "-c" "printf hello > $out" ];
    outputHashAlgo = "sha1"; outputHash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; };
  sha512 = mk { name = "sha512"; args = [ "-c" "printf hello > $out" ];
    outputHashMode = "recursive"; outputHashAlgo = "sha512";
    outputHash = "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="; };
  texty = mk { name = "texty"; args = [ "-c" "echo \"$weird\" > $out" "a\\b" "tab\there" ];
    weird = "quote \" backslash \\ newline \n tab \t cr \r dollar \${x} unicode é end";
    "key with space" = "v"; "quote\"key" = "\\"; empty = ""; };
  structured = mk { name = "structured"; __structuredAttrs = true; outputs = [ "out" "bin" ];
    args = [ "-c" "true" ]; nested = { a = 1; b = "x\"y"; }; };
  dependent = mk { name = "dependent";
    args = [ "-c" "cat ${flat} ${recursive}/ ${multi.dev} ${plain} ${sha1} ${sha512} > $out" ];
    src = ./data.txt; };
  top = fetch: mk { name = "top"; args = [ "-c" "cat ${fetch} ${multi.lib} ${texty} > $out" ]; };
  floating = mk { name = "floating"; __contentAddressed = true; args = [ "-c" "echo > $out" ];
    outputHashMode = "recursive"; outputHashAlgo = "sha256"; };
  deferred = mk { name = "deferred"; args = [ "-c" "cat ${floating} > $out" ]; };
  impure = mk { name = "impure"; __impure = true; args = [ "-c" "echo > $out" ]; };
in {
  inherit plain multi flat recursive sha1 sha512 texty structured dependent floating deferred impure;
  topA = top flat;
  topB = top flat2;
  both = mk { name = "both"; args = [ "-c" "cat ${flat} ${flat2} ${structured.bin} > $out" ]; };
}
"#;

/// `nix-instantiate` on `PATH`, or a failure that says what to install.
fn nix_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH: these tests need real Nix 2.8 \
                 (Debian: `apt-get install nix-bin`; scripts/test.sh installs it)"
            )
        })
}

/// A private chroot Nix store in a temporary directory.
struct NixStore {
    dir: tempfile::TempDir,
}

impl NixStore {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::create_dir_all(dir.path().join("home")).unwrap();
        fs::write(
            dir.path().join("etc/nix.conf"),
            "experimental-features = nix-command ca-derivations impure-derivations\n\
             sandbox = false\nsubstituters =\n",
        )
        .unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A Nix command bound to this store and configuration only.
    fn command(&self, tool: &str) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(nix_tool(tool));
        for var in [
            "NIX_REMOTE",
            "NIX_CONFIG",
            "NIX_PATH",
            "NIX_STORE_DIR",
            "NIX_STATE_DIR",
            "NIX_LOG_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NIX_CONF_DIR", d.join("etc"))
            .env("NIX_USER_CONF_FILES", d.join("etc/nix.conf"))
            .env("XDG_CACHE_HOME", d.join("xdg"))
            .env("XDG_CONFIG_HOME", d.join("xdg-config"))
            .env("HOME", d.join("home"))
            .arg("--store")
            .arg(self.root())
            .args(["--option", "substituters", ""]);
        cmd
    }

    /// Instantiate [`EXPR`]; the `.drv` paths it printed.
    fn instantiate(&self) -> Vec<DrvPath> {
        let d = self.dir.path();
        fs::write(d.join("expr.nix"), EXPR).unwrap();
        fs::write(d.join("data.txt"), "an input source\n").unwrap();
        let out = self
            .command("nix-instantiate")
            .arg(d.join("expr.nix"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nix-instantiate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| DrvPath::parse(l).unwrap())
            .collect()
    }

    /// Every `.drv` in the store, with its bytes.
    fn drv_files(&self) -> BTreeMap<DrvPath, Vec<u8>> {
        let dir = self.root().join("nix/store");
        fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".drv"))
            .map(|name| {
                let path = DrvPath::parse(&format!("/nix/store/{name}")).unwrap();
                (path, fs::read(dir.join(&name)).unwrap())
            })
            .collect()
    }
}

fn hash(files: &BTreeMap<DrvPath, Vec<u8>>, path: &DrvPath) -> Result<DrvHash, Error> {
    let drv = Derivation::parse(&files[path])?;
    let mut resolve = |p: &DrvPath| match files.get(p) {
        Some(bytes) => Derivation::parse(bytes),
        None => Err(Error::MissingInputDerivation(p.to_string())),
    };
    drv.hash_modulo(path.drv_name(), &mut resolve)
}

fn by_name<'a>(files: &'a BTreeMap<DrvPath, Vec<u8>>, name: &str) -> Vec<&'a DrvPath> {
    files.keys().filter(|p| p.drv_name() == name).collect()
}

#[test]
fn every_drv_nix_writes_round_trips_and_its_outputs_follow_from_the_hash() {
    let store = NixStore::new();
    let printed = store.instantiate();
    let files = store.drv_files();
    assert_eq!(files.len(), 16, "{:?}", files.keys());
    for p in &printed {
        assert!(files.contains_key(p), "{p} printed but not in the store");
    }

    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (path, bytes) in &files {
        assert!(bytes.len() < MAX_DRV_SIZE);
        let drv = Derivation::parse(bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            drv.to_aterm().as_bytes(),
            bytes.as_slice(),
            "{path}: printed differently"
        );
        assert_eq!(drv.drv_path(path.drv_name()).unwrap(), *path);
        *kinds.entry(format!("{:?}", drv.kind())).or_default() += 1;
        match drv.kind() {
            DerivationKind::InputAddressed | DerivationKind::FixedOutput => {
                let h = hash(&files, path).unwrap_or_else(|e| panic!("{path}: {e}"));
                drv.check_output_paths(path.drv_name(), &h)
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(
                    h.is_fixed_output(),
                    drv.kind() == DerivationKind::FixedOutput
                );
            }
            DerivationKind::Floating | DerivationKind::Deferred | DerivationKind::Impure => {
                assert!(
                    matches!(hash(&files, path), Err(Error::UnsupportedDerivation(_))),
                    "{path}"
                );
            }
            other => panic!("{path}: unexpected kind {other:?}"),
        }
    }
    let want: BTreeMap<String, usize> = [
        ("Deferred", 1),
        ("FixedOutput", 5),
        ("Floating", 1),
        ("Impure", 1),
        ("InputAddressed", 8),
    ]
    .into_iter()
    .map(|(k, n)| (String::from(k), n))
    .collect();
    assert_eq!(kinds, want);
}

#[test]
fn drv_hash_is_what_dependents_and_other_builders_see() {
    let store = NixStore::new();
    store.instantiate();
    let files = store.drv_files();

    // Two fetchers of the same fixed output: two .drv files, one hash.
    let flats = by_name(&files, "flat.txt");
    assert_eq!(flats.len(), 2);
    let (fa, fb) = (
        hash(&files, flats[0]).unwrap(),
        hash(&files, flats[1]).unwrap(),
    );
    assert_eq!(fa, fb);
    let flat = Derivation::parse(&files[flats[0]]).unwrap();
    let Some(DerivationOutput::Fixed {
        path,
        hash: declared,
    }) = flat.outputs().get("out")
    else {
        panic!("flat.txt is a fixed-output derivation");
    };
    assert_eq!(declared.method_algo(), "sha256");
    let want =
        Sha256Digest::of(format!("fixed:out:sha256:{}:{path}", declared.to_hex()).as_bytes());
    assert_eq!(fa.drv_hash(), want);

    // `top` built against either fetcher: different .drv paths, one
    // drv_hash, one output path.
    let tops = by_name(&files, "top");
    assert_eq!(tops.len(), 2);
    assert_ne!(tops[0], tops[1]);
    let (ta, tb) = (
        hash(&files, tops[0]).unwrap(),
        hash(&files, tops[1]).unwrap(),
    );
    assert_eq!(ta.drv_hash(), tb.drv_hash());
    assert_eq!(
        output_path("top", "out", &ta.drv_hash()).unwrap(),
        *Derivation::parse(&files[tops[1]]).unwrap().outputs()["out"]
            .path()
            .unwrap()
    );

    // `dependent` uses multi's second output and four fixed outputs.
    let dep_path = by_name(&files, "dependent")[0];
    let dep = Derivation::parse(&files[dep_path]).unwrap();
    let multi = by_name(&files, "multi")[0];
    assert_eq!(
        dep.input_drvs()[multi],
        BTreeSet::from([String::from("dev")])
    );
    assert_eq!(dep.input_drvs().len(), 6);
    assert_eq!(dep.input_srcs().len(), 1);

    // A multi-output derivation: one hash, a path per output.
    let mh = hash(&files, multi).unwrap();
    assert_eq!(mh.outputs().len(), 3);
    assert!(mh.outputs().values().all(|h| *h == mh.drv_hash()));

    // Breaking one byte of a dependency changes the hash of what depends on it.
    let mut broken = files.clone();
    let plain = by_name(&files, "plain")[0].clone();
    let text = String::from_utf8(broken[&plain].clone()).unwrap();
    broken.insert(plain, text.replace("echo plain", "echo plaiN").into_bytes());
    let dh = hash(&broken, dep_path).unwrap();
    assert_ne!(dh, hash(&files, dep_path).unwrap());
    assert!(matches!(
        dep.check_output_paths("dependent", &dh),
        Err(Error::OutputPathMismatch { .. })
    ));
}

/// `nix show-derivation` reads the same files with Nix's own parser; every
/// field must agree with ours, and its fixed-output paths (which Nix
/// recomputes with `makeFixedOutputPath`) with ours.
#[test]
fn drv_fields_agree_with_nix_show_derivation() {
    let store = NixStore::new();
    store.instantiate();
    let files = store.drv_files();
    let out = store
        .command("nix")
        .arg("show-derivation")
        .args(files.keys().map(DrvPath::as_str))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix show-derivation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let json = json.as_object().unwrap();
    assert_eq!(json.len(), files.len());

    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| String::from(s.as_str().unwrap()))
            .collect()
    };
    for (path, bytes) in &files {
        let drv = Derivation::parse(bytes).unwrap();
        let nix = &json[path.as_str()];
        assert_eq!(nix["system"], drv.platform(), "{path}");
        assert_eq!(nix["builder"], drv.builder(), "{path}");
        assert_eq!(strings(&nix["args"]), drv.args(), "{path}");
        let env: BTreeMap<String, String> = nix["env"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), String::from(v.as_str().unwrap())))
            .collect();
        assert_eq!(&env, drv.env(), "{path}");
        let srcs: Vec<String> = drv.input_srcs().iter().map(|p| p.to_string()).collect();
        assert_eq!(strings(&nix["inputSrcs"]), srcs, "{path}");
        let inputs: BTreeMap<String, Vec<String>> = nix["inputDrvs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), strings(v)))
            .collect();
        let ours: BTreeMap<String, Vec<String>> = drv
            .input_drvs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().cloned().collect()))
            .collect();
        assert_eq!(inputs, ours, "{path}");

        let outputs = nix["outputs"].as_object().unwrap();
        assert_eq!(
            outputs.keys().collect::<Vec<_>>(),
            drv.outputs().keys().collect::<Vec<_>>(),
            "{path}"
        );
        for (name, output) in drv.outputs() {
            let o = &outputs[name];
            let field = |k: &str| o.get(k).and_then(|v| v.as_str()).map(String::from);
            match output {
                DerivationOutput::InputAddressed(p) => {
                    assert_eq!(field("path").as_deref(), Some(p.as_str()), "{path}");
                    assert_eq!((field("hashAlgo"), field("hash")), (None, None), "{path}");
                }
                DerivationOutput::Fixed { path: p, hash } => {
                    let recomputed = hash.store_path(path.drv_name()).unwrap();
                    assert_eq!(
                        field("path").as_deref(),
                        Some(recomputed.as_str()),
                        "{path}"
                    );
                    assert_eq!(&recomputed, p, "{path}");
                    assert_eq!(field("hashAlgo"), Some(hash.method_algo()), "{path}");
                    assert_eq!(field("hash"), Some(hash.to_hex()), "{path}");
                }
                DerivationOutput::Floating { method, algo } => {
                    assert_eq!(field("path"), None, "{path}");
                    assert_eq!(
                        field("hashAlgo"),
                        Some(format!("{}{}", method.prefix(), algo.name())),
                        "{path}"
                    );
                }
                DerivationOutput::Impure { method, algo } => {
                    assert_eq!(field("path"), None, "{path}");
                    assert_eq!(o["impure"], true, "{path}");
                    assert_eq!(
                        field("hashAlgo"),
                        Some(format!("{}{}", method.prefix(), algo.name())),
                        "{path}"
                    );
                }
                DerivationOutput::Deferred => {
                    assert!(o.as_object().unwrap().is_empty(), "{path}: {o}");
                }
                other => panic!("{path}: unexpected output {other:?}"),
            }
        }
    }
}

/// The committed fuzz corpus: real files round-trip, the `bad-*` ones are
/// refused, nothing panics (the fuzz target replays the same files).
#[test]
fn drv_fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/drv");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let parsed = Derivation::parse(&bytes);
        if name.starts_with("bad-") {
            assert!(parsed.is_err(), "{name} parsed");
        } else {
            let drv = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(drv.to_aterm().as_bytes(), bytes.as_slice(), "{name}");
        }
        seen += 1;
    }
    assert!(
        seen >= 6,
        "corpus at {} has only {seen} files",
        dir.display()
    );
}

/// With a memo kept across derivations, every hash equals the fresh one,
/// and each input derivation is resolved at most once over all of them.
#[test]
fn a_shared_memo_gives_the_same_hashes_and_resolves_each_input_once() {
    let store = NixStore::new();
    store.instantiate();
    let files = store.drv_files();
    let mut memo = BTreeMap::new();
    let mut resolved: Vec<DrvPath> = Vec::new();
    for path in files.keys() {
        let drv = Derivation::parse(&files[path]).unwrap();
        let mut resolve = |p: &DrvPath| {
            resolved.push(p.clone());
            match files.get(p) {
                Some(bytes) => Derivation::parse(bytes),
                None => Err(Error::MissingInputDerivation(p.to_string())),
            }
        };
        let with_memo = drv.hash_modulo_memo(path.drv_name(), &mut resolve, &mut memo);
        // Unsupported kinds (floating, impure) fail the same way both times.
        assert_eq!(
            format!("{with_memo:?}"),
            format!("{:?}", hash(&files, path)),
            "{path}"
        );
    }
    let distinct: BTreeSet<&DrvPath> = resolved.iter().collect();
    assert!(!resolved.is_empty());
    assert_eq!(distinct.len(), resolved.len(), "an input resolved twice");
}
