//! Every log under `shared/testdata/eventlogs/` (see its SOURCES.md):
//! record counts, replay against the real PCR/RTMR values where the source
//! gives them, and against tpm2_eventlog 5.4 elsewhere, except where
//! SOURCES.md shows that tool wrong (there our value must be the right one).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use provenix_measured_boot::{
    CcelLog, Error, EventLog, EventType, HashAlgorithm, LogFormat, MrIndex, PcrIndex,
};

/// bank name -> PCR (or MR) index as a decimal string -> lowercase hex.
type Values = BTreeMap<String, BTreeMap<String, String>>;

fn dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/eventlogs"
    ))
    .to_path_buf()
}

fn read(rel: &str) -> Vec<u8> {
    let p = dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json_values(path: &Path) -> Option<Values> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json_alloc::Value = serde_json_alloc::from_str(&text).unwrap();
    let mut out = Values::new();
    for (bank, pcrs) in v.as_object().unwrap() {
        let m = out.entry(bank.clone()).or_default();
        for (i, hex) in pcrs.as_object().unwrap() {
            m.insert(i.clone(), hex.as_str().unwrap().to_ascii_lowercase());
        }
    }
    Some(out)
}

/// The real values a source gives: `<log>.pcrs.json`, or `pcrs.txt` (sha256,
/// `pcrN=HEX`) beside an `eventlog.bin`.
fn real_values(rel: &str) -> Option<Values> {
    if let Some(v) = json_values(&dir().join(format!("{rel}.pcrs.json"))) {
        return Some(v);
    }
    let txt = dir().join(rel).parent()?.join("pcrs.txt");
    let text = std::fs::read_to_string(txt).ok()?;
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=').unwrap();
        m.insert(
            k.strip_prefix("pcr").unwrap().to_string(),
            v.to_ascii_lowercase(),
        );
    }
    Some(BTreeMap::from([("sha256".to_string(), m)]))
}

/// What replay reports: the PCRs the log extends (plus PCR 0 if a
/// StartupLocality event set it), per bank.
fn reported(log: &EventLog) -> Values {
    let mut out = Values::new();
    for bank in log.replay().banks() {
        let m = out.entry(bank.algorithm().name().to_string()).or_default();
        for (i, v) in bank.reported() {
            m.insert(i.get().to_string(), v.to_hex());
        }
    }
    out
}

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A TPM log with this many records.
    Tpm(usize),
    /// A TDX CCEL with this many records and 0xFF padding bytes.
    Ccel(usize, usize),
    /// Refused.
    Refused,
}

/// SOURCES.md's "Records" column, for every log in the folder.
const LOGS: &[(&str, Expect)] = &[
    ("ovmf-direct/eventlog.bin", Expect::Tpm(25)),
    ("ovmf-uki/eventlog.bin", Expect::Tpm(37)),
    ("tpm2-tools/event.bin", Expect::Tpm(2)),
    ("tpm2-tools/event-arch-linux.bin", Expect::Tpm(25)),
    ("tpm2-tools/event-bootorder.bin", Expect::Tpm(104)),
    ("tpm2-tools/event-gce-ubuntu-2104-log.bin", Expect::Tpm(112)),
    ("tpm2-tools/event-moklisttrusted.bin", Expect::Tpm(97)),
    ("tpm2-tools/event-postcode.bin", Expect::Tpm(59)),
    ("tpm2-tools/event-sd-boot-fedora37.bin", Expect::Tpm(28)),
    ("tpm2-tools/event-uefi-sha1-log.bin", Expect::Tpm(17)),
    ("tpm2-tools/event-uefiaction.bin", Expect::Tpm(2)),
    ("tpm2-tools/event-uefiservices.bin", Expect::Tpm(2)),
    ("tpm2-tools/event-uefivar.bin", Expect::Tpm(2)),
    ("tpm2-tools/specid-vendordata.bin", Expect::Refused),
    (
        "go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog",
        Expect::Tpm(76),
    ),
    ("go-attestation/crypto_agile_eventlog", Expect::Tpm(27)),
    ("go-attestation/ebs_event_missing_eventlog", Expect::Tpm(38)),
    ("go-attestation/option_rom_eventlog", Expect::Tpm(61)),
    ("go-attestation/sb_cert_eventlog", Expect::Tpm(15)),
    ("go-attestation/short_no_action_eventlog", Expect::Tpm(1)),
    (
        "go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog",
        Expect::Tpm(106),
    ),
    (
        "go-attestation/windows_gcp_shielded_vm.bin",
        Expect::Tpm(21),
    ),
    ("go-eventlog/arch-linux-workstation.bin", Expect::Tpm(25)),
    ("go-eventlog/cos-85-amd-sev.bin", Expect::Tpm(46)),
    ("go-eventlog/cos-93-amd-sev.bin", Expect::Tpm(46)),
    ("go-eventlog/cos-101-amd-sev.bin", Expect::Tpm(49)),
    ("go-eventlog/debian-10.bin", Expect::Tpm(25)),
    ("go-eventlog/glinux-alex.bin", Expect::Tpm(29)),
    ("go-eventlog/rhel8-uefi.bin", Expect::Tpm(83)),
    ("go-eventlog/ubuntu-1804-amd-sev.bin", Expect::Tpm(88)),
    ("go-eventlog/ubuntu-2104-no-dbx.bin", Expect::Tpm(112)),
    (
        "go-eventlog/ubuntu-2104-no-secure-boot.bin",
        Expect::Tpm(106),
    ),
    ("go-eventlog/linux_tpm12.bin", Expect::Tpm(40)),
    (
        "go-eventlog/cos-113-intel-tdx.bin",
        Expect::Ccel(44, 244_043),
    ),
    (
        "go-eventlog/cos-113-intel-tdx-dupe-separator.bin",
        Expect::Ccel(44, 244_043),
    ),
    (
        "go-eventlog/cos-113-intel-tdx-dupe-separator-unpadded.bin",
        Expect::Ccel(44, 0),
    ),
    ("go-eventlog/CCEL_unpadded.data.bin", Expect::Ccel(20, 0)),
    ("go-eventlog/event_log.bin", Expect::Ccel(28, 62_833)),
    ("keylime/binary_bios_measurements", Expect::Tpm(121)),
    (
        "keylime/binary_bios_measurements-secureboot",
        Expect::Tpm(99),
    ),
    ("keylime/binary_bios_measurements-bogus", Expect::Refused),
    ("keylime/binary_bios_measurements-empty", Expect::Refused),
    ("keylime/mb_log.bin", Expect::Tpm(102)),
    ("rust-keylime/uefi_log.bin", Expect::Tpm(124)),
];

/// Logs whose real values include an IMA-extended PCR 10 that the firmware
/// log cannot cover (SOURCES.md).
const IMA_PCR10: &[&str] = &[
    "ovmf-direct/eventlog.bin",
    "ovmf-uki/eventlog.bin",
    "go-attestation/sb_cert_eventlog",
    "go-eventlog/linux_tpm12.bin",
];

/// Logs with a StartupLocality 3 event, where tpm2_eventlog 5.4's PCR 0 is
/// wrong (it starts PCR 0 at zero).
const TOOL_IGNORES_LOCALITY: &[&str] = &[
    "go-eventlog/glinux-alex.bin",
    "keylime/binary_bios_measurements",
];

const EBS_MISSING: &str = "go-attestation/ebs_event_missing_eventlog";

fn is_log(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_str().unwrap();
    ![".json", ".yaml", ".md", ".txt", ".warn", ".b64"]
        .iter()
        .any(|s| name.ends_with(s))
}

#[test]
fn every_log_in_the_folder_is_listed() {
    let mut found = Vec::new();
    for sub in std::fs::read_dir(dir()).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if is_log(&f) {
                found.push(f.strip_prefix(dir()).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = LOGS.iter().map(|(p, _)| p.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

#[test]
fn record_counts_match_sources_md() {
    for (rel, expect) in LOGS {
        let bytes = read(rel);
        match expect {
            Expect::Tpm(n) => {
                let log = EventLog::parse(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(log.events().len(), *n, "{rel}");
                assert_eq!(log.to_bytes(), bytes, "{rel}: does not re-encode");
                for e in log.events() {
                    // Decoding unauthenticated data never panics; errors are
                    // allowed (the data is the firmware's business).
                    let _ = e.decode_unverified_data().map(|d| d.to_string());
                }
            }
            Expect::Ccel(n, padding) => {
                let log = CcelLog::parse(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(log.events().len(), *n, "{rel}");
                // MR indices are not PCRs.
                assert!(log.events().iter().all(|e| e.pcr().is_none()), "{rel}");
                assert!(log.events().iter().any(|e| CcelLog::mr_index(e).is_some()));
                assert_eq!(log.padding_len(), *padding, "{rel}");
                let mut again = log.to_bytes();
                again.resize(bytes.len(), 0xff);
                assert_eq!(again, bytes, "{rel}: does not re-encode");
                // A CCEL is not a TPM log.
                assert!(
                    matches!(
                        EventLog::parse(&bytes),
                        Err(Error::InvalidHeader { offset: 0, .. })
                    ),
                    "{rel}"
                );
            }
            Expect::Refused => {
                assert!(EventLog::parse(&bytes).is_err(), "{rel}");
            }
        }
    }
}

#[test]
fn replay_equals_real_pcr_values() {
    let mut compared_logs = 0;
    for (rel, expect) in LOGS {
        let Expect::Tpm(_) = expect else { continue };
        let Some(real) = real_values(rel) else {
            continue;
        };
        let log = EventLog::parse(&read(rel)).unwrap();
        let replay = log.replay();
        let mut compared = 0;
        for (bank, pcrs) in &real {
            let Some(ours) = replay.bank(HashAlgorithm::from_name(bank).unwrap()) else {
                continue; // e.g. sha256 values for a SHA-1-only log
            };
            for (i, want) in pcrs {
                let i: u8 = i.parse().unwrap();
                if i == 10 && IMA_PCR10.contains(rel) {
                    continue;
                }
                let got = ours.value(pcr(i)).to_hex();
                if *rel == EBS_MISSING {
                    assert_ne!(
                        &got, want,
                        "{rel} {bank} PCR{i} must differ (incomplete log)"
                    );
                } else {
                    assert_eq!(&got, want, "{rel} {bank} PCR{i}");
                }
                compared += 1;
            }
        }
        assert!(compared > 0, "{rel}: nothing compared");
        compared_logs += 1;
    }
    // ovmf-direct, ovmf-uki, ebs, option_rom, sb_cert, windows_gcp,
    // arch-linux, cos-85/93/101, debian-10, glinux-alex, rhel8,
    // ubuntu-1804, ubuntu-2104 x2, linux_tpm12.
    assert_eq!(compared_logs, 17);
}

#[test]
fn ebs_event_missing_matches_once_the_missing_actions_are_appended() {
    let log = EventLog::parse(&read(EBS_MISSING)).unwrap();
    let real = real_values(EBS_MISSING).unwrap();
    let five = pcr(5);
    let ebs: [&[u8]; 2] = [
        b"Exit Boot Services Invocation",
        b"Exit Boot Services Returned with Success",
    ];
    // SHA-1: the log's own digests, then the two missing actions.
    let sha1 = HashAlgorithm::Sha1;
    let mut v = log.replay().bank(sha1).unwrap().value(five);
    for action in ebs {
        v = sha1.extend(&v, &sha1.hash(action)).unwrap();
    }
    assert_eq!(v.to_hex(), real["sha1"]["5"]);
    // SHA-256: every PCR 5 digest here is the SHA-1 of its event data, so the
    // SHA-256 bank follows by re-hashing the data.
    let sha256 = HashAlgorithm::Sha256;
    let mut v = sha256.filled(0);
    for e in log.events().iter().filter(|e| e.pcr() == Some(five)) {
        assert_eq!(e.digests()[0], sha1.hash(e.unauthenticated_data()));
        v = sha256
            .extend(&v, &sha256.hash(e.unauthenticated_data()))
            .unwrap();
    }
    for action in ebs {
        v = sha256.extend(&v, &sha256.hash(action)).unwrap();
    }
    assert_eq!(v.to_hex(), real["sha256"]["5"]);
}

/// PCR 0 as tpm2_eventlog 5.4 computes it for a StartupLocality log: from
/// zero, and extending every PCR 0 record after the header, the
/// StartupLocality EV_NO_ACTION (digest all zeros) included. Both are
/// mistakes: PCR 0 starts at 00..03 and EV_NO_ACTION is never extended.
fn pcr0_as_tpm2_eventlog_does(log: &EventLog, alg: HashAlgorithm) -> String {
    let mut v = alg.filled(0);
    for e in log.events().iter().skip(1) {
        if e.pcr_index().0 == 0 {
            v = alg.extend(&v, e.digest(alg.id()).unwrap()).unwrap();
        }
    }
    v.to_hex()
}

/// The `pcrs:` section of a tpm2_eventlog YAML (`eventlog.yaml` beside the
/// OVMF logs, which have no `.tpm2_eventlog.pcrs.json`).
fn yaml_pcrs(path: &Path) -> Option<Values> {
    let text = std::fs::read_to_string(path).ok()?;
    let section = text.split_once("\npcrs:\n")?.1;
    let mut out = Values::new();
    let mut bank = String::new();
    for line in section.lines() {
        if let Some(b) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            bank = b.trim().to_string();
        } else if let Some((i, v)) = line.split_once(':') {
            let v = v.trim().strip_prefix("0x").unwrap();
            out.entry(bank.clone())
                .or_default()
                .insert(i.trim().to_string(), v.to_string());
        }
    }
    Some(out)
}

fn tool_values(rel: &str) -> Option<Values> {
    json_values(&dir().join(format!("{rel}.tpm2_eventlog.pcrs.json")))
        .or_else(|| yaml_pcrs(&dir().join(rel).parent()?.join("eventlog.yaml")))
}

#[test]
fn replay_equals_tpm2_eventlog_except_where_it_is_wrong() {
    let mut compared_logs = 0;
    for (rel, expect) in LOGS {
        let Expect::Tpm(_) = expect else { continue };
        let Some(mut tool) = tool_values(rel) else {
            continue;
        };
        let log = EventLog::parse(&read(rel)).unwrap();
        let mut ours = reported(&log);
        if TOOL_IGNORES_LOCALITY.contains(rel) {
            assert_eq!(log.startup_locality().map(|l| l.get()), Some(3), "{rel}");
            for (bank, pcrs) in ours.iter_mut() {
                let alg = HashAlgorithm::from_name(bank).unwrap();
                let tool0 = tool.get_mut(bank).unwrap().remove("0").unwrap();
                let our0 = pcrs.remove("0").unwrap();
                assert_ne!(our0, tool0, "{rel} {bank}");
                assert_eq!(tool0, pcr0_as_tpm2_eventlog_does(&log, alg), "{rel} {bank}");
            }
        }
        assert_eq!(ours, tool, "{rel}");
        compared_logs += 1;
    }
    // Every TPM log tpm2_eventlog printed PCRs for: all but option_rom (it
    // crashes), short_no_action (it fails) and specid-vendordata (it prints
    // none; we refuse the log).
    assert_eq!(compared_logs, 34);
}

#[test]
fn glinux_alex_pcr0_is_the_real_one() {
    let rel = "go-eventlog/glinux-alex.bin";
    let log = EventLog::parse(&read(rel)).unwrap();
    let real = real_values(rel).unwrap();
    for bank in ["sha1", "sha256"] {
        let alg = HashAlgorithm::from_name(bank).unwrap();
        assert_eq!(
            log.replay().bank(alg).unwrap().value(pcr(0)).to_hex(),
            real[bank]["0"]
        );
        assert_ne!(pcr0_as_tpm2_eventlog_does(&log, alg), real[bank]["0"]);
    }
}

#[test]
fn tdx_ccel_replay_equals_real_rtmrs() {
    let mut compared = 0;
    for (rel, expect) in LOGS {
        let Expect::Ccel(..) = expect else { continue };
        let log = CcelLog::parse(&read(rel)).unwrap();
        let banks = log.replay_rtmrs();
        assert_eq!(banks.len(), 1, "{rel}: SHA-384 only");
        let Some(real) = json_values(&dir().join(format!("{rel}.rtmrs.json"))) else {
            continue;
        };
        for (i, want) in &real["sha384"] {
            let mr = MrIndex::new(i.parse().unwrap()).unwrap();
            assert_eq!(&banks[0].value(mr).to_hex(), want, "{rel} MR {i}");
        }
        compared += 1;
    }
    assert_eq!(compared, 3);
}

#[test]
fn odd_fixtures_get_a_clear_error_or_a_correct_replay() {
    assert_eq!(
        EventLog::parse(&read("keylime/binary_bios_measurements-empty")),
        Err(Error::Empty)
    );
    let bogus = EventLog::parse(&read("keylime/binary_bios_measurements-bogus")).unwrap_err();
    assert_eq!(bogus.offset(), Some(0), "{bogus}");
    assert!(
        matches!(bogus, Error::PcrIndexOutOfRange { .. }),
        "{bogus:?}"
    );
    // The header's EventSize (37) stops right after vendorInfoSize; the 4
    // bytes of vendorInfo lie outside it.
    let vendordata = EventLog::parse(&read("tpm2-tools/specid-vendordata.bin")).unwrap_err();
    assert!(
        matches!(vendordata, Error::InvalidHeader { offset: 69, .. }),
        "{vendordata:?}"
    );
    assert!(
        vendordata.to_string().contains("vendorInfo"),
        "{vendordata}"
    );
    // One SHA-1-format StartupLocality record, no Spec ID: a SHA-1 log whose
    // PCR 0 starts at 00..03.
    let short = EventLog::parse(&read("go-attestation/short_no_action_eventlog")).unwrap();
    assert_eq!(short.format(), LogFormat::Sha1);
    assert_eq!(short.startup_locality().map(|l| l.get()), Some(3));
    let mut want = [0u8; 20];
    want[19] = 3;
    let reported: Vec<_> = short.replay().banks()[0].reported().collect();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, pcr(0));
    assert_eq!(reported[0].1.as_bytes(), want);
    // The Windows EV_NO_ACTION record on PCR index 0xFFFFFFFF: kept, not
    // extended.
    let rom = EventLog::parse(&read("go-attestation/option_rom_eventlog")).unwrap();
    let last = rom.events().last().unwrap();
    assert_eq!(last.pcr_index().0, 0xffff_ffff);
    assert_eq!(last.event_type(), EventType::EV_NO_ACTION);
    assert_eq!(last.pcr(), None);
}
