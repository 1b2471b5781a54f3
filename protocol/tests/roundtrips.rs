//! Property tests for the encode/decode pairs not covered next to their
//! modules: narinfo render/parse, Nix key files and signatures, entry bundles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use provenix_protocol::leaf::{decode_bundle, encode_bundle};
use provenix_protocol::narinfo::NarInfo;
use provenix_protocol::nix_sig::{NixPublicKey, NixSecretKey, NixSignature};
use provenix_protocol::{Error, NarHash, Sha256Digest, StorePath};

fn arb_path() -> impl Strategy<Value = StorePath> {
    (any::<[u8; 32]>(), "[a-zA-Z0-9+_?=-][a-zA-Z0-9+._?=-]{0,30}")
        .prop_map(|(d, name)| StorePath::make("source", &Sha256Digest(d), &name).unwrap())
}

prop_compose! {
    fn arb_narinfo()(
        store_path in arb_path(),
        url in "nar/[a-z0-9]{1,52}\\.nar(\\.xz|\\.zst)?",
        compression in prop::sample::select(vec!["xz", "zstd", "bzip2", "none"]),
        file in proptest::option::of((any::<[u8; 32]>(), 1u64..u64::MAX)),
        nar_hash in any::<[u8; 32]>(),
        nar_size in 1u64..u64::MAX,
        references in proptest::collection::btree_set(arb_path(), 0..5),
        deriver in proptest::option::of(arb_path()),
        system in proptest::option::of(prop::sample::select(vec!["x86_64-linux", "aarch64-linux"])),
        sig_seeds in proptest::collection::vec(any::<[u8; 32]>(), 0..3),
    ) -> NarInfo {
        let mut n = NarInfo {
            store_path,
            url,
            compression: compression.into(),
            file_hash: file.map(|(h, _)| NarHash(Sha256Digest(h))),
            file_size: file.map(|(_, s)| s),
            nar_hash: NarHash(Sha256Digest(nar_hash)),
            nar_size,
            references,
            deriver,
            system: system.map(Into::into),
            sigs: vec![],
            ca: None,
        };
        let fp = n.fingerprint().unwrap();
        for (i, seed) in sig_seeds.iter().enumerate() {
            let k = NixSecretKey::from_seed(&format!("key-{i}"), seed).unwrap();
            n.sigs.push(k.sign(fp.as_bytes()).to_string());
        }
        n.sigs.sort();
        n
    }
}

proptest! {
    #[test]
    fn narinfo_render_parse(n in arb_narinfo()) {
        let text = n.render();
        let back = NarInfo::parse(&text).unwrap();
        prop_assert_eq!(&back, &n);
        prop_assert_eq!(back.render(), text);
        let keys: Vec<NixPublicKey> = n
            .sigs
            .iter()
            .enumerate()
            .map(|(i, _)| NixPublicKey::parse(&format!("key-{i}:{}", "A".repeat(43) + "=")).unwrap())
            .collect();
        // Keys with the right names but wrong bytes verify nothing.
        prop_assert!(back.verified_by(&keys).unwrap().is_empty());
    }

    #[test]
    fn narinfo_signatures_verify_with_their_keys(n in arb_narinfo(), seed in any::<[u8; 32]>()) {
        let k = NixSecretKey::from_seed("signer", &seed).unwrap();
        let mut n = n;
        n.sigs.push(k.sign(n.fingerprint().unwrap().as_bytes()).to_string());
        let back = NarInfo::parse(&n.render()).unwrap();
        prop_assert!(back.verify(&[k.public()]).is_ok());
        let mut changed = back.clone();
        changed.references.insert(StorePath::make("source", &Sha256Digest(seed), "extra").unwrap());
        let refused = matches!(changed.verify(&[k.public()]), Err(Error::BadSignature { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn nix_keys_and_signatures(seed in any::<[u8; 32]>(), name in "[a-zA-Z0-9.-]{1,40}", msg in any::<Vec<u8>>()) {
        let k = NixSecretKey::from_seed(&name, &seed).unwrap();
        let file = k.to_file_string();
        let back = NixSecretKey::parse(&file).unwrap();
        prop_assert_eq!(back.to_file_string(), file.clone());
        let p = NixPublicKey::parse(&k.public().to_string()).unwrap();
        prop_assert_eq!(&p, &k.public());
        let sig = NixSignature::parse(&k.sign(&msg).to_string()).unwrap();
        prop_assert!(p.verify(&msg, &sig).is_ok());
    }

    #[test]
    fn bundles(leaves in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let b = encode_bundle(&leaves).unwrap();
        let back = decode_bundle(&b).unwrap();
        prop_assert_eq!(back.len(), leaves.len());
        for (a, l) in back.iter().zip(&leaves) {
            prop_assert_eq!(*a, l.as_slice());
        }
    }
}

#[test]
fn narinfo_refs_and_sigs_are_bounded() {
    let p = "/nix/store/bvmdcxldjir406wd6cjq3v6hraylwqzs-multi-dev";
    let mut text = format!(
        "StorePath: {p}\nURL: x\nNarHash: sha256:09173b06h7hpwfqwjcpgqbxh3qb6as6ifrfj0bx2gxinhph510yi\nNarSize: 1\n"
    );
    for _ in 0..65 {
        text.push_str("Sig: k:AAAA\n");
    }
    assert!(matches!(NarInfo::parse(&text), Err(Error::TooLarge { .. })));
}
