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

/// `tpm2_checkquote` (tpm2-tools, an independent verifier) on a quote, with
/// the seal set's PCRs as they are now (serialized PCR file: 8 PCRs hit
/// tpm2-tools bug #3542 with raw values).
pub(crate) fn checkquote(
    swtpm: &Swtpm,
    ak_public: &[u8],
    attest: &[u8],
    signature: &[u8],
    qualifying: &[u8; 32],
) {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], tcti: bool| {
        let mut c = std::process::Command::new(args[0]);
        c.args(&args[1..]).env("TSS2_LOG", "all+none");
        if tcti {
            c.env("TPM2TOOLS_TCTI", swtpm.tcti());
        }
        c.output()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs tpm2-tools)", args[0]))
    };
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let mut tpm2b = (ak_public.len() as u16).to_be_bytes().to_vec();
    tpm2b.extend_from_slice(ak_public);
    std::fs::write(p("ak.pub"), tpm2b).unwrap();
    std::fs::write(p("q.msg"), attest).unwrap();
    std::fs::write(p("q.sig"), signature).unwrap();
    let out = run(
        &[
            "tpm2_pcrread",
            "sha256:0,2,4,7,9,12,13,14",
            "-o",
            &p("pcrs.bin"),
            "-F",
            "serialized",
        ],
        true,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q: String = qualifying.iter().map(|b| format!("{b:02x}")).collect();
    let out = run(
        &[
            "tpm2_checkquote",
            "-u",
            &p("ak.pub"),
            "-m",
            &p("q.msg"),
            "-s",
            &p("q.sig"),
            "-f",
            &p("pcrs.bin"),
            "-F",
            "serialized",
            "-g",
            "sha256",
            "-q",
            &q,
        ],
        false,
    );
    assert!(
        out.status.success(),
        "tpm2_checkquote refused the quote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
