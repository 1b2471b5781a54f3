//! What one finished build produced, established from content: the facts an
//! [`Entry`](provenix_protocol::Entry) states about it.
//!
//! ```text
//! DRV_PATH ─ read .drv ─> Derivation ─ hash_modulo (input .drvs read as needed) ─> drv_hash
//!          └─ outputs ─ NAR walk of each (hash, size) + reference scan over
//!                       closure(inputs) ∪ outputs ─────────────────> EntryOutput
//!          └─ direct inputs (input drvs' outputs, input sources)
//!                       ─ NAR hash from content (cached per boot) ─> ResolvedInput
//! NIX_CONFIG (Nix's effective settings, as the hook saw them)
//!                       ─> built_locally, BuildEnv { digest, sandbox, remote builders }
//! ```
//! Nothing here trusts the Nix database's hashes. The database is read
//! only for the reference *graph* of the inputs, which gives the candidate
//! set that Nix itself scans outputs for; which candidates an output really
//! refers to is then decided by scanning its bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use provenix_protocol::drv::{Derivation, DrvHash, MAX_DRV_SIZE};
use provenix_protocol::entry::{BuildEnv, EntryOutput, ResolvedInput};
use provenix_protocol::nar::{hash_and_scan, hash_path, HASH_PART_LEN};
use provenix_protocol::{DrvPath, NarHash, Sha256Digest, StorePath};

use crate::error::{AgentError, Result};
use crate::fsio::io;

/// A Nix store as the agent reads it: `root` is `/` for the machine's
/// store, or a chroot store's root (`nix --store /some/root`).
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// Open a Nix database read-only, with a small page cache (the daemon's
/// reads are one pass each; SQLite's default 2 MB cache would stay in the
/// daemon's memory).
pub fn open_nix_db(db: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(nix_db_error(db))?;
    conn.pragma_update(None, "cache_size", -256)
        .map_err(nix_db_error(db))?;
    Ok(conn)
}

/// The error for a failed query on the Nix database at `db`.
pub fn nix_db_error(db: &Path) -> impl Fn(rusqlite::Error) -> AgentError + Copy + '_ {
    move |e| AgentError::Config(format!("Nix database {}: {e}", db.display()))
}

/// Most paths in an input closure the agent will scan for.
pub const MAX_INPUT_CLOSURE: usize = 1 << 20;

impl Store {
    /// The store under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Where a store path's files are.
    pub fn real_path(&self, p: &StorePath) -> PathBuf {
        self.root.join(p.as_str().trim_start_matches('/'))
    }

    /// The Nix database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("nix/var/nix/db/db.sqlite")
    }

    fn read_drv(&self, p: &DrvPath) -> Result<Derivation> {
        let path = self.real_path(p.store_path());
        let meta = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if meta.len() > MAX_DRV_SIZE as u64 {
            return Err(AgentError::Config(format!(
                "{}: larger than {MAX_DRV_SIZE} bytes",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        Ok(Derivation::parse(&bytes)?)
    }

    /// The closure of `roots` under the references the Nix database records
    /// (the graph only; used as the candidate set of a reference scan).
    pub fn closure(&self, roots: &BTreeSet<StorePath>) -> Result<BTreeSet<StorePath>> {
        let db = self.db_path();
        let err = nix_db_error(&db);
        let conn = open_nix_db(&db)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT v2.path FROM ValidPaths v1 JOIN Refs r ON r.referrer = v1.id \
                 JOIN ValidPaths v2 ON v2.id = r.reference WHERE v1.path = ?1",
            )
            .map_err(err)?;
        let mut seen: BTreeSet<StorePath> = BTreeSet::new();
        let mut todo: Vec<StorePath> = roots.iter().cloned().collect();
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if seen.len() > MAX_INPUT_CLOSURE {
                return Err(AgentError::Config(format!(
                    "the inputs' closure has more than {MAX_INPUT_CLOSURE} paths"
                )));
            }
            let mut rows = stmt.query([p.as_str()]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let r: String = row.get(0).map_err(err)?;
                let r = StorePath::parse(&r)?;
                if !seen.contains(&r) {
                    todo.push(r);
                }
            }
        }
        Ok(seen)
    }
}

/// What the daemon learns about inputs, kept for its life (one boot):
/// inputs recur across builds. NAR hashes are computed from content; the
/// input derivations' hashDerivationModulo values spare re-reading and
/// re-hashing the whole input graph for every build.
#[derive(Debug, Default)]
pub struct InputCache {
    hashes: HashMap<StorePath, NarHash>,
    drv_hashes: BTreeMap<DrvPath, DrvHash>,
}

/// Most entries the input cache keeps before it starts over.
pub const MAX_CACHED_INPUTS: usize = 100_000;

impl InputCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The NAR hash of `p`, hashed from its files on first use.
    pub fn nar_hash(&mut self, store: &Store, p: &StorePath) -> Result<NarHash> {
        if let Some(h) = self.hashes.get(p) {
            return Ok(*h);
        }
        let sum = hash_path(&store.real_path(p))?;
        if self.hashes.len() >= MAX_CACHED_INPUTS {
            self.hashes.clear();
        }
        self.hashes.insert(p.clone(), sum.hash);
        Ok(sum.hash)
    }

    /// Paths cached.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Largest `NIX_CONFIG` accepted.
pub const MAX_NIX_CONFIG: usize = 1 << 20;

/// Domain of the build-environment digest.
pub const BUILD_ENV_DOMAIN: &[u8] = b"provenix/build-env/v1";

/// Nix's effective settings as the post-build hook receives them in
/// `NIX_CONFIG` (`name = value` lines, what `nix show-config` prints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NixSettings {
    values: BTreeMap<String, String>,
}

impl NixSettings {
    /// Parse `NIX_CONFIG`. Blank lines and `#` comments are skipped; every
    /// other line must be `name = value`; a name given twice is refused.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_NIX_CONFIG {
            return Err(AgentError::Config(format!(
                "NIX_CONFIG is {} bytes, more than {MAX_NIX_CONFIG}",
                text.len()
            )));
        }
        let mut values = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (name, value) = t.split_once('=').ok_or_else(|| {
                AgentError::Config(format!("NIX_CONFIG line {}: not `name = value`", i + 1))
            })?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(AgentError::Config(format!(
                    "NIX_CONFIG line {}: {name:?} is not a setting name",
                    i + 1
                )));
            }
            if values
                .insert(name.to_string(), value.trim().to_string())
                .is_some()
            {
                return Err(AgentError::Config(format!(
                    "NIX_CONFIG line {}: {name} given twice",
                    i + 1
                )));
            }
        }
        Ok(Self { values })
    }

    /// A setting's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// SHA-256(domain || for each setting in name order: u32be len || name ||
    /// u32be len || value).
    pub fn digest(&self) -> Sha256Digest {
        let mut pre = BUILD_ENV_DOMAIN.to_vec();
        for (k, v) in &self.values {
            for s in [k, v] {
                pre.extend_from_slice(&(s.len() as u32).to_be_bytes());
                pre.extend_from_slice(s.as_bytes());
            }
        }
        Sha256Digest::of(&pre)
    }

    /// Whether builds may go to remote builders: `builders` is not empty,
    /// or names (`@file`) a machines file that lists any machine. An unset
    /// `builders` counts as remote: it cannot be checked.
    pub fn remote_builders(&self) -> bool {
        match self.get("builders").map(str::trim) {
            None => true,
            Some("") => false,
            Some(v) => match v.strip_prefix('@') {
                Some(file) => match std::fs::read_to_string(file) {
                    Ok(text) => text
                        .lines()
                        .map(|l| l.split('#').next().unwrap_or("").trim())
                        .any(|l| !l.is_empty()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(_) => true,
                },
                None => true,
            },
        }
    }

    /// `sandbox = true` (not `relaxed`, not `false`).
    pub fn sandboxed(&self) -> bool {
        self.get("sandbox") == Some("true")
    }

    /// The build environment an entry records, and whether the build counts
    /// as built locally: no remote builders, `sandbox = true`,
    /// `sandbox-fallback = false` and `trusted-users` only root
    /// (DESIGN.md "Provenance entry").
    pub fn build_env(&self) -> (BuildEnv, bool) {
        let remote = self.remote_builders();
        let sandbox = self.sandboxed();
        let no_fallback = self.get("sandbox-fallback") == Some("false");
        let trusted_root_only = self
            .get("trusted-users")
            .is_some_and(|v| v.split_whitespace().all(|u| u == "root"));
        let env = BuildEnv {
            settings_digest: self.digest(),
            sandbox,
            remote_builders: remote,
        };
        (env, !remote && sandbox && no_fallback && trusted_root_only)
    }
}

/// What a build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildFacts {
    /// The derivation built.
    pub drv_path: DrvPath,
    /// Its hashDerivationModulo.
    pub drv_hash: Sha256Digest,
    /// Its outputs, hashed and scanned from content (sorted by name).
    pub outputs: Vec<EntryOutput>,
    /// Its direct inputs with content NAR hashes (sorted by path).
    pub resolved_inputs: Vec<ResolvedInput>,
    /// Under locked-down settings, no remote builders.
    pub built_locally: bool,
    /// The settings it was built under.
    pub build_env: BuildEnv,
}

/// Establish the facts of the build of `drv_path` in `store`. `out_paths`
/// is the hook's `OUT_PATHS` (empty on Nix 2.8.0: then every output of the
/// derivation); paths it names must be outputs of the derivation.
pub fn build_facts(
    store: &Store,
    drv_path: &DrvPath,
    out_paths: &[StorePath],
    settings: &NixSettings,
    cache: &mut InputCache,
) -> Result<BuildFacts> {
    let drv = store.read_drv(drv_path)?;
    let mut resolve = |p: &DrvPath| {
        store
            .read_drv(p)
            .map_err(|_| provenix_protocol::Error::MissingInputDerivation(p.to_string()))
    };
    if cache.drv_hashes.len() >= MAX_CACHED_INPUTS {
        cache.drv_hashes.clear();
    }
    let hash = drv.hash_modulo_memo(drv_path.drv_name(), &mut resolve, &mut cache.drv_hashes)?;
    drv.check_output_paths(drv_path.drv_name(), &hash)?;

    let mut outputs: Vec<(String, StorePath)> = Vec::new();
    for (name, out) in drv.outputs() {
        let path = out.path().ok_or_else(|| {
            AgentError::Config(format!(
                "{drv_path}: output {name} has no path in the derivation (content-addressed \
                 derivations are not supported)"
            ))
        })?;
        outputs.push((name.clone(), path.clone()));
    }
    for p in out_paths {
        if !outputs.iter().any(|(_, o)| o == p) {
            return Err(AgentError::Config(format!(
                "OUT_PATHS names {p}, which is not an output of {drv_path}"
            )));
        }
    }

    // Direct inputs: the input derivations' outputs used, and input sources.
    let mut inputs: BTreeSet<StorePath> = drv.input_srcs().iter().cloned().collect();
    for (input, names) in drv.input_drvs() {
        let d = store.read_drv(input)?;
        for name in names {
            let out = d
                .outputs()
                .get(name)
                .and_then(|o| o.path())
                .ok_or_else(|| {
                    AgentError::Config(format!("{input}: no path for its output {name}"))
                })?;
            inputs.insert(out.clone());
        }
    }
    let mut resolved_inputs = Vec::with_capacity(inputs.len());
    for p in &inputs {
        resolved_inputs.push(ResolvedInput {
            store_path: p.clone(),
            nar_hash: cache.nar_hash(store, p)?,
        });
    }

    // Reference candidates: as Nix, the inputs' closure and the outputs.
    let mut candidates: BTreeMap<[u8; HASH_PART_LEN], StorePath> = BTreeMap::new();
    let closure = store.closure(&inputs)?;
    for p in closure.iter().chain(outputs.iter().map(|(_, p)| p)) {
        if let Ok(key) = <[u8; HASH_PART_LEN]>::try_from(p.hash_part().as_bytes()) {
            candidates.insert(key, p.clone());
        }
    }
    let mut entry_outputs = Vec::with_capacity(outputs.len());
    for (name, path) in outputs {
        let (sum, found) = hash_and_scan(&store.real_path(&path), candidates.keys().copied())?;
        let references = found
            .iter()
            .filter_map(|k| candidates.get(k).cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        entry_outputs.push(EntryOutput {
            name,
            store_path: path,
            nar_hash: sum.hash,
            nar_size: sum.size,
            references,
        });
    }
    let (build_env, built_locally) = settings.build_env();
    Ok(BuildFacts {
        drv_path: drv_path.clone(),
        drv_hash: hash.drv_hash(),
        outputs: entry_outputs,
        resolved_inputs,
        built_locally,
        build_env,
    })
}
