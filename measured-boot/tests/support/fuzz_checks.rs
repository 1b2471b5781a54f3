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
