//! Predictions against the real OVMF logs in ../shared/testdata/eventlogs
//! (ovmf-uki: OVMF booting a UKI through systemd-stub 252; ovmf-direct:
//! QEMU `-kernel` boot), for everything that can be predicted without the
//! artifacts those boots used: event order, types, event data, the digests
//! of action strings, separators, section names, the command line (from
//! the recipe: `console=ttyS0 quiet panic=-1`), PCR 12/13 empty; and, where
//! Debian's kernel 6.1.0-56 (the one these boots used) is installed, the
//! kernel's Authenticode hash and `.linux` contents. Digests of artifacts
//! that are gone (the UKI, its initrd and os-release) are taken from the
//! log, and the predicted PCR values must then equal the guest's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use provenix_measured_boot::predict::events::{
    self, efi_action, linux_initrd, linux_load_options, load_options_utf16, separator,
    stub_section, CALLING_EFI_APPLICATION,
};
use provenix_measured_boot::predict::{EventSource, PredictedEvent, Prediction};
use provenix_measured_boot::{Event, EventLog, EventType, HashAlgorithm, PcrIndex, PeImage};

const BANKS: [HashAlgorithm; 4] = [
    HashAlgorithm::Sha1,
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

/// The kernel the fixture boots used (Debian linux-image-6.1.0-56-amd64).
const FIXTURE_KERNEL: &str = "/boot/vmlinuz-6.1.0-56-amd64";
const FIXTURE_KERNEL_SHA256: &str =
    "26f2e57c99338feaf71c46fa4babdc7e1a6c115943002d109fdb746667104f5f";

fn dir(name: &str) -> String {
    format!(
        "{}/../../shared/testdata/eventlogs/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn log(name: &str) -> EventLog {
    EventLog::parse(&std::fs::read(format!("{}/eventlog.bin", dir(name))).unwrap()).unwrap()
}

/// pcrs.txt: the sha256 PCR values read in the guest.
fn guest_pcrs(name: &str) -> BTreeMap<u8, String> {
    std::fs::read_to_string(format!("{}/pcrs.txt", dir(name)))
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k[3..].parse().unwrap(), v.trim().to_lowercase())
        })
        .collect()
}

fn pcr(i: u8) -> PcrIndex {
    PcrIndex::new(i).unwrap()
}

fn events_in(log: &EventLog, i: u8) -> Vec<&Event> {
    log.events()
        .iter()
        .filter(|e| e.pcr() == Some(pcr(i)))
        .collect()
}

/// The predicted event has the logged event's type, event data (where
/// predicted) and digest in every bank.
fn assert_same(predicted: &PredictedEvent, logged: &Event, what: &str) {
    assert_eq!(predicted.pcr(), logged.pcr().unwrap(), "{what}: PCR");
    assert_eq!(
        predicted.source(),
        EventSource::Firmware(logged.event_type()),
        "{what}: type"
    );
    if let Some(data) = predicted.event_data() {
        assert_eq!(data, logged.unauthenticated_data(), "{what}: event data");
    }
    for bank in BANKS {
        assert_eq!(
            predicted.digest(bank).unwrap(),
            logged.digest(bank.id()).unwrap(),
            "{what}: {bank} digest"
        );
    }
}

/// An event carrying the logged digests (for artifacts we do not have).
fn from_log(logged: &Event, source: EventSource) -> PredictedEvent {
    PredictedEvent::new(
        logged.pcr().unwrap(),
        source,
        BANKS
            .iter()
            .map(|b| *logged.digest(b.id()).unwrap())
            .collect(),
        None,
        "taken from the log".into(),
    )
}

fn fixture_kernel() -> Option<Vec<u8>> {
    let bytes = std::fs::read(FIXTURE_KERNEL).ok()?;
    if HashAlgorithm::Sha256.hash(&bytes).to_hex() != FIXTURE_KERNEL_SHA256 {
        eprintln!("{FIXTURE_KERNEL} is not the fixture boots' kernel: its checks are skipped");
        return None;
    }
    Some(bytes)
}

fn value(p: &Prediction, i: u8) -> String {
    p.value(HashAlgorithm::Sha256, pcr(i))
        .unwrap()
        .unwrap()
        .to_hex()
}

#[test]
fn uki_pcr4() {
    let log = log("ovmf-uki");
    let logged = events_in(&log, 4);
    assert_eq!(logged.len(), 4, "calling, separator, UKI, kernel");
    let calling = efi_action(&BANKS, pcr(4), CALLING_EFI_APPLICATION);
    assert_same(&calling, logged[0], "calling");
    assert_same(&separator(&BANKS, pcr(4)), logged[1], "separator");
    assert_eq!(
        logged[2].event_type(),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
    );
    let bsa = EventSource::Firmware(EventType::EV_EFI_BOOT_SERVICES_APPLICATION);
    let kernel_event = match fixture_kernel() {
        Some(k) => {
            let e =
                events::efi_application(&BANKS, &PeImage::parse(&k).unwrap(), "kernel").unwrap();
            assert_same(&e, logged[3], "the UKI's kernel (Authenticode)");
            e
        }
        None => from_log(logged[3], bsa),
    };
    let mut p = Prediction::new(&BANKS).unwrap();
    p.extend([
        calling,
        separator(&BANKS, pcr(4)),
        from_log(logged[2], bsa),
        kernel_event,
    ])
    .unwrap();
    assert_eq!(value(&p, 4), guest_pcrs("ovmf-uki")[&4]);
}

#[test]
fn pcr9_load_options_and_initrd() {
    for (name, cmdline) in [
        ("ovmf-uki", "console=ttyS0 quiet panic=-1"),
        // QEMU -append, plus the "initrd=" QEMU adds for -initrd.
        ("ovmf-direct", "console=ttyS0 quiet panic=-1 initrd=initrd"),
    ] {
        let log = log(name);
        let logged = events_in(&log, 9);
        assert_eq!(logged.len(), 2, "{name}: load options, initrd");
        let options = linux_load_options(&BANKS, &load_options_utf16(cmdline)).unwrap();
        assert_same(&options, logged[0], &format!("{name} load options"));
        // The initrd's bytes are gone; its event's type and data are fixed.
        let initrd = linux_initrd(&BANKS, b"").unwrap();
        assert_eq!(
            initrd.event_data().unwrap(),
            logged[1].unauthenticated_data()
        );
        assert_eq!(logged[1].event_type(), EventType::EV_EVENT_TAG);
        let mut p = Prediction::new(&BANKS).unwrap();
        p.push(options).unwrap();
        p.push(from_log(
            logged[1],
            EventSource::Firmware(EventType::EV_EVENT_TAG),
        ))
        .unwrap();
        assert_eq!(value(&p, 9), guest_pcrs(name)[&9], "{name}");
    }
}

#[test]
fn uki_pcr11_sections() {
    let log = log("ovmf-uki");
    let logged = events_in(&log, 11);
    assert_eq!(logged.len(), 8, "4 sections x (name, contents)");
    let kernel = fixture_kernel();
    let mut p = Prediction::new(&BANKS).unwrap();
    let contents: [(&str, Option<&[u8]>); 4] = [
        (".linux", kernel.as_deref()),
        (".osrel", None),
        (".cmdline", Some(b"console=ttyS0 quiet panic=-1")),
        (".initrd", None),
    ];
    for (i, (name, data)) in contents.iter().enumerate() {
        let [name_event, contents_event] = stub_section(&BANKS, name, data.unwrap_or(b"")).unwrap();
        assert_same(&name_event, logged[2 * i], &format!("{name} name"));
        p.push(name_event).unwrap();
        match data {
            Some(_) => {
                assert_same(
                    &contents_event,
                    logged[2 * i + 1],
                    &format!("{name} contents"),
                );
                p.push(contents_event).unwrap();
            }
            None => p
                .push(from_log(
                    logged[2 * i + 1],
                    EventSource::Firmware(EventType::EV_IPL),
                ))
                .unwrap(),
        }
    }
    assert_eq!(value(&p, 11), guest_pcrs("ovmf-uki")[&11]);
}

#[test]
fn pcr12_and_13_hold_no_events() {
    for name in ["ovmf-uki", "ovmf-direct"] {
        let log = log(name);
        let guest = guest_pcrs(name);
        let mut p = Prediction::new(&[HashAlgorithm::Sha256]).unwrap();
        for i in [12, 13] {
            assert!(events_in(&log, i).is_empty(), "{name}: PCR {i}");
            p.expect_no_events(pcr(i)).unwrap();
            assert_eq!(value(&p, i), guest[&i], "{name}: PCR {i}");
            assert_eq!(value(&p, i), "0".repeat(64));
        }
        assert_eq!(p.pcrs().map(|i| i.get()).collect::<Vec<_>>(), [12, 13]);
        // A PCR that has events cannot be declared empty, and vice versa.
        assert!(p.push(separator(&[HashAlgorithm::Sha256], pcr(4))).is_ok());
        assert!(p.expect_no_events(pcr(4)).is_err());
    }
}

#[test]
fn direct_boot_pcr4_actions() {
    // Direct -kernel boot measures QEMU's patched bzImage first (not
    // predicted here), then the same action and separator.
    let log = log("ovmf-direct");
    let logged = events_in(&log, 4);
    assert_eq!(logged.len(), 3);
    assert_same(
        &efi_action(&BANKS, pcr(4), CALLING_EFI_APPLICATION),
        logged[1],
        "calling",
    );
    assert_same(&separator(&BANKS, pcr(4)), logged[2], "separator");
}

/// A vector from a real boot (images/vm/run.sh with Debian's systemd-stub
/// 252.39 and `.cmdline` = " console=ttyS0\tpanic=-1  loglevel=1\n"): the
/// kernel's PCR 9 load-options event carried these digests. The stub kept
/// the leading space, turned the tab into a space and dropped the trailing
/// newline; systemd 255+ drops the leading space too.
#[test]
fn stub_252_cmdline_cleanup_as_booted() {
    use provenix_measured_boot::predict::SystemdStub;
    let raw = b" console=ttyS0\tpanic=-1  loglevel=1\n";
    let stub = SystemdStub::from_major(252);
    let cmdline = stub.mangle_cmdline(raw);
    assert_eq!(cmdline, " console=ttyS0 panic=-1  loglevel=1");
    let e = linux_load_options(
        &[HashAlgorithm::Sha1, HashAlgorithm::Sha256],
        &load_options_utf16(&cmdline),
    )
    .unwrap();
    assert_eq!(
        e.digest(HashAlgorithm::Sha256).unwrap().to_hex(),
        "0fc3a3933332bd506d96000a762a771e2408f95226ac28dc16fa687abcafb5d3"
    );
    assert_eq!(
        e.digest(HashAlgorithm::Sha1).unwrap().to_hex(),
        "543eefca120e3773d0e9833e3deef9c440d5e260"
    );
    assert_eq!(
        SystemdStub::from_major(255).mangle_cmdline(raw),
        "console=ttyS0 panic=-1  loglevel=1"
    );
}
