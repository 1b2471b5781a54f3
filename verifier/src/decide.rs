//! M-of-N decisions per output store path.
//!
//! ```text
//! each policy builder: appraise its log (appraise.rs) ─ pinned AK?
//!   software TPM allowed? enough witness cosignatures? ─ its latest entry
//!   naming the path (built locally, if required) ─ Vote
//! votes ─ grouped by what they attest (NAR hash, size, references)
//!   ─ counted per distinct EK certificate (and operator, if asked)
//!   ─ trusted when exactly one group reaches the quorum
//! ```
//! Every builder is reported: agreeing, disagreeing (with what it
//! attested), or missing (with why). Disagreement is never dropped.

use std::collections::{BTreeMap, BTreeSet};

use provenix_protocol::{NarHash, Sha256Digest, StorePath};

use crate::appraise::{appraise, Seen};
use crate::policy::{BuilderPolicy, Policy};
use crate::source::LogSource;
use crate::state::{StateDir, StateError};

/// What a builder's log attests for the path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attested {
    /// NAR hash.
    pub nar_hash: NarHash,
    /// NAR size.
    pub nar_size: u64,
    /// References.
    pub references: Vec<StorePath>,
}

/// One builder's answer for the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vote {
    /// Its appraised log attests this.
    Attests {
        /// What it attests.
        attested: Attested,
        /// The entry's leaf index.
        leaf: u64,
    },
    /// It does not count, and why (no entry, log refused or unreachable,
    /// untrusted AK, software TPM, too few witnesses, not built locally).
    Missing(String),
}

/// A builder's vote with what identifies it.
#[derive(Clone, Debug)]
pub struct Ballot {
    /// The builder's name in the policy.
    pub name: String,
    /// SHA-256 of its EK certificate (one TPM counts once).
    pub ek: Option<Sha256Digest>,
    /// Its operator, if the policy names one.
    pub operator: Option<String>,
    /// Its vote.
    pub vote: Vote,
}

/// The verdict for one path.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The path.
    pub path: StorePath,
    /// What the quorum agreed on, if it did.
    pub trusted: Option<Attested>,
    /// Builders whose vote agrees with the trusted attestation (or, if none
    /// is trusted, with the largest group).
    pub agreeing: Vec<String>,
    /// Builders that attest something else, with what.
    pub disagreeing: Vec<(String, Attested)>,
    /// Builders that do not count, with why.
    pub missing: Vec<(String, String)>,
    /// Distinct TPMs (and operators, if required) behind the largest group.
    pub count: usize,
    /// The quorum needed.
    pub quorum: usize,
    /// Why not trusted, when not.
    pub reason: Option<String>,
}

/// Decide from the builders' ballots: trusted when exactly one attestation
/// is backed by at least `quorum` distinct TPMs (and distinct operators,
/// when `distinct_operators`).
pub fn decide(
    path: &StorePath,
    ballots: &[Ballot],
    quorum: usize,
    distinct_operators: bool,
) -> Verdict {
    let mut groups: BTreeMap<&Attested, Vec<&Ballot>> = BTreeMap::new();
    let mut missing = Vec::new();
    for b in ballots {
        match &b.vote {
            Vote::Attests { attested, .. } => groups.entry(attested).or_default().push(b),
            Vote::Missing(why) => missing.push((b.name.clone(), why.clone())),
        }
    }
    // Distinct TPMs per group; with distinct_operators, a TPM counts only
    // when its operator has not counted yet (no operator: the TPM alone).
    let weight = |members: &[&Ballot]| -> usize {
        let mut tpms: BTreeSet<Sha256Digest> = BTreeSet::new();
        let mut operators: BTreeSet<&str> = BTreeSet::new();
        let mut n = 0;
        for b in members {
            let Some(ek) = b.ek else { continue };
            if !tpms.insert(ek) {
                continue;
            }
            if distinct_operators {
                match &b.operator {
                    Some(o) if !operators.insert(o.as_str()) => continue,
                    _ => {}
                }
            }
            n += 1;
        }
        n
    };
    let weighted: Vec<(&Attested, usize, &Vec<&Ballot>)> =
        groups.iter().map(|(a, m)| (*a, weight(m), m)).collect();
    let reaching: Vec<&(&Attested, usize, &Vec<&Ballot>)> =
        weighted.iter().filter(|(_, w, _)| *w >= quorum).collect();
    let best = weighted.iter().max_by_key(|(_, w, _)| *w);
    let (trusted, reason) = match reaching.as_slice() {
        [one] => (Some(one.0.clone()), None),
        [] => (
            None,
            Some(format!(
                "no attestation is backed by {quorum} distinct TPM(s){} (best: {})",
                if distinct_operators {
                    " and operators"
                } else {
                    ""
                },
                best.map_or(0, |b| b.1)
            )),
        ),
        _ => (
            None,
            Some("two different attestations each reach the quorum: a conflict".into()),
        ),
    };
    let winner = trusted.as_ref().or(best.map(|b| b.0));
    let mut agreeing = Vec::new();
    let mut disagreeing = Vec::new();
    for (a, members) in &groups {
        for b in members {
            if Some(*a) == winner {
                agreeing.push(b.name.clone());
            } else {
                disagreeing.push((b.name.clone(), (*a).clone()));
            }
        }
    }
    Verdict {
        path: path.clone(),
        trusted,
        agreeing,
        disagreeing,
        missing,
        count: best.map_or(0, |b| b.1),
        quorum,
        reason,
    }
}

/// A policy builder's log as the policy sees it: appraised (extending the
/// checkpoint the state directory holds, which is then updated; entries go
/// to `on_entry`), its AK the pinned one, admitted by
/// [`Policy::admit`]. `Ok(Err(why))` when it does not count.
pub fn admitted_log(
    b: &BuilderPolicy,
    policy: &Policy,
    client: &ureq::Agent,
    state: Option<&StateDir>,
    on_entry: &mut dyn FnMut(u64, &provenix_protocol::SignedEntry),
) -> Result<Result<(crate::appraise::Appraisal, crate::ek::TpmIdentity), String>, StateError> {
    let source = LogSource::from_arg(&b.log, client);
    let seen = match state {
        Some(s) => s.seen(&source.name())?,
        None => None,
    };
    let a = match appraise(&source, seen, on_entry) {
        Ok(a) => a,
        Err(e) => return Ok(Err(format!("log not accepted: {e}"))),
    };
    if let Some(s) = state {
        s.accept(
            &source.name(),
            Seen {
                size: a.checkpoint.size,
                root: a.checkpoint.root,
            },
        )?;
    }
    if !a.builder.to_hex().eq_ignore_ascii_case(&b.ak_name) {
        return Ok(Err(format!(
            "its log is enrolled by AK {}, not the pinned {}",
            a.builder, b.ak_name
        )));
    }
    Ok(policy.admit(&a, crate::unix_time()).map(|tpm| (a, tpm)))
}

/// One builder's ballot for `path`: its admitted log's latest entry
/// naming the path (built locally, when the policy requires it).
pub fn ballot(
    b: &BuilderPolicy,
    policy: &Policy,
    path: &StorePath,
    client: &ureq::Agent,
    state: Option<&StateDir>,
) -> Result<Ballot, StateError> {
    let mut found: Option<(u64, Attested, bool)> = None;
    let admitted = admitted_log(b, policy, client, state, &mut |leaf, e| {
        if let Some(o) = e.entry().outputs.iter().find(|o| o.store_path == *path) {
            found = Some((
                leaf,
                Attested {
                    nar_hash: o.nar_hash,
                    nar_size: o.nar_size,
                    references: o.references.clone(),
                },
                e.entry().built_locally,
            ));
        }
    })?;
    let (ek, vote) = match admitted {
        Err(why) => (None, Vote::Missing(why)),
        Ok((_, tpm)) => (
            Some(tpm.cert_sha256),
            match found {
                None => Vote::Missing("no entry for the path".into()),
                Some((_, _, false)) if policy.file.require_built_locally => {
                    Vote::Missing("its entry is not built locally".into())
                }
                Some((leaf, attested, _)) => Vote::Attests { attested, leaf },
            },
        ),
    };
    Ok(Ballot {
        name: b.name.clone(),
        ek,
        operator: b.operator.clone(),
        vote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attested(h: u8) -> Attested {
        Attested {
            nar_hash: NarHash(Sha256Digest([h; 32])),
            nar_size: 100,
            references: vec![],
        }
    }

    fn ballot(name: &str, ek: u8, operator: Option<&str>, vote: Option<u8>) -> Ballot {
        Ballot {
            name: name.into(),
            ek: Some(Sha256Digest([ek; 32])),
            operator: operator.map(str::to_string),
            vote: match vote {
                Some(h) => Vote::Attests {
                    attested: attested(h),
                    leaf: 1,
                },
                None => Vote::Missing("no entry for the path".into()),
            },
        }
    }

    fn path() -> StorePath {
        StorePath::parse("/nix/store/00000000000000000000000000000000-x").unwrap()
    }

    #[test]
    fn three_of_four_with_one_liar_is_trusted_and_the_liar_named() {
        let v = decide(
            &path(),
            &[
                ballot("a", 1, None, Some(7)),
                ballot("b", 2, None, Some(7)),
                ballot("c", 3, None, Some(9)),
                ballot("d", 4, None, Some(7)),
            ],
            3,
            false,
        );
        assert_eq!(v.trusted, Some(attested(7)));
        assert_eq!(v.agreeing, vec!["a", "b", "d"]);
        assert_eq!(v.disagreeing, vec![("c".to_string(), attested(9))]);
        assert_eq!(v.count, 3);
    }

    #[test]
    fn one_tpm_enrolled_twice_counts_once_and_missing_counts_as_no() {
        let v = decide(
            &path(),
            &[
                ballot("a", 1, None, Some(7)),
                ballot("a-again", 1, None, Some(7)),
                ballot("b", 2, None, None),
            ],
            2,
            false,
        );
        assert_eq!(v.trusted, None);
        assert_eq!(v.count, 1);
        assert_eq!(v.missing.len(), 1);
        assert!(v.reason.unwrap().contains("2 distinct TPM(s)"));
    }

    #[test]
    fn distinct_operators_and_conflicts() {
        let same_op = [
            ballot("a", 1, Some("x"), Some(7)),
            ballot("b", 2, Some("x"), Some(7)),
        ];
        assert!(decide(&path(), &same_op, 2, false).trusted.is_some());
        assert!(decide(&path(), &same_op, 2, true).trusted.is_none());
        let split = [ballot("a", 1, None, Some(7)), ballot("b", 2, None, Some(9))];
        let v = decide(&path(), &split, 1, false);
        assert!(v.trusted.is_none());
        assert!(v.reason.unwrap().contains("conflict"));
    }
}
