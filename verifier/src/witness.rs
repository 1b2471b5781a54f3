//! `provenix witness`: a C2SP tlog-witness. It cosigns a log's checkpoint
//! only when it is consistent with the last one it cosigned for that log,
//! so two views of one log can never both carry its cosignature.
//!
//! ```text
//! POST /add-checkpoint:  "old <size>\n" ‖ consistency proof (base64 lines)
//!                        ‖ "\n" ‖ signed checkpoint
//!   origin known? (404) ─ signed by the log's key? (403)
//!   ─ old == the size last cosigned? (409 + that size, text/x.tlog.size)
//!   ─ proof from (old, its root) to the new checkpoint? (422)
//!   ─ record (size, root) durably ─ 200 + cosignature line
//! ```
//! One state file per log in the state directory (origin, size, root hex),
//! written crash-safe before any cosignature leaves.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use provenix_io::durable::{write_durable, DurableError};
use provenix_io::server::read_body;
use provenix_io::{text, Body, Handler};
use provenix_protocol::encoding::base64_decode_array;
use provenix_protocol::merkle::{empty_root, verify_consistency, MAX_PROOF_LEN};
use provenix_protocol::note::{cosign, Checkpoint, CosignerSigningKey, Note, NoteVerifierKey};
use provenix_protocol::Sha256Digest;

/// Largest add-checkpoint request body.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Why a checkpoint was not cosigned; each maps to the status C2SP
/// tlog-witness prescribes.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Malformed request (400).
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// The origin is not a log this witness follows (404).
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// The checkpoint is not signed by the log's key (403).
    #[error("the checkpoint is not signed by the log's key: {0}")]
    BadSignature(String),
    /// `old` is not the size last cosigned (409, with that size).
    #[error("this witness last cosigned size {0} of the log")]
    Conflict(u64),
    /// The consistency proof does not hold (422).
    #[error("not consistent with the checkpoint last cosigned: {0}")]
    Inconsistent(String),
    /// The state could not be read or written (500).
    #[error("witness state: {0}")]
    State(String),
}

impl AddError {
    /// The HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownLog(_) => StatusCode::NOT_FOUND,
            Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DurableError> for AddError {
    fn from(e: DurableError) -> Self {
        Self::State(e.to_string())
    }
}

/// A witness: its cosigner key, the logs it follows, its state.
pub struct Witness {
    key: CosignerSigningKey,
    logs: Vec<NoteVerifierKey>,
    state_dir: PathBuf,
    /// Serialises check-and-record per witness (requests are rare).
    lock: Mutex<()>,
}

/// What the witness last cosigned for one log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Sha256Digest,
}

impl Witness {
    /// A witness signing with `key`, following the logs whose checkpoint
    /// keys are `logs` (each key's name is the log's origin), keeping its
    /// state in `state_dir` (created if missing).
    pub fn new(
        key: CosignerSigningKey,
        logs: Vec<NoteVerifierKey>,
        state_dir: &Path,
    ) -> Result<Self, DurableError> {
        std::fs::create_dir_all(state_dir).map_err(|source| DurableError {
            path: state_dir.to_owned(),
            source,
        })?;
        Ok(Self {
            key,
            logs,
            state_dir: state_dir.to_owned(),
            lock: Mutex::new(()),
        })
    }

    fn state_file(&self, origin: &str) -> PathBuf {
        self.state_dir
            .join(Sha256Digest::of(origin.as_bytes()).to_hex())
    }

    /// What the witness last cosigned for `origin` (size 0, the empty root,
    /// when nothing yet).
    pub fn cosigned(&self, origin: &str) -> Result<Cosigned, AddError> {
        let path = self.state_file(origin);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Cosigned {
                    size: 0,
                    root: empty_root(),
                })
            }
            Err(e) => return Err(AddError::State(format!("{}: {e}", path.display()))),
        };
        let bad = || AddError::State(format!("{}: damaged state file", path.display()));
        let mut lines = text.lines();
        if lines.next() != Some(origin) {
            return Err(bad());
        }
        let size = lines.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let root = lines
            .next()
            .and_then(|r| Sha256Digest::from_hex(r).ok())
            .ok_or_else(bad)?;
        Ok(Cosigned { size, root })
    }

    /// Handle one add-checkpoint request body; the cosignature line on
    /// success.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, AddError> {
        let bad = |m: &str| AddError::BadRequest(m.to_owned());
        let (old, proof, note_bytes) = parse_request(body)?;
        let note = Note::parse(note_bytes).map_err(|e| bad(&format!("checkpoint: {e}")))?;
        let cp =
            Checkpoint::parse_body(note.text()).map_err(|e| bad(&format!("checkpoint: {e}")))?;
        let keys: Vec<NoteVerifierKey> = self
            .logs
            .iter()
            .filter(|k| k.name().as_str() == cp.origin)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(AddError::UnknownLog(cp.origin));
        }
        note.verify(&keys)
            .map_err(|e| AddError::BadSignature(e.to_string()))?;
        let _guard = self
            .lock
            .lock()
            .map_err(|_| AddError::State("poisoned lock".into()))?;
        let last = self.cosigned(&cp.origin)?;
        if old != last.size {
            return Err(AddError::Conflict(last.size));
        }
        if cp.size < old {
            return Err(bad("the checkpoint is smaller than old"));
        }
        verify_consistency(old, cp.size, &last.root, &cp.root, &proof)
            .map_err(|e| AddError::Inconsistent(e.to_string()))?;
        let sig =
            cosign(note.text(), &self.key, now).map_err(|e| AddError::BadRequest(e.to_string()))?;
        if cp.size > last.size || last.size == 0 {
            let state = format!("{}\n{}\n{}\n", cp.origin, cp.size, cp.root.to_hex());
            write_durable(&self.state_file(&cp.origin), state.as_bytes(), 0o600)?;
        }
        Ok(sig.to_line())
    }

    /// The HTTP handler: `POST /add-checkpoint`.
    pub fn handler(self: Arc<Self>) -> Handler {
        provenix_io::handler(self, Self::handle)
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: std::net::SocketAddr,
    ) -> Response<Body> {
        if req.uri().path() != "/add-checkpoint" {
            return text(
                StatusCode::NOT_FOUND,
                "this witness serves POST /add-checkpoint\n",
            );
        }
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
        }
        let body = match read_body(req, MAX_REQUEST).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let w = Arc::clone(&self);
        let now = provenix_io::unix_time();
        let r = tokio::task::spawn_blocking(move || w.add_checkpoint(&body, now)).await;
        match r {
            Ok(Ok(line)) => text(StatusCode::OK, line),
            Ok(Err(AddError::Conflict(size))) => {
                let mut r = text(StatusCode::CONFLICT, format!("{size}\n"));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/x.tlog.size"));
                r
            }
            Ok(Err(e)) => {
                tracing::warn!("refused a checkpoint from {peer}: {e}");
                text(e.status(), format!("{e}\n"))
            }
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
}

/// Split an add-checkpoint body: the old size, the consistency proof, and
/// the bytes of the signed checkpoint after the blank line.
pub fn parse_request(body: &[u8]) -> Result<(u64, Vec<Sha256Digest>, &[u8]), AddError> {
    let bad = |m: &str| AddError::BadRequest(m.to_owned());
    let mut rest = body;
    let mut line = || -> Result<&str, AddError> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("a line without its newline"))?;
        let (l, r) = rest.split_at(end);
        rest = r.get(1..).unwrap_or_default();
        std::str::from_utf8(l).map_err(|_| bad("not UTF-8"))
    };
    let old = line()?
        .strip_prefix("old ")
        .and_then(|n| {
            (!n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0')))
            .then(|| n.parse().ok())
            .flatten()
        })
        .ok_or_else(|| bad("the first line is not `old <size>`"))?;
    let mut proof = Vec::new();
    loop {
        let l = line()?;
        if l.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LEN {
            return Err(bad("the consistency proof is too long"));
        }
        proof.push(Sha256Digest(
            base64_decode_array::<32>(l).map_err(|_| bad("a proof line is not a base64 hash"))?,
        ));
    }
    Ok((old, proof, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_framing() {
        let (old, proof, rest) = parse_request(b"old 0\n\nrest").unwrap();
        assert_eq!((old, proof.len(), rest), (0, 0, &b"rest"[..]));
        let h = provenix_protocol::encoding::base64_encode(&[7; 32]);
        let body = format!("old 12\n{h}\n{h}\n\nnote");
        let (old, proof, rest) = parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            (old, proof, rest),
            (12, vec![Sha256Digest([7; 32]); 2], &b"note"[..])
        );
        for bad in [
            &b"old 01\n\n"[..],
            b"old -1\n\n",
            b"new 1\n\n",
            b"old 1\nAAAA\n\n",
            b"old 1\n",
        ] {
            assert!(
                matches!(parse_request(bad), Err(AddError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
