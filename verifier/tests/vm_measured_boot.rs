//! A real measured boot: `images/vm/run.sh` builds a UKI from Debian's
//! kernel, puts it on a GPT ESP image, provisions an EK-certified swtpm and
//! boots OVMF under QEMU (TCG) once; the guest prints the firmware event log
//! and every PCR it reads. The truth here comes from the TPM, not from us:
//! `provenix eventlog --json` must replay the log to exactly the PCR values
//! the guest read, and the PCR 4 / PCR 11 records must be the UKI, its
//! kernel and systemd-stub's section measurements of the kept artifacts,
//! and `provenix predict --uki` on those artifacts must predict PCR 4, 9 and
//! 11 (events and values) exactly as measured.
//!
//! All tests share one boot (about 15 s under TCG). A host package missing
//! makes them fail, naming the package (`run.sh` exits 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What one harness run left behind (see images/vm/README.md).
struct Boot {
    dir: PathBuf,
    /// `provenix eventlog --json` of the extracted log.
    replay: Value,
    /// PCRs read in the guest: bank -> index (decimal string) -> hex.
    guest: Value,
}

impl Boot {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The measured (extended) events on one PCR, in log order.
    fn measured_events(&self, pcr: u64) -> Vec<&Value> {
        self.replay["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["measured"] == Value::Bool(true) && e["pcr"].as_u64() == Some(pcr))
            .collect()
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the harness once per test binary and replays its log. A failure is
/// kept too, so the other tests report it instead of booting again.
fn boot() -> &'static Boot {
    static BOOT: OnceLock<Result<Boot, String>> = OnceLock::new();
    match BOOT.get_or_init(run_harness) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn run_harness() -> Result<Boot, String> {
    // Under target/, kept after the run for inspection, replaced by the next.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-measured-boot");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = repo_root().join("images/vm/run.sh");
    // setpriv: the harness (and so QEMU and swtpm) dies with this thread.
    let out = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "bash"])
        .arg(&script)
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run setpriv (Debian package util-linux): {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        return Err(format!(
            "a host package the VM test needs is missing:\n{stderr}"
        ));
    }
    if !out.status.success() {
        return Err(format!(
            "images/vm/run.sh failed ({}); artifacts in {}:\n{stderr}",
            out.status,
            dir.display()
        ));
    }
    // Boot time and the rest, for whoever runs with --nocapture.
    println!("{}", String::from_utf8_lossy(&out.stdout));

    let log = dir.join("eventlog.bin");
    let ev = Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(["eventlog", "--json"])
        .arg(&log)
        .output()
        .map_err(|e| format!("cannot run provenix: {e}"))?;
    if !ev.status.success() {
        return Err(format!(
            "provenix eventlog --json {}: {}",
            log.display(),
            String::from_utf8_lossy(&ev.stderr)
        ));
    }
    let replay = serde_json::from_slice(&ev.stdout)
        .map_err(|e| format!("provenix eventlog --json output: {e}"))?;
    let guest = std::fs::read(dir.join("pcrs.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}/pcrs.json: {e}", dir.display()))?;
    Ok(Boot { dir, replay, guest })
}

/// The value a PCR holds after reset (TPM PC Client profile): PCRs 17-22
/// all ones, the rest zero (no StartupLocality in this log).
fn reset_value(pcr: u32, hex_len: usize) -> String {
    let c = if (17..=22).contains(&pcr) { "f" } else { "0" };
    c.repeat(hex_len)
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn replay_equals_the_pcrs_read_in_the_guest() {
    let b = boot();
    assert_eq!(b.replay["startup_locality"], Value::Null);
    assert_eq!(b.replay["not_replayed"], serde_json::json!({}));
    let guest = b.guest.as_object().unwrap();
    assert!(guest.contains_key("sha256"), "guest read no sha256 bank");
    for (bank, values) in guest {
        let replayed = b.replay["pcrs"][bank.as_str()]
            .as_object()
            .unwrap_or_else(|| panic!("bank {bank} read in the guest is not replayed"));
        // Firmware, boot loader and kernel stub extend these: the log must
        // cover them for this test to mean anything.
        for pcr in ["0", "1", "2", "3", "4", "5", "6", "7", "9", "11"] {
            assert!(
                replayed.contains_key(pcr),
                "{bank}: log does not extend PCR {pcr}"
            );
        }
        for pcr in 0u32..24 {
            let key = pcr.to_string();
            let real = values[key.as_str()].as_str().unwrap();
            // PCR 10 is IMA's: the guest kernel extends it (boot_aggregate),
            // and its events are in the IMA log, never in the firmware log.
            if pcr == 10 {
                assert!(!replayed.contains_key(&key), "firmware log extends PCR 10");
                continue;
            }
            match replayed.get(&key) {
                Some(v) => assert_eq!(v.as_str().unwrap(), real, "{bank} PCR {pcr}: replay"),
                None => assert_eq!(
                    real,
                    reset_value(pcr, real.len()),
                    "{bank} PCR {pcr}: not in the log, so it must hold its reset value"
                ),
            }
        }
    }
}

/// EV_EFI_BOOT_SERVICES_APPLICATION data is a UEFI_IMAGE_LOAD_EVENT:
/// location (u64), length in memory (u64), link-time address, device path.
/// Unauthenticated, but it says which image each record is.
fn image_length(event: &Value) -> u64 {
    let data = event["unverified_data"].as_str().unwrap();
    let bytes: Vec<u8> = (0..data.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&data[i..i + 2], 16).unwrap())
        .collect();
    u64::from_le_bytes(bytes[8..16].try_into().unwrap())
}

#[test]
fn pcr4_holds_the_uki_then_its_kernel() {
    let b = boot();
    let events = b.measured_events(4);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "EV_EFI_ACTION",
            "EV_SEPARATOR",
            "EV_EFI_BOOT_SERVICES_APPLICATION",
            "EV_EFI_BOOT_SERVICES_APPLICATION"
        ],
        "PCR 4 events"
    );
    // The firmware's "Calling EFI Application from Boot Option".
    assert_eq!(
        events[0]["digests"]["sha256"].as_str().unwrap(),
        sha256_hex(b"Calling EFI Application from Boot Option")
    );
    // First the UKI that firmware loads from the ESP, then the kernel that
    // systemd-stub loads out of its .linux section.
    let uki_len = std::fs::metadata(b.path("uki.efi")).unwrap().len();
    let kernel_len = std::fs::metadata(b.path("uki/linux")).unwrap().len();
    assert_eq!(
        image_length(events[2]),
        uki_len,
        "first application: the UKI"
    );
    assert_eq!(
        image_length(events[3]),
        kernel_len,
        "second application: the kernel"
    );
    let summary = events[2]["unverified_summary"].as_str().unwrap_or("");
    assert!(
        summary.contains(r"\EFI\BOOT\BOOTX64.EFI"),
        "UKI loaded from the removable-media path: {summary}"
    );
}

#[test]
fn pcr11_holds_the_systemd_stub_section_measurements() {
    let b = boot();
    let events = b.measured_events(11);
    // systemd-stub measures each section it uses as two EV_IPL records,
    // name + NUL then contents, in this order whatever the file order.
    let mut expected = Vec::new();
    for (section, file) in [
        (".linux", "uki/linux"),
        (".osrel", "uki/osrel"),
        (".cmdline", "uki/cmdline"),
        (".initrd", "uki/initrd"),
    ] {
        let mut name = section.as_bytes().to_vec();
        name.push(0);
        expected.push(sha256_hex(&name));
        expected.push(sha256_hex(&b.read(file)));
    }
    let got: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "EV_IPL", "PCR 11 event {}", e["index"]);
            e["digests"]["sha256"].as_str().unwrap()
        })
        .collect();
    assert_eq!(got, expected, "PCR 11: systemd-stub's section measurements");
}

#[test]
fn pcr9_holds_the_uki_initrd() {
    let b = boot();
    // The kernel's EFI stub measures its load options, then the initrd it
    // received from systemd-stub: the UKI's .initrd, byte for byte.
    let events = b.measured_events(9);
    assert_eq!(events.len(), 2, "PCR 9 events");
    assert_eq!(
        events[1]["digests"]["sha256"].as_str().unwrap(),
        sha256_hex(&b.read("uki/initrd"))
    );
}

/// `provenix predict --json --uki uki.efi`, for every bank the guest read:
/// the prediction from the kept artifacts alone.
fn predict(b: &Boot) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provenix"));
    cmd.args(["predict", "--json", "--uki"])
        .arg(b.path("uki.efi"));
    for bank in b.guest.as_object().unwrap().keys() {
        cmd.args(["--bank", bank]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "provenix predict: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn predictions_from_the_artifacts_equal_what_the_boot_measured() {
    let b = boot();
    check_predictions(b, &predict(b));
}

/// The prediction for the kept artifacts (`uki.efi`: PCR 4, the UKI's and
/// its kernel's Authenticode after "Calling EFI Application from Boot
/// Option" and the separator; PCR 9, the load options as UTF-16LE with the
/// trailing NUL, then the initrd; PCR 11, the sections) must give PCR 4, 9
/// and 11 in every bank the guest read, and every PCR it predicts must equal
/// the guest's reading and, where the log extends it, the replay. Its
/// events for PCR 4, 9 and 11 must carry exactly the measured digests.
fn check_predictions(b: &Boot, predicted: &Value) {
    let banks = predicted["pcrs"]
        .as_object()
        .expect("predict --json has a \"pcrs\" object");
    for bank in b.guest.as_object().unwrap().keys() {
        let values = banks
            .get(bank)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("no {bank} prediction"));
        for pcr in ["4", "9", "11"] {
            assert!(values.contains_key(pcr), "no {bank} PCR {pcr} predicted");
        }
        for (pcr, want) in values {
            let want = want.as_str().unwrap();
            assert_eq!(
                b.guest[bank.as_str()][pcr.as_str()].as_str(),
                Some(want),
                "{bank} PCR {pcr}: prediction vs guest"
            );
            if let Some(replayed) = b.replay["pcrs"][bank.as_str()][pcr.as_str()].as_str() {
                assert_eq!(replayed, want, "{bank} PCR {pcr}: prediction vs replay");
            }
        }
    }
    let events = predicted["events"].as_array().expect("predicted events");
    for bank in b.guest.as_object().unwrap().keys() {
        for pcr in [4u64, 9, 11] {
            let want: Vec<&Value> = events
                .iter()
                .filter(|e| e["pcr"].as_u64() == Some(pcr))
                .map(|e| &e["digests"][bank.as_str()])
                .collect();
            let got: Vec<&Value> = b
                .measured_events(pcr)
                .into_iter()
                .map(|e| &e["digests"][bank.as_str()])
                .collect();
            assert_eq!(got, want, "{bank} PCR {pcr} events: measured vs predicted");
        }
    }
}
