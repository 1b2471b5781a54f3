//! Reference values for boots: approved systems (the files `provenix
//! predict --json` writes, docs/wire-format.md "Predictions") and PCRs
//! pinned on first use.
//!
//! ```text
//! boot (appraise.rs: quoted PCR values, measured events, system)
//!   ─ pinned PCRs equal the pins (the state directory's, else the
//!     enrollment boot's)
//!   ─ some approved system predicts every other quoted PCR (PCRs that
//!     must show no events aside) and the system digest
//! ```
//! A boot no prediction matches is refused with the closest prediction's
//! first difference: which PCR, and which event on it.

use std::collections::BTreeMap;
use std::path::Path;

use provenix_protocol::Sha256Digest;
use serde::Deserialize;

use crate::appraise::Boot;

/// The largest prediction file read (a prediction has a few dozen events).
const MAX_PREDICTION: u64 = 1 << 20;

/// One event a prediction expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedEvent {
    /// Its PCR.
    pub pcr: u8,
    /// Its SHA-256 digest.
    pub sha256: Sha256Digest,
    /// What it is, for people.
    pub description: String,
}

/// An approved system: one prediction file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedSystem {
    /// The file it was read from.
    pub file: String,
    /// Predicted PCR values (SHA-256 bank).
    pub pcrs: BTreeMap<u8, Sha256Digest>,
    /// Predicted events, in log order within each PCR.
    pub events: Vec<ExpectedEvent>,
    /// The system digest every entry names, and its PCR (None: the
    /// prediction covers the boot chain only).
    pub system: Option<(u8, Sha256Digest)>,
}

#[derive(Deserialize)]
struct PredictionJson {
    format: String,
    pcrs: BTreeMap<String, BTreeMap<String, String>>,
    events: Vec<EventJson>,
    system: Option<SystemJson>,
}

#[derive(Deserialize)]
struct EventJson {
    pcr: u8,
    digests: BTreeMap<String, String>,
    description: String,
}

#[derive(Deserialize)]
struct SystemJson {
    digest: String,
    pcr: u8,
    manifest_mismatches: Vec<serde_json::Value>,
}

impl ApprovedSystem {
    /// Parse a prediction (`file` names it in errors).
    pub fn parse(json: &[u8], file: &str) -> Result<Self, String> {
        let p: PredictionJson = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if p.format != "provenix-prediction-v1" {
            return Err(format!(
                "format {:?} is not provenix-prediction-v1",
                p.format
            ));
        }
        let hex = |what: &str, h: &str| {
            Sha256Digest::from_hex(h).map_err(|e| format!("{what}: {h:?}: {e}"))
        };
        let bank = p
            .pcrs
            .get("sha256")
            .ok_or("no sha256 bank predicted (predict with --bank sha256)")?;
        let mut pcrs = BTreeMap::new();
        for (pcr, value) in bank {
            let index: u8 = pcr
                .parse()
                .ok()
                .filter(|i| *i < 24)
                .ok_or_else(|| format!("PCR {pcr:?} is not 0 to 23"))?;
            pcrs.insert(index, hex(&format!("PCR {index}"), value)?);
        }
        let events = p
            .events
            .iter()
            .map(|e| {
                let d = e
                    .digests
                    .get("sha256")
                    .ok_or_else(|| format!("event {:?} has no sha256 digest", e.description))?;
                Ok(ExpectedEvent {
                    pcr: e.pcr,
                    sha256: hex(&e.description, d)?,
                    description: e.description.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let system = match p.system {
            None => None,
            Some(s) if !s.manifest_mismatches.is_empty() => {
                return Err(format!(
                    "the prediction lists {} path(s) whose content differs from the closure \
                     manifest: it does not describe one system",
                    s.manifest_mismatches.len()
                ))
            }
            Some(s) => Some((s.pcr, hex("system digest", &s.digest)?)),
        };
        Ok(Self {
            file: file.to_owned(),
            pcrs,
            events,
            system,
        })
    }

    /// Read a prediction file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = provenix_io::read_bounded(path, MAX_PREDICTION)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Why this prediction does not describe `boot` (None: it does).
    /// Every quoted PCR outside `exempt` (pinned, or required to show no
    /// events) must be predicted and equal; so must the system.
    pub fn mismatch(&self, boot: &Boot, exempt: &[u8]) -> Option<String> {
        // Every PCR that differs, each with its first differing event.
        let mut differ = Vec::new();
        for (pcr, value) in &boot.pcrs {
            if exempt.contains(pcr) {
                continue;
            }
            match self.pcrs.get(pcr) {
                None => differ.push(format!(
                    "PCR {pcr} is quoted, but {} predicts no value for it",
                    self.file
                )),
                Some(expected) if expected != value => differ.push(format!(
                    "PCR {pcr} is {value}, {} predicts {expected}: {}",
                    self.file,
                    self.first_event_difference(boot, *pcr)
                )),
                Some(_) => {}
            }
        }
        if !differ.is_empty() {
            return Some(differ.join("; "));
        }
        if let Some((pcr, digest)) = self.system {
            if boot.pcrs.contains_key(&pcr) && boot.system != Some(digest) {
                return Some(format!(
                    "its system is {}, {} predicts {digest}",
                    boot.system
                        .map_or_else(|| "not measured".into(), |s| s.to_string()),
                    self.file
                ));
            }
        }
        None
    }

    /// The first event on `pcr` where the boot's log and the prediction
    /// part, described.
    fn first_event_difference(&self, boot: &Boot, pcr: u8) -> String {
        let mut logged = boot.events.iter().filter(|e| e.pcr == pcr);
        let mut expected = self.events.iter().filter(|e| e.pcr == pcr);
        for n in 1.. {
            match (logged.next(), expected.next()) {
                (Some(l), Some(x)) if l.sha256 == Some(x.sha256) => continue,
                (Some(l), Some(x)) => {
                    return format!(
                        "event {n} on PCR {pcr} differs: predicted {} ({}), logged {} ({})",
                        x.description,
                        x.sha256,
                        l.kind,
                        l.sha256
                            .map_or_else(|| "no SHA-256 digest".into(), |d| d.to_string())
                    )
                }
                (Some(l), None) => {
                    return format!(
                        "event {n} on PCR {pcr} is not predicted: logged {} ({})",
                        l.kind,
                        l.sha256
                            .map_or_else(|| "no SHA-256 digest".into(), |d| d.to_string())
                    )
                }
                (None, Some(x)) => {
                    return format!(
                        "event {n} on PCR {pcr} is missing from the log: predicted {} ({})",
                        x.description, x.sha256
                    )
                }
                (None, None) => break,
            }
        }
        "every event matches, so the PCR's value comes from outside the logs".into()
    }
}

/// The values of pinned PCRs (index → SHA-256 value).
pub type Pins = BTreeMap<u8, Sha256Digest>;

/// The pins a log's boots are held to: `recorded` (trust on first use,
/// from the state directory) or else the first boot's values of the
/// `pinned` PCRs it quotes.
pub fn pins_for(boots: &[Boot], pinned: &[u8], recorded: Option<&Pins>) -> Pins {
    if let Some(r) = recorded {
        return r.clone();
    }
    boots
        .first()
        .map(|b| {
            b.pcrs
                .iter()
                .filter(|(p, _)| pinned.contains(p))
                .map(|(p, v)| (*p, *v))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appraise::BootEvent;

    fn d(b: u8) -> Sha256Digest {
        Sha256Digest([b; 32])
    }

    /// PCR 4 from two events, PCR 14 the system `s`.
    fn prediction(e1: u8, e2: u8, system: u8) -> String {
        let mut v = [0u8; 32];
        for e in [e1, e2] {
            v = Sha256Digest::of_parts(&[&v, d(e).as_bytes()]).0;
        }
        serde_json::json!({
            "format": "provenix-prediction-v1",
            "banks": ["sha256"],
            "pcrs": {"sha256": {"4": Sha256Digest(v).to_hex(), "14": d(40 + system).to_hex()}},
            "events": [
                {"pcr": 4, "digests": {"sha256": d(e1).to_hex()}, "description": "the UKI"},
                {"pcr": 4, "digests": {"sha256": d(e2).to_hex()}, "description": "its kernel"},
            ],
            "system": {"digest": d(system).to_hex(), "pcr": 14, "manifest_mismatches": []},
        })
        .to_string()
    }

    fn boot(e1: u8, e2: u8, system: u8) -> Boot {
        let p = ApprovedSystem::parse(prediction(e1, e2, system).as_bytes(), "x").unwrap();
        let mut pcrs = p.pcrs.clone();
        pcrs.insert(0, d(9));
        Boot {
            what: "enrollment".into(),
            pcrs,
            events: [e1, e2]
                .iter()
                .map(|e| BootEvent {
                    pcr: 4,
                    sha256: Some(d(*e)),
                    kind: "EV_EFI_BOOT_SERVICES_APPLICATION".into(),
                })
                .collect(),
            system: Some(d(system)),
        }
    }

    #[test]
    fn a_prediction_matches_its_boot_and_names_the_first_difference() {
        let p = ApprovedSystem::parse(prediction(1, 2, 3).as_bytes(), "approved.json").unwrap();
        assert_eq!(p.mismatch(&boot(1, 2, 3), &[0]), None);
        // PCR 0 is quoted but neither predicted nor exempt.
        let why = p.mismatch(&boot(1, 2, 3), &[]).unwrap();
        assert!(why.contains("PCR 0 is quoted"), "{why}");
        // The kernel differs: PCR 4, event 2, named.
        let why = p.mismatch(&boot(1, 7, 3), &[0]).unwrap();
        assert!(why.contains("PCR 4 is"), "{why}");
        assert!(
            why.contains("event 2 on PCR 4 differs: predicted its kernel"),
            "{why}"
        );
        // Another system in a boot whose PCR 14 matches (the digest the
        // entries name is checked too).
        let mut other = boot(1, 2, 3);
        other.system = Some(d(5));
        let why = p.mismatch(&other, &[0]).unwrap();
        assert!(why.contains("its system is"), "{why}");
    }

    #[test]
    fn unusable_predictions_are_refused() {
        let good = prediction(1, 2, 3);
        for (text, needle) in [
            (good.replace("provenix-prediction-v1", "v0"), "format"),
            (
                good.replace("\"sha256\":{\"", "\"sha1\":{\""),
                "sha256 bank",
            ),
            (
                good.replace("\"manifest_mismatches\":[]", "\"manifest_mismatches\":[{}]"),
                "differs",
            ),
            (good.replace("\"14\"", "\"24\""), "PCR \"24\""),
            ("{}".to_string(), "missing field"),
        ] {
            let e = ApprovedSystem::parse(text.as_bytes(), "p").unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn pins_come_from_the_record_or_the_first_boot() {
        let boots = [boot(1, 2, 3), boot(4, 5, 6)];
        let first = pins_for(&boots, &[0, 2, 7], None);
        assert_eq!(
            first,
            Pins::from([(0, d(9))]),
            "only quoted PCRs are pinned"
        );
        let recorded = Pins::from([(0, d(8))]);
        assert_eq!(pins_for(&boots, &[0], Some(&recorded)), recorded);
    }
}
