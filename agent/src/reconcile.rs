//! Reconciliation: builds Nix made here that never reached the log.
//!
//! The hook spools a job durably when the daemon is down, so a build goes
//! missing only when even that failed (disk full, a hook not configured
//! for a while). The Nix database marks the paths this machine built
//! (`ultimate = 1`, with their deriver); any registered since enrollment,
//! settled for a while ([`DEFAULT_SETTLE`]: the hook of a build that just
//! finished wins), and named by no entry, become jobs again, grouped by
//! derivation. The daemon looks when idle: at start once the spool has
//! drained, then every `reconcile_every`.
//!
//! Such a job has no `NIX_CONFIG`: the settings the build ran under are
//! unknown, so its entry says `built_locally = false`, and the daemon's
//! log says the entry was recovered.

use std::collections::BTreeMap;

use provenix_protocol::{DrvPath, StorePath};

use crate::build::{nix_db_error, open_nix_db, Store};
use crate::error::Result;
use crate::job::{Job, MAX_OUT_PATHS};
use crate::recorder::LogIndex;

/// How long (seconds) a build must have been registered before
/// reconciliation may take it (its own hook runs within its timeout).
pub const DEFAULT_SETTLE: u64 = 60;
/// Most derivations recovered in one pass (the rest in the next).
pub const MAX_RECOVERED: usize = 1024;

/// The builds registered in `(since, until]` as built here whose outputs
/// no entry in `index` names, one job per derivation (outputs sorted).
/// Derivations whose .drv is gone (garbage-collected) cannot be recorded
/// and are returned apart, by name.
pub fn missed_builds(
    store: &Store,
    index: &LogIndex,
    since: u64,
    until: u64,
) -> Result<(Vec<Job>, Vec<String>)> {
    let db = store.db_path();
    let err = nix_db_error(&db);
    let conn = open_nix_db(&db)?;
    let mut stmt = conn
        .prepare(
            "SELECT path, deriver, registrationTime FROM ValidPaths WHERE ultimate = 1 \
             AND deriver IS NOT NULL AND registrationTime > ?1 AND registrationTime <= ?2 \
             ORDER BY registrationTime, path",
        )
        .map_err(err)?;
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let until = i64::try_from(until).unwrap_or(i64::MAX);
    let mut rows = stmt.query([since, until]).map_err(err)?;
    let mut by_drv: BTreeMap<String, (Vec<StorePath>, u64)> = BTreeMap::new();
    while let Some(row) = rows.next().map_err(err)? {
        let path: String = row.get(0).map_err(err)?;
        let deriver: String = row.get(1).map_err(err)?;
        let time: i64 = row.get(2).map_err(err)?;
        let path = StorePath::parse(&path)?;
        if !index.entries_for_output(&path).is_empty() {
            continue;
        }
        if by_drv.len() >= MAX_RECOVERED && !by_drv.contains_key(&deriver) {
            break;
        }
        let e = by_drv.entry(deriver).or_default();
        if e.0.len() < MAX_OUT_PATHS {
            e.0.push(path);
        }
        e.1 = e.1.max(u64::try_from(time).unwrap_or(0));
    }
    let mut jobs = Vec::new();
    let mut gone = Vec::new();
    for (drv, (mut outs, time)) in by_drv {
        let drv_path = DrvPath::parse(&drv)?;
        if !store.real_path(drv_path.store_path()).exists() {
            gone.push(drv);
            continue;
        }
        outs.sort();
        jobs.push(Job {
            drv_path,
            out_paths: outs,
            nix_config: String::new(),
            submitted: time,
        });
    }
    Ok((jobs, gone))
}
