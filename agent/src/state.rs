//! The agent's state directory: TPM blobs and the enrollment record, written
//! crash-safe (temporary file, fsync, rename, fsync the directory), mode 0600.
//! No secret ever goes here: the blobs are wrapped by the TPM.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::{AgentError, Result};

/// A state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> AgentError {
    AgentError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl StateDir {
    /// Use (and create, mode 0700) `root`.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|e| io(root, e))?;
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(|e| io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Path of a file in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// Write `name` crash-safe: after this returns the file holds `bytes`
    /// even across a power cut; before, it holds its old contents.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.root, e))
    }

    /// Read `name`.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.file(name);
        fs::read(&path).map_err(|e| io(&path, e))
    }
}
