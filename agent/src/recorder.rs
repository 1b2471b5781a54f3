//! The recorder: turns build jobs into signed, batch-attested entries in the
//! builder's log. `provenix-agent record` uses it for one job; the daemon
//! for every batch.
//!
//! ```text
//! open:   load_keys (SK in this boot state, LK) ─ booted system from the CEL
//!         log (must replay to the system PCR) ─ LogWriter (lock) ─ scan the
//!         log: last batch, counters, index ─ first run: Enrollment leaves;
//!         after a rebind: KeyBinding leaves
//! record: jobs ─ build_facts ─ Entry (seq = its leaf index) ─ sign (SK)
//!         ─ skip what the log already holds ─ attest_batch (counter check,
//!         NV increment, quote) ─ append entries + BatchAttestation ─ checkpoint
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use provenix_measured_boot::{CelLog, HashAlgorithm};
use provenix_protocol::enrollment::KeyRebinding;
use provenix_protocol::leaf::{LeafReader, Record};
use provenix_protocol::merkle::leaf_hash;
use provenix_protocol::{
    BuilderId, Counter, DrvPath, Entry, PcrIndex, Sha256Digest, SourceRef, StorePath,
};

use crate::batch::{attest_batch, LogPosition};
use crate::build::{build_facts, InputCache, NixSettings, Store};
use crate::enroll::{load_keys, Keys, REBINDING_FILE};
use crate::error::{AgentError, Result};
use crate::job::Job;
use crate::keys::PcrSet;
use crate::log::{for_each_leaf, note_key, origin_for, LogWriter};
use crate::measure::CEL_LOG;
use crate::state::StateDir;
use crate::tpm::Tpm;
use crate::unix_time;

/// How to record.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// The log directory.
    pub log_dir: PathBuf,
    /// Root of the Nix store the builds are in (`/` or a chroot store).
    pub store_root: PathBuf,
    /// Source reference to put in every entry.
    pub source: Option<SourceRef>,
    /// Largest counter jump an unclean shutdown may explain.
    pub orderly_jump: u64,
}

/// What became of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded as the entry at this leaf index.
    Recorded(u64),
    /// The log already holds this build (same derivation, same outputs).
    AlreadyRecorded(u64),
    /// Not recordable (the reason is in the message).
    Failed(String),
}

/// Where each derivation and output path appears in the log.
#[derive(Debug, Default)]
pub struct LogIndex {
    /// drv path → (leaf index, digest of its outputs) per entry.
    by_drv: BTreeMap<DrvPath, Vec<(u64, Sha256Digest)>>,
    /// output store path → leaf indices of entries naming it.
    by_output: BTreeMap<StorePath, Vec<u64>>,
    /// Entries in the log.
    entries: u64,
}

fn outputs_digest(e: &Entry) -> Sha256Digest {
    let mut pre = Vec::new();
    for o in &e.outputs {
        pre.extend_from_slice(o.name.as_bytes());
        pre.push(0);
        pre.extend_from_slice(o.store_path.as_str().as_bytes());
        pre.push(0);
        pre.extend_from_slice(&o.nar_hash.0 .0);
    }
    Sha256Digest::of(&pre)
}

impl LogIndex {
    /// Note the entry at `leaf`.
    pub fn add(&mut self, leaf: u64, e: &Entry) {
        self.by_drv
            .entry(e.drv_path.clone())
            .or_default()
            .push((leaf, outputs_digest(e)));
        for o in &e.outputs {
            self.by_output
                .entry(o.store_path.clone())
                .or_default()
                .push(leaf);
        }
        self.entries += 1;
    }

    fn find(&self, e: &Entry) -> Option<u64> {
        let d = outputs_digest(e);
        self.by_drv
            .get(&e.drv_path)?
            .iter()
            .find(|(_, od)| *od == d)
            .map(|(l, _)| *l)
    }

    /// Leaf indices of the entries for a derivation.
    pub fn entries_for_drv(&self, drv: &DrvPath) -> Vec<u64> {
        self.by_drv
            .get(drv)
            .map(|v| v.iter().map(|(l, _)| *l).collect())
            .unwrap_or_default()
    }

    /// Leaf indices of the entries naming an output path.
    pub fn entries_for_output(&self, p: &StorePath) -> Vec<u64> {
        self.by_output.get(p).cloned().unwrap_or_default()
    }

    /// Entries in the log.
    pub fn entries(&self) -> u64 {
        self.entries
    }
}

/// The builder's recorder (holds the TPM, the keys and the log's lock).
pub struct Recorder {
    tpm: Tpm,
    keys: Keys,
    log: LogWriter,
    builder: BuilderId,
    system: Sha256Digest,
    position: LogPosition,
    store: Store,
    cache: InputCache,
    index: LogIndex,
    source: Option<SourceRef>,
    orderly_jump: u64,
}

/// The booted system: the last provenix system measurement in the agent's
/// CEL log, which must replay to the system PCR's current value (else the
/// log is not this boot's).
pub fn booted_system(tpm: &mut Tpm, state: &StateDir, system_pcr: u8) -> Result<Sha256Digest> {
    let pcr = PcrIndex::new(system_pcr)?;
    if !state.exists(CEL_LOG) {
        return Err(AgentError::Config(format!(
            "{}: no system measurement; `provenix-agent measure` runs at boot (in the initrd) \
             before anything is recorded",
            state.file(CEL_LOG).display()
        )));
    }
    let cel = CelLog::parse(&state.read(CEL_LOG)?)?;
    let (_, m) = cel
        .system_measurements()
        .filter(|(i, _)| cel.records().get(*i).map(|r| r.pcr()) == Some(pcr))
        .last()
        .ok_or_else(|| {
            AgentError::Config(format!(
                "{}: no system measurement for PCR {system_pcr}",
                state.file(CEL_LOG).display()
            ))
        })?;
    let replay = cel.replay(&[HashAlgorithm::Sha256])?;
    let replayed = replay
        .bank(HashAlgorithm::Sha256)
        .map(|b| b.value(pcr))
        .ok_or_else(|| AgentError::Config("no SHA-256 replay".into()))?;
    let current = tpm.read_pcrs(&PcrSet::new(&[system_pcr])?)?;
    if current.first().map(|c| &c[..]) != Some(replayed.as_bytes()) {
        return Err(AgentError::Config(format!(
            "{}: the event log does not replay to PCR {system_pcr}'s current value: it is not \
             this boot's log, or the PCR was extended without it; measure again after a reboot",
            state.file(CEL_LOG).display()
        )));
    }
    Ok(m.digest())
}

/// The last batch attestation in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastBatch {
    /// Its leaf index.
    pub leaf: u64,
    /// Its counter value.
    pub counter: u64,
    /// Entries it attests.
    pub entries: u64,
}

/// What reading the log found, kept up to date leaf by leaf: the recorder
/// scans the whole log once at start, the service follows each checkpoint.
pub struct LogView {
    /// Leaves read.
    pub size: u64,
    /// Where derivations and outputs appear.
    pub index: LogIndex,
    /// The batch chain's position after the leaves read.
    pub position: LogPosition,
    /// The last batch read.
    pub last_batch: Option<LastBatch>,
    /// The builder the log's enrollment names.
    pub enrolled: Option<BuilderId>,
    /// The SK in force after the leaves read.
    pub sk_in_log: Option<[u8; 32]>,
    /// Entries read since the last batch.
    pub unattested: u64,
    reader: LeafReader,
}

impl Default for LogView {
    fn default() -> Self {
        Self {
            size: 0,
            index: LogIndex::default(),
            position: LogPosition {
                last_counter: None,
                previous_batch: Sha256Digest([0; 32]),
                first_leaf: 0,
            },
            last_batch: None,
            enrolled: None,
            sk_in_log: None,
            unattested: 0,
            reader: LeafReader::new(),
        }
    }
}

impl LogView {
    /// Read the leaves `[self.size, to)` of the log in `dir`; `to` must be
    /// a size the log published.
    pub fn catch_up(&mut self, dir: &Path, to: u64) -> Result<()> {
        let from = self.size;
        for_each_leaf(dir, from, to, |i, leaf| {
            match self.reader.push(leaf)? {
                Some(Record::Entry(e)) => {
                    self.index.add(i, e.entry());
                    self.unattested += 1;
                }
                Some(Record::Batch(b)) => {
                    self.position.last_counter = Some(Counter(b.counter));
                    self.position.previous_batch = leaf_hash(leaf);
                    self.last_batch = Some(LastBatch {
                        leaf: i,
                        counter: b.counter,
                        entries: self.unattested,
                    });
                    self.unattested = 0;
                }
                Some(Record::Enrollment(e)) => {
                    self.enrolled = Some(e.builder_id()?);
                    self.sk_in_log = Some(e.signing_key.public_key);
                }
                Some(Record::KeyRebinding(r)) => self.sk_in_log = Some(r.signing_key.public_key),
                Some(_) | None => {}
            }
            Ok(())
        })?;
        self.size = self.size.max(to);
        self.position.first_leaf = self.size;
        Ok(())
    }
}

fn scan(dir: &Path, size: u64) -> Result<LogView> {
    let mut s = LogView::default();
    s.catch_up(dir, size)?;
    std::mem::take(&mut s.reader).finish()?;
    if s.unattested > 0 {
        return Err(AgentError::Config(format!(
            "{}: the log ends with {} entries no batch attests; it was not written by \
             provenix-agent",
            dir.display(),
            s.unattested
        )));
    }
    Ok(s)
}

impl Recorder {
    /// Derive the keys (only in the enrolled boot state), find the booted
    /// system, open and scan the log, and publish the enrollment (or a new
    /// key binding) if the log does not hold it yet.
    pub fn open(mut tpm: Tpm, state: &StateDir, opts: &RecorderOptions) -> Result<Self> {
        let keys = load_keys(&mut tpm, state)?;
        let builder = keys.enrollment.builder_id()?;
        let system = booted_system(&mut tpm, state, keys.enrollment.system_pcr)?;
        let origin = origin_for(&builder);
        let mut log = LogWriter::open(&opts.log_dir, &origin, note_key(&origin, keys.lk.clone())?)?;
        let mut s = scan(&opts.log_dir, log.size())?;
        match s.enrolled {
            Some(b) if b != builder => {
                return Err(AgentError::Config(format!(
                    "{}: this log belongs to builder {b}, not {builder}",
                    opts.log_dir.display()
                )))
            }
            Some(_) => {}
            None if log.size() > 0 => {
                return Err(AgentError::Config(format!(
                    "{}: the log does not start with an enrollment",
                    opts.log_dir.display()
                )))
            }
            None => {
                log.append(&keys.enrollment.to_leaves()?)?;
                s.sk_in_log = Some(keys.enrollment.signing_key.public_key);
            }
        }
        if s.sk_in_log != Some(keys.binding.public_key) {
            let r = KeyRebinding::decode(&state.read(REBINDING_FILE)?)?;
            if r.signing_key != keys.binding {
                return Err(AgentError::Config(
                    "the key binding in force is neither the enrollment's nor the latest \
                     rebinding's"
                        .into(),
                ));
            }
            log.append(&r.to_leaves()?)?;
        }
        s.position.first_leaf = log.size();
        Ok(Self {
            tpm,
            keys,
            log,
            builder,
            system,
            position: s.position,
            store: Store::new(&opts.store_root),
            cache: InputCache::new(),
            index: s.index,
            source: opts.source.clone(),
            orderly_jump: opts.orderly_jump,
        })
    }

    /// The builder's id.
    pub fn builder(&self) -> &BuilderId {
        &self.builder
    }

    /// The booted system's digest (what every entry names).
    pub fn system(&self) -> Sha256Digest {
        self.system
    }

    /// The log writer.
    pub fn log(&self) -> &LogWriter {
        &self.log
    }

    /// Where derivations and outputs appear in the log.
    pub fn index(&self) -> &LogIndex {
        &self.index
    }

    /// LK (for Nix `Sig:` lines).
    pub fn log_key(&self) -> &ed25519_dalek::SigningKey {
        &self.keys.lk
    }

    /// Answer a credential-activation challenge for this builder's AK
    /// (TPM2_ActivateCredential under the EK).
    pub fn activate(
        &mut self,
        challenge: &provenix_protocol::tpm::CredentialChallenge,
    ) -> Result<provenix_protocol::tpm::CredentialAnswer> {
        let e = &self.keys.enrollment;
        let secret = self
            .tpm
            .activate_credential(e.ek_kind, e.ak_handle, challenge)?;
        Ok(provenix_protocol::tpm::CredentialAnswer {
            secret: provenix_protocol::tpm::Digest::new(&secret)?,
        })
    }

    /// Add witness cosignatures to the checkpoint (see
    /// [`LogWriter::add_cosignatures`]).
    pub fn add_cosignatures(
        &mut self,
        body: &str,
        sigs: &[provenix_protocol::note::NoteSignature],
    ) -> Result<bool> {
        self.log.add_cosignatures(body, sigs)
    }

    /// Builds registered as made here after enrollment and before `until`
    /// that no entry names (see [`crate::reconcile`]).
    pub fn missed_builds(&self, until: u64) -> Result<(Vec<Job>, Vec<String>)> {
        crate::reconcile::missed_builds(&self.store, &self.index, self.keys.enrollment.time, until)
    }

    /// Paths cached with content hashes.
    pub fn cached_inputs(&self) -> usize {
        self.cache.len()
    }

    /// Record `jobs` as one batch: the entries, then their attestation, then
    /// a checkpoint. One outcome per job, in order. Nothing is published
    /// unless all of it is durable.
    pub fn record(&mut self, jobs: &[Job]) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut leaves: Vec<Vec<u8>> = Vec::new();
        let mut new_entries: Vec<(u64, Entry)> = Vec::new();
        let base = self.log.size();
        for job in jobs {
            let facts = match NixSettings::parse(&job.nix_config).and_then(|settings| {
                build_facts(
                    &self.store,
                    &job.drv_path,
                    &job.out_paths,
                    &settings,
                    &mut self.cache,
                )
            }) {
                Ok(f) => f,
                Err(e) => {
                    outcomes.push(Outcome::Failed(format!("{}: {e}", job.drv_path)));
                    continue;
                }
            };
            let mut entry = Entry {
                builder: self.builder,
                seq: 0,
                drv_path: facts.drv_path,
                drv_hash: facts.drv_hash,
                outputs: facts.outputs,
                built_locally: facts.built_locally,
                build_env: facts.build_env,
                resolved_inputs: facts.resolved_inputs,
                source: self.source.clone(),
                system: self.system,
                time: unix_time(),
            };
            entry.normalize();
            let dup = self.index.find(&entry).or_else(|| {
                let d = outputs_digest(&entry);
                new_entries
                    .iter()
                    .find(|(_, e)| e.drv_path == entry.drv_path && outputs_digest(e) == d)
                    .map(|(l, _)| *l)
            });
            if let Some(at) = dup {
                outcomes.push(Outcome::AlreadyRecorded(at));
                continue;
            }
            // seq is the entry leaf's index, after any blob leaves it needs.
            let at = base + leaves.len() as u64;
            let mut signed = None;
            let mut blobs = 0u64;
            for _ in 0..3 {
                entry.seq = at + blobs;
                let s = entry.sign(&self.keys.sk)?;
                let n = s.to_leaves().len() as u64 - 1;
                if n == blobs {
                    signed = Some(s);
                    break;
                }
                blobs = n;
            }
            let signed =
                signed.ok_or_else(|| AgentError::Config("entry size did not settle".into()))?;
            leaves.extend(signed.to_leaves());
            new_entries.push((entry.seq, entry));
            outcomes.push(Outcome::Recorded(at + blobs));
        }
        if leaves.is_empty() {
            return Ok(outcomes);
        }
        let mut at = self.position;
        at.first_leaf = base;
        let batch = attest_batch(
            &mut self.tpm,
            &self.keys.enrollment,
            at,
            self.orderly_jump,
            &leaves,
        )?;
        let batch_leaf = batch.to_leaf()?;
        let batch_hash = leaf_hash(&batch_leaf);
        leaves.push(batch_leaf);
        self.log.append(&leaves)?;
        self.position = LogPosition {
            last_counter: Some(Counter(batch.counter)),
            previous_batch: batch_hash,
            first_leaf: self.log.size(),
        };
        for (leaf, e) in &new_entries {
            self.index.add(*leaf, e);
        }
        Ok(outcomes)
    }
}
