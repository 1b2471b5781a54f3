//! M-of-N decisions per output store path.
//!
//! ```text
//! each policy builder: appraise its log (appraise.rs) ─ pinned AK?
//!   admitted by the policy (policy.rs)? ─ its entries indexed by output
//!   path (Builders) ─ its latest entry naming the path (built locally,
//!   sandboxed, if required) ─ Vote
//! votes ─ grouped by what they attest (NAR hash, size, references)
//!   ─ counted per distinct EK certificate (and operator, if asked)
//!   ─ trusted when exactly one group reaches the quorum
//!   ─ to the policy's inputs_depth: the inputs the agreeing entries
//!     resolved, where some builder attests them, trusted in turn
//! ```
//! Every builder is reported: agreeing, disagreeing (with what it
//! attested), or missing (with why). Disagreement is never dropped.

use std::collections::{BTreeMap, BTreeSet};

use provenix_protocol::{NarHash, Sha256Digest, StorePath};

use crate::appraise::Appraiser;
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
    /// Inputs, resolved by some builder's entry, that had to be trusted
    /// (the policy's `inputs_depth`) and are not, with why: that builder's
    /// vote did not count.
    pub untrusted_inputs: Vec<(StorePath, String)>,
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
        untrusted_inputs: Vec::new(),
    }
}

/// A policy builder's log as the policy sees it: appraised from its first
/// leaf (every entry goes to `on_entry`), extending the checkpoint the
/// state directory holds, which is then updated; its AK the pinned one,
/// admitted by [`Policy::admit`]. `Ok(Err(why))` when it does not count.
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
    let mut appraiser = Appraiser::new();
    let a = match appraiser.sync(&source, seen, on_entry) {
        Ok(a) => a,
        Err(e) => return Ok(Err(format!("log not accepted: {e}"))),
    };
    if let Some(s) = state {
        s.accept(&source.name(), &appraiser)?;
    }
    if !a.builder.to_hex().eq_ignore_ascii_case(&b.ak_name) {
        return Ok(Err(format!(
            "its log is enrolled by AK {}, not the pinned {}",
            a.builder, b.ak_name
        )));
    }
    Ok(policy
        .admit_pinned(&a, state)?
        .map(|ad| (a, ad.tpm))
        .map_err(|e| e.to_string()))
}

/// What one admitted builder's log attests of an output path: its latest
/// entry naming the path.
#[derive(Clone, Debug)]
pub struct Claim {
    /// What the entry attests of the output.
    pub attested: Attested,
    /// The entry's leaf index.
    pub leaf: u64,
    /// The entry's `built_locally`.
    pub built_locally: bool,
    /// Whether its build environment had the sandbox on.
    pub sandbox: bool,
    /// The entry's resolved inputs (path, NAR hash).
    pub inputs: Vec<(StorePath, NarHash)>,
}

impl Claim {
    /// What entry `e` (at leaf `leaf`) claims of its output `o`.
    pub fn of(leaf: u64, e: &provenix_protocol::Entry, o: &provenix_protocol::EntryOutput) -> Self {
        Self {
            attested: Attested {
                nar_hash: o.nar_hash,
                nar_size: o.nar_size,
                references: o.references.clone(),
            },
            leaf,
            built_locally: e.built_locally,
            sandbox: e.build_env.sandbox,
            inputs: e
                .resolved_inputs
                .iter()
                .map(|i| (i.store_path.clone(), i.nar_hash))
                .collect(),
        }
    }
}

/// One policy builder's log, indexed by output path.
#[derive(Clone, Debug)]
pub struct BuilderIndex {
    /// The builder's name in the policy.
    pub name: String,
    /// Its operator, if the policy names one.
    pub operator: Option<String>,
    /// SHA-256 of its EK certificate when its log counts; otherwise why not
    /// (its claims are then not used).
    pub admitted: Result<Sha256Digest, String>,
    /// Its latest claim per output path.
    pub claims: BTreeMap<StorePath, Claim>,
}

impl BuilderIndex {
    /// Its claims, when its log counts.
    fn counted(&self) -> Option<&BTreeMap<StorePath, Claim>> {
        self.admitted.as_ref().ok().map(|_| &self.claims)
    }
}

/// Every policy builder's indexed log: what decisions are made from.
#[derive(Clone, Debug)]
pub struct Builders(pub Vec<BuilderIndex>);

impl Builders {
    /// Appraise and admit each policy builder's log (see [`admitted_log`])
    /// and index its entries: those naming one of `wanted` (None: every
    /// entry, as decisions to a policy's `inputs_depth` need).
    pub fn load(
        policy: &Policy,
        client: &ureq::Agent,
        state: Option<&StateDir>,
        wanted: Option<&BTreeSet<StorePath>>,
    ) -> Result<Self, StateError> {
        let mut out = Vec::new();
        for b in &policy.file.builders {
            let mut claims: BTreeMap<StorePath, Claim> = BTreeMap::new();
            let admitted = admitted_log(b, policy, client, state, &mut |leaf, e| {
                let entry = e.entry();
                for o in &entry.outputs {
                    if wanted.is_some_and(|w| !w.contains(&o.store_path)) {
                        continue;
                    }
                    claims.insert(o.store_path.clone(), Claim::of(leaf, entry, o));
                }
            })?;
            out.push(BuilderIndex {
                name: b.name.clone(),
                operator: b.operator.clone(),
                admitted: admitted.map(|(_, tpm)| tpm.cert_sha256),
                claims,
            });
        }
        Ok(Self(out))
    }

    /// Each builder's ballot for `path` under the policy's requirements
    /// (built locally, sandboxed).
    pub fn ballots(&self, policy: &Policy, path: &StorePath) -> Vec<Ballot> {
        self.0
            .iter()
            .map(|b| {
                let (ek, vote) = match &b.admitted {
                    Err(why) => (None, Vote::Missing(why.clone())),
                    Ok(ek) => (
                        Some(*ek),
                        match b.claims.get(path) {
                            None => Vote::Missing("no entry for the path".into()),
                            Some(c) if !c.built_locally && policy.file.require_built_locally => {
                                Vote::Missing("its entry is not built locally".into())
                            }
                            Some(c) if !c.sandbox && policy.file.require_sandbox => {
                                Vote::Missing("its entry was built without the sandbox".into())
                            }
                            Some(c) => Vote::Attests {
                                attested: c.attested.clone(),
                                leaf: c.leaf,
                            },
                        },
                    ),
                };
                Ballot {
                    name: b.name.clone(),
                    ek,
                    operator: b.operator.clone(),
                    vote,
                }
            })
            .collect()
    }

    /// The verdict for `path` under the policy: M-of-N on the path. With
    /// the policy's `inputs_depth` k > 0, a builder's vote counts only when
    /// every input its entry resolved that some builder attests is itself
    /// trusted (to depth k - 1) with the NAR hash it resolved; otherwise it
    /// is missing, with the input named. Inputs no builder attests
    /// (sources, fixed-output fetches) are not held to it.
    pub fn decide(&self, policy: &Policy, path: &StorePath) -> Verdict {
        let mut memo = BTreeMap::new();
        self.decide_to(policy, path, policy.file.inputs_depth, &mut memo)
    }

    fn decide_to(
        &self,
        policy: &Policy,
        path: &StorePath,
        depth: u32,
        memo: &mut BTreeMap<(StorePath, u32), Option<NarHash>>,
    ) -> Verdict {
        let mut ballots = self.ballots(policy, path);
        let mut untrusted_inputs = Vec::new();
        if depth > 0 {
            for (b, index) in ballots.iter_mut().zip(&self.0) {
                if !matches!(b.vote, Vote::Attests { .. }) {
                    continue;
                }
                let Some(claim) = index.counted().and_then(|c| c.get(path)) else {
                    continue;
                };
                for (input, hash) in &claim.inputs {
                    let attested_by_someone = self
                        .0
                        .iter()
                        .any(|b| b.counted().is_some_and(|c| c.contains_key(input)));
                    if !attested_by_someone {
                        continue; // a source or a fetch: no builder built it
                    }
                    let key = (input.clone(), depth - 1);
                    let trusted = match memo.get(&key) {
                        Some(t) => *t,
                        None => {
                            let v = self.decide_to(policy, input, depth - 1, memo);
                            let t = v.trusted.map(|a| a.nar_hash);
                            memo.insert(key, t);
                            t
                        }
                    };
                    let why = match trusted {
                        Some(h) if h == *hash => continue,
                        Some(h) => format!(
                            "its input {input} is trusted as {}, it resolved {}",
                            h.to_nix_string(),
                            hash.to_nix_string()
                        ),
                        None => {
                            format!("its input {input} is not trusted (to depth {})", depth - 1)
                        }
                    };
                    untrusted_inputs.push((input.clone(), why.clone()));
                    b.vote = Vote::Missing(why);
                    break;
                }
            }
        }
        let mut v = decide(
            path,
            &ballots,
            policy.file.quorum,
            policy.file.distinct_operators,
        );
        v.untrusted_inputs = untrusted_inputs;
        v
    }
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

    fn policy(extra: &str) -> Policy {
        let mut text = format!(
            "quorum = 2\ndanger_skip_credential_activation = true\ndanger_any_system = true\n\
             ek_roots = [\"r.pem\"]\n{extra}\n"
        );
        for n in ["a", "b", "c"] {
            text.push_str(&format!(
                "[[builder]]\nname = \"{n}\"\nlog = \"/x\"\nak_name = \"000b{}\"\n",
                "00".repeat(32)
            ));
        }
        Policy::parse(&text, "test").unwrap()
    }

    fn sp(name: &str) -> StorePath {
        StorePath::parse(&format!("/nix/store/{}-{name}", "0".repeat(32))).unwrap()
    }

    /// (output, its hash byte, inputs with theirs, sandboxed).
    type TestClaim<'a> = (&'a str, u8, &'a [(&'a str, u8)], bool);

    /// Builder `name` (its own TPM `ek`) with these claims.
    fn index(name: &str, ek: u8, claims: &[TestClaim<'_>]) -> BuilderIndex {
        BuilderIndex {
            name: name.into(),
            operator: None,
            admitted: Ok(Sha256Digest([ek; 32])),
            claims: claims
                .iter()
                .map(|(out, h, inputs, sandbox)| {
                    (
                        sp(out),
                        Claim {
                            attested: attested(*h),
                            leaf: 1,
                            built_locally: true,
                            sandbox: *sandbox,
                            inputs: inputs
                                .iter()
                                .map(|(i, h)| (sp(i), NarHash(Sha256Digest([*h; 32]))))
                                .collect(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn unsandboxed_entries_and_untrusted_inputs_do_not_count() {
        // lib: a and b agree, c lies. app: all agree, each from its own lib;
        // b built app without the sandbox.
        let builders = Builders(vec![
            index(
                "a",
                1,
                &[
                    ("lib", 7, &[], true),
                    ("app", 5, &[("lib", 7), ("src", 3)], true),
                ],
            ),
            index(
                "b",
                2,
                &[("lib", 7, &[], true), ("app", 5, &[("lib", 7)], false)],
            ),
            index(
                "c",
                3,
                &[("lib", 9, &[], true), ("app", 5, &[("lib", 9)], true)],
            ),
        ]);
        let p = policy("");
        let v = builders.decide(&p, &sp("app"));
        assert_eq!(v.trusted, Some(attested(5)), "a and c");
        assert_eq!(
            v.missing,
            vec![("b".into(), "its entry was built without the sandbox".into())]
        );
        // To depth 1, c's lib is not the trusted one: only a counts.
        let v = builders.decide(&policy("inputs_depth = 1"), &sp("app"));
        assert_eq!(v.trusted, None);
        assert_eq!(v.agreeing, vec!["a"]);
        assert!(v
            .missing
            .iter()
            .any(|(n, why)| n == "c" && why.contains("-lib is trusted as")));
        assert_eq!(
            v.untrusted_inputs.len(),
            1,
            "src is attested by nobody: not held"
        );
        // Without the sandbox requirement, b counts again.
        let v = builders.decide(
            &policy("inputs_depth = 1\nrequire_sandbox = false"),
            &sp("app"),
        );
        assert_eq!(v.trusted, Some(attested(5)));
        assert_eq!(v.agreeing, vec!["a", "b"]);
    }
}
