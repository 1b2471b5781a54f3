//! `provenix entry show`: decodes entry bundles, verifies SK signatures,
//! exit 0 / 1 (refused) / 2 (usage or IO).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

use ed25519_dalek::SigningKey;
use provenix_protocol::leaf::encode_bundle;
use provenix_protocol::{
    BuildEnv, BuilderId, DrvPath, Entry, EntryOutput, NarHash, Sha256Digest, StorePath,
};

fn provenix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(args)
        .output()
        .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bundle(dir: &std::path::Path, key: &SigningKey) -> std::path::PathBuf {
    let e = Entry {
        builder: BuilderId::from_public_digest(&Sha256Digest([1; 32])),
        seq: 3,
        drv_path: DrvPath::parse("/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv").unwrap(),
        drv_hash: Sha256Digest([2; 32]),
        outputs: vec![EntryOutput {
            name: "out".into(),
            store_path: StorePath::parse("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello")
                .unwrap(),
            nar_hash: NarHash(Sha256Digest([3; 32])),
            nar_size: 128,
            references: vec![],
        }],
        built_locally: true,
        build_env: BuildEnv {
            settings_digest: Sha256Digest([4; 32]),
            sandbox: true,
            remote_builders: false,
        },
        resolved_inputs: vec![],
        source: None,
        system: Sha256Digest([5; 32]),
        time: 1_700_000_000,
    };
    let p = dir.join("entry.bundle");
    std::fs::write(
        &p,
        encode_bundle(&e.sign(key).unwrap().to_leaves()).unwrap(),
    )
    .unwrap();
    p
}

#[test]
fn verified_refused_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let b = bundle(tmp.path(), &key);
    let b = b.to_str().unwrap();
    let good = hex(key.verifying_key().as_bytes());

    let out = provenix(&["entry", "show", "--sk-public", &good, b]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("signature verified"), "{text}");
    assert!(text.contains("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello"));

    let out = provenix(&["entry", "show", "--json", "--sk-public", &good, b]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seq"], 3);
    assert_eq!(v["outputs"][0]["nar_size"], 128);
    assert_eq!(v["verdict"], "signature verified");

    let other = hex(SigningKey::from_bytes(&[8; 32]).verifying_key().as_bytes());
    let out = provenix(&["entry", "show", "--sk-public", &other, b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature does not verify"));

    let bytes = std::fs::read(b).unwrap();
    let cut = tmp.path().join("cut.bundle");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let out = provenix(&["entry", "show", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input ends early"));

    let out = provenix(&["entry", "show", "--sk-public", "zz", b]);
    assert_eq!(out.status.code(), Some(2));
    let out = provenix(&[
        "entry",
        "show",
        tmp.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
