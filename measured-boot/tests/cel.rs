//! CEL-JSON logs: read/write round trips (property tests), systemd's own
//! record layout, replay on top of a firmware log, and one broken field
//! per negative test with one error kind each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use provenix_measured_boot::cel::{JsonContent, OtherContent, MAX_CEL_LOG_SIZE};
use provenix_measured_boot::{
    CelContent, CelLog, CelRecord, Digest, Error, EventLog, HashAlgorithm, PcrIndex,
    SystemMeasurement,
};
use provenix_protocol::hash::{NarHash, Sha256Digest};
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{StorePath, SystemIdentity};

const TOP: &str = "/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello";

fn identity(mode: MeasurementMode, byte: u8) -> SystemIdentity {
    let top = StorePath::parse(TOP).unwrap();
    SystemIdentity::from_closure(
        top.clone(),
        mode,
        &[ClosurePath {
            path: top,
            nar_hash: NarHash(Sha256Digest([byte; 32])),
            nar_size: 128,
        }],
    )
    .unwrap()
}

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

fn arb_banks() -> impl Strategy<Value = Vec<HashAlgorithm>> {
    prop::sample::subsequence(HashAlgorithm::ALL.to_vec(), 1..=5).prop_shuffle()
}

fn arb_json() -> impl Strategy<Value = serde_json_alloc::Value> {
    use serde_json_alloc::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_record() -> impl Strategy<Value = CelRecord> {
    let systemd =
        (arb_banks(), 0u8..24, "[a-z-]{1,16}", any::<u64>()).prop_map(|(banks, p, word, ts)| {
            let content = JsonContent::parse(
                &serde_json_alloc::json!({
                    "string": word, "eventType": "phase", "timestamp": ts,
                    "bootId": "0123456789abcdef0123456789abcdef"
                })
                .to_string(),
            )
            .unwrap();
            let digests = banks.iter().map(|b| b.hash(word.as_bytes())).collect();
            CelRecord::new(pcr(p), digests, CelContent::Systemd(content)).unwrap()
        });
    let provenix = (
        arb_banks(),
        0u8..24,
        any::<u8>(),
        prop::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(mut banks, p, byte, verity)| {
            if !banks.contains(&HashAlgorithm::Sha256) {
                banks.push(HashAlgorithm::Sha256);
            }
            let mode = match verity {
                Some(h) => MeasurementMode::DmVerity {
                    root_hash: Sha256Digest(h),
                },
                None => MeasurementMode::ContentRehash,
            };
            SystemMeasurement::new(identity(mode, byte))
                .unwrap()
                .to_record(pcr(p), &banks)
                .unwrap()
        });
    let other = (arb_banks(), 0u8..24, "[a-z_]{1,12}", arb_json()).prop_filter_map(
        "reserved content type",
        |(banks, p, ty, json)| {
            let content =
                OtherContent::new(&ty, JsonContent::parse(&json.to_string()).ok()?).ok()?;
            let digests = banks.iter().map(|b| b.hash(ty.as_bytes())).collect();
            Some(CelRecord::new(pcr(p), digests, CelContent::Other(content)).unwrap())
        },
    );
    prop_oneof![systemd, provenix, other]
}

fn arb_log() -> impl Strategy<Value = CelLog> {
    (prop::collection::vec(arb_record(), 0..8), any::<bool>()).prop_map(|(records, numbered)| {
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| if numbered { r.with_recnum(i as u64) } else { r })
            .collect();
        CelLog::new(records).unwrap()
    })
}

proptest! {
    /// write -> read gives the log back, and writing is canonical.
    #[test]
    fn write_read_round_trip(log in arb_log()) {
        let bytes = log.to_bytes();
        let parsed = CelLog::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &log);
        prop_assert_eq!(parsed.to_bytes(), bytes);
    }

    /// Replaying a CEL log equals extending each record's PCR directly, and
    /// banks a record lists no digest for stay untouched.
    #[test]
    fn replay_equals_direct_extend(log in arb_log()) {
        let banks = HashAlgorithm::ALL;
        let replay = log.replay(&banks).unwrap();
        for bank in banks {
            for i in 0..24u8 {
                let mut v = bank.filled(if (17..=22).contains(&i) { 0xff } else { 0 });
                for r in log.records().iter().filter(|r| r.pcr().get() == i) {
                    if let Some(d) = r.digest(bank) {
                        v = bank.extend(&v, d).unwrap();
                    }
                }
                prop_assert_eq!(replay.bank(bank).unwrap().value(pcr(i)), v);
            }
        }
    }
}

/// A record as systemd 255 writes it: its own key order, no recnum.
const SYSTEMD_RECORD: &str = "{\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":\"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12\"},{\"hashAlg\":\"sha256\",\"digest\":\"d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592\"}],\"content_type\":\"systemd\",\"content\":{\"string\":\"enter-initrd\",\"bootId\":\"5e9eb7d8b1a54d6c9f2f3b8d9c0e1f2a\",\"timestamp\":1964803,\"eventType\":\"phase\"}}";

fn seq(records: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.push(0x1e);
        out.extend_from_slice(r.as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn reads_systemds_layout_and_whitespace() {
    let log = CelLog::parse(&seq(&[SYSTEMD_RECORD, SYSTEMD_RECORD])).unwrap();
    assert_eq!(log.records().len(), 2);
    let r = &log.records()[1];
    assert_eq!(r.pcr().get(), 11);
    assert_eq!(r.recnum(), None);
    assert_eq!(r.digests().len(), 2);
    assert!(r.summary().contains("enter-initrd"));
    // Pretty-printed, upper-case hex, other key order: the same record.
    let v: serde_json_alloc::Value = serde_json_alloc::from_str(SYSTEMD_RECORD).unwrap();
    let pretty = serde_json_alloc::to_string_pretty(&v)
        .unwrap()
        .replace(
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            "2FD4E1C67A2D28FCED849EE1BB76E7391B93EB12",
        )
        .replace("\"sha256\"", "\"SHA256\"");
    let again = CelLog::parse(&seq(&[&pretty])).unwrap();
    assert_eq!(&again.records()[0], &log.records()[0]);
    assert_eq!(CelLog::parse(b"").unwrap().records().len(), 0);
}

#[test]
fn replay_on_top_of_the_firmware_log() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/eventlogs/ovmf-uki"
    );
    let fw = EventLog::parse(&std::fs::read(format!("{dir}/eventlog.bin")).unwrap()).unwrap();
    let base = fw.replay();
    let phase = HashAlgorithm::Sha256.hash(b"enter-initrd");
    let m = SystemMeasurement::new(identity(MeasurementMode::ContentRehash, 7)).unwrap();
    let system = m.to_record(pcr(14), &[HashAlgorithm::Sha256]).unwrap();
    let systemd = CelRecord::new(
        pcr(11),
        vec![phase],
        CelContent::Systemd(JsonContent::parse(r#"{"string":"enter-initrd"}"#).unwrap()),
    )
    .unwrap();
    let cel = CelLog::new(vec![systemd, system]).unwrap();
    let mut combined = base.clone();
    combined.apply_cel(&cel).unwrap();
    let sha = HashAlgorithm::Sha256;
    let b0 = base.bank(sha).unwrap();
    let b1 = combined.bank(sha).unwrap();
    assert_eq!(
        b1.value(pcr(11)),
        sha.extend(&b0.value(pcr(11)), &phase).unwrap()
    );
    let sys = Digest::new(sha.id(), m.digest().as_bytes()).unwrap();
    assert_eq!(b1.value(pcr(14)), sha.extend(&sha.filled(0), &sys).unwrap());
    assert!(b1.is_reported(pcr(14)));
    assert!(!b0.is_reported(pcr(14)));
    // The SHA-1 bank: the records list no SHA-1 digest, so it is untouched.
    let s1 = HashAlgorithm::Sha1;
    assert_eq!(
        combined.bank(s1).unwrap().value(pcr(11)),
        base.bank(s1).unwrap().value(pcr(11))
    );
    for i in (0..24).filter(|i| *i != 11 && *i != 14) {
        assert_eq!(b1.value(pcr(i)), b0.value(pcr(i)));
    }
}

fn provenix_json() -> String {
    let m = SystemMeasurement::new(identity(MeasurementMode::ContentRehash, 3)).unwrap();
    m.to_record(pcr(14), &[HashAlgorithm::Sha256, HashAlgorithm::Sha1])
        .unwrap()
        .to_json()
}

/// An error kind and, for `CelField`, the field.
type Kind = (&'static str, Option<&'static str>);

/// Parses `bytes` and names the error kind.
fn kind(bytes: &[u8]) -> Kind {
    match CelLog::parse(bytes).unwrap_err() {
        Error::CelFraming { .. } => ("CelFraming", None),
        Error::CelJson { .. } => ("CelJson", None),
        Error::CelField { field, .. } => ("CelField", Some(field)),
        Error::CelRecnum { .. } => ("CelRecnum", None),
        Error::SystemEventMismatch { .. } => ("SystemEventMismatch", None),
        Error::TooLarge { .. } => ("TooLarge", None),
        other => panic!("unexpected {other:?}"),
    }
}

fn edit(base: &str, from: &str, to: &str) -> Vec<u8> {
    assert!(base.contains(from), "{from} not in {base}");
    seq(&[&base.replacen(from, to, 1)])
}

#[test]
fn one_broken_field_one_error() {
    let ok = seq(&[SYSTEMD_RECORD]);
    assert!(CelLog::parse(&ok).is_ok());
    let p = provenix_json();
    assert!(CelLog::parse(&seq(&[&p])).is_ok());
    let m = SystemMeasurement::new(identity(MeasurementMode::ContentRehash, 3)).unwrap();
    let sys_hex = m.digest().to_hex();
    let mut other_sys = sys_hex.clone();
    other_sys.replace_range(0..1, if sys_hex.starts_with('0') { "1" } else { "0" });
    let cases: Vec<(&str, Vec<u8>, Kind)> = vec![
        ("no separator", ok[1..].to_vec(), ("CelFraming", None)),
        ("no line feed", ok[..ok.len() - 1].to_vec(), ("CelFraming", None)),
        ("not JSON", seq(&["{\"pcr\":"]), ("CelJson", None)),
        ("duplicate key", edit(SYSTEMD_RECORD, "{\"pcr\":11,", "{\"pcr\":11,\"pcr\":11,"), ("CelJson", None)),
        ("not an object", seq(&["[1]"]), ("CelField", Some("(record)"))),
        ("unknown field", edit(SYSTEMD_RECORD, "{\"pcr\":11,", "{\"pcr\":11,\"extra\":1,"), ("CelField", Some("(record)"))),
        ("pcr 24", edit(SYSTEMD_RECORD, "\"pcr\":11", "\"pcr\":24"), ("CelField", Some("pcr"))),
        ("pcr missing", edit(SYSTEMD_RECORD, "\"pcr\":11,", ""), ("CelField", Some("pcr"))),
        ("pcr a string", edit(SYSTEMD_RECORD, "\"pcr\":11", "\"pcr\":\"11\""), ("CelField", Some("pcr"))),
        ("recnum wrong", edit(SYSTEMD_RECORD, "{\"pcr\":11,", "{\"recnum\":5,\"pcr\":11,"), ("CelRecnum", None)),
        ("recnum negative", edit(SYSTEMD_RECORD, "{\"pcr\":11,", "{\"recnum\":-1,\"pcr\":11,"), ("CelField", Some("recnum"))),
        ("no digests", edit(SYSTEMD_RECORD, "\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":\"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12\"},{\"hashAlg\":\"sha256\",\"digest\":\"d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592\"}]", "\"digests\":[]"), ("CelField", Some("digests"))),
        ("unknown bank", edit(SYSTEMD_RECORD, "\"sha1\"", "\"md5\""), ("CelField", Some("digests.hashAlg"))),
        ("bank twice", edit(SYSTEMD_RECORD, "\"digests\":[{", "\"digests\":[{\"hashAlg\":\"SHA1\",\"digest\":\"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12\"},{"), ("CelField", Some("digests.hashAlg"))),
        ("short digest", edit(SYSTEMD_RECORD, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "2fd4e1c6"), ("CelField", Some("digests.digest"))),
        ("non-hex digest", edit(SYSTEMD_RECORD, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "zfd4e1c67a2d28fced849ee1bb76e7391b93eb12"), ("CelField", Some("digests.digest"))),
        ("digest extra field", edit(SYSTEMD_RECORD, "{\"hashAlg\":\"sha1\",", "{\"x\":1,\"hashAlg\":\"sha1\","), ("CelField", Some("digests"))),
        ("content_type missing", edit(SYSTEMD_RECORD, "\"content_type\":\"systemd\",", ""), ("CelField", Some("content_type"))),
        ("content_type a number", edit(SYSTEMD_RECORD, "\"content_type\":\"systemd\"", "\"content_type\":1"), ("CelField", Some("content_type"))),
        ("content missing", edit(&p, "\"content\":{", "\"contentx\":{"), ("CelField", Some("(record)"))),
        ("systemd content a string", edit(SYSTEMD_RECORD, "\"content\":{\"string\":\"enter-initrd\",\"bootId\":\"5e9eb7d8b1a54d6c9f2f3b8d9c0e1f2a\",\"timestamp\":1964803,\"eventType\":\"phase\"}", "\"content\":\"x\""), ("CelField", Some("content"))),
        ("provenix system altered", edit(&p, &format!("\"system\":\"{sys_hex}\""), &format!("\"system\":\"{other_sys}\"")), ("SystemEventMismatch", None)),
        ("provenix digest altered", edit(&p, &format!("\"digest\":\"{sys_hex}\""), &format!("\"digest\":\"{other_sys}\"")), ("SystemEventMismatch", None)),
        ("provenix toplevel", edit(&p, TOP, "/nix/store/not-a-store-path"), ("CelField", Some("content.toplevel"))),
        ("provenix mode", edit(&p, "\"content-rehash\"", "\"rehash\""), ("CelField", Some("content.mode"))),
        ("provenix closure digest", edit(&p, "\"closure_digest\":\"", "\"closure_digest\":\"x"), ("CelField", Some("content.closure_digest"))),
        ("provenix verity hash without dm-verity", edit(&p, "\"mode\":", &format!("\"verity_root_hash\":\"{sys_hex}\",\"mode\":")), ("CelField", Some("content.verity_root_hash"))),
        ("provenix unknown content field", edit(&p, "\"mode\":", "\"x\":1,\"mode\":"), ("CelField", Some("content"))),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(
            kind(&bytes),
            expected,
            "{name}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // A provenix record without a sha256 digest.
    let sha1_only = {
        let v: serde_json_alloc::Value = serde_json_alloc::from_str(&p).unwrap();
        let mut v = v;
        let d = v["digests"].as_array_mut().unwrap();
        d.retain(|e| e["hashAlg"] == "sha1");
        v.to_string()
    };
    assert_eq!(kind(&seq(&[&sha1_only])), ("SystemEventMismatch", None));
    // Errors name the record and its offset.
    match CelLog::parse(&[ok.clone(), edit(SYSTEMD_RECORD, "\"pcr\":11", "\"pcr\":99")].concat())
        .unwrap_err()
    {
        Error::CelField { offset, record, .. } => {
            assert_eq!((offset, record), (ok.len(), 1));
        }
        other => panic!("{other:?}"),
    }
    let big = vec![0x1e; MAX_CEL_LOG_SIZE + 1];
    assert_eq!(kind(&big), ("TooLarge", None));
}

#[test]
fn constructors_refuse_what_the_parser_refuses() {
    let sha = HashAlgorithm::Sha256;
    let c = || CelContent::Systemd(JsonContent::parse("{}").unwrap());
    assert!(CelRecord::new(pcr(1), vec![], c()).is_err());
    assert!(CelRecord::new(pcr(1), vec![sha.hash(b"a"), sha.hash(b"b")], c()).is_err());
    assert!(CelRecord::new(
        pcr(1),
        vec![sha.hash(b"a")],
        CelContent::Systemd(JsonContent::parse("[]").unwrap())
    )
    .is_err());
    assert!(OtherContent::new("systemd", JsonContent::parse("{}").unwrap()).is_err());
    assert!(JsonContent::parse(r#"{"a":1,"a":2}"#).is_err());
    let m = SystemMeasurement::new(identity(MeasurementMode::ContentRehash, 1)).unwrap();
    assert!(m.to_record(pcr(14), &[HashAlgorithm::Sha1]).is_err());
    let other = SystemMeasurement::new(identity(MeasurementMode::ContentRehash, 2)).unwrap();
    assert!(CelRecord::new(
        pcr(14),
        vec![m.measurement(sha).unwrap()],
        CelContent::Provenix(other)
    )
    .is_err());
    let r = CelRecord::new(pcr(1), vec![sha.hash(b"a")], c()).unwrap();
    assert!(CelLog::new(vec![r.clone().with_recnum(1)]).is_err());
    assert!(CelLog::new(vec![r.with_recnum(0)]).is_ok());
    assert_eq!(
        m.measurement(sha).unwrap().as_bytes(),
        m.identity().digest().unwrap().as_bytes()
    );
}
