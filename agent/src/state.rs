//! The agent's state directory: TPM blobs and the enrollment record, written
//! crash-safe (temporary file, fsync, rename, fsync the directory), mode 0600.
//! No secret ever goes here: the blobs are wrapped by the TPM.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsio::{io, write_durable};

/// A state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
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
        Ok(write_durable(&self.file(name), bytes, 0o600)?)
    }

    /// Read `name`.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.file(name);
        fs::read(&path).map_err(|e| io(&path, e))
    }
}
