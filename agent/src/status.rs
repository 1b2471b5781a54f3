//! What `provenix-agent status` and the service's `/status` report:
//! enrollment, whether SK can be unsealed, the job queue, the log and its
//! last batch. Read from the state, spool and log directories; only the
//! key state needs the TPM (or the running daemon, which holds it).

use std::path::Path;

use provenix_protocol::encoding::hex_encode;
use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::Sha256Digest;
use serde::Serialize;

use crate::enroll::{ENROLLMENT_FILE, REBINDING_FILE};
use crate::error::Result;
use crate::log::published;
use crate::recorder::{LastBatch, LogView};
use crate::spool::Spool;
use crate::state::StateDir;

/// The enrollment, as status shows it.
#[derive(Clone, Debug, Serialize)]
pub struct EnrollmentStatus {
    /// The builder id (AK Name, hex).
    pub builder: String,
    /// Which EK the AK is under.
    pub ek: String,
    /// SHA-256 of the EK certificate.
    pub ek_certificate_sha256: String,
    /// The seal and quote set.
    pub seal_pcrs: Vec<u8>,
    /// The system PCR.
    pub system_pcr: u8,
    /// Enrolled on a software TPM.
    pub software_tpm: bool,
    /// SK was re-bound after an upgrade.
    pub rebound: bool,
    /// The SK in force (hex): the latest binding's.
    pub sk: String,
    /// LK, the log key (hex).
    pub lk: String,
}

/// The log, as status shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LogStatus {
    /// Leaves in the published checkpoint.
    pub size: u64,
    /// Its root (hex).
    pub root: String,
    /// Witness cosignatures on it.
    pub cosignatures: usize,
    /// Entries in the log.
    pub entries: u64,
    /// The last batch.
    pub last_batch: Option<BatchStatus>,
}

/// The last batch.
#[derive(Clone, Debug, Serialize)]
pub struct BatchStatus {
    /// Its attestation's leaf index.
    pub leaf: u64,
    /// Its counter.
    pub counter: u64,
    /// Entries it attests.
    pub entries: u64,
}

impl From<LastBatch> for BatchStatus {
    fn from(b: LastBatch) -> Self {
        Self {
            leaf: b.leaf,
            counter: b.counter,
            entries: b.entries,
        }
    }
}

/// Everything status reports.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The enrollment (None: not enrolled).
    pub enrollment: Option<EnrollmentStatus>,
    /// Whether SK unseals: "derived by the running daemon", "derivable in
    /// this boot state", "not derivable: …", or "not checked".
    pub keys: String,
    /// Jobs waiting in the spool.
    pub queued: usize,
    /// Jobs that could not be recorded.
    pub failed: usize,
    /// The log (None: nothing published yet).
    pub log: Option<LogStatus>,
}

/// The enrollment record in `state`, if any.
pub fn enrollment_status(state: &StateDir) -> Result<Option<EnrollmentStatus>> {
    if !state.exists(ENROLLMENT_FILE) {
        return Ok(None);
    }
    let e = Enrollment::decode(&state.read(ENROLLMENT_FILE)?)?;
    let rebound = state.exists(REBINDING_FILE);
    let sk = if rebound {
        provenix_protocol::enrollment::KeyRebinding::decode(&state.read(REBINDING_FILE)?)?
            .signing_key
            .public_key
    } else {
        e.signing_key.public_key
    };
    Ok(Some(EnrollmentStatus {
        builder: e.builder_id()?.to_hex(),
        ek: format!("{:?}", e.ek_kind),
        ek_certificate_sha256: Sha256Digest::of(&e.ek_certificate).to_hex(),
        seal_pcrs: e.seal_pcrs.clone(),
        system_pcr: e.system_pcr,
        software_tpm: e.insecure_swtpm,
        rebound,
        sk: hex_encode(&sk),
        lk: hex_encode(&e.log_key.public_key),
    }))
}

/// The log in `dir` as of its published checkpoint, read into `view`
/// (which is brought up to date, so a caller can keep it between calls).
pub fn log_status(dir: &Path, view: &mut LogView) -> Result<Option<LogStatus>> {
    let Some((bytes, cp)) = published(dir)? else {
        return Ok(None);
    };
    view.catch_up(dir, cp.size)?;
    let note = provenix_protocol::note::Note::parse(&bytes)?;
    Ok(Some(LogStatus {
        size: cp.size,
        root: cp.root.to_hex(),
        cosignatures: note.signatures().len().saturating_sub(1),
        entries: view.index.entries(),
        last_batch: view.last_batch.map(BatchStatus::from),
    }))
}

/// Collect the status; `keys` says what is known about SK.
pub fn collect(
    state: &StateDir,
    spool: &Spool,
    log_dir: &Path,
    view: &mut LogView,
    keys: String,
) -> Result<Status> {
    Ok(Status {
        enrollment: enrollment_status(state)?,
        keys,
        queued: spool.depth(),
        failed: spool.failed(),
        log: log_status(log_dir, view)?,
    })
}

impl Status {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match &self.enrollment {
            None => out.push_str("not enrolled (run `provenix-agent enroll`)\n"),
            Some(e) => {
                out.push_str(&format!("builder   {}\n", e.builder));
                out.push_str(&format!(
                    "  EK        {}, certificate SHA-256 {}\n",
                    e.ek, e.ek_certificate_sha256
                ));
                out.push_str(&format!(
                    "  seal set  sha256:{:?}, system PCR {}{}\n",
                    e.seal_pcrs,
                    e.system_pcr,
                    if e.rebound {
                        " (SK re-bound since enrollment)"
                    } else {
                        ""
                    }
                ));
                out.push_str(&format!("  SK        {}\n  LK        {}\n", e.sk, e.lk));
                if e.software_tpm {
                    out.push_str("  software TPM (insecure: tests and demos only)\n");
                }
            }
        }
        out.push_str(&format!("keys      {}\n", self.keys));
        out.push_str(&format!(
            "queue     {} job(s) waiting, {} failed\n",
            self.queued, self.failed
        ));
        match &self.log {
            None => out.push_str("log       nothing published yet\n"),
            Some(l) => {
                out.push_str(&format!(
                    "log       {} leaves, {} entries, root {}, {} witness cosignature(s)\n",
                    l.size, l.entries, l.root, l.cosignatures
                ));
                match &l.last_batch {
                    Some(b) => out.push_str(&format!(
                        "  last batch: counter {}, {} entries, attestation at leaf {}\n",
                        b.counter, b.entries, b.leaf
                    )),
                    None => out.push_str("  no batch yet\n"),
                }
            }
        }
        out
    }
}
