//! Durable file writes (CONVENTIONS.md "Durable writes"): write a temporary
//! file beside the target, fsync it, rename it over the target, fsync the
//! directory. After [`write_durable`] returns the file holds the new bytes
//! even across a power cut; before, it holds its old contents (or none).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// An I/O error on a path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct DurableError {
    /// The file or directory.
    pub path: PathBuf,
    /// What failed.
    pub source: std::io::Error,
}

fn err(path: &Path, source: std::io::Error) -> DurableError {
    DurableError {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, what: &str) -> DurableError {
    err(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned()),
    )
}

/// Write `bytes` to `path` crash-safe, with `mode` (e.g. 0o600 for state,
/// 0o644 for published files).
pub fn write_durable(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DurableError> {
    let dir = path
        .parent()
        .ok_or_else(|| invalid(path, "no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| invalid(path, "no file name"))?;
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
        .map_err(|e| err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| err(&tmp, e))?;
    f.sync_all().map_err(|e| err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| err(path, e))?;
    sync_dir(dir)
}

/// fsync a directory (makes renames and creations in it durable).
pub fn sync_dir(dir: &Path) -> Result<(), DurableError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))
}

/// Create `dir` and any missing parents below `root`, making each creation
/// durable (fsync of the parent).
pub fn create_dirs_durable(root: &Path, dir: &Path) -> Result<(), DurableError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| invalid(dir, "no parent directory"))?;
    if dir != root && parent.starts_with(root) {
        create_dirs_durable(root, parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_leave_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/f");
        create_dirs_durable(d.path(), p.parent().unwrap()).unwrap();
        write_durable(&p, b"one", 0o600).unwrap();
        write_durable(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
        let e = write_durable(&d.path().join("missing/f"), b"x", 0o600).unwrap_err();
        assert!(e.path.ends_with(".f.tmp"), "{e}");
    }
}
