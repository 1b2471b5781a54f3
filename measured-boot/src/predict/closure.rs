//! The system identity a builder must measure, from a closure manifest
//! and NAR hashes computed from the closure's contents.
//!
//! A closure manifest is what `nix path-info --json --recursive <toplevel>`
//! prints. Two forms are read:
//!
//! ```text
//! Nix 2.8 - 2.18:  [ {"path": "/nix/store/…", "narHash": "sha256-…", "narSize": 123,
//!                     "references": ["/nix/store/…", …], …}, … ]
//! Nix 2.19+:       { "/nix/store/…": {"narHash": …, "narSize": …, "references": […], …}
//!                    | null (an invalid path: refused), … }
//! ```
//!
//! `narHash` may be SRI (`sha256-<base64>`), `sha256:<nix32>` or
//! `sha256:<hex>`. Other fields are ignored. The manifest's NAR hashes are
//! **never** used for the identity: [`predict_system`] takes hashes the
//! caller computed from the store's contents, builds the identity from
//! those (as the agent does at boot), and reports every path whose content
//! differs from what the manifest says.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use provenix_protocol::hash::NarHash;
use provenix_protocol::system::{ClosurePath, MeasurementMode, MAX_CLOSURE_PATHS};
use provenix_protocol::{StorePath, SystemIdentity};
use serde_json_alloc::{Map, Value};

use crate::cel::SystemMeasurement;
use crate::error::{Error, Result};

/// The largest manifest accepted: 64 MiB (a NixOS system's is a few MB).
pub const MAX_MANIFEST_SIZE: usize = 64 * 1024 * 1024;

/// One path of a closure manifest, as Nix recorded it (unverified).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ManifestEntry {
    /// The store path.
    pub path: StorePath,
    /// The NAR hash Nix recorded (not trusted: re-hash the content).
    pub nar_hash: NarHash,
    /// The NAR size Nix recorded.
    pub nar_size: u64,
    /// The paths it references.
    pub references: Vec<StorePath>,
}

/// A parsed closure manifest: its entries sorted by store path, none twice,
/// every reference inside the closure.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ClosureManifest {
    entries: Vec<ManifestEntry>,
}

fn field(entry: usize, field: &'static str, expected: &'static str) -> Error {
    Error::ManifestField {
        entry,
        field,
        expected,
    }
}

fn entry_from(entry: usize, path: StorePath, info: &Map<String, Value>) -> Result<ManifestEntry> {
    if info.get("valid") == Some(&Value::Bool(false)) {
        return Err(field(
            entry,
            "valid",
            "a valid path (Nix marks this one invalid)",
        ));
    }
    let nar_hash = info
        .get("narHash")
        .and_then(Value::as_str)
        .and_then(|s| NarHash::parse(s).ok())
        .ok_or(field(
            entry,
            "narHash",
            "a SHA-256 NAR hash (sha256-<base64>, sha256:<nix32> or sha256:<hex>)",
        ))?;
    let nar_size = info.get("narSize").and_then(Value::as_u64).ok_or(field(
        entry,
        "narSize",
        "an unsigned integer",
    ))?;
    let references = info
        .get("references")
        .and_then(Value::as_array)
        .ok_or(field(entry, "references", "a list of store paths"))?
        .iter()
        .map(|r| r.as_str().and_then(|s| StorePath::parse(s).ok()))
        .collect::<Option<Vec<_>>>()
        .ok_or(field(entry, "references", "a list of store paths"))?;
    Ok(ManifestEntry {
        path,
        nar_hash,
        nar_size,
        references,
    })
}

impl ClosureManifest {
    /// Parses either form of `nix path-info --json --recursive` output.
    pub fn parse(json: &[u8]) -> Result<Self> {
        if json.len() > MAX_MANIFEST_SIZE {
            return Err(Error::TooLarge {
                offset: 0,
                what: "closure manifest",
                len: json.len() as u64,
                max: MAX_MANIFEST_SIZE as u64,
            });
        }
        let value = crate::json::parse(json).map_err(|detail| Error::ManifestJson { detail })?;
        let mut entries = Vec::new();
        match &value {
            Value::Array(list) => {
                check_count(list.len())?;
                for (i, e) in list.iter().enumerate() {
                    let obj = e.as_object().ok_or(field(i, "(entry)", "a JSON object"))?;
                    let path = obj
                        .get("path")
                        .and_then(Value::as_str)
                        .and_then(|s| StorePath::parse(s).ok())
                        .ok_or(field(i, "path", "a store path /nix/store/<hash>-<name>"))?;
                    entries.push(entry_from(i, path, obj)?);
                }
            }
            Value::Object(map) => {
                check_count(map.len())?;
                for (i, (k, v)) in map.iter().enumerate() {
                    let path = StorePath::parse(k)
                        .map_err(|_| field(i, "(key)", "a store path /nix/store/<hash>-<name>"))?;
                    let obj = v.as_object().ok_or(field(
                        i,
                        "(value)",
                        "a path-info object (null marks an invalid path)",
                    ))?;
                    entries.push(entry_from(i, path, obj)?);
                }
            }
            _ => {
                return Err(Error::ManifestJson {
                    detail: String::from(
                        "expected a JSON array (Nix 2.8-2.18) or object (Nix 2.19+) of path infos",
                    ),
                })
            }
        }
        Self::new(entries)
    }

    /// A manifest of `entries` (any order). Refuses a path twice and a
    /// reference to a path outside the closure.
    pub fn new(mut entries: Vec<ManifestEntry>) -> Result<Self> {
        check_count(entries.len())?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        if entries.windows(2).any(|w| match w {
            [a, b] => a.path == b.path,
            _ => false,
        }) {
            return Err(Error::Closure {
                expected: "each store path once in the manifest",
            });
        }
        let m = Self { entries };
        if m.entries
            .iter()
            .flat_map(|e| &e.references)
            .any(|r| m.get(r).is_none())
        {
            return Err(Error::Closure {
                expected: "a closed set of paths (every reference of a path is in the manifest)",
            });
        }
        Ok(m)
    }

    /// The entries, sorted by store path.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The entry of `path`.
    pub fn get(&self, path: &StorePath) -> Option<&ManifestEntry> {
        self.entries
            .binary_search_by(|e| e.path.cmp(path))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The toplevel: the one path no other path of the closure references.
    /// Refuses a manifest with none or several such roots (then name the
    /// toplevel explicitly).
    pub fn toplevel(&self) -> Result<&StorePath> {
        let referenced: BTreeSet<&StorePath> = self
            .entries
            .iter()
            .flat_map(|e| e.references.iter().filter(move |r| **r != e.path))
            .collect();
        let mut roots = self
            .entries
            .iter()
            .map(|e| &e.path)
            .filter(|p| !referenced.contains(p));
        match (roots.next(), roots.next()) {
            (Some(root), None) => Ok(root),
            _ => Err(Error::Closure {
                expected: "exactly one path that no other path references (the toplevel); name the toplevel",
            }),
        }
    }
}

fn check_count(n: usize) -> Result<()> {
    if n > MAX_CLOSURE_PATHS {
        return Err(Error::TooLarge {
            offset: 0,
            what: "closure manifest (paths)",
            len: n as u64,
            max: MAX_CLOSURE_PATHS as u64,
        });
    }
    Ok(())
}

/// A path whose content (as hashed) differs from the manifest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ManifestMismatch {
    /// The store path.
    pub path: StorePath,
    /// The NAR hash and size the manifest records.
    pub manifest: (NarHash, u64),
    /// The NAR hash and size of the content.
    pub content: (NarHash, u64),
}

/// The predicted system measurement and how the closure compared with its
/// manifest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SystemPrediction {
    measurement: SystemMeasurement,
    paths: usize,
    mismatches: Vec<ManifestMismatch>,
}

impl SystemPrediction {
    /// The measurement the agent must make (identity from content).
    pub fn measurement(&self) -> &SystemMeasurement {
        &self.measurement
    }

    /// How many paths the closure holds.
    pub fn paths(&self) -> usize {
        self.paths
    }

    /// Paths whose content differs from the manifest (empty when the
    /// manifest is honest about the content).
    pub fn mismatches(&self) -> &[ManifestMismatch] {
        &self.mismatches
    }
}

/// The system identity of `toplevel`'s closure in `manifest`, from
/// `measured`: one NAR hash and size per manifest path, **computed from
/// the content** (in any order). Refuses a measured set that is not exactly
/// the manifest's paths, and a toplevel outside the manifest.
pub fn predict_system(
    manifest: &ClosureManifest,
    toplevel: &StorePath,
    mode: MeasurementMode,
    measured: &[ClosurePath],
) -> Result<SystemPrediction> {
    if manifest.get(toplevel).is_none() {
        return Err(Error::Closure {
            expected: "the toplevel among the manifest's paths",
        });
    }
    let by_path: BTreeMap<&StorePath, &ClosurePath> =
        measured.iter().map(|m| (&m.path, m)).collect();
    if by_path.len() != measured.len()
        || measured.len() != manifest.entries.len()
        || manifest
            .entries
            .iter()
            .any(|e| !by_path.contains_key(&e.path))
    {
        return Err(Error::Closure {
            expected: "every manifest path measured exactly once, and nothing else",
        });
    }
    let mismatches = manifest
        .entries
        .iter()
        .filter_map(|e| {
            let m = by_path.get(&e.path)?;
            (m.nar_hash != e.nar_hash || m.nar_size != e.nar_size).then(|| ManifestMismatch {
                path: e.path.clone(),
                manifest: (e.nar_hash, e.nar_size),
                content: (m.nar_hash, m.nar_size),
            })
        })
        .collect();
    let identity = SystemIdentity::from_closure(toplevel.clone(), mode, measured).map_err(|e| {
        Error::Protocol {
            what: "system identity",
            detail: e.to_string(),
        }
    })?;
    Ok(SystemPrediction {
        measurement: SystemMeasurement::new(identity)?,
        paths: measured.len(),
        mismatches,
    })
}
