//! Every vector in ../shared/testdata/nix (made by real Nix 2.8): NAR bytes,
//! NAR hashes, nix32, store paths, narinfo round trips, fingerprints and
//! signatures (Nix's verify here, and ours are bit-identical to Nix's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use provenix_protocol::encoding::{hex_decode_array, nix32_decode_array, nix32_encode};
use provenix_protocol::nar;
use provenix_protocol::narinfo::NarInfo;
use provenix_protocol::nix_sig::{NixPublicKey, NixSecretKey, NixSignature};
use provenix_protocol::{NarHash, Sha256Digest, StorePath};
use serde_json::Value;

fn testdata() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/nix");
    assert!(
        p.is_dir(),
        "shared test data not found at {} (CI clones the repo with shared/ beside it)",
        p.display()
    );
    p
}

fn json(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join(name)).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The NAR inputs, recreated with make-tree.sh (the copy in shared/ has lost
/// its symlinks and empty directories).
fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inputs");
    let status = Command::new("sh")
        .arg(testdata().join("make-tree.sh"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

#[test]
fn nar_bytes_and_hashes_match_nix() {
    let dir = inputs();
    let vectors = json("vectors.json");
    assert_eq!(vectors.len(), 6);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let path = dir.path().join("inputs").join(name);
        let want_nar = std::fs::read(testdata().join(v["nar_file"].as_str().unwrap())).unwrap();
        let got_nar = nar::dump_path(&path, Vec::new()).unwrap();
        assert_eq!(
            got_nar, want_nar,
            "{name}: NAR bytes differ from nix-store --dump"
        );
        let s = nar::hash_path(&path).unwrap();
        assert_eq!(
            nar::hash_path_single_thread(&path).unwrap(),
            s,
            "{name}: walks disagree"
        );
        assert_eq!(s.size, v["nar_size"].as_u64().unwrap(), "{name}");
        assert_eq!(
            s.hash.0.to_hex(),
            v["nar_sha256_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            s.hash.to_nix_string(),
            format!("sha256:{}", v["nar_sha256_nix32"].as_str().unwrap())
        );
        assert_eq!(s.hash.to_sri(), v["nar_sha256_sri"].as_str().unwrap());
        // `nix-store --add` = makeStorePath("source", NAR hash, name).
        let p = StorePath::make("source", &s.hash.0, name).unwrap();
        assert_eq!(
            p.as_str(),
            v["nix_store_add_path"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn parallel_hashing_agrees_and_reports_each_failure() {
    let dir = inputs();
    let mut paths: Vec<PathBuf> = json("vectors.json")
        .iter()
        .map(|v| dir.path().join("inputs").join(v["name"].as_str().unwrap()))
        .collect();
    paths.insert(2, dir.path().join("does-not-exist"));
    let results = nar::hash_paths(&paths, 2);
    assert_eq!(results.len(), paths.len());
    for (p, r) in paths.iter().zip(&results) {
        match r {
            Ok(s) => assert_eq!(*s, nar::hash_path(p).unwrap()),
            Err(provenix_protocol::Error::Io { path, .. }) => assert_eq!(path, p),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(results[2].is_err());
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 6);
}

#[test]
fn base32_vectors() {
    for v in json("base32-vectors.json") {
        let bytes: [u8; 32] = hex_decode_array(v["bytes_hex"].as_str().unwrap()).unwrap();
        let s = v["nix32"].as_str().unwrap();
        assert_eq!(nix32_encode(&bytes), s);
        assert_eq!(nix32_decode_array::<32>(s).unwrap(), bytes);
    }
}

fn narinfos() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(testdata().join("narinfo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "narinfo"))
        .collect();
    v.sort();
    v
}

#[test]
fn narinfos_round_trip_byte_for_byte() {
    let files = narinfos();
    assert_eq!(files.len(), 5);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let n = NarInfo::parse(&text).unwrap();
        assert_eq!(n.render(), text, "{}", f.display());
        assert_eq!(
            format!("{}.narinfo", n.store_path.hash_part()),
            f.file_name().unwrap().to_str().unwrap()
        );
    }
}

fn key(name: &str, ext: &str) -> String {
    std::fs::read_to_string(testdata().join("keys").join(format!("{name}.{ext}"))).unwrap()
}

#[test]
fn signatures_verify_and_resign_bit_identically() {
    let vectors = json("sig-vectors.json");
    assert_eq!(vectors.len(), 6);
    let pubs: Vec<NixPublicKey> = ["test-1", "test-2"]
        .iter()
        .map(|k| NixPublicKey::parse(&key(k, "pub")).unwrap())
        .collect();
    for v in vectors {
        let text =
            std::fs::read_to_string(testdata().join(v["narinfo"].as_str().unwrap())).unwrap();
        let n = NarInfo::parse(&text).unwrap();
        let fp = n.fingerprint().unwrap();
        assert_eq!(fp, v["fingerprint"].as_str().unwrap());
        let key_name = v["key_name"].as_str().unwrap();
        let public = NixPublicKey::parse(v["public_key"].as_str().unwrap()).unwrap();
        assert_eq!(public.to_string(), v["public_key"].as_str().unwrap());
        let sig_value = v["sig_line"]
            .as_str()
            .unwrap()
            .strip_prefix("Sig: ")
            .unwrap();
        let sig = NixSignature::parse(sig_value).unwrap();
        public.verify(fp.as_bytes(), &sig).unwrap();
        assert!(n.sigs.iter().any(|s| s == sig_value));
        assert!(n
            .verified_by(&pubs)
            .unwrap()
            .iter()
            .any(|k| k.name() == key_name));
        // Re-sign: Ed25519 is deterministic, so Nix's signature comes out again.
        let secret = NixSecretKey::parse(&key(key_name, "sec")).unwrap();
        assert_eq!(secret.public(), public);
        assert_eq!(secret.sign(fp.as_bytes()).to_string(), sig_value);
        // One flipped bit of the fingerprint: Nix would refuse, and so do we.
        let mut bad = fp.clone().into_bytes();
        bad[2] ^= 1;
        assert!(public.verify(&bad, &sig).is_err());
    }
}

#[test]
fn tampered_narinfo_fails_signature_check() {
    let f = &narinfos()[0];
    let text = std::fs::read_to_string(f).unwrap();
    let pubs = vec![NixPublicKey::parse(&key("test-1", "pub")).unwrap()];
    let mut n = NarInfo::parse(&text).unwrap();
    n.verify(&pubs).unwrap();
    n.nar_size += 1;
    assert!(matches!(
        n.verify(&pubs),
        Err(provenix_protocol::Error::BadSignature { .. })
    ));
    let mut n = NarInfo::parse(&text).unwrap();
    n.nar_hash = NarHash(Sha256Digest([0; 32]));
    assert!(n.verify(&pubs).is_err());
}
