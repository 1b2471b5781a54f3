//! The properties the `eventlog` fuzz target checks, shared by the
//! cargo-fuzz target (`fuzz/fuzz_targets/eventlog.rs`, nightly) and the
//! stable corpus replay (`measured-boot/tests/fuzz_corpora.rs`), so CI
//! exercises the corpus even without a nightly toolchain. A panic here is a
//! finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use provenix_measured_boot::{CcelLog, EventLog, PcrIndex};

/// TPM event logs and TDX CCELs: whatever parses re-encodes to exactly its
/// input (CCELs: plus their 0xFF padding) and parses again to the same
/// value; replay and event-data decoding never panic; replay reports only
/// PCRs a measured record names (or PCR 0 for a StartupLocality); every
/// error names an offset inside the input.
pub(crate) fn eventlog(data: &[u8]) {
    match EventLog::parse(data) {
        Ok(log) => {
            let bytes = log.to_bytes();
            assert_eq!(bytes, data, "log did not re-encode to its bytes");
            assert_eq!(EventLog::parse(&bytes).unwrap(), log);
            for e in log.events() {
                if let Ok(d) = e.decode_unverified_data() {
                    let _ = d.to_string();
                }
            }
            let replay = log.replay();
            for bank in replay.banks() {
                for (i, _) in bank.reported() {
                    let named = log.events().iter().any(|e| e.pcr() == Some(i));
                    let locality =
                        i == PcrIndex::new(0).unwrap() && log.startup_locality().is_some();
                    assert!(named || locality, "PCR {i} reported but never extended");
                }
            }
        }
        Err(e) => {
            let offset = e.offset().expect("a parse error names an offset");
            assert!(offset <= data.len(), "{e}: offset past the input");
            let _ = e.to_string();
        }
    }
    match CcelLog::parse(data) {
        Ok(log) => {
            let mut bytes = log.to_bytes();
            assert_eq!(bytes.len() + log.padding_len(), data.len());
            bytes.resize(data.len(), 0xff);
            assert_eq!(bytes, data, "CCEL did not re-encode to its bytes");
            let _ = log.replay_rtmrs();
            for e in log.events() {
                if let Ok(d) = e.decode_unverified_data() {
                    let _ = d.to_string();
                }
            }
        }
        Err(e) => {
            let offset = e.offset().expect("a parse error names an offset");
            assert!(offset <= data.len(), "{e}: offset past the input");
        }
    }
}

/// CEL-JSON logs (and, being JSON too, closure manifests): whatever parses
/// re-encodes canonically (parse -> write -> parse gives the same log, and
/// writing that again gives the same bytes); replay over every bank and
/// summaries never panic; every error with an offset points inside the
/// input.
pub(crate) fn cel(data: &[u8]) {
    use provenix_measured_boot::predict::ClosureManifest;
    use provenix_measured_boot::{CelLog, HashAlgorithm};
    match CelLog::parse(data) {
        Ok(log) => {
            let bytes = log.to_bytes();
            let again = CelLog::parse(&bytes).expect("a written log parses");
            assert_eq!(again, log, "log changed through write and read");
            assert_eq!(again.to_bytes(), bytes, "writing is not canonical");
            let _ = log.replay(&HashAlgorithm::ALL).unwrap();
            for r in log.records() {
                let _ = r.summary();
            }
            for (_, m) in log.system_measurements() {
                let _ = m.measurement(HashAlgorithm::Sha1).unwrap();
            }
        }
        Err(e) => {
            if let Some(offset) = e.offset() {
                assert!(offset <= data.len(), "{e}: offset past the input");
            }
            let _ = e.to_string();
        }
    }
    if let Ok(m) = ClosureManifest::parse(data) {
        let _ = m.toplevel();
        for e in m.entries() {
            assert!(m.get(&e.path).is_some());
        }
    }
}

/// PE images and UKIs: a parsed image's sections lie inside the input and
/// its Authenticode hash computes in every bank; a parsed UKI predicts its
/// boot events (or refuses with an error) without panicking; every error
/// with an offset points inside the input.
pub(crate) fn pe(data: &[u8]) {
    use provenix_measured_boot::predict::{events, SystemdStub, Uki};
    use provenix_measured_boot::{HashAlgorithm, PeImage};
    match PeImage::parse(data) {
        Ok(img) => {
            for s in img.sections() {
                let raw = img.raw_data(s);
                assert_eq!(raw.len(), s.size_of_raw_data() as usize);
            }
            if let Some((at, len)) = img.certificate_table() {
                assert_eq!(at + len, data.len());
            }
            for alg in HashAlgorithm::ALL {
                img.authenticode(alg).expect("a parsed image hashes");
            }
        }
        Err(e) => {
            let offset = e.offset().expect("a PE error names an offset");
            assert!(offset <= data.len(), "{e}: offset past the input");
            let _ = e.to_string();
        }
    }
    for stub in [
        None,
        Some(SystemdStub::from_major(252)),
        Some(SystemdStub::from_major(257)),
    ] {
        if let Ok(uki) = Uki::parse(data, stub) {
            let _ = uki.cmdline();
            let _ = events::uki_boot(&[HashAlgorithm::Sha256], &uki);
        }
    }
}
