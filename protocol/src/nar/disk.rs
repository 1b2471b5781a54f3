//! The NAR disk walk: serialise or hash a path as `nix-store --dump` does.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::{NarHasher, NarSink, NarSummary, NarWriter, RefScanner, Tee, HASH_PART_LEN};
use crate::error::{Error, Result};

/// Read buffer per worker: large enough that syscalls are noise next to
/// SHA-256, small enough to stay in L2.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Walker<'b, S> {
    writer: NarWriter<S>,
    buf: &'b mut [u8],
}

impl<S: NarSink> Walker<'_, S> {
    fn node(&mut self, path: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(io_err(path))?;
            self.writer.symlink(target.as_os_str().as_bytes())
        } else if ft.is_file() {
            self.regular(path, meta.permissions().mode() & 0o100 != 0)
        } else if ft.is_dir() {
            let mut names = Vec::new();
            for entry in fs::read_dir(path).map_err(io_err(path))? {
                names.push(entry.map_err(io_err(path))?.file_name());
            }
            names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            self.writer.begin_directory()?;
            for name in names {
                self.writer.begin_entry(name.as_bytes())?;
                self.node(&path.join(&name))?;
                self.writer.end_entry()?;
            }
            self.writer.end_directory()
        } else {
            Err(Error::UnsupportedFileType(path.to_path_buf()))
        }
    }

    fn regular(&mut self, path: &Path, executable: bool) -> Result<()> {
        let mut file = File::open(path).map_err(io_err(path))?;
        // The size must come before the contents; take it from the open file.
        let size = file.metadata().map_err(io_err(path))?.len();
        self.writer.begin_regular(executable, size)?;
        let mut done: u64 = 0;
        loop {
            let n = match file.read(self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(path)(e)),
            };
            let chunk = self.buf.get(..n).unwrap_or_default();
            done = done.saturating_add(n as u64);
            if done > size {
                break;
            }
            self.writer.contents(chunk)?;
        }
        if done != size {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("file changed size while it was read"),
            });
        }
        self.writer.end_regular(size)
    }
}

fn walk<S: NarSink>(path: &Path, sink: S, buf: &mut [u8]) -> Result<S> {
    let mut w = Walker {
        writer: NarWriter::new(sink)?,
        buf,
    };
    w.node(path)?;
    Ok(w.writer.into_sink())
}

/// Chunk size handed from the walker thread to the hashing thread.
const PIPE_CHUNK: usize = 1024 * 1024;
/// Chunks in flight between the two threads.
const PIPE_DEPTH: usize = 4;

fn worker_stopped(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("hashing worker stopped"),
    }
}

/// Batches the NAR stream into large chunks for the hashing thread and
/// reuses the chunks it sends back.
struct PipeSink {
    tx: SyncSender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    cur: Vec<u8>,
}

impl PipeSink {
    fn flush(&mut self) -> Result<()> {
        if self.cur.is_empty() {
            return Ok(());
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK));
        let full = std::mem::replace(&mut self.cur, next);
        self.tx
            .send(full)
            .map_err(|_| worker_stopped(Path::new("<hasher>")))
    }
}

impl NarSink for PipeSink {
    fn put(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let room = PIPE_CHUNK.saturating_sub(self.cur.len()).max(1);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.cur.extend_from_slice(now);
            bytes = rest;
            if self.cur.len() >= PIPE_CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }
}

/// NAR hash and size of `path` (not following a top-level symlink, as Nix).
///
/// Two threads: one walks the tree and reads files, the calling thread only
/// hashes, so one large tree hashes at nearly the raw SHA-256 rate.
pub fn hash_path(path: &Path) -> Result<NarSummary> {
    let (tx, rx) = sync_channel::<Vec<u8>>(PIPE_DEPTH);
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let walker = scope.spawn(move || -> Result<()> {
            let mut buf = vec![0u8; DEFAULT_BUFFER];
            let sink = PipeSink {
                tx,
                free: free_rx,
                cur: Vec::with_capacity(PIPE_CHUNK),
            };
            walk(path, sink, &mut buf)?.flush()
        });
        let mut hasher = NarHasher::new();
        for mut chunk in rx {
            hasher.put(&chunk)?;
            chunk.clear();
            // The walker may have finished already; then the chunk is dropped.
            let _ = free_tx.send(chunk);
        }
        walker.join().map_err(|_| worker_stopped(path))??;
        Ok(hasher.finish())
    })
}

/// NAR hash and size of `path` on the calling thread alone.
pub fn hash_path_single_thread(path: &Path) -> Result<NarSummary> {
    let mut buf = vec![0u8; DEFAULT_BUFFER];
    Ok(walk(path, NarHasher::new(), &mut buf)?.finish())
}

/// NAR hash and size of `path`, and which of the `candidates` hash parts
/// occur in its NAR (Nix's reference scan), in one pass on this thread.
pub fn hash_and_scan(
    path: &Path,
    candidates: impl IntoIterator<Item = [u8; HASH_PART_LEN]>,
) -> Result<(NarSummary, std::collections::BTreeSet<[u8; HASH_PART_LEN]>)> {
    let mut buf = vec![0u8; DEFAULT_BUFFER];
    let Tee(hasher, scanner) = walk(
        path,
        Tee(NarHasher::new(), RefScanner::new(candidates)),
        &mut buf,
    )?;
    Ok((hasher.finish(), scanner.finish()))
}

struct IoSink<W> {
    out: W,
}

impl<W: Write> NarSink for IoSink<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| Error::Io {
            path: PathBuf::from("<output>"),
            source,
        })
    }
}

/// Write the NAR of `path` to `out` (what `nix-store --dump` prints).
pub fn dump_path<W: Write>(path: &Path, out: W) -> Result<W> {
    let mut buf = vec![0u8; DEFAULT_BUFFER];
    Ok(walk(path, IoSink { out }, &mut buf)?.out)
}

/// Hash many paths on up to `jobs` threads (at least one). Results come back
/// in the order of `paths`; one path's failure does not stop the others.
/// A single path with `jobs` > 1 uses the two-thread [`hash_path`].
pub fn hash_paths(paths: &[PathBuf], jobs: usize) -> Vec<Result<NarSummary>> {
    if let [one] = paths {
        if jobs > 1 {
            return vec![hash_path(one)];
        }
    }
    let jobs = jobs.clamp(1, paths.len().max(1));
    if jobs == 1 {
        return paths.iter().map(|p| hash_path_single_thread(p)).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<NarSummary>>>> =
        Mutex::new(paths.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut buf = vec![0u8; DEFAULT_BUFFER];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let r = walk(path, NarHasher::new(), &mut buf).map(NarHasher::finish);
                    if let Ok(mut guard) = results.lock() {
                        if let Some(slot) = guard.get_mut(i) {
                            *slot = Some(r);
                        }
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results
        .into_iter()
        .zip(paths)
        .map(|(r, p)| {
            r.unwrap_or_else(|| {
                Err(Error::Io {
                    path: p.clone(),
                    source: std::io::Error::other("hashing worker stopped"),
                })
            })
        })
        .collect()
}
