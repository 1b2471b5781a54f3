//! `provenix eventlog`: replays real firmware logs to the PCR values their
//! sources report, and refuses malformed ones with exit 2 and a byte offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> String {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/eventlogs"
    ))
    .join(rel)
    .to_str()
    .unwrap()
    .to_string()
}

fn provenix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(args)
        .output()
        .unwrap()
}

fn json_file(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `provenix eventlog --json` on one file and returns its object.
fn eventlog_json(rel: &str) -> Value {
    let out = provenix(&["eventlog", "--json", &fixture(rel)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{rel}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one object per file");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn replays_to_the_real_pcr_values() {
    // (log, banks whose real values are given, PCRs to compare).
    let cases: &[(&str, &[&str], &[u32])] = &[
        (
            "go-attestation/windows_gcp_shielded_vm.bin",
            &["sha1"],
            &[0, 1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "go-eventlog/arch-linux-workstation.bin",
            &["sha1", "sha256"],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        ),
        // StartupLocality 3: PCR 0 starts at 00..03.
        (
            "go-eventlog/glinux-alex.bin",
            &["sha1", "sha256"],
            &[0, 1, 2, 3, 4, 5, 6, 7],
        ),
        (
            "go-eventlog/cos-101-amd-sev.bin",
            &["sha1", "sha256"],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14],
        ),
    ];
    for (rel, banks, pcrs) in cases {
        let got = eventlog_json(rel);
        let real = json_file(&fixture(&format!("{rel}.pcrs.json")));
        for bank in *banks {
            for i in *pcrs {
                let key = i.to_string();
                let ours = &got["pcrs"][bank][&key];
                if ours.is_null() {
                    // Not extended by the log: the real value is the reset value.
                    let zero = real[bank][&key]
                        .as_str()
                        .unwrap()
                        .bytes()
                        .all(|b| b == b'0');
                    assert!(zero, "{rel} {bank} PCR {i} missing");
                } else {
                    assert_eq!(ours, &real[bank][&key], "{rel} {bank} PCR {i}");
                }
            }
        }
    }
}

#[test]
fn json_shape() {
    let got = eventlog_json("go-eventlog/glinux-alex.bin");
    assert_eq!(got["format"], "crypto-agile");
    assert_eq!(got["banks"], serde_json::json!(["sha1", "sha256"]));
    assert_eq!(got["startup_locality"], 3);
    let events = got["events"].as_array().unwrap();
    assert_eq!(events.len(), 29);
    assert_eq!(events[0]["type"], "EV_NO_ACTION");
    assert_eq!(events[0]["measured"], false);
    assert!(events[0]["unverified_summary"]
        .as_str()
        .unwrap()
        .starts_with("Spec ID Event03"));
    assert_eq!(events[1]["unverified_summary"], "StartupLocality 3");
    for e in events {
        for key in ["index", "offset", "pcr", "type", "type_value", "digests"] {
            assert!(!e[key].is_null(), "{key} in {e}");
        }
    }
    // Only extended PCRs (plus PCR 0) are reported, keys are decimal
    // strings, values lowercase hex.
    for (bank, size) in [("sha1", 40), ("sha256", 64)] {
        let pcrs = got["pcrs"][bank].as_object().unwrap();
        let keys: Vec<&str> = pcrs.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["0", "1", "2", "3", "4", "5", "6", "7"]);
        for v in pcrs.values() {
            let v = v.as_str().unwrap();
            assert_eq!(v.len(), size);
            assert!(v
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
    // The SHA-1-format log without a Spec ID: PCR 0 set by StartupLocality.
    let short = eventlog_json("go-attestation/short_no_action_eventlog");
    assert_eq!(short["format"], "sha1");
    assert_eq!(
        short["pcrs"],
        serde_json::json!({"sha1": {"0": "0000000000000000000000000000000000000003"}})
    );
}

#[test]
fn incomplete_log_replays_to_a_different_pcr5() {
    let rel = "go-attestation/ebs_event_missing_eventlog";
    let got = eventlog_json(rel);
    let real = json_file(&fixture(&format!("{rel}.pcrs.json")));
    assert_ne!(got["pcrs"]["sha1"]["5"], real["sha1"]["5"]);
}

#[test]
fn several_files_one_object_each() {
    let out = provenix(&[
        "eventlog",
        "--json",
        &fixture("tpm2-tools/event.bin"),
        &fixture("tpm2-tools/event-uefivar.bin"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2);
    let tool = json_file(&fixture("tpm2-tools/event.bin.tpm2_eventlog.pcrs.json"));
    assert_eq!(objs[0]["pcrs"], tool);
}

#[test]
fn text_output_lists_events_and_pcrs() {
    let out = provenix(&["eventlog", &fixture("ovmf-uki/eventlog.bin")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("37 records"));
    assert!(text.contains("EV_EFI_BOOT_SERVICES_APPLICATION"));
    assert!(text.contains("unverified"));
    assert!(text.contains("sha256   PCR 4  "));
}

#[test]
fn ccel_mode_replays_rtmrs() {
    let rel = "go-eventlog/cos-113-intel-tdx.bin";
    let out = provenix(&["eventlog", "--json", "--ccel", &fixture(rel)]);
    assert_eq!(out.status.code(), Some(0));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let real = json_file(&fixture(&format!("{rel}.rtmrs.json")));
    assert_eq!(got["rtmrs"], real);
    assert_eq!(got["padding"], 244_043);
}

/// Exit 2, nothing on stdout, the offset and what was expected on stderr.
fn refused(files: &[String], offset: usize, expected: &str) {
    let mut args = vec!["eventlog", "--json"];
    args.extend(files.iter().map(|f| f.as_str()));
    let out = provenix(&args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "partial output printed");
    assert!(
        stderr.contains(&format!("byte {offset}:")),
        "{stderr} lacks byte {offset}"
    );
    assert!(stderr.contains(expected), "{stderr} lacks {expected:?}");
}

#[test]
fn malformed_logs_exit_2_with_the_offset() {
    refused(
        &[fixture("keylime/binary_bios_measurements-empty")],
        0,
        "empty input",
    );
    refused(
        &[fixture("keylime/binary_bios_measurements-bogus")],
        0,
        "expected 0-23",
    );
    refused(
        &[fixture("tpm2-tools/specid-vendordata.bin")],
        69,
        "vendorInfo",
    );
    // A TDX CCEL is not a TPM log.
    refused(
        &[fixture("go-eventlog/CCEL_unpadded.data.bin")],
        0,
        "PCRIndex 0",
    );
    // A good file before a bad one: still nothing printed.
    refused(
        &[
            fixture("tpm2-tools/event.bin"),
            fixture("keylime/binary_bios_measurements-empty"),
        ],
        0,
        "binary_bios_measurements-empty",
    );
    // A truncated log.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.bin");
    let bytes = std::fs::read(fixture("tpm2-tools/event.bin")).unwrap();
    std::fs::write(&cut, &bytes[..150]).unwrap();
    // (The offset is where the missing value starts: record 1's SHA-256
    // digest.)
    refused(
        &[cut.to_str().unwrap().to_string()],
        147,
        "input ends early",
    );
}

#[test]
fn a_missing_file_is_exit_2() {
    let out = provenix(&["eventlog", "/nonexistent/provenix-eventlog"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every TPM log in the fixture folder through the CLI: its "pcrs" are
/// exactly the library replay, which `measured-boot/tests/fixtures.rs`
/// checks against the real values (or tpm2_eventlog's where the source
/// gives none). CCEL logs and the refused fixtures are covered above.
#[test]
fn every_fixture_log_through_the_cli_equals_the_checked_replay() {
    use provenix_measured_boot::EventLog;
    let root = std::path::PathBuf::from(fixture(""));
    let mut checked = 0;
    for sub in std::fs::read_dir(&root).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            if [".json", ".yaml", ".md", ".txt", ".warn", ".b64"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                continue;
            }
            let Ok(log) = EventLog::parse(&std::fs::read(&f).unwrap()) else {
                continue; // CCEL and the refused fixtures: tested above
            };
            let rel = f.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
            let got = eventlog_json(&rel);
            let mut want = serde_json::Map::new();
            for bank in log.replay().banks() {
                let mut m = serde_json::Map::new();
                for (i, v) in bank.reported() {
                    m.insert(i.get().to_string(), Value::String(v.to_hex()));
                }
                want.insert(bank.algorithm().name().to_owned(), Value::Object(m));
            }
            assert_eq!(got["pcrs"], Value::Object(want), "{rel}");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} logs found");
}
