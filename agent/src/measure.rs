//! `provenix-agent measure`: the system identity of the booted closure,
//! computed from the store's content, extended into the system PCR.
//!
//! ```text
//! /proc/cmdline  init=/nix/store/<toplevel>/init ──> toplevel
//! registration (nix-store --dump-db of the image) or the Nix database ──> closure of toplevel
//! <root>/nix/store/<each path> ──NAR hash from content, in parallel──┐
//!                                                                    ▼
//!              SystemIdentity (protocol) ── digest ──> PCR_Extend(system PCR)
//! ```
//! The registration's (or database's) hashes are only compared, never trusted: a path whose
//! content no longer matches is reported, and the identity is the content's.
//! The measurement is also appended, as a CEL-JSON record, to the agent's
//! event log (`cel.log` in the state directory), so a verifier replays the
//! firmware log plus this log to the quoted PCR values.

use std::path::Path;
use std::time::{Duration, Instant};

use provenix_protocol::nar::hash_paths;
use provenix_protocol::registration::{closure, Registration};
use provenix_protocol::system::{ClosurePath, MeasurementMode, SystemIdentity};
use provenix_protocol::{NarHash, Sha256Digest, StorePath};

use crate::error::{AgentError, Result};

/// A path whose content differs from what the registration claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// The path.
    pub path: StorePath,
    /// What the registration (the Nix database) claims.
    pub claimed: NarHash,
    /// What the content hashes to now.
    pub content: NarHash,
}

/// The result of a measurement.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The identity of the system as its content is.
    pub identity: SystemIdentity,
    /// `identity.digest()`: what the system PCR is extended with.
    pub digest: Sha256Digest,
    /// Paths in the closure.
    pub paths: usize,
    /// Total NAR bytes hashed.
    pub nar_bytes: u64,
    /// Paths whose content differs from the registration.
    pub changed: Vec<Changed>,
    /// Time spent hashing.
    pub elapsed: Duration,
}

/// The toplevel named by the kernel command line's `init=` (NixOS:
/// `init=/nix/store/<hash>-nixos-system-…/init`).
pub fn toplevel_from_cmdline(cmdline: &str) -> Result<StorePath> {
    let init = cmdline
        .split_ascii_whitespace()
        .filter_map(|a| a.strip_prefix("init="))
        .next_back()
        .ok_or_else(|| AgentError::Config("the kernel command line has no init=".into()))?;
    let top = init
        .strip_suffix("/init")
        .ok_or_else(|| AgentError::Config(format!("init={init} does not name <toplevel>/init")))?;
    Ok(StorePath::parse(top)?)
}

/// Measure `toplevel`'s closure under `root` (`/` or the new root in the
/// initrd, e.g. `/sysroot`), hashing on `jobs` threads.
pub fn measure(
    root: &Path,
    toplevel: &StorePath,
    registrations: &[Registration],
    jobs: usize,
) -> Result<Measurement> {
    let members = closure(registrations, toplevel)?;
    let disk: Vec<_> = members
        .iter()
        .map(|r| root.join(r.path.as_str().trim_start_matches('/')))
        .collect();
    let start = Instant::now();
    let sums = hash_paths(&disk, jobs);
    let elapsed = start.elapsed();
    let mut paths = Vec::with_capacity(members.len());
    let mut changed = Vec::new();
    let mut nar_bytes = 0u64;
    for (r, sum) in members.iter().zip(sums) {
        let sum = sum?;
        nar_bytes = nar_bytes.saturating_add(sum.size);
        if sum.hash != r.nar_hash || sum.size != r.nar_size {
            changed.push(Changed {
                path: r.path.clone(),
                claimed: r.nar_hash,
                content: sum.hash,
            });
        }
        paths.push(ClosurePath {
            path: r.path.clone(),
            nar_hash: sum.hash,
            nar_size: sum.size,
        });
    }
    let identity =
        SystemIdentity::from_closure(toplevel.clone(), MeasurementMode::ContentRehash, &paths)?;
    let digest = identity.digest()?;
    Ok(Measurement {
        identity,
        digest,
        paths: paths.len(),
        nar_bytes,
        changed,
        elapsed,
    })
}

/// Read every registered path from a Nix database (`nix/var/nix/db/db.sqlite`,
/// opened read-only): path, NAR hash and size, deriver, references. Like a
/// registration file, these are claims; `measure` only compares them.
pub fn registrations_from_nix_db(db: &Path) -> Result<Vec<Registration>> {
    use provenix_protocol::system::MAX_CLOSURE_PATHS;
    use std::collections::{BTreeMap, BTreeSet};
    let err = crate::build::nix_db_error(db);
    let conn = crate::build::open_nix_db(db)?;
    let mut by_id: BTreeMap<i64, Registration> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT id, path, hash, narSize, deriver FROM ValidPaths")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        if by_id.len() >= MAX_CLOSURE_PATHS {
            return Err(AgentError::Config(format!(
                "Nix database {}: more than {MAX_CLOSURE_PATHS} paths",
                db.display()
            )));
        }
        let id: i64 = row.get(0).map_err(err)?;
        let path: String = row.get(1).map_err(err)?;
        let hash: String = row.get(2).map_err(err)?;
        let size: Option<i64> = row.get(3).map_err(err)?;
        let deriver: Option<String> = row.get(4).map_err(err)?;
        by_id.insert(
            id,
            Registration {
                path: StorePath::parse(&path)?,
                nar_hash: NarHash::parse(&hash)?,
                nar_size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                deriver: match deriver.as_deref() {
                    None | Some("") => None,
                    Some(d) => Some(StorePath::parse(d)?),
                },
                references: BTreeSet::new(),
            },
        );
    }
    let mut stmt = conn
        .prepare("SELECT referrer, reference FROM Refs")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let (from, to): (i64, i64) = (row.get(0).map_err(err)?, row.get(1).map_err(err)?);
        let target = by_id.get(&to).map(|r| r.path.clone()).ok_or_else(|| {
            AgentError::Config(format!(
                "Nix database {}: a reference to an unknown path",
                db.display()
            ))
        })?;
        if let Some(r) = by_id.get_mut(&from) {
            r.references.insert(target);
        }
    }
    Ok(by_id.into_values().collect())
}

/// The agent's CEL-JSON event log in the state directory.
pub const CEL_LOG: &str = "cel.log";

/// Add the system measurement to the agent's CEL-JSON event log in
/// `state` (crash-safe: the file is rewritten whole, then renamed), given
/// the system PCR's value before the extension, `current`: the log is
/// this boot's when it replays to `current` (the record is appended); a
/// PCR still at its reset value (all zeros) means a new boot, whose log
/// starts with the record. Any other value is refused: something extended
/// the PCR without a log entry, and no log could explain it.
pub fn append_cel(
    state: &crate::state::StateDir,
    identity: &SystemIdentity,
    pcr: provenix_protocol::PcrIndex,
    current: &[u8],
) -> Result<()> {
    use provenix_measured_boot::{CelLog, HashAlgorithm, SystemMeasurement};
    let mut bytes = if state.exists(CEL_LOG) {
        state.read(CEL_LOG)?
    } else {
        Vec::new()
    };
    // Refuse to extend a log that does not parse: never hide a damaged log.
    let replayed = CelLog::parse(&bytes)?
        .replay(&[HashAlgorithm::Sha256])?
        .bank(HashAlgorithm::Sha256)
        .map(|b| b.value(pcr));
    if replayed.as_ref().map(|v| v.as_bytes()) != Some(current) {
        if current.iter().any(|b| *b != 0) {
            return Err(AgentError::Config(format!(
                "{}: PCR {} holds a value neither this log nor a fresh boot explains: it was \
                 extended without a log entry; refusing to measure",
                state.file(CEL_LOG).display(),
                pcr.get()
            )));
        }
        bytes.clear(); // a new boot: the previous boot's log is done with
    }
    let recnum = CelLog::parse(&bytes)?.records().len() as u64;
    let record = SystemMeasurement::new(identity.clone())?
        .to_record(pcr, &[HashAlgorithm::Sha256])?
        .with_recnum(recnum);
    bytes.extend_from_slice(&record.to_json_seq());
    CelLog::parse(&bytes)?;
    state.write(CEL_LOG, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toplevel_from_init() {
        let t = toplevel_from_cmdline(
            "console=ttyS0 init=/nix/store/79ydpa7c195vv90qyvi8rmkzavcxib11-nixos-system-b-24.05/init quiet",
        )
        .unwrap();
        assert_eq!(t.name(), "nixos-system-b-24.05");
        assert!(toplevel_from_cmdline("console=ttyS0").is_err());
        assert!(toplevel_from_cmdline("init=/sbin/init").is_err());
        assert!(toplevel_from_cmdline("init=/nix/store/x/init").is_err());
    }
}
