//! The verifier's state directory: per log, the checkpoint accepted last
//! time (size and root), written crash-safe. The next appraisal requires
//! the log to extend it.

use std::path::{Path, PathBuf};

use provenix_protocol::Sha256Digest;

use crate::appraise::Seen;

/// A state directory.
pub struct StateDir(PathBuf);

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct StateError {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl StateDir {
    /// Open (create) the directory.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| StateError {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self(dir.to_owned()))
    }

    fn file(&self, log: &str) -> PathBuf {
        self.0.join(format!(
            "{}.checkpoint",
            Sha256Digest::of(log.as_bytes()).to_hex()
        ))
    }

    /// The checkpoint accepted before from the log named `log`.
    pub fn seen(&self, log: &str) -> Result<Option<Seen>, StateError> {
        let path = self.file(log);
        let err = |reason: String| StateError {
            path: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let mut lines = text.lines();
        let size = lines.next().and_then(|s| s.parse().ok());
        let root = lines.next().and_then(|r| Sha256Digest::from_hex(r).ok());
        match (size, root) {
            (Some(size), Some(root)) => Ok(Some(Seen { size, root })),
            _ => Err(err("damaged state file".into())),
        }
    }

    /// Record the checkpoint accepted from `log`.
    pub fn accept(&self, log: &str, seen: Seen) -> Result<(), StateError> {
        let state = format!("{}\n{}\n", seen.size, seen.root.to_hex());
        provenix_io::durable::write_durable(&self.file(log), state.as_bytes(), 0o644).map_err(|e| {
            StateError {
                path: e.path.display().to_string(),
                reason: e.source.to_string(),
            }
        })
    }
}
