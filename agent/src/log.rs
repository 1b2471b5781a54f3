//! The builder's transparency log on disk, laid out as C2SP tlog-tiles
//! (`protocol::tiles`): static files any web server or CDN can serve.
//!
//! ```text
//! <log dir>/lock                       held (flock) by the one writer
//! <log dir>/checkpoint                 signed note by LK, written last
//! <log dir>/tile/<L>/<N>[.p/<W>]       hash tiles
//! <log dir>/tile/entries/<N>[.p/<W>]   entry bundles (the leaves)
//! ```
//! [`LogWriter::append`] writes a run of leaves: first the entry bundles and
//! hash tiles they fill or extend, each crash-safe, then the new checkpoint.
//! The checkpoint is the commit point: a crash before it leaves the log at
//! its previous checkpoint (tile files past it are unpublished and get
//! rewritten), and [`LogWriter::open`] resumes from the checkpoint and the
//! partial tiles at its right edge, checking they give the checkpoint's root.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use provenix_protocol::leaf::{decode_bundle, encode_bundle, MAX_LEAF};
use provenix_protocol::merkle::leaf_hash;
use provenix_protocol::note::{Checkpoint, KeyName, Note, NoteSignature, NoteSigningKey};
use provenix_protocol::tiles::{parse_tile, tile_bytes, TileId, TileKind, TiledTree, TILE_WIDTH};
use provenix_protocol::Sha256Digest;

use crate::error::{AgentError, Result};
use crate::fsio::{create_dirs_durable, io, sync_dir, write_durable};

/// Name of the checkpoint file.
pub const CHECKPOINT: &str = "checkpoint";
/// Name of the writer's lock file.
pub const LOCK: &str = "lock";
/// Published files are world-readable.
const MODE: u32 = 0o644;

/// The one writer of a log directory.
pub struct LogWriter {
    dir: PathBuf,
    _lock: File,
    key: NoteSigningKey,
    origin: String,
    tree: TiledTree,
    /// Leaves after the last full entry bundle.
    bundle: Vec<Vec<u8>>,
    checkpoint: Vec<u8>,
}

/// The origin line of a builder's log: `provenix/<AK Name in hex>`.
pub fn origin_for(builder: &provenix_protocol::BuilderId) -> String {
    format!("provenix/{}", builder.to_hex())
}

/// The note key LK signs checkpoints with: named after the origin.
pub fn note_key(origin: &str, lk: ed25519_dalek::SigningKey) -> Result<NoteSigningKey> {
    Ok(NoteSigningKey::new(KeyName::new(origin)?, lk))
}

impl LogWriter {
    /// Open (creating if needed) the log in `dir`, holding its lock. Refuses
    /// when another process holds it, when the checkpoint is not signed by
    /// `key` or names another origin, and when the tiles do not give the
    /// checkpoint's root.
    pub fn open(dir: &Path, origin: &str, key: NoteSigningKey) -> Result<Self> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        create_dirs_durable(dir.parent().unwrap_or(dir), dir)?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AgentError::Config(format!(
                    "{}: another provenix-agent is writing this log (its lock is held); two \
                     writers would fork it",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path, e)),
        }
        let cp_path = dir.join(CHECKPOINT);
        let (tree, bundle, checkpoint) = match std::fs::read(&cp_path) {
            Ok(bytes) => {
                let (cp, _) = Checkpoint::open(&bytes, &[key.verifier_key()]).map_err(|e| {
                    AgentError::Config(format!(
                        "{}: not a checkpoint signed by this builder's log key: {e}",
                        cp_path.display()
                    ))
                })?;
                if cp.origin != origin {
                    return Err(AgentError::Config(format!(
                        "{}: the log's origin is {:?}, this builder's is {origin:?}",
                        cp_path.display(),
                        cp.origin
                    )));
                }
                let (tree, bundle) = resume(dir, cp.size)?;
                if tree.root() != cp.root {
                    return Err(AgentError::Config(format!(
                        "{}: the tiles at the log's right edge do not give the checkpoint's root \
                         (size {}): the log directory is damaged",
                        dir.display(),
                        cp.size
                    )));
                }
                (tree, bundle, bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (TiledTree::new(), Vec::new(), Vec::new())
            }
            Err(e) => return Err(io(&cp_path, e)),
        };
        let mut w = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            key,
            origin: origin.to_string(),
            tree,
            bundle,
            checkpoint,
        };
        if w.checkpoint.is_empty() {
            w.write_checkpoint()?;
        }
        Ok(w)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Leaves in the log (as of the last checkpoint).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root at [`Self::size`].
    pub fn root(&self) -> Sha256Digest {
        self.tree.root()
    }

    /// The latest signed checkpoint (note bytes).
    pub fn checkpoint(&self) -> &[u8] {
        &self.checkpoint
    }

    /// Append `leaves` and publish a checkpoint covering them. Returns only
    /// once everything is durable; on error nothing new is published.
    pub fn append(&mut self, leaves: &[Vec<u8>]) -> Result<()> {
        if leaves.is_empty() {
            return Ok(());
        }
        for l in leaves {
            if l.is_empty() || l.len() > MAX_LEAF {
                return Err(AgentError::Config(format!(
                    "a log leaf must be 1 to {MAX_LEAF} bytes, not {}",
                    l.len()
                )));
            }
        }
        // Work on copies: a failed append leaves this writer at the last
        // checkpoint, like the files.
        let mut tree = self.tree.clone();
        let mut bundle = self.bundle.clone();
        let mut dirs = std::collections::BTreeSet::new();
        for l in leaves {
            let index = tree.size();
            for (id, hashes) in tree.append(leaf_hash(l))? {
                dirs.insert(self.write_tile(&id, &tile_bytes(&hashes))?);
            }
            bundle.push(l.clone());
            if bundle.len() == TILE_WIDTH {
                let id = TileId {
                    kind: TileKind::Entries,
                    index: index / TILE_WIDTH as u64,
                    width: TILE_WIDTH as u16,
                };
                dirs.insert(self.write_tile(&id, &encode_bundle(&bundle)?)?);
                bundle.clear();
            }
        }
        if !bundle.is_empty() {
            let id = TileId {
                kind: TileKind::Entries,
                index: tree.size() / TILE_WIDTH as u64,
                width: bundle.len() as u16,
            };
            dirs.insert(self.write_tile(&id, &encode_bundle(&bundle)?)?);
        }
        for (id, hashes) in tree.partial_tiles() {
            dirs.insert(self.write_tile(&id, &tile_bytes(hashes))?);
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        let previous = (
            std::mem::replace(&mut self.tree, tree),
            std::mem::replace(&mut self.bundle, bundle),
        );
        if let Err(e) = self.write_checkpoint() {
            (self.tree, self.bundle) = previous;
            return Err(e);
        }
        Ok(())
    }

    /// Write one tile file (fsynced, renamed; the directory is synced by the
    /// caller once for all files in it). Returns its directory.
    fn write_tile(&self, id: &TileId, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(id.path());
        let parent = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        create_dirs_durable(&self.dir, &parent)?;
        write_durable(&path, bytes, MODE)?;
        Ok(parent)
    }

    fn write_checkpoint(&mut self) -> Result<()> {
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: Vec::new(),
        };
        let note = cp.sign(&self.key)?.render().into_bytes();
        write_durable(&self.dir.join(CHECKPOINT), &note, MODE)?;
        self.checkpoint = note;
        Ok(())
    }

    /// Add witness cosignatures (checked by whoever collected them) to the
    /// current checkpoint if its body is still `body`, replacing earlier
    /// lines by the same witnesses; false when the log has moved on.
    pub fn add_cosignatures(&mut self, body: &str, sigs: &[NoteSignature]) -> Result<bool> {
        let mut note = Note::parse(&self.checkpoint)?;
        if note.text() != body {
            return Ok(false);
        }
        for sig in sigs {
            note.add_signature(sig.clone())?;
        }
        let bytes = note.render().into_bytes();
        write_durable(&self.dir.join(CHECKPOINT), &bytes, MODE)?;
        self.checkpoint = bytes;
        Ok(true)
    }
}

/// Read the partial tiles and the partial entry bundle at the right edge
/// of a tree of `size`.
fn resume(dir: &Path, size: u64) -> Result<(TiledTree, Vec<Vec<u8>>)> {
    let mut partial = Vec::new();
    let mut level = 0u32;
    while size.checked_shr(8 * level).unwrap_or(0) > 0 {
        let count = size >> (8 * level);
        let width = (count % TILE_WIDTH as u64) as u16;
        if width == 0 {
            partial.push(Vec::new());
        } else {
            let id = TileId {
                kind: TileKind::Hashes(level as u8),
                index: count / TILE_WIDTH as u64,
                width,
            };
            let hashes = parse_tile(&read_tile(dir, &id)?)?;
            partial.push(hashes);
        }
        level += 1;
    }
    let tree = TiledTree::resume(size, partial)?;
    let width = (size % TILE_WIDTH as u64) as u16;
    let bundle = if width == 0 {
        Vec::new()
    } else {
        read_bundle(dir, size / TILE_WIDTH as u64, width)?
    };
    Ok((tree, bundle))
}

fn read_tile(dir: &Path, id: &TileId) -> Result<Vec<u8>> {
    let path = dir.join(id.path());
    std::fs::read(&path).map_err(|e| io(&path, e))
}

/// The leaves of entry bundle `index` at `width`, which it must hold exactly.
fn read_bundle(dir: &Path, index: u64, width: u16) -> Result<Vec<Vec<u8>>> {
    let id = TileId {
        kind: TileKind::Entries,
        index,
        width,
    };
    let bytes = read_tile(dir, &id)?;
    let leaves = decode_bundle(&bytes)?;
    if leaves.len() != usize::from(width) {
        return Err(AgentError::Config(format!(
            "{}: holds {} leaves, not {width}",
            dir.join(id.path()).display(),
            leaves.len()
        )));
    }
    Ok(leaves.into_iter().map(<[u8]>::to_vec).collect())
}

/// Read leaves `[from, to)` of the log in `dir`, bundle by bundle, calling
/// `f` on each. `to` must be a size the log published (its checkpoint's):
/// the partial bundle at the right edge is read at exactly that width.
pub fn for_each_leaf(
    dir: &Path,
    from: u64,
    to: u64,
    f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    for_each_leaf_of(dir, from, to, to, f)
}

/// [`for_each_leaf`] for leaves `[from, to)` of a log whose published size
/// is `size` (`to <= size`).
pub fn for_each_leaf_of(
    dir: &Path,
    from: u64,
    to: u64,
    size: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    for (id, range) in provenix_protocol::tiles::bundles(from, to, size) {
        let leaves = read_bundle(dir, id.index, id.width)?;
        let start = id.index * TILE_WIDTH as u64;
        for at in range {
            let leaf = leaves
                .get(usize::try_from(at - start).unwrap_or(usize::MAX))
                .ok_or_else(|| AgentError::Config(format!("leaf {at} is not in its bundle")))?;
            f(at, leaf)?;
        }
    }
    Ok(())
}

/// Whether a writer (a running daemon, or `record`) holds the log's lock.
pub fn writer_running(dir: &Path) -> bool {
    let Ok(f) = File::open(dir.join(LOCK)) else {
        return false;
    };
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

/// The checkpoint the log in `dir` has published (its bytes as served, and
/// its body), or `None` before the first. Not verified: this is for the
/// builder's own service, reading its own disk.
pub fn published(dir: &Path) -> Result<Option<(Vec<u8>, Checkpoint)>> {
    let path = dir.join(CHECKPOINT);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path, e)),
    };
    let note = Note::parse(&bytes)?;
    let cp = Checkpoint::parse_body(note.text())?;
    Ok(Some((bytes, cp)))
}

/// The entry at leaf index `leaf` of a log of (published) size `size`, with
/// its detached lists read from the `Blob` leaves right before it.
pub fn read_entry(dir: &Path, leaf: u64, size: u64) -> Result<provenix_protocol::SignedEntry> {
    use provenix_protocol::leaf::{Leaf, BLOB_CHUNK};
    let not_entry = || AgentError::Config(format!("leaf {leaf} of the log is not an entry"));
    if leaf >= size {
        return Err(not_entry());
    }
    let mut this = Vec::new();
    for_each_leaf_of(dir, leaf, leaf + 1, size, |_, l| {
        this = l.to_vec();
        Ok(())
    })?;
    let entry = match Leaf::decode(&this)? {
        Leaf::Entry(e) => e,
        _ => return Err(not_entry()),
    };
    // Most entries carry their lists inline: done with the one leaf.
    let Some((_, len)) = entry.detached() else {
        return Ok(entry.attach(None)?);
    };
    let first = leaf
        .checked_sub(len.div_ceil(BLOB_CHUNK) as u64)
        .ok_or_else(not_entry)?;
    let mut blob = Vec::with_capacity(len);
    for_each_leaf_of(dir, first, leaf, size, |_, l| match Leaf::decode(l)? {
        Leaf::Blob(chunk) => {
            blob.extend_from_slice(&chunk);
            Ok(())
        }
        _ => Err(not_entry()),
    })?;
    Ok(entry.attach(Some(&blob))?)
}

/// The consistency proof from size `old` to the published size `new` of
/// the log in `dir`, computed from its hash tiles.
pub fn consistency_proof(dir: &Path, old: u64, new: u64) -> Result<Vec<Sha256Digest>> {
    use provenix_protocol::tiles::subtree_hash;
    let mut read = |id: &TileId| {
        parse_tile(
            &read_tile(dir, id).map_err(|e| provenix_protocol::Error::InvalidValue {
                what: "hash tile",
                reason: if matches!(e, AgentError::Io { .. }) {
                    "missing or unreadable"
                } else {
                    "unreadable"
                },
            })?,
        )
    };
    Ok(provenix_protocol::merkle::consistency_proof_with(
        old,
        new,
        &mut |lo, hi| subtree_hash(new, lo, hi, &mut read),
    )?)
}
