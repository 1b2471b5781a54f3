//! `provenix-agent sign-cache`: add LK's Nix `Sig:` lines to the narinfos
//! of a `file://` binary cache the builder uploaded to.
//!
//! ```text
//! <cache>/*.narinfo ─ parse ─ GET <agent>/sig/<name> (the daemon signs
//!   with LK over the fields its log attests) ─ NarHash, NarSize and
//!   References must equal the narinfo's ─ append "Sig: …" (crash-safe)
//! ```
//! There is no key file to give `nix store sign`: LK exists only while the
//! TPM is in the enrolled boot state, inside the running daemon.

use std::path::Path;

use provenix_protocol::narinfo::NarInfo;
use provenix_protocol::StorePath;
use serde::Deserialize;

use crate::error::{AgentError, Result};
use crate::fsio::{io, write_durable};

/// What sign-cache did.
#[derive(Debug, Default)]
pub struct SignReport {
    /// Narinfos that got the signature.
    pub signed: usize,
    /// Narinfos that had it already.
    pub already: usize,
    /// Narinfos for paths this builder's log does not hold.
    pub not_in_log: usize,
    /// Narinfos whose fields differ from the log's (left alone).
    pub differing: Vec<String>,
}

/// The service's `/sig` answer.
#[derive(Deserialize)]
struct SigAnswer {
    nar_hash: String,
    nar_size: u64,
    references: Vec<String>,
    sig: String,
}

/// Largest `/sig` answer read.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// Sign every narinfo in `cache` that the agent at `agent` can sign.
pub fn sign_cache(client: &ureq::Agent, agent: &str, cache: &Path) -> Result<SignReport> {
    let mut report = SignReport::default();
    let mut names: Vec<_> = std::fs::read_dir(cache)
        .map_err(|e| io(cache, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "narinfo"))
        .collect();
    names.sort();
    let agent = agent.trim_end_matches('/');
    for path in names {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let info = NarInfo::parse(&text)
            .map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?;
        let name = info
            .store_path
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let url = format!("{agent}/sig/{name}");
        let mut resp = client
            .get(&url)
            .call()
            .map_err(|e| AgentError::Config(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| AgentError::Config(format!("{url}: {e}")))?;
        match status {
            200 => {}
            404 => {
                report.not_in_log += 1;
                continue;
            }
            s => {
                return Err(AgentError::Config(format!(
                    "{url}: HTTP {s}: {}",
                    body.trim()
                )))
            }
        }
        let a: SigAnswer = serde_json::from_str(&body)
            .map_err(|e| AgentError::Config(format!("{url}: not a signature answer: {e}")))?;
        let refs = a
            .references
            .iter()
            .map(|r| StorePath::parse(r))
            .collect::<std::result::Result<std::collections::BTreeSet<_>, _>>()?;
        if a.nar_hash != info.nar_hash.to_nix_string()
            || a.nar_size != info.nar_size
            || refs != info.references
        {
            report.differing.push(format!(
                "{}: the cache says {} ({} bytes, {} references), the log {} ({} bytes, {} \
                 references)",
                info.store_path,
                info.nar_hash.to_nix_string(),
                info.nar_size,
                info.references.len(),
                a.nar_hash,
                a.nar_size,
                refs.len()
            ));
            continue;
        }
        if info.sigs.contains(&a.sig) {
            report.already += 1;
            continue;
        }
        let mut signed = text;
        if !signed.ends_with('\n') {
            signed.push('\n');
        }
        signed.push_str(&format!("Sig: {}\n", a.sig));
        NarInfo::parse(&signed)
            .map_err(|e| AgentError::Config(format!("{}: after signing: {e}", path.display())))?;
        write_durable(&path, signed.as_bytes(), 0o644)?;
        report.signed += 1;
    }
    Ok(report)
}
