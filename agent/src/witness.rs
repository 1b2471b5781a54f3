//! Submitting checkpoints to witnesses (C2SP tlog-witness
//! `add-checkpoint`) and collecting their cosignatures (C2SP
//! tlog-cosignature).
//!
//! ```text
//! worker ─ new checkpoint ─> witness thread (keeps only the latest)
//!   for each witness without a cosignature on it:
//!     POST <url>/add-checkpoint:  "old <size>\n" ‖ proof lines ‖ "\n" ‖ checkpoint
//!       200: cosignature line(s), verified against the witness's key
//!       409: the witness is at another size: retry once from that size
//!   ─ Msg::Cosigned ─> worker adds them to the checkpoint file (if it is
//!     still the latest) ─ served with it
//! ```
//! A witness that is down or refuses is logged and retried with the next
//! checkpoint or after [`RETRY`]; it never holds up recording.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use provenix_protocol::encoding::base64_encode;
use provenix_protocol::note::{Checkpoint, CosignerKey, Note, NoteSignature};
use serde::Deserialize;

use crate::daemon::Msg;
use crate::error::{AgentError, Result};
use crate::log::consistency_proof;

/// How often a failed submission is retried when no new checkpoint comes.
pub const RETRY: Duration = Duration::from_secs(30);
/// Largest response accepted from a witness.
const MAX_RESPONSE: u64 = 64 * 1024;

/// A witness as configured: where it listens and its cosigner key.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its URL prefix (`add-checkpoint` is appended).
    pub url: String,
    /// Its cosigner verifier key (C2SP vkey, signature type 0x04).
    pub key: String,
}

/// A witness and what the log knows of it.
pub struct Witness {
    url: String,
    key: CosignerKey,
    /// The size the witness last cosigned for this log (as far as we know).
    size: u64,
}

impl Witness {
    /// A witness from its configuration.
    pub fn new(c: &WitnessConfig) -> Result<Self> {
        let key = CosignerKey::parse(&c.key)
            .map_err(|e| AgentError::Config(format!("witness {}: key {:?}: {e}", c.url, c.key)))?;
        if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
            return Err(AgentError::Config(format!(
                "witness {}: not an http(s) URL",
                c.url
            )));
        }
        Ok(Self {
            url: c.url.trim_end_matches('/').to_owned(),
            key,
            size: 0,
        })
    }

    /// The witness's key name.
    pub fn name(&self) -> &str {
        self.key.name().as_str()
    }

    /// Submit `checkpoint` (the log in `dir`'s latest) and return the
    /// witness's verified cosignature.
    pub fn submit(
        &mut self,
        client: &ureq::Agent,
        dir: &Path,
        checkpoint: &[u8],
    ) -> Result<NoteSignature> {
        let note = Note::parse(checkpoint)?;
        let cp = Checkpoint::parse_body(note.text())?;
        let fail = |what: String| AgentError::Config(format!("witness {}: {what}", self.url));
        for _ in 0..2 {
            let old = if self.size > cp.size { 0 } else { self.size };
            let mut body = format!("old {old}\n");
            for h in consistency_proof(dir, old, cp.size)? {
                body.push_str(&base64_encode(&h.0));
                body.push('\n');
            }
            body.push('\n');
            let mut body = body.into_bytes();
            body.extend_from_slice(checkpoint);
            let mut resp = client
                .post(&format!("{}/add-checkpoint", self.url))
                .send(&body[..])
                .map_err(|e| fail(e.to_string()))?;
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE)
                .read_to_string()
                .map_err(|e| fail(format!("reading the response: {e}")))?;
            match status {
                200 => {
                    let mut cosigned = String::from(note.text());
                    cosigned.push('\n');
                    cosigned.push_str(&text);
                    let with = Note::parse(cosigned.as_bytes())
                        .map_err(|e| fail(format!("not cosignature lines: {e}")))?;
                    let sig = with
                        .verify_cosignatures(std::slice::from_ref(&self.key))
                        .map_err(|e| fail(format!("cosignature: {e}")))?
                        .into_iter()
                        .next()
                        .ok_or_else(|| fail("answered without its cosignature".into()))?;
                    self.size = cp.size;
                    return Ok(sig.to_note_signature());
                }
                409 => {
                    self.size = text
                        .trim()
                        .parse()
                        .map_err(|_| fail(format!("409 without a tree size: {:?}", text.trim())))?;
                    if self.size > cp.size {
                        return Err(fail(format!(
                            "it has cosigned size {} of this log, beyond our {}: a fork, or \
                             a log directory restored from an old backup",
                            self.size, cp.size
                        )));
                    }
                }
                s => return Err(fail(format!("HTTP {s}: {}", text.trim()))),
            }
        }
        Err(fail("kept answering 409".into()))
    }
}

/// Start the witness thread: it takes checkpoints from the returned
/// sender and sends verified cosignatures to the worker.
pub fn spawn(
    witnesses: Vec<Witness>,
    client: ureq::Agent,
    dir: PathBuf,
    worker: Sender<Msg>,
) -> Sender<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || run(witnesses, &client, &dir, &rx, &worker));
    tx
}

fn run(
    mut witnesses: Vec<Witness>,
    client: &ureq::Agent,
    dir: &Path,
    rx: &Receiver<Vec<u8>>,
    worker: &Sender<Msg>,
) {
    let mut pending: Option<Vec<u8>> = None;
    // Which witnesses have cosigned `pending`.
    let mut done: Vec<bool> = vec![false; witnesses.len()];
    loop {
        match rx.recv_timeout(RETRY) {
            Ok(cp) => {
                // Only the latest checkpoint matters.
                pending = Some(rx.try_iter().last().unwrap_or(cp));
                done.iter_mut().for_each(|d| *d = false);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(cp) = &pending else { continue };
        let Ok(body) = Note::parse(cp).map(|n| n.text().to_owned()) else {
            continue;
        };
        let mut sigs = Vec::new();
        for (w, d) in witnesses.iter_mut().zip(done.iter_mut()) {
            if *d {
                continue;
            }
            match w.submit(client, dir, cp) {
                Ok(sig) => {
                    *d = true;
                    sigs.push(sig);
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        if !sigs.is_empty() && worker.send(Msg::Cosigned { body, sigs }).is_err() {
            return;
        }
    }
}
