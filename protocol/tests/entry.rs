//! Entry encoding: pinned bytes, round trips, one-field negative tests, and
//! the split of large entries into blob leaves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use provenix_protocol::entry::MAX_INPUTS;
use provenix_protocol::leaf::{Leaf, LeafReader, Record, MAX_LEAF};
use provenix_protocol::{
    BuilderId, Entry, EntryOutput, Error, NarHash, ResolvedInput, Sha256Digest, SignedEntry,
    SourceRef, StorePath,
};

#[path = "support/entries.rs"]
mod entries;

fn sp(s: &str) -> StorePath {
    StorePath::parse(s).unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

use entries::sample;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn decode_one(leaf: &[u8]) -> Result<SignedEntry, Error> {
    let mut r = LeafReader::new();
    match r.push(leaf)? {
        Some(Record::Entry(e)) => Ok(*e),
        other => panic!("expected an entry, got {other:?}"),
    }
}

#[test]
fn sample_bytes_are_pinned() {
    let signed = sample().sign(&key()).unwrap();
    let leaves = signed.to_leaves();
    assert_eq!(leaves.len(), 1);
    // Assembled by hand from docs/wire-format.md; any change here is a
    // format change and needs a new version.
    let mut want = vec![0x03, 0x01];
    want.extend([0xaa; 32]); // builder digest
    want.push(5); // seq (varint)
    want.push(53); // drv path length (varint)
    want.extend(b"/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv");
    want.extend([0x11; 32]); // drv_hash
    want.push(1); // built_locally
    want.extend([0x33; 32]); // settings digest
    want.extend([1, 0]); // sandbox, remote_builders
    want.extend([1, 28]); // Some(source), length
    want.extend(b"github:NixOS/nixpkgs/0123abc");
    want.extend([0x55; 32]); // system
    want.extend([0x80, 0xe2, 0xcf, 0xaa, 0x06]); // time 1700000000 (varint)
    want.push(0); // lists: Inline
    want.push(1); // one output
    want.extend([3]);
    want.extend(b"out");
    want.push(49);
    want.extend(b"/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello");
    want.extend([0x22; 32]);
    want.extend([0x80, 0x01]); // nar_size 128 (varint)
    want.push(0); // no references
    want.push(1); // one resolved input
    want.push(58);
    want.extend(b"/nix/store/z56a0nzrpznn3zcjqsyl9ppklasap124-busybox-static");
    want.extend([0x44; 32]);
    assert_eq!(hex(&leaves[0][..leaves[0].len() - 64]), hex(&want));
    // The signature, made independently by Python's `cryptography` package
    // (OpenSSL's Ed25519) over "provenix/entry/v1\0" || the body above.
    assert_eq!(
        hex(signed.signature()),
        "deb95312da39801817a35ee3031cf475c115ee7b0d0b1b08bbeefe5d393598a8\
         dce63b7e37a2af6a8a8972475c74ace28ab3e0a03cf8785213579bb86e662b09"
    );
    assert_eq!(
        hex(&leaves[0][leaves[0].len() - 64..]),
        hex(signed.signature())
    );
    assert_eq!(leaves[0].len(), want.len() + 64);
    assert_eq!(leaves[0].len(), 470);
}

#[test]
fn round_trip_and_verify() {
    let e = sample();
    let signed = e.sign(&key()).unwrap();
    let back = decode_one(&signed.to_leaves()[0]).unwrap();
    assert_eq!(back.entry(), &e);
    assert_eq!(back, signed);
    back.verify(&key().verifying_key()).unwrap();
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    assert!(matches!(
        back.verify(&other),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn flipping_any_signed_byte_breaks_the_signature_or_the_decode() {
    let leaf = sample().sign(&key()).unwrap().to_leaves().remove(0);
    let vk = key().verifying_key();
    for i in 1..leaf.len() {
        let mut bad = leaf.clone();
        bad[i] ^= 0x01;
        if let Ok(e) = decode_one(&bad) {
            assert!(
                matches!(e.verify(&vk), Err(Error::BadSignature { .. })),
                "byte {i} changed and still verified"
            );
        }
    }
}

/// Re-encode the sample with one wire byte replaced (signature left as is).
fn patched(offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut leaf = sample().sign(&key()).unwrap().to_leaves().remove(0);
    leaf.splice(offset..offset + bytes.len(), bytes.iter().copied());
    leaf
}

#[test]
fn negative_one_field_each() {
    let leaf = sample().sign(&key()).unwrap().to_leaves().remove(0);
    // Trailing byte after the signature.
    let mut t = leaf.clone();
    t.push(0);
    assert!(matches!(
        decode_one(&t),
        Err(Error::TrailingBytes { extra: 1, .. })
    ));
    // Missing last signature byte.
    assert!(matches!(
        decode_one(&leaf[..leaf.len() - 1]),
        Err(Error::Truncated { .. })
    ));
    // Version 2.
    assert!(matches!(
        decode_one(&patched(1, &[2])),
        Err(Error::UnknownVersion { found: 2, .. })
    ));
    // Unknown tag.
    assert!(matches!(
        decode_one(&patched(0, &[0x7f])),
        Err(Error::UnknownLeafTag(0x7f))
    ));
    // Bool encoded as 2 in built_locally: postcard refuses it.
    let off_built = 2 + 32 + 1 + 1 + 53 + 32;
    assert!(matches!(
        decode_one(&patched(off_built, &[2])),
        Err(Error::Malformed { .. })
    ));
    // Drv path no longer a store path ("/nix/store" -> "/nix/stor_").
    assert!(matches!(
        decode_one(&patched(2 + 32 + 1 + 1 + 9, b"_")),
        Err(Error::InvalidStorePath { .. })
    ));
    // seq encoded non-canonically (5 as the two-byte varint 0x85 0x00) is
    // refused even though postcard alone would read it.
    let mut nc = leaf.clone();
    nc.splice(2 + 32..2 + 32 + 1, [0x85, 0x00]);
    assert!(matches!(decode_one(&nc), Err(Error::NonCanonical { .. })));
    // Empty leaf.
    assert!(matches!(decode_one(&[]), Err(Error::Truncated { .. })));
}

#[test]
fn unsorted_lists_are_refused_on_sign_and_decode() {
    let mut e = sample();
    e.resolved_inputs.push(ResolvedInput {
        store_path: sp("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello"),
        nar_hash: NarHash(Sha256Digest([0x66; 32])),
    });
    assert!(matches!(
        e.sign(&key()),
        Err(Error::Unsorted {
            what: "resolved inputs"
        })
    ));
    e.normalize();
    assert!(e.sign(&key()).is_ok());
    // Duplicate output names.
    let mut d = sample();
    d.outputs.push(d.outputs[0].clone());
    assert!(matches!(
        d.sign(&key()),
        Err(Error::Unsorted {
            what: "entry outputs"
        })
    ));
    // Duplicate references after normalize are removed; before, refused.
    let mut r = sample();
    let p = sp("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello");
    r.outputs[0].references = vec![p.clone(), p];
    assert!(matches!(
        r.sign(&key()),
        Err(Error::Unsorted {
            what: "output references"
        })
    ));
}

#[test]
fn field_bounds() {
    let mut e = sample();
    e.outputs.clear();
    assert!(matches!(
        e.sign(&key()),
        Err(Error::InvalidValue {
            what: "entry outputs",
            ..
        })
    ));
    let mut n = sample();
    n.outputs[0].name = ".hidden".into();
    assert!(matches!(
        n.sign(&key()),
        Err(Error::InvalidValue {
            what: "output name",
            ..
        })
    ));
    assert!(matches!(
        SourceRef::new(&"a".repeat(1025)),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        SourceRef::new("has space"),
        Err(Error::InvalidValue { .. })
    ));
    let mut big = sample();
    big.resolved_inputs = (0..=MAX_INPUTS)
        .map(|i| ResolvedInput {
            store_path: StorePath::make("source", &Sha256Digest::of(&i.to_le_bytes()), "x")
                .unwrap(),
            nar_hash: NarHash(Sha256Digest([0; 32])),
        })
        .collect();
    big.normalize();
    assert!(matches!(
        big.sign(&key()),
        Err(Error::TooLarge {
            what: "resolved inputs",
            ..
        })
    ));
}

use entries::with_inputs as large_entry;

#[test]
fn large_entries_split_into_blob_leaves_and_reassemble() {
    let e = large_entry(3000); // ~ 3000 * 100 bytes: five blob leaves
    let signed = e.sign(&key()).unwrap();
    let leaves = signed.to_leaves();
    assert!(leaves.len() >= 5, "{} leaves", leaves.len());
    assert!(leaves.iter().all(|l| l.len() <= MAX_LEAF));
    let (last, blobs) = leaves.split_last().unwrap();
    assert!(blobs.iter().all(|b| b[0] == 0x05));
    let mut r = LeafReader::new();
    for b in blobs {
        assert!(r.push(b).unwrap().is_none());
    }
    let Some(Record::Entry(back)) = r.push(last).unwrap() else {
        panic!()
    };
    r.finish().unwrap();
    assert_eq!(back.entry(), &e);
    back.verify(&key().verifying_key()).unwrap();

    // A missing blob: the digest no longer matches.
    let mut r = LeafReader::new();
    for b in &blobs[1..] {
        r.push(b).unwrap();
    }
    assert!(matches!(
        r.push(last),
        Err(Error::InvalidValue {
            what: "entry lists",
            ..
        })
    ));
    // No blobs at all.
    assert!(matches!(
        LeafReader::new().push(last),
        Err(Error::InvalidValue {
            what: "entry lists",
            ..
        })
    ));
    // Blobs left dangling at the end of the log.
    let mut r = LeafReader::new();
    r.push(&blobs[0]).unwrap();
    assert!(matches!(r.finish(), Err(Error::Truncated { .. })));
    // Oversized leaf.
    assert!(matches!(
        Leaf::decode(&vec![5u8; MAX_LEAF + 1]),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn small_entries_stay_inline_until_the_leaf_limit() {
    // The largest inline entry fits in one leaf; one input more detaches.
    let leaves = |n| large_entry(n).sign(&key()).unwrap().to_leaves();
    let (mut lo, mut hi) = (1, 3000); // lo stays inline, hi detaches
    assert_eq!(leaves(lo).len(), 1);
    assert!(leaves(hi).len() > 1);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if leaves(mid).len() == 1 {
            lo = mid
        } else {
            hi = mid
        }
    }
    let inline = leaves(lo);
    assert!(inline[0].len() <= MAX_LEAF);
    assert!(inline[0].len() > MAX_LEAF - 200, "{}", inline[0].len());
    let split = leaves(hi);
    assert!(split.len() >= 2);
    assert_eq!(split.last().unwrap()[0], 0x03);
}

fn arb_path() -> impl Strategy<Value = StorePath> {
    (any::<[u8; 32]>(), "[a-zA-Z0-9+_?=-][a-zA-Z0-9+._?=-]{0,40}")
        .prop_map(|(d, name)| StorePath::make("source", &Sha256Digest(d), &name).unwrap())
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        proptest::collection::vec(
            (
                "[a-z]{1,8}",
                arb_path(),
                any::<[u8; 32]>(),
                any::<u64>(),
                proptest::collection::vec(arb_path(), 0..4),
            ),
            1..4,
        ),
        proptest::collection::vec((arb_path(), any::<[u8; 32]>()), 0..6),
        any::<(bool, bool, bool)>(),
        proptest::option::of("[!-~]{1,60}"),
        any::<u64>(),
    )
        .prop_map(|(b, seq, outs, ins, (bl, sb, rb), src, time)| {
            let mut e = sample();
            e.builder = BuilderId::from_public_digest(&Sha256Digest(b));
            e.seq = seq;
            e.outputs = outs
                .into_iter()
                .map(|(name, p, h, s, refs)| EntryOutput {
                    name,
                    store_path: p,
                    nar_hash: NarHash(Sha256Digest(h)),
                    nar_size: s,
                    references: refs,
                })
                .collect();
            e.outputs.sort_by(|a, b| a.name.cmp(&b.name));
            e.outputs.dedup_by(|a, b| a.name == b.name);
            e.resolved_inputs = ins
                .into_iter()
                .map(|(p, h)| ResolvedInput {
                    store_path: p,
                    nar_hash: NarHash(Sha256Digest(h)),
                })
                .collect();
            e.resolved_inputs
                .dedup_by(|a, b| a.store_path == b.store_path);
            e.built_locally = bl;
            e.build_env.sandbox = sb;
            e.build_env.remote_builders = rb;
            e.source = src.map(|s| SourceRef::new(&s).unwrap());
            e.time = time;
            e.normalize();
            e
        })
}

proptest! {
    #[test]
    fn any_entry_round_trips(e in arb_entry()) {
        let signed = e.sign(&key()).unwrap();
        let leaves = signed.to_leaves();
        prop_assert_eq!(leaves.len(), 1);
        let back = decode_one(&leaves[0]).unwrap();
        prop_assert_eq!(back.entry(), &e);
        prop_assert!(back.verify(&key().verifying_key()).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut leaf = vec![0x03];
        leaf.extend(bytes);
        let _ = decode_one(&leaf);
    }
}

#[test]
fn entry_bundles_round_trip_and_refuse_truncation() {
    use provenix_protocol::leaf::{decode_bundle, encode_bundle};
    let leaves = large_entry(1500).sign(&key()).unwrap().to_leaves();
    let bundle = encode_bundle(&leaves).unwrap();
    let back = decode_bundle(&bundle).unwrap();
    assert_eq!(back.len(), leaves.len());
    assert!(back.iter().zip(&leaves).all(|(a, b)| *a == b.as_slice()));
    assert!(matches!(
        decode_bundle(&bundle[..bundle.len() - 1]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(decode_bundle(&[0]), Err(Error::Truncated { .. })));
    assert!(decode_bundle(&[]).unwrap().is_empty());
    let too_many = vec![vec![5u8]; 257];
    assert!(matches!(
        encode_bundle(&too_many),
        Err(Error::TooLarge { .. })
    ));
    let mut raw = Vec::new();
    for _ in 0..257 {
        raw.extend([0, 1, 5]);
    }
    assert!(matches!(
        decode_bundle(&raw),
        Err(Error::TrailingBytes { .. })
    ));
}
