//! Write a large builder log for benchmarks (scripts/bench-log.sh): a TPM
//! (an swtpm) measured and enrolled as a builder is, then N entries shaped
//! like real ones (one output with references, several resolved inputs),
//! each signed by the real SK, in batches each attested by a real AK quote
//! with the real counter, written by the agent's own LogWriter.
//!
//! ```text
//! synth_log TCTI STATE_DIR LOG_DIR ENTRIES [BATCH [CACHE_DIR]]   (BATCH default 1000)
//! ```
//! With CACHE_DIR (a `file://` binary cache), the first entries attest its
//! paths as its narinfos describe them (NarHash, NarSize, References), so
//! a substituter in front of that cache trusts them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use provenix_agent::batch::attest_batch;
use provenix_agent::counter::{DEFAULT_COUNTER_INDEX, DEFAULT_ORDERLY_JUMP};
use provenix_agent::enroll::{enroll, load_keys, EnrollOptions};
use provenix_agent::identity::DEFAULT_AK_HANDLE;
use provenix_agent::keys::{PcrSet, DEFAULT_SEAL_PCRS, DEFAULT_SYSTEM_PCR};
use provenix_agent::log::{note_key, origin_for, LogWriter};
use provenix_agent::recorder::LogView;
use provenix_agent::state::StateDir;
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::system::ClosurePath;
use provenix_protocol::{
    BuildEnv, DrvPath, Entry, EntryOutput, MeasurementMode, NarHash, PcrIndex, ResolvedInput,
    Sha256Digest, StorePath, SystemIdentity,
};

/// A store path named `name`, its hash part derived from `seed`.
fn store_path(seed: &str, name: &str) -> String {
    let hash = Sha256Digest::of(seed.as_bytes()).to_nix32();
    format!("/nix/store/{}-{name}", &hash[..32])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: synth_log TCTI STATE_DIR LOG_DIR ENTRIES [BATCH [CACHE_DIR]]");
        std::process::exit(2);
    }
    let (tcti, state_dir, log_dir) = (&args[1], Path::new(&args[2]), Path::new(&args[3]));
    let n: u64 = args[4].parse().expect("ENTRIES");
    let batch: u64 = args.get(5).map_or(1000, |b| b.parse().expect("BATCH"));
    let mut attest: Vec<provenix_protocol::narinfo::NarInfo> = Vec::new();
    if let Some(cache) = args.get(6) {
        for e in std::fs::read_dir(cache).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "narinfo") {
                let text = std::fs::read_to_string(&p).unwrap();
                attest.push(provenix_protocol::narinfo::NarInfo::parse(&text).unwrap());
            }
        }
        attest.sort_by(|a, b| a.store_path.cmp(&b.store_path));
    }

    let mut tpm = Tpm::open(&TpmConfig {
        tcti: tcti.clone(),
        insecure_allow_swtpm: true,
    })
    .unwrap();
    let state = StateDir::open(state_dir).unwrap();
    // Boot measurement of a (synthetic) system closure, as `measure` does.
    let system_pcr = PcrIndex::new(DEFAULT_SYSTEM_PCR).unwrap();
    let top = StorePath::parse(&store_path("system", "nixos-system")).unwrap();
    let closure = [ClosurePath {
        path: top.clone(),
        nar_hash: NarHash(Sha256Digest::of(b"system content")),
        nar_size: 1 << 20,
    }];
    let identity =
        SystemIdentity::from_closure(top, MeasurementMode::ContentRehash, &closure).unwrap();
    let system = identity.digest().unwrap();
    provenix_agent::measure::append_cel(&state, &identity, system_pcr, &[0; 32]).unwrap();
    tpm.extend_pcr(system_pcr, system.0).unwrap();
    let now = provenix_io::unix_time();
    let record = enroll(
        &mut tpm,
        &EnrollOptions {
            seal: PcrSet::new(&DEFAULT_SEAL_PCRS).unwrap(),
            system_pcr,
            ak_handle: DEFAULT_AK_HANDLE,
            counter_index: DEFAULT_COUNTER_INDEX,
            ek_kind: None,
            ek_cert: None,
            firmware_event_log: None,
            now,
        },
        &state,
    )
    .unwrap();
    let keys = load_keys(&mut tpm, &state).unwrap();
    let builder = record.builder_id().unwrap();
    let origin = origin_for(&builder);
    let mut log = LogWriter::open(
        log_dir,
        &origin,
        note_key(&origin, keys.lk.clone()).unwrap(),
    )
    .unwrap();
    log.append(&record.to_leaves().unwrap()).unwrap();
    let mut view = LogView::default();
    view.catch_up(log_dir, log.size()).unwrap();

    let mut i = 0u64;
    while i < n {
        let mut leaves = Vec::new();
        for _ in 0..batch.min(n - i) {
            let name = format!("pkg-{i}");
            let mut entry = Entry {
                builder,
                seq: log.size() + leaves.len() as u64,
                drv_path: DrvPath::parse(&store_path(&format!("drv {i}"), &format!("{name}.drv")))
                    .unwrap(),
                drv_hash: Sha256Digest::of(format!("drv hash {i}").as_bytes()),
                outputs: vec![match attest.get(usize::try_from(i).unwrap()) {
                    Some(info) => EntryOutput {
                        name: "out".into(),
                        store_path: info.store_path.clone(),
                        nar_hash: info.nar_hash,
                        nar_size: info.nar_size,
                        references: info.references.iter().cloned().collect(),
                    },
                    None => EntryOutput {
                        name: "out".into(),
                        store_path: StorePath::parse(&store_path(&format!("out {i}"), &name))
                            .unwrap(),
                        nar_hash: NarHash(Sha256Digest::of(format!("nar {i}").as_bytes())),
                        nar_size: 4096 + i,
                        references: (0..3)
                            .map(|r| {
                                StorePath::parse(&store_path(&format!("dep {}", i / 7 + r), "dep"))
                                    .unwrap()
                            })
                            .collect(),
                    },
                }],
                built_locally: true,
                build_env: BuildEnv {
                    settings_digest: Sha256Digest::of(b"settings"),
                    sandbox: true,
                    remote_builders: false,
                },
                resolved_inputs: (0..5)
                    .map(|r| ResolvedInput {
                        store_path: StorePath::parse(&store_path(
                            &format!("input {}", i / 11 + r),
                            "input",
                        ))
                        .unwrap(),
                        nar_hash: NarHash(Sha256Digest::of(format!("input {r}").as_bytes())),
                    })
                    .collect(),
                source: None,
                system,
                time: now,
            };
            entry.normalize();
            let signed = entry.sign(&keys.sk).unwrap();
            let mut l = signed.to_leaves();
            assert_eq!(l.len(), 1, "entries are inline");
            leaves.append(&mut l);
            i += 1;
        }
        let mut at = view.position;
        at.first_leaf = log.size();
        let b = attest_batch(
            &mut tpm,
            &keys.enrollment,
            at,
            DEFAULT_ORDERLY_JUMP,
            &leaves,
        )
        .unwrap();
        leaves.push(b.to_leaf().unwrap());
        log.append(&leaves).unwrap();
        view.catch_up(log_dir, log.size()).unwrap();
    }
    println!(
        "{} entries, {} leaves in {}",
        n,
        log.size(),
        log_dir.display()
    );
}
