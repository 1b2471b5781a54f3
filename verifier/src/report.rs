//! `provenix report`: the reproducibility table. For every derivation
//! (keyed by `drv_hash`, so the same build on every builder lines up) and
//! output, which builders attest which NAR hash; who is in the minority.
//!
//! ```text
//! policy builders ─ appraise + admit (as decide does) ─ each builder's
//!   latest entry per drv_hash ─ per output: builders grouped by NAR hash,
//!   largest group first
//! ```

use std::collections::BTreeMap;

use provenix_protocol::{NarHash, Sha256Digest, StorePath};

use crate::decide::admitted_log;
use crate::policy::Policy;
use crate::state::{StateDir, StateError};

/// One output of one derivation across builders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRow {
    /// Output name.
    pub name: String,
    /// Its store path.
    pub path: StorePath,
    /// Builders per NAR hash, largest group first.
    pub groups: Vec<(NarHash, Vec<String>)>,
}

impl OutputRow {
    /// Every builder attests the same NAR hash.
    pub fn reproducible(&self) -> bool {
        self.groups.len() <= 1
    }
}

/// One derivation across builders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrvRow {
    /// hashDerivationModulo of the derivation.
    pub drv_hash: Sha256Digest,
    /// Its .drv path (as the first builder recorded it).
    pub drv_path: String,
    /// Its outputs.
    pub outputs: Vec<OutputRow>,
}

/// The report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Derivations, by drv_hash.
    pub rows: Vec<DrvRow>,
    /// Builders whose logs did not count, with why.
    pub not_counted: Vec<(String, String)>,
}

/// What one builder's log says per derivation: its latest entry's outputs.
type Latest = BTreeMap<Sha256Digest, (String, Vec<(String, StorePath, NarHash)>)>;

/// Build the report over the policy's builders.
pub fn report(
    policy: &Policy,
    client: &ureq::Agent,
    state: Option<&StateDir>,
) -> Result<Report, StateError> {
    let mut out = Report::default();
    let mut per_builder: Vec<(String, Latest)> = Vec::new();
    for b in &policy.file.builders {
        let mut latest: Latest = BTreeMap::new();
        let admitted = admitted_log(b, policy, client, state, &mut |_, e| {
            let e = e.entry();
            latest.insert(
                e.drv_hash,
                (
                    e.drv_path.as_str().to_owned(),
                    e.outputs
                        .iter()
                        .map(|o| (o.name.clone(), o.store_path.clone(), o.nar_hash))
                        .collect(),
                ),
            );
        })?;
        if let Err(why) = admitted {
            out.not_counted.push((b.name.clone(), why));
            continue;
        }
        per_builder.push((b.name.clone(), latest));
    }
    // drv_hash → output name → (path, NAR hash → builders)
    type Outputs = BTreeMap<String, (StorePath, BTreeMap<NarHash, Vec<String>>)>;
    let mut table: BTreeMap<Sha256Digest, (String, Outputs)> = BTreeMap::new();
    for (name, latest) in &per_builder {
        for (drv_hash, (drv_path, outputs)) in latest {
            let row = table
                .entry(*drv_hash)
                .or_insert_with(|| (drv_path.clone(), BTreeMap::new()));
            for (out_name, path, nar) in outputs {
                row.1
                    .entry(out_name.clone())
                    .or_insert_with(|| (path.clone(), BTreeMap::new()))
                    .1
                    .entry(*nar)
                    .or_default()
                    .push(name.clone());
            }
        }
    }
    out.rows = table
        .into_iter()
        .map(|(drv_hash, (drv_path, outputs))| DrvRow {
            drv_hash,
            drv_path,
            outputs: outputs
                .into_iter()
                .map(|(name, (path, groups))| {
                    let mut groups: Vec<(NarHash, Vec<String>)> = groups.into_iter().collect();
                    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
                    OutputRow { name, path, groups }
                })
                .collect(),
        })
        .collect();
    Ok(out)
}
