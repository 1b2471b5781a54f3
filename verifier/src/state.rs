//! The verifier's state directory, written crash-safe: per log, its
//! appraisal at the checkpoint accepted last (`<SHA-256 of the log's
//! name>.appraisal`, JSON: the next appraisal requires the log to extend
//! it, and `provenix verify` goes on from it, reading only new leaves), and
//! per builder (AK Name) the PCR values pinned on first use
//! (`<AK Name>.pins`).

use std::path::{Path, PathBuf};

use provenix_protocol::Sha256Digest;

use crate::appraise::{Appraiser, Seen};

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
            "{}.appraisal",
            Sha256Digest::of(log.as_bytes()).to_hex()
        ))
    }

    /// The appraisal of the log named `log` as it stood at the checkpoint
    /// accepted last (None: never accepted).
    pub fn appraiser(&self, log: &str) -> Result<Option<Appraiser>, StateError> {
        let path = self.file(log);
        let Some(text) = read(&path)? else {
            return Ok(None);
        };
        Appraiser::from_json(text.as_bytes(), &path.display().to_string())
            .map(Some)
            .map_err(|e| damaged(&path, e.to_string()))
    }

    /// The checkpoint accepted last from the log named `log`.
    pub fn seen(&self, log: &str) -> Result<Option<Seen>, StateError> {
        Ok(self.appraiser(log)?.map(|a| a.seen()))
    }

    /// Record the appraisal of the log named `log` at its checkpoint.
    pub fn accept(&self, log: &str, appraiser: &Appraiser) -> Result<(), StateError> {
        let path = self.file(log);
        let json = appraiser
            .to_json()
            .ok_or_else(|| damaged(&path, "nothing appraised to record".into()))?;
        write(&path, json.as_bytes())
    }

    fn pins_file(&self, builder: &provenix_protocol::BuilderId) -> PathBuf {
        self.0.join(format!("{}.pins", builder.to_hex()))
    }

    /// The PCR values pinned for `builder` (None: not pinned yet). One line
    /// per PCR: its index and its SHA-256 value in hex.
    pub fn pins(
        &self,
        builder: &provenix_protocol::BuilderId,
    ) -> Result<Option<crate::reference::Pins>, StateError> {
        let path = self.pins_file(builder);
        let Some(text) = read(&path)? else {
            return Ok(None);
        };
        let mut pins = crate::reference::Pins::new();
        for line in text.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(p, v)| Some((p.parse::<u8>().ok()?, Sha256Digest::from_hex(v).ok()?)));
            let Some((pcr, value)) = parsed else {
                return Err(damaged(&path, format!("damaged pin line {line:?}")));
            };
            pins.insert(pcr, value);
        }
        Ok(Some(pins))
    }

    /// Record the PCR values pinned for `builder`.
    pub fn pin(
        &self,
        builder: &provenix_protocol::BuilderId,
        pins: &crate::reference::Pins,
    ) -> Result<(), StateError> {
        let text: String = pins
            .iter()
            .map(|(p, v)| format!("{p} {}\n", v.to_hex()))
            .collect();
        write(&self.pins_file(builder), text.as_bytes())
    }
}

fn damaged(path: &Path, reason: String) -> StateError {
    StateError {
        path: path.display().to_string(),
        reason,
    }
}

/// A state file's text (None: not written yet).
fn read(path: &Path) -> Result<Option<String>, StateError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(damaged(path, e.to_string())),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    provenix_io::durable::write_durable(path, bytes, 0o644).map_err(|e| StateError {
        path: e.path.display().to_string(),
        reason: e.source.to_string(),
    })
}
