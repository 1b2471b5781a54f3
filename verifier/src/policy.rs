//! The appraisal policy (TOML; annotated sample `verifier/policy.toml.sample`):
//! which builders are trusted and where their logs are, whether software
//! TPMs count, which witnesses must have cosigned, and the quorum.
//!
//! Unknown keys are refused, so a typo cannot fall back to a default.

use std::path::Path;

use provenix_protocol::note::CosignerKey;
use serde::Deserialize;

/// Why a policy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One trusted builder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderPolicy {
    /// A name for reports.
    pub name: String,
    /// Its log: a log service URL or a log directory.
    pub log: String,
    /// Its AK Name (hex), pinned: a log enrolled by another AK is refused.
    pub ak_name: String,
    /// Who operates it (agreement can be counted per operator).
    #[serde(default)]
    pub operator: Option<String>,
}

/// The policy file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Count evidence from software TPMs (swtpm): tests and demos only.
    #[serde(default)]
    pub insecure_allow_swtpm: bool,
    /// Witness cosigner keys (C2SP vkeys).
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many of them must have cosigned a builder's checkpoint.
    #[serde(default)]
    pub min_witnesses: usize,
    /// How many builders must agree on an output's NAR hash.
    pub quorum: usize,
    /// Count agreement per distinct operator, not only per distinct TPM.
    #[serde(default)]
    pub distinct_operators: bool,
    /// Only entries built locally (sandboxed, no remote builders) count.
    #[serde(default = "yes")]
    pub require_built_locally: bool,
    /// The builders.
    #[serde(default, rename = "builder")]
    pub builders: Vec<BuilderPolicy>,
}

fn yes() -> bool {
    true
}

/// A checked policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The file's settings.
    pub file: PolicyFile,
    /// The witness keys, parsed.
    pub witnesses: Vec<CosignerKey>,
}

impl Policy {
    /// Parse and check a policy's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, PolicyError> {
        let invalid = |reason: String| PolicyError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let witnesses = file
            .witnesses
            .iter()
            .map(|w| CosignerKey::parse(w).map_err(|e| invalid(format!("witness {w:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if file.min_witnesses > witnesses.len() {
            return Err(invalid(format!(
                "min_witnesses = {} but only {} witnesses are listed",
                file.min_witnesses,
                witnesses.len()
            )));
        }
        if file.builders.is_empty() {
            return Err(invalid("no [[builder]] is listed".into()));
        }
        if file.quorum == 0 || file.quorum > file.builders.len() {
            return Err(invalid(format!(
                "quorum = {} must be between 1 and the {} builders listed",
                file.quorum,
                file.builders.len()
            )));
        }
        for b in &file.builders {
            let ok = b.ak_name.len() == 68 && b.ak_name.bytes().all(|c| c.is_ascii_hexdigit());
            if !ok {
                return Err(invalid(format!(
                    "builder {:?}: ak_name must be the AK Name in hex (68 digits, as `provenix-agent status` shows it)",
                    b.name
                )));
            }
        }
        let mut names: Vec<&str> = file.builders.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(invalid("two builders share a name".into()));
        }
        Ok(Self { file, witnesses })
    }

    /// Load a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_parses() {
        let p = Policy::parse(include_str!("../policy.toml.sample"), "sample").unwrap();
        assert_eq!(p.file.quorum, 2);
        assert_eq!(p.file.builders.len(), 3);
        assert!(!p.file.insecure_allow_swtpm);
        assert!(p.file.require_built_locally);
        assert_eq!(p.file.min_witnesses, 0);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let b = "[[builder]]\nname = \"a\"\nlog = \"/x\"\nak_name = \"000b0000000000000000000000000000000000000000000000000000000000000000\"\n";
        assert!(Policy::parse(&format!("quorum = 1\n{b}"), "p").is_ok());
        for (text, needle) in [
            (format!("quorum = 2\n{b}"), "quorum"),
            (format!("quorum = 0\n{b}"), "quorum"),
            ("quorum = 1\n".to_string(), "no [[builder]]"),
            (format!("quorum = 1\nqorum = 1\n{b}"), "unknown field"),
            (
                format!("quorum = 1\nmin_witnesses = 1\n{b}"),
                "min_witnesses",
            ),
            (
                format!("quorum = 1\n{}", b.replace("000b00", "zz")),
                "ak_name",
            ),
        ] {
            let e = Policy::parse(&text, "p").unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
