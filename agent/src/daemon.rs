//! `provenix-agent run` (the daemon) and `provenix-agent hook` (its client,
//! run by Nix as the post-build hook).
//!
//! ```text
//! Nix ─ post-build-hook ─> hook ─ socket: u32be len ‖ job ─> accept thread
//!                           │                                 peer is root (SO_PEERCRED)?
//!                           │ daemon unreachable:             Job::from_bytes, spool.put (durable)
//!                           └─ spool.put itself               reply "ok" ─> hook exits 0
//!                                         │
//!                                         ▼
//! worker: spool (oldest first) ─ batch of ≤ batch_size, or after batch_delay
//!         ─ Recorder::record ─ log + checkpoint durable ─ spool.done
//! ```
//! The hook never fails a build: it exits 0 whatever happens, bounded by
//! its timeout, and says loudly on stderr (Nix's log, the journal) when it
//! could not even spool.
//!
//! The worker owns the TPM, so everything else that needs it (credential
//! activation for the service) and the order to stop reach it as [`Msg`]s,
//! handled between batches.

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use crate::error::{AgentError, Result};
use crate::fsio::io;
use crate::job::{Job, MAX_JOB};
use crate::recorder::{Outcome, Recorder};
use crate::spool::Spool;

/// Default socket path.
pub const DEFAULT_SOCKET: &str = "/run/provenix/agent.sock";
/// Default hook timeout (connect, send, acknowledgement).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_millis(2000);
/// Default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Default batch delay.
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_millis(200);
/// How long a client may take to send its job.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The daemon's settings.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The submission socket.
    pub socket: PathBuf,
    /// User ids allowed to submit (root; plus the Nix daemon's user if it
    /// is not root).
    pub allowed_uids: Vec<u32>,
    /// Jobs per batch, at most.
    pub batch_size: usize,
    /// How long a job may wait for its batch to fill.
    pub batch_delay: Duration,
    /// How often, when idle, to look for builds that never reached the log.
    pub reconcile_every: Duration,
    /// How long a build must have been registered before reconciliation
    /// may take it (seconds).
    pub reconcile_settle: u64,
}

/// Default reconciliation interval.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(600);

/// Spool the builds reconciliation finds (each derivation once per run).
fn reconcile(
    recorder: &Recorder,
    spool: &Spool,
    settle: u64,
    tried: &mut std::collections::BTreeSet<provenix_protocol::DrvPath>,
) -> Result<()> {
    let now = crate::unix_time();
    let (jobs, gone) = recorder.missed_builds(now.saturating_sub(settle))?;
    for job in jobs {
        if !tried.insert(job.drv_path.clone()) {
            continue;
        }
        tracing::warn!(
            "reconciliation: {} was built here but never recorded (its hook \
             could not submit or spool it); recovering it: its build settings are unknown, so \
             the entry says built_locally = false",
            job.drv_path
        );
        spool.put(&job)?;
    }
    for drv in gone {
        tracing::warn!(
            "reconciliation: {drv} was built here but never recorded, and its \
             .drv is gone (garbage-collected): it cannot be recorded"
        );
    }
    Ok(())
}

/// Send `job` to the daemon at `socket` and wait for its acknowledgement
/// (the daemon has spooled it durably).
pub fn submit(socket: &Path, job: &Job, timeout: Duration) -> Result<()> {
    let mut s = UnixStream::connect(socket).map_err(|e| io(socket, e))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| io(socket, e))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| io(socket, e))?;
    let bytes = job.to_bytes();
    let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    s.write_all(&frame).map_err(|e| io(socket, e))?;
    let mut reply = String::new();
    s.take(4096)
        .read_to_string(&mut reply)
        .map_err(|e| io(socket, e))?;
    match reply.strip_prefix("ok") {
        Some(_) => Ok(()),
        None => Err(AgentError::Config(format!(
            "the daemon refused the job: {}",
            reply.trim()
        ))),
    }
}

/// What the hook did.
#[derive(Debug, PartialEq, Eq)]
pub enum HookResult {
    /// The daemon took the job.
    Submitted,
    /// The daemon was unreachable or refused; the job is in the spool.
    Spooled(PathBuf, String),
}

/// The hook: submit, else spool. Errors only if even the spool failed.
pub fn hook(socket: &Path, spool_dir: &Path, job: &Job, timeout: Duration) -> Result<HookResult> {
    match submit(socket, job, timeout) {
        Ok(()) => Ok(HookResult::Submitted),
        Err(why) => {
            let path = Spool::open(spool_dir)?.put(job)?;
            Ok(HookResult::Spooled(path, why.to_string()))
        }
    }
}

/// Read one framed job from a client, bounded in size and time.
fn read_job(s: &mut UnixStream) -> Result<Job> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| AgentError::Config(format!("reading the job length: {e}")))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_JOB {
        return Err(AgentError::Config(format!(
            "a job of {len} bytes is larger than {MAX_JOB}"
        )));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)
        .map_err(|e| AgentError::Config(format!("reading the job: {e}")))?;
    Job::from_bytes(&buf)
}

/// What reaches the worker.
pub enum Msg {
    /// A job was spooled.
    Wake,
    /// Answer a credential-activation challenge with the TPM.
    Activate(
        Box<provenix_protocol::tpm::CredentialChallenge>,
        SyncSender<Result<provenix_protocol::tpm::CredentialAnswer>>,
    ),
    /// Witnesses cosigned a checkpoint (their cosignatures are verified).
    Cosigned {
        /// The checkpoint's body (what was cosigned).
        body: String,
        /// The cosignatures.
        sigs: Vec<provenix_protocol::note::NoteSignature>,
    },
    /// Stop after the batch in hand.
    Stop,
}

fn serve_client(
    mut s: UnixStream,
    spool: &Spool,
    allowed: &[u32],
    wake: &Sender<Msg>,
) -> Result<()> {
    let cred = rustix::net::sockopt::socket_peercred(&s)
        .map_err(|e| AgentError::Config(format!("peer credentials: {e}")))?;
    let uid = cred.uid.as_raw();
    if !allowed.contains(&uid) {
        let _ = s.write_all(b"error: not allowed to submit jobs\n");
        return Err(AgentError::Config(format!(
            "refused a job from uid {uid} (pid {}): only {allowed:?} may submit",
            cred.pid.as_raw_nonzero()
        )));
    }
    s.set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| AgentError::Config(format!("socket: {e}")))?;
    let job = match read_job(&mut s) {
        Ok(j) => j,
        Err(e) => {
            let _ = s.write_all(format!("error: {e}\n").as_bytes());
            return Err(e);
        }
    };
    match spool.put(&job) {
        Ok(_) => {
            let _ = s.write_all(b"ok\n");
            let _ = wake.send(Msg::Wake);
            Ok(())
        }
        Err(e) => {
            let _ = s.write_all(format!("error: {e}\n").as_bytes());
            Err(e)
        }
    }
}

/// Bind the submission socket (replacing a stale one), mode 0660.
pub fn bind(socket: &Path) -> Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    if socket.exists() {
        // A live daemon answers; a stale socket file refuses connections.
        if UnixStream::connect(socket).is_ok() {
            return Err(AgentError::Config(format!(
                "{}: another daemon is listening",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(|e| io(socket, e))?;
    }
    let l = UnixListener::bind(socket).map_err(|e| io(socket, e))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io(socket, e))?;
    Ok(l)
}

/// Most clients served at once; more are told to spool (the hook does).
pub const MAX_CLIENTS: usize = 64;

/// Accept clients forever on their own thread, each served on its own
/// thread (at most [`MAX_CLIENTS`] at once), so one slow client cannot
/// hold up the others' hooks.
pub fn spawn_acceptor(listener: UnixListener, spool: Spool, allowed: Vec<u32>, wake: Sender<Msg>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = match conn {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            };
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = s.write_all(b"error: busy\n");
                continue;
            }
            let (spool, allowed, wake, active) = (
                spool.clone(),
                allowed.clone(),
                wake.clone(),
                Arc::clone(&active),
            );
            std::thread::spawn(move || {
                if let Err(e) = serve_client(s, &spool, &allowed, &wake) {
                    tracing::warn!("submission refused: {e}");
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
}

/// Wait for a message (at most `timeout`) and handle it; true when told
/// to stop.
fn wait(recorder: &mut Recorder, rx: &Receiver<Msg>, timeout: Duration) -> Result<bool> {
    match rx.recv_timeout(timeout) {
        Ok(Msg::Wake) | Err(RecvTimeoutError::Timeout) => Ok(false),
        Ok(Msg::Stop) => Ok(true),
        Ok(Msg::Activate(challenge, reply)) => {
            let answer = recorder.activate(&challenge);
            if let Err(e) = &answer {
                tracing::warn!("credential activation failed: {e}");
            }
            let _ = reply.send(answer);
            Ok(false)
        }
        Ok(Msg::Cosigned { body, sigs }) => {
            match recorder.add_cosignatures(&body, &sigs) {
                Ok(true) => tracing::info!(
                    "{} witness cosignature(s) added to the checkpoint",
                    sigs.len()
                ),
                Ok(false) => {} // a newer checkpoint is out; its own round follows
                Err(e) => tracing::error!("cannot add cosignatures: {e}"),
            }
            Ok(false)
        }
        Err(RecvTimeoutError::Disconnected) => {
            std::thread::sleep(Duration::from_millis(200));
            Ok(false)
        }
    }
}

/// The worker loop: record what is spooled, in batches, until told to
/// stop ([`Msg::Stop`], honoured between batches). `published` is called
/// with each new checkpoint.
pub fn work(
    recorder: &mut Recorder,
    spool: &Spool,
    opts: &DaemonOptions,
    rx: &Receiver<Msg>,
    mut published: impl FnMut(&[u8]),
) -> Result<()> {
    let mut first_seen: Option<Instant> = None;
    let mut reconciled: Option<Instant> = None;
    let mut tried = std::collections::BTreeSet::new();
    loop {
        let waiting = spool.list(opts.batch_size)?;
        if waiting.is_empty() && reconciled.is_none_or(|t| t.elapsed() >= opts.reconcile_every) {
            // Idle (the spool drained first, so hooks' jobs win): look for
            // builds that never reached the log.
            reconciled = Some(Instant::now());
            if let Err(e) = reconcile(recorder, spool, opts.reconcile_settle, &mut tried) {
                tracing::error!("reconciliation failed: {e}");
            }
            continue;
        }
        if waiting.is_empty() {
            first_seen = None;
            // Also rescan now and then: the hook spools directly when the
            // daemon is unreachable, without waking anyone.
            if wait(recorder, rx, Duration::from_secs(1))? {
                return Ok(());
            }
            continue;
        }
        let since = *first_seen.get_or_insert_with(Instant::now);
        if waiting.len() < opts.batch_size && since.elapsed() < opts.batch_delay {
            if wait(
                recorder,
                rx,
                opts.batch_delay.saturating_sub(since.elapsed()),
            )? {
                return Ok(());
            }
            continue;
        }
        first_seen = None;
        // Under steady load the spool never empties: still take one waiting
        // message (an activation, the order to stop) per batch.
        if wait(recorder, rx, Duration::ZERO)? {
            return Ok(());
        }
        let mut jobs = Vec::new();
        let mut paths = Vec::new();
        for s in waiting {
            match s.job {
                Ok(j) => {
                    jobs.push(j);
                    paths.push(s.path);
                }
                Err(e) => {
                    tracing::error!("{}: not a job ({e}); moved to failed/", s.path.display());
                    spool.fail(&s.path, &e.to_string())?;
                }
            }
        }
        if jobs.is_empty() {
            continue;
        }
        // A TPM or log failure stops the daemon: nothing is removed from
        // the spool, so a restart takes the same jobs again.
        let size = recorder.log().size();
        let outcomes = recorder.record(&jobs)?;
        if recorder.log().size() != size {
            published(recorder.log().checkpoint());
        }
        for ((job, path), outcome) in jobs.iter().zip(&paths).zip(outcomes) {
            match outcome {
                Outcome::Recorded(leaf) => {
                    tracing::info!("recorded {} at leaf {leaf}", job.drv_path);
                    spool.done(path)?;
                }
                Outcome::AlreadyRecorded(leaf) => {
                    tracing::info!("{} already recorded at leaf {leaf}", job.drv_path);
                    spool.done(path)?;
                }
                Outcome::Failed(why) => {
                    tracing::error!("cannot record: {why}; moved to failed/");
                    spool.fail(path, &why)?;
                }
            }
        }
    }
}

/// The channel to the worker ([`work`]).
pub fn worker_channel() -> (Sender<Msg>, Receiver<Msg>) {
    channel()
}
