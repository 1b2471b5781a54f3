//! Durable file writes (CONVENTIONS.md "Durable writes"): write a temporary
//! file beside the target, fsync it, rename it over the target, fsync the
//! directory. After [`write_durable`] returns the file holds the new bytes
//! even across a power cut; before, it holds its old contents (or none).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::error::{AgentError, Result};

/// An I/O error on `path`.
pub fn io(path: &Path, e: std::io::Error) -> AgentError {
    AgentError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Write `bytes` to `path` crash-safe, with `mode` (e.g. 0o600 for state,
/// 0o644 for published log files).
pub fn write_durable(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| AgentError::Config(format!("{}: no parent directory", path.display())))?;
    let name = path
        .file_name()
        .ok_or_else(|| AgentError::Config(format!("{}: no file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    sync_dir(dir)
}

/// fsync a directory (makes renames and creations in it durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// Create `dir` and any missing parents below `root`, making each creation
/// durable (fsync of the parent).
pub fn create_dirs_durable(root: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| AgentError::Config(format!("{}: no parent directory", dir.display())))?;
    if dir != root && parent.starts_with(root) {
        create_dirs_durable(root, parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(dir, e)),
    }
}
