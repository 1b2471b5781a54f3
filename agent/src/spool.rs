//! The job spool: a directory of durable job files, the daemon's queue.
//!
//! The daemon writes each job it accepts here before it acknowledges it,
//! and the hook writes here itself when the daemon is unreachable, so a
//! build is never lost. A job file is removed only after the log holds its
//! entry (or the log already held it), so a crash in between makes the job
//! run again, and the recorder's duplicate check keeps it from being
//! recorded twice. Jobs that cannot be recorded move to `failed/`, with the
//! reason beside them.
//!
//! File names sort in submission order: `<unix ns, 20 digits>-<pid>-<n>.job`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::fsio::{create_dirs_durable, io, write_durable};
use crate::job::Job;

/// The spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A job read from the spool.
#[derive(Debug)]
pub struct Spooled {
    /// Its file.
    pub path: PathBuf,
    /// The job (or why its file could not be read as one).
    pub job: Result<Job>,
}

impl Spool {
    /// Use (and create, mode 0700) `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        create_dirs_durable(dir.parent().unwrap_or(dir), dir)?;
        create_dirs_durable(dir, &dir.join("failed"))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `job` durably; returns its file.
    pub fn put(&self, job: &Job) -> Result<PathBuf> {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{ns:020}-{}-{}.job",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        write_durable(&path, &job.to_bytes(), 0o600)?;
        // The hook runs as root, the daemon maybe as its own user (the
        // spool's owner): the job must be readable by the spool's owner.
        use std::os::unix::fs::MetadataExt as _;
        let owner = std::fs::metadata(&self.dir).map_err(|e| io(&self.dir, e))?;
        let file = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if (file.uid(), file.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .map_err(|e| io(&path, e))?;
        }
        Ok(path)
    }

    /// Up to `max` jobs, oldest first.
    pub fn list(&self, max: usize) -> Result<Vec<Spooled>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let e = e.map_err(|e| io(&self.dir, e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".job") && !name.starts_with('.') {
                names.push(name.to_string());
            }
        }
        names.sort();
        names.truncate(max);
        Ok(names
            .into_iter()
            .map(|n| {
                let path = self.dir.join(n);
                let job = std::fs::read(&path)
                    .map_err(|e| io(&path, e))
                    .and_then(|b| Job::from_bytes(&b));
                Spooled { path, job }
            })
            .collect())
    }

    /// Jobs waiting.
    pub fn depth(&self) -> usize {
        count_jobs(&self.dir)
    }

    /// Jobs that could not be recorded (in `failed/`).
    pub fn failed(&self) -> usize {
        count_jobs(&self.dir.join("failed"))
    }

    /// Remove a done job (durably).
    pub fn done(&self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(crate::fsio::sync_dir(&self.dir)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(path, e)),
        }
    }

    /// Move a job that cannot be recorded to `failed/`, with the reason in
    /// `<name>.reason`.
    pub fn fail(&self, path: &Path, reason: &str) -> Result<()> {
        let failed = self.dir.join("failed");
        let name = path.file_name().unwrap_or_default();
        let mut reason_name = name.to_os_string();
        reason_name.push(".reason");
        write_durable(&failed.join(reason_name), reason.as_bytes(), 0o600)?;
        std::fs::rename(path, failed.join(name)).map_err(|e| io(path, e))?;
        crate::fsio::sync_dir(&failed)?;
        Ok(crate::fsio::sync_dir(&self.dir)?)
    }
}

/// `*.job` files in `dir` (0 if it cannot be read).
fn count_jobs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.ends_with(".job") && !n.starts_with('.'))
                })
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_spooled_by_root_belongs_to_the_spools_owner() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let spool = Spool::open(&spool_dir).unwrap();
        // Owned by the daemon's user (here nobody); the hook runs as root.
        std::os::unix::fs::chown(&spool_dir, Some(65534), Some(65534)).unwrap();
        let job = Job {
            drv_path: provenix_protocol::DrvPath::parse(
                "/nix/store/00000000000000000000000000000000-x.drv",
            )
            .unwrap(),
            out_paths: Vec::new(),
            nix_config: String::new(),
            submitted: 0,
        };
        let path = spool.put(&job).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(spool.list(10).unwrap().len(), 1);
    }
}
