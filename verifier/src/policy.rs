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
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
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

/// Why a builder's appraised log does not count under the policy.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// A PCR that must show no events shows some.
    #[error(
        "PCR {pcr} shows {count} event(s) in its boots' logs (an override of the measured \
         boot); the policy requires none"
    )]
    PcrEvents {
        /// The PCR.
        pcr: u8,
        /// How many events.
        count: usize,
    },
    /// A pinned PCR changed since it was pinned.
    #[error(
        "{boot}: PCR {pcr} is {got}, pinned on first use as {pinned} (firmware or its \
         settings changed; if on purpose, remove the builder's .pins file from the state \
         directory to pin again)"
    )]
    PinnedPcr {
        /// Which boot.
        boot: String,
        /// The PCR.
        pcr: u8,
        /// The pinned value.
        pinned: provenix_protocol::Sha256Digest,
        /// The boot's value.
        got: provenix_protocol::Sha256Digest,
    },
    /// No approved system describes a boot.
    #[error("{boot}: not an approved system: {}", reasons.join("; "))]
    UnapprovedSystem {
        /// Which boot.
        boot: String,
        /// Why each approved system does not describe it.
        reasons: Vec<String>,
    },
    /// A software TPM the policy does not allow.
    #[error("a software TPM (the policy does not set insecure_allow_swtpm)")]
    SoftwareTpm,
    /// A cosignature by a policy witness does not verify.
    #[error("a witness cosignature does not verify: {0}")]
    Cosignature(String),
    /// Too few witnesses cosigned.
    #[error("{cosigned} of the policy's witnesses cosigned its checkpoint, {required} required")]
    TooFewWitnesses {
        /// How many did.
        cosigned: usize,
        /// How many must.
        required: usize,
    },
    /// The EK certificate does not pass.
    #[error("EK: {0}")]
    Ek(crate::ek::EkError),
    /// No activation record from a trusted activator.
    #[error(
        "no credential activation record from a trusted activator for AK {0} (run `provenix \
         activate`)"
    )]
    NotActivated(provenix_protocol::BuilderId),
}

/// A log the policy admits.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// Its TPM.
    pub tpm: crate::ek::TpmIdentity,
    /// The pinned PCRs' values (to record on first use).
    pub pins: crate::reference::Pins,
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
    /// Only entries whose build environment had the sandbox on count.
    #[serde(default = "yes")]
    pub require_sandbox: bool,
    /// A builder's vote counts only if the inputs its entry resolved are
    /// themselves trusted with those NAR hashes, recursively to this depth
    /// (0: the output alone). Inputs no builder attests (sources,
    /// fixed-output fetches) are not held to it.
    #[serde(default)]
    pub inputs_depth: u32,
    /// Approved systems: files `provenix predict --json` wrote (relative
    /// paths are from the policy's directory). Every boot a builder's SK is
    /// bound to must match one of them on every quoted PCR that is neither
    /// pinned nor in `no_events_on`, and on the system digest.
    #[serde(default)]
    pub approved_systems: Vec<std::path::PathBuf>,
    /// Accept any system and boot chain (no approved_systems): never in
    /// production.
    #[serde(default)]
    pub danger_any_system: bool,
    /// PCRs pinned on first use: the values of the first boot seen
    /// (recorded in the state directory) are required of every later boot.
    #[serde(default = "pin_default")]
    pub pin_pcrs: Vec<u8>,
    /// Trusted EK roots: PEM files (relative paths are from the policy's
    /// directory). Certificates here are trust anchors.
    #[serde(default)]
    pub ek_roots: Vec<std::path::PathBuf>,
    /// Extra intermediate CA certificates (PEM files) for TPMs that keep
    /// none in NV; they are not trusted by themselves.
    #[serde(default)]
    pub ek_intermediates: Vec<std::path::PathBuf>,
    /// TPMs refused by manufacturer and firmware version.
    #[serde(default)]
    pub deny: Vec<crate::ek::DenyRule>,
    /// Auditors whose credential-activation records count (note vkeys).
    #[serde(default)]
    pub trusted_activators: Vec<String>,
    /// Files or directories (`*.activation`) holding activation records.
    #[serde(default)]
    pub activations: Vec<std::path::PathBuf>,
    /// Count builders without an activation record (never in production:
    /// without activation nothing ties the AK to the certified EK).
    #[serde(default)]
    pub danger_skip_credential_activation: bool,
    /// PCRs whose event logs must show no event in any bound boot (12:
    /// kernel command-line and credential overrides, 13: system extensions,
    /// as systemd-stub measures them).
    #[serde(default = "no_events_default")]
    pub no_events_on: Vec<u8>,
    /// The builders.
    #[serde(default, rename = "builder")]
    pub builders: Vec<BuilderPolicy>,
}

fn pin_default() -> Vec<u8> {
    vec![0, 2, 7]
}

fn no_events_default() -> Vec<u8> {
    vec![12, 13]
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
    /// The EK roots (DER), read by [`Policy::load`].
    pub roots: Vec<Vec<u8>>,
    /// The extra intermediates (DER), read by [`Policy::load`].
    pub intermediates: Vec<Vec<u8>>,
    /// The approved systems, read by [`Policy::load`].
    pub approved: Vec<crate::reference::ApprovedSystem>,
    /// The trusted activators' keys.
    pub activators: Vec<provenix_protocol::note::NoteVerifierKey>,
    /// The activation records from trusted activators, read by
    /// [`Policy::load`].
    pub activations: Vec<crate::activate::Activation>,
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
        if file.ek_roots.is_empty() {
            return Err(invalid(
                "no ek_roots: no EK certificate could chain to a trusted root".into(),
            ));
        }
        if file.approved_systems.is_empty() && !file.danger_any_system {
            return Err(invalid(
                "no approved_systems: list the `provenix predict --json` files of the systems \
                 builders may run (or set danger_any_system, never in production)"
                    .into(),
            ));
        }
        if let Some(p) = file
            .pin_pcrs
            .iter()
            .chain(&file.no_events_on)
            .find(|p| **p > 23)
        {
            return Err(invalid(format!("PCR {p} is not 0 to 23")));
        }
        let activators = file
            .trusted_activators
            .iter()
            .map(|k| {
                provenix_protocol::note::NoteVerifierKey::parse(k)
                    .map_err(|e| invalid(format!("trusted activator {k:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if activators.is_empty() && !file.danger_skip_credential_activation {
            return Err(invalid(
                "no trusted_activators: credential activation is mandatory (or set \
                 danger_skip_credential_activation, never in production)"
                    .into(),
            ));
        }
        Ok(Self {
            file,
            witnesses,
            roots: Vec::new(),
            intermediates: Vec::new(),
            approved: Vec::new(),
            activators,
            activations: Vec::new(),
        })
    }

    /// Read the EK root and intermediate certificates the policy names,
    /// relative to `base` (the policy file's directory).
    pub fn read_certificates(&mut self, base: &Path) -> Result<(), PolicyError> {
        let read = |files: &[std::path::PathBuf]| -> Result<Vec<Vec<u8>>, PolicyError> {
            let mut out = Vec::new();
            for f in files {
                let path = base.join(f);
                let certs =
                    provenix_io::read_certificates(&path).map_err(|e| PolicyError::Invalid {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                out.extend(certs.iter().map(|c| c.to_vec()));
            }
            Ok(out)
        };
        self.roots = read(&self.file.ek_roots)?;
        self.approved = self
            .file
            .approved_systems
            .iter()
            .map(|f| {
                let path = base.join(f);
                crate::reference::ApprovedSystem::read(&path).map_err(|reason| {
                    PolicyError::Invalid {
                        path: path.display().to_string(),
                        reason,
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        self.intermediates = read(&self.file.ek_intermediates)?;
        self.activations.clear();
        for f in self.file.activations.clone() {
            let path = base.join(f);
            let files = if path.is_dir() {
                let mut v: Vec<_> = std::fs::read_dir(&path)
                    .map_err(|error| PolicyError::Io {
                        path: path.display().to_string(),
                        error,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "activation"))
                    .collect();
                v.sort();
                v
            } else {
                vec![path]
            };
            for f in files {
                let bytes = std::fs::read(&f).map_err(|error| PolicyError::Io {
                    path: f.display().to_string(),
                    error,
                })?;
                // Records not signed by a trusted activator do not count.
                if let Some(a) = crate::activate::Activation::open(&bytes, &self.activators) {
                    self.activations.push(a);
                }
            }
        }
        Ok(())
    }

    /// An enrollment's EK certificate under this policy's roots,
    /// intermediates and deny-list (see [`crate::ek::check_ek`]).
    pub fn check_ek(
        &self,
        e: &provenix_protocol::enrollment::Enrollment,
        firmware_version: u64,
        now: u64,
    ) -> Result<crate::ek::TpmIdentity, crate::ek::EkError> {
        let ek_public =
            provenix_protocol::tpm::Public::from_bytes(&e.ek_public).map_err(|err| {
                crate::ek::EkError::Unparsable {
                    what: "EK public area".into(),
                    reason: err.to_string(),
                }
            })?;
        let mut intermediates = e.ek_intermediates.clone();
        intermediates.extend(self.intermediates.iter().cloned());
        crate::ek::check_ek(
            &e.ek_certificate,
            &intermediates,
            &self.roots,
            &ek_public,
            firmware_version,
            &self.file.deny,
            i64::try_from(now).unwrap_or(i64::MAX),
        )
    }

    /// What the policy requires of any builder's appraised log, whoever it
    /// is: no events on `no_events_on`, pinned PCRs as `recorded` (or, on
    /// first use, as the log's first boot), an approved system in every
    /// boot, no software TPM unless allowed, enough witness cosignatures,
    /// an EK certificate that chains to a trusted root, holds the EK's key
    /// and is not denied, and an activation record. The TPM's identity and
    /// the pins to record, or why the log does not count.
    pub fn admit(
        &self,
        a: &crate::appraise::Appraisal,
        now: u64,
        recorded: Option<&crate::reference::Pins>,
    ) -> Result<Admitted, AdmitError> {
        let e = &a.enrollment;
        let events = a.events_per_pcr();
        for pcr in &self.file.no_events_on {
            if let Some(n) = events.get(pcr).filter(|n| **n > 0) {
                return Err(AdmitError::PcrEvents {
                    pcr: *pcr,
                    count: *n,
                });
            }
        }
        let pins = crate::reference::pins_for(&a.boots, &self.file.pin_pcrs, recorded);
        for boot in &a.boots {
            for (pcr, pinned) in &pins {
                if let Some(v) = boot.pcrs.get(pcr).filter(|v| *v != pinned) {
                    return Err(AdmitError::PinnedPcr {
                        boot: boot.what.clone(),
                        pcr: *pcr,
                        pinned: *pinned,
                        got: *v,
                    });
                }
            }
        }
        if !self.file.danger_any_system {
            let exempt: Vec<u8> = pins
                .keys()
                .chain(&self.file.no_events_on)
                .copied()
                .collect();
            for boot in &a.boots {
                let mut reasons = Vec::new();
                for s in &self.approved {
                    match s.mismatch(boot, &exempt) {
                        None => {
                            reasons.clear();
                            break;
                        }
                        Some(why) => reasons.push(why),
                    }
                }
                if !reasons.is_empty() {
                    return Err(AdmitError::UnapprovedSystem {
                        boot: boot.what.clone(),
                        reasons,
                    });
                }
            }
        }
        if e.insecure_swtpm && !self.file.insecure_allow_swtpm {
            return Err(AdmitError::SoftwareTpm);
        }
        let cosigned = a
            .checkpoint_note
            .verify_cosignatures(&self.witnesses)
            .map_err(|e| AdmitError::Cosignature(e.to_string()))?
            .len();
        if cosigned < self.file.min_witnesses {
            return Err(AdmitError::TooFewWitnesses {
                cosigned,
                required: self.file.min_witnesses,
            });
        }
        let tpm = self
            .check_ek(e, a.firmware_version, now)
            .map_err(AdmitError::Ek)?;
        let activated = self
            .activations
            .iter()
            .any(|r| r.builder == a.builder && r.ek_cert_sha256 == tpm.cert_sha256);
        if !activated && !self.file.danger_skip_credential_activation {
            return Err(AdmitError::NotActivated(a.builder));
        }
        Ok(Admitted { tpm, pins })
    }

    /// [`Policy::admit`] with the pins the state directory holds for the
    /// builder; pins used for the first time are recorded there.
    pub fn admit_pinned(
        &self,
        a: &crate::appraise::Appraisal,
        state: Option<&crate::state::StateDir>,
    ) -> Result<Result<Admitted, AdmitError>, crate::state::StateError> {
        let recorded = match state {
            Some(s) => s.pins(&a.builder)?,
            None => None,
        };
        let admitted = self.admit(a, crate::unix_time(), recorded.as_ref());
        if let (Some(s), None, Ok(ad)) = (state, &recorded, &admitted) {
            s.pin(&a.builder, &ad.pins)?;
        }
        Ok(admitted)
    }

    /// Load a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError::Io {
            path: path.display().to_string(),
            error,
        })?;
        let mut p = Self::parse(&text, &path.display().to_string())?;
        p.read_certificates(path.parent().unwrap_or(Path::new(".")))?;
        Ok(p)
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
        assert_eq!(p.file.no_events_on, vec![12, 13]);
        assert_eq!(p.file.pin_pcrs, vec![0, 2, 7]);
        assert!(p.file.require_sandbox);
        assert_eq!(p.file.inputs_depth, 0);
        assert_eq!(p.file.approved_systems.len(), 1);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let b = "danger_skip_credential_activation = true\ndanger_any_system = true\nek_roots = [\"r.pem\"]\n[[builder]]\nname = \"a\"\nlog = \"/x\"\nak_name = \"000b0000000000000000000000000000000000000000000000000000000000000000\"\n";
        assert!(Policy::parse(&format!("quorum = 1\n{b}"), "p").is_ok());
        for (text, needle) in [
            (
                format!("quorum = 1\n{}", b.replace("ek_roots = [\"r.pem\"]", "")),
                "ek_roots",
            ),
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
            (
                format!("quorum = 1\n{}", b.replace("danger_any_system = true", "")),
                "approved_systems",
            ),
            (format!("quorum = 1\npin_pcrs = [24]\n{b}"), "PCR 24"),
        ] {
            let e = Policy::parse(&text, "p").unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
