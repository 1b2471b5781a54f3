//! Helpers shared by the swtpm integration tests (and the latency example,
//! which includes this file by path).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_agent::counter::DEFAULT_COUNTER_INDEX;
use provenix_agent::enroll::EnrollOptions;
use provenix_agent::identity::DEFAULT_AK_HANDLE;
use provenix_agent::keys::PcrSet;
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::{
    BuildEnv, BuilderId, DrvPath, Entry, EntryOutput, NarHash, PcrIndex, Sha256Digest, StorePath,
};
use provenix_swtpm_tests::Swtpm;

/// Open the agent's TPM shell on a test swtpm.
pub(crate) fn open(s: &Swtpm) -> Tpm {
    Tpm::open(&TpmConfig {
        tcti: s.tcti(),
        insecure_allow_swtpm: true,
    })
    .unwrap()
}

/// What a measured boot extends: firmware, UKI and initrd stand-ins, then
/// the system identity into PCR 14.
pub(crate) fn boot(tpm: &mut Tpm, system: &[u8]) {
    for (pcr, what) in [(0u8, &b"firmware"[..]), (4, b"uki"), (9, b"initrd")] {
        tpm.extend_pcr(PcrIndex::new(pcr).unwrap(), Sha256Digest::of(what).0)
            .unwrap();
    }
    tpm.extend_pcr(PcrIndex::new(14).unwrap(), Sha256Digest::of(system).0)
        .unwrap();
}

/// Enrollment with the defaults and no firmware event log (swtpm has no firmware).
pub(crate) fn enroll_options() -> EnrollOptions {
    EnrollOptions {
        seal: PcrSet::default_seal_set(),
        system_pcr: PcrIndex::new(14).unwrap(),
        ak_handle: DEFAULT_AK_HANDLE,
        counter_index: DEFAULT_COUNTER_INDEX,
        ek_kind: None,
        ek_cert: None,
        firmware_event_log: None,
        now: 1_800_000_000,
    }
}

/// A small entry whose output hash depends on `seq`.
pub(crate) fn sample_entry(builder: BuilderId, seq: u64) -> Entry {
    Entry {
        builder,
        seq,
        drv_path: DrvPath::parse("/nix/store/j3zbybmzlv946yg07546xypfihbrwwha-hello.drv").unwrap(),
        drv_hash: Sha256Digest([1; 32]),
        outputs: vec![EntryOutput {
            name: "out".into(),
            store_path: StorePath::parse("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello")
                .unwrap(),
            nar_hash: NarHash(Sha256Digest::of(&seq.to_be_bytes())),
            nar_size: 128,
            references: vec![],
        }],
        built_locally: true,
        build_env: BuildEnv {
            settings_digest: Sha256Digest([2; 32]),
            sandbox: true,
            remote_builders: false,
        },
        resolved_inputs: vec![],
        source: None,
        system: Sha256Digest([3; 32]),
        time: 1_800_000_000 + seq,
    }
}
