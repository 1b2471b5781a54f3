//! Userspace measurement logs in TCG Canonical Event Log JSON form
//! (CEL-JSON), as systemd writes them to `/run/log/systemd/tpm2-measure.log`
//! and as the provenix agent writes its system measurement. (Not to be
//! confused with [`crate::ccel`], Intel TDX's *CC* event log.)
//!
//! ```text
//! log    = *record                         a JSON text sequence (RFC 7464)
//! record = 0x1E  JSON-object  0x0A
//! object = { "recnum": n,                  optional (systemd omits it; the
//!                                            record number is then implicit)
//!            "pcr": 0-23,
//!            "digests": [ {"hashAlg": "sha256", "digest": "<hex>"}, … ],
//!            "content_type": "systemd" | "provenix" | …,
//!            "content": … }
//! ```
//!
//! systemd follows TCG CEL-JSON "as closely as it makes sense": records are
//! joined as a JSON text sequence rather than a JSON array (so the log is
//! append-only), and `recnum` is left out (systemd PR #29004). This module
//! reads both: a `recnum`, where present, must equal the record's position
//! (from 0). It writes records canonically: keys in sorted order, no
//! whitespace, lowercase hex, `recnum` only where the record carries one.
//!
//! **Replay.** Each record is one TPM2_PCR_Extend of `pcr` with the listed
//! digests; a bank the record lists no digest for is not extended (that is
//! what TPM2_PCR_Extend does with a partial digest list; assuming it, a
//! wrong guess can only make replay differ from the quote, never match a
//! forged value). [`Replay::apply_cel`] applies a CEL log on top of the
//! firmware log's replay, so a verifier replays both logs to the quoted
//! PCRs. As with the firmware log, only the digests are authenticated by
//! the quote: `content` is what the writer says it measured, except for
//! provenix records, whose content this parser re-hashes to the digests.
//!
//! **The provenix system measurement** (`content_type` `"provenix"`): the
//! agent extends the system PCR with `SystemIdentity::digest()` =
//! SHA-256("provenix/system/v1" || identity) (see `provenix_protocol::system`)
//! and logs
//! ```text
//! {"content": {"closure_digest": "<64 hex>",
//!              "mode": "content-rehash" | "dm-verity",
//!              "system": "<64 hex: the system digest>",
//!              "toplevel": "/nix/store/…",
//!              "verity_root_hash": "<64 hex>"   only with "dm-verity"},
//!  "content_type": "provenix",
//!  "digests": [{"digest": "<system digest>", "hashAlg": "sha256"}, …],
//!  "pcr": 14}
//! ```
//! The SHA-256 digest is required and is the system digest itself; a digest
//! of another bank, if present, is that bank's hash of the same preimage
//! ("provenix/system/v1" || identity). [`CelLog::parse`] refuses a provenix
//! record whose `system` field or digests do not follow from `toplevel`,
//! `mode` and `closure_digest`, so a replayed, quoted provenix record
//! authenticates its identity.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use provenix_protocol::hash::Sha256Digest;
use provenix_protocol::system::{MeasurementMode, SYSTEM_DOMAIN};
use provenix_protocol::{PcrIndex, StorePath, SystemIdentity};
use serde_json_alloc::{Map, Value};

use crate::alg::{Digest, HashAlgorithm};
use crate::error::{Error, Result};
use crate::replay::Replay;

/// The byte that starts every record (RFC 7464 record separator).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The largest CEL log accepted: 16 MiB (systemd's log holds a few dozen
/// records of a few hundred bytes).
pub const MAX_CEL_LOG_SIZE: usize = 16 * 1024 * 1024;

/// The most records in one CEL log.
pub const MAX_CEL_RECORDS: usize = 65_536;

/// `content_type` of systemd's userspace measurements.
pub const CONTENT_TYPE_SYSTEMD: &str = "systemd";

/// `content_type` of the provenix agent's system measurement.
pub const CONTENT_TYPE_PROVENIX: &str = "provenix";

/// A JSON value carried as a record's `content`, kept as it was read.
/// **Not authenticated**: no PCR covers it.
#[derive(Clone, PartialEq, Debug)]
pub struct JsonContent(Value);

impl JsonContent {
    /// Parses one JSON text (duplicate keys refused).
    pub fn parse(json: &str) -> Result<Self> {
        crate::json::parse(json.as_bytes())
            .map(Self)
            .map_err(|_| Error::InvalidInput {
                what: "JSON content",
                expected: "one JSON text, no object repeating a key",
            })
    }

    /// The value as compact JSON (object keys sorted).
    pub fn to_json(&self) -> String {
        self.0.to_string()
    }

    /// The string value of `key`, if the content is an object holding one
    /// (systemd: `"string"` describes the measurement, `"eventType"` names
    /// its kind, e.g. `"phase"`).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
}

/// A record's `content_type` other than `"systemd"` and `"provenix"`, with
/// its content kept as read.
#[derive(Clone, PartialEq, Debug)]
pub struct OtherContent {
    content_type: String,
    content: JsonContent,
}

impl OtherContent {
    /// Content of another type. Refuses the two types this module decodes
    /// (`"systemd"`, `"provenix"`): use their variants.
    pub fn new(content_type: &str, content: JsonContent) -> Result<Self> {
        if content_type == CONTENT_TYPE_SYSTEMD || content_type == CONTENT_TYPE_PROVENIX {
            return Err(Error::InvalidInput {
                what: "content_type",
                expected: "a type other than \"systemd\" and \"provenix\" (use their variants)",
            });
        }
        Ok(Self {
            content_type: content_type.to_string(),
            content,
        })
    }

    /// The content type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The content (unauthenticated).
    pub fn content(&self) -> &JsonContent {
        &self.content
    }
}

/// What a record says it measured.
#[derive(Clone, PartialEq, Debug)]
pub enum CelContent {
    /// `"systemd"`: a systemd userspace measurement (a JSON object, e.g.
    /// `{"string": "enter-initrd", "eventType": "phase", …}`).
    /// Unauthenticated.
    Systemd(JsonContent),
    /// `"provenix"`: the agent's system measurement, checked against the
    /// record's digests when parsed.
    Provenix(SystemMeasurement),
    /// Any other content type, kept as read. Unauthenticated.
    Other(OtherContent),
}

impl CelContent {
    /// The `content_type` string.
    pub fn content_type(&self) -> &str {
        match self {
            CelContent::Systemd(_) => CONTENT_TYPE_SYSTEMD,
            CelContent::Provenix(_) => CONTENT_TYPE_PROVENIX,
            CelContent::Other(o) => o.content_type(),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            CelContent::Systemd(c) => c.0.clone(),
            CelContent::Provenix(m) => m.content_value(),
            CelContent::Other(o) => o.content.0.clone(),
        }
    }
}

/// The provenix agent's system measurement: a [`SystemIdentity`] and the
/// digests it extends into the system PCR.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SystemMeasurement {
    identity: SystemIdentity,
    digest: Sha256Digest,
}

impl SystemMeasurement {
    /// The measurement of `identity`.
    pub fn new(identity: SystemIdentity) -> Result<Self> {
        let digest = identity.digest().map_err(protocol("system identity"))?;
        Ok(Self { identity, digest })
    }

    /// The identity.
    pub fn identity(&self) -> &SystemIdentity {
        &self.identity
    }

    /// The system digest, `SystemIdentity::digest()`: what the SHA-256 bank
    /// of the system PCR is extended with, and every entry's `system`.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// What the system PCR of `bank` is extended with: for SHA-256 the
    /// system digest, for another bank that bank's hash of the same
    /// preimage ("provenix/system/v1" || identity bytes).
    pub fn measurement(&self, bank: HashAlgorithm) -> Result<Digest> {
        if bank == HashAlgorithm::Sha256 {
            return Digest::new(bank.id(), self.digest.as_bytes());
        }
        let identity = self
            .identity
            .encode()
            .map_err(protocol("system identity"))?;
        Ok(bank.hash_parts(&[SYSTEM_DOMAIN, &identity]))
    }

    /// The CEL record that logs this measurement in `pcr`, with one digest
    /// per bank of `banks` (which must include SHA-256).
    pub fn to_record(&self, pcr: PcrIndex, banks: &[HashAlgorithm]) -> Result<CelRecord> {
        if !banks.contains(&HashAlgorithm::Sha256) {
            return Err(Error::InvalidInput {
                what: "banks of a provenix system measurement",
                expected: "a list that includes sha256",
            });
        }
        let digests = banks
            .iter()
            .map(|b| self.measurement(*b))
            .collect::<Result<Vec<_>>>()?;
        CelRecord::new(pcr, digests, CelContent::Provenix(self.clone()))
    }

    fn content_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "closure_digest".into(),
            Value::String(self.identity.closure_digest.to_hex()),
        );
        let mode = match &self.identity.mode {
            MeasurementMode::ContentRehash => "content-rehash",
            MeasurementMode::DmVerity { .. } => "dm-verity",
        };
        m.insert("mode".into(), Value::String(mode.into()));
        m.insert("system".into(), Value::String(self.digest.to_hex()));
        m.insert(
            "toplevel".into(),
            Value::String(self.identity.toplevel.as_str().into()),
        );
        if let MeasurementMode::DmVerity { root_hash } = &self.identity.mode {
            m.insert("verity_root_hash".into(), Value::String(root_hash.to_hex()));
        }
        Value::Object(m)
    }

    /// Checks that `digests` are exactly what this measurement extends (one
    /// per bank listed; SHA-256 required).
    fn check_digests(&self, digests: &[Digest]) -> Result<()> {
        if !digests
            .iter()
            .any(|d| d.algorithm() == HashAlgorithm::Sha256.id())
        {
            return Err(Error::SystemEventMismatch {
                what: "the record carries no sha256 digest (the system digest)",
            });
        }
        for d in digests {
            let bank = d
                .algorithm()
                .hash_algorithm()
                .ok_or(Error::SystemEventMismatch {
                    what: "a digest of a bank this crate cannot compute",
                })?;
            if self.measurement(bank)? != *d {
                return Err(Error::SystemEventMismatch {
                    what: "a digest is not the hash of \"provenix/system/v1\" || the identity in the content",
                });
            }
        }
        Ok(())
    }
}

fn protocol(what: &'static str) -> impl Fn(provenix_protocol::error::Error) -> Error {
    move |e| Error::Protocol {
        what,
        detail: e.to_string(),
    }
}

/// One CEL-JSON record: one extend of one PCR.
#[derive(Clone, PartialEq, Debug)]
pub struct CelRecord {
    recnum: Option<u64>,
    pcr: PcrIndex,
    digests: Vec<Digest>,
    content: CelContent,
}

impl CelRecord {
    /// A record extending `pcr` with `digests` (at least one; at most one
    /// per bank; banks this crate knows), without a recnum.
    pub fn new(pcr: PcrIndex, digests: Vec<Digest>, content: CelContent) -> Result<Self> {
        if digests.is_empty() {
            return Err(Error::InvalidInput {
                what: "CEL record digests",
                expected: "at least one digest",
            });
        }
        for (i, d) in digests.iter().enumerate() {
            let known = d
                .algorithm()
                .hash_algorithm()
                .is_some_and(|a| a.digest_size() == d.as_bytes().len());
            if !known {
                return Err(Error::InvalidInput {
                    what: "CEL record digests",
                    expected:
                        "digests of banks this crate knows (sha1, sha256, sha384, sha512, sm3_256)",
                });
            }
            if digests
                .iter()
                .take(i)
                .any(|e| e.algorithm() == d.algorithm())
            {
                return Err(Error::InvalidInput {
                    what: "CEL record digests",
                    expected: "at most one digest per bank",
                });
            }
        }
        if let CelContent::Provenix(m) = &content {
            m.check_digests(&digests)?;
        }
        if let CelContent::Systemd(c) = &content {
            if !c.0.is_object() {
                return Err(Error::InvalidInput {
                    what: "systemd CEL content",
                    expected: "a JSON object",
                });
            }
        }
        Ok(Self {
            recnum: None,
            pcr,
            digests,
            content,
        })
    }

    /// The same record carrying `recnum` (a CEL log's records must carry
    /// their position, from 0, if they carry one).
    pub fn with_recnum(mut self, recnum: u64) -> Self {
        self.recnum = Some(recnum);
        self
    }

    /// The recnum, if the record carries one.
    pub fn recnum(&self) -> Option<u64> {
        self.recnum
    }

    /// The PCR extended.
    pub fn pcr(&self) -> PcrIndex {
        self.pcr
    }

    /// The digests extended, in the record's order: the only part a quote
    /// authenticates.
    pub fn digests(&self) -> &[Digest] {
        &self.digests
    }

    /// The digest for one bank, if the record lists one.
    pub fn digest(&self, bank: HashAlgorithm) -> Option<&Digest> {
        self.digests.iter().find(|d| d.algorithm() == bank.id())
    }

    /// What the record says it measured (see [`CelContent`] for what is
    /// authenticated).
    pub fn content(&self) -> &CelContent {
        &self.content
    }

    /// The record as one compact JSON text (keys sorted, lowercase hex).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("content".into(), self.content.to_value());
        m.insert(
            "content_type".into(),
            Value::String(self.content.content_type().into()),
        );
        let digests = self
            .digests
            .iter()
            .map(|d| {
                let mut e = Map::new();
                e.insert("digest".into(), Value::String(d.to_hex()));
                let name = d
                    .algorithm()
                    .hash_algorithm()
                    .map_or("unknown", HashAlgorithm::name);
                e.insert("hashAlg".into(), Value::String(name.into()));
                Value::Object(e)
            })
            .collect();
        m.insert("digests".into(), Value::Array(digests));
        m.insert("pcr".into(), Value::from(self.pcr.get()));
        if let Some(n) = self.recnum {
            m.insert("recnum".into(), Value::from(n));
        }
        Value::Object(m).to_string()
    }

    /// The record as the log holds it: 0x1E, [`CelRecord::to_json`], 0x0A.
    pub fn to_json_seq(&self) -> Vec<u8> {
        let json = self.to_json();
        let mut out = Vec::with_capacity(json.len() + 2);
        out.push(RECORD_SEPARATOR);
        out.extend_from_slice(json.as_bytes());
        out.push(b'\n');
        out
    }
}

/// A parsed CEL-JSON log: its records in order.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct CelLog {
    records: Vec<CelRecord>,
}

impl CelLog {
    /// A log of `records`. Refuses a record whose recnum is not its
    /// position, and more than [`MAX_CEL_RECORDS`] records.
    pub fn new(records: Vec<CelRecord>) -> Result<Self> {
        if records.len() > MAX_CEL_RECORDS {
            return Err(Error::InvalidInput {
                what: "CEL log",
                expected: "at most 65536 records",
            });
        }
        for (i, r) in records.iter().enumerate() {
            if r.recnum.is_some_and(|n| n != i as u64) {
                return Err(Error::InvalidInput {
                    what: "CEL record recnum",
                    expected: "the record's position in the log (from 0)",
                });
            }
        }
        Ok(Self { records })
    }

    /// Parses a log: zero or more records, each 0x1E, one JSON object and
    /// 0x0A (an empty input is an empty log). See the module docs for the
    /// record's fields; every field is checked, unknown fields are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_CEL_LOG_SIZE {
            return Err(Error::TooLarge {
                offset: 0,
                what: "CEL log",
                len: bytes.len() as u64,
                max: MAX_CEL_LOG_SIZE as u64,
            });
        }
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        if bytes.first() != Some(&RECORD_SEPARATOR) {
            return Err(Error::CelFraming {
                offset: 0,
                record: 0,
                expected: "the record separator 0x1E at the start of the log",
            });
        }
        let mut records = Vec::new();
        let mut offset = 0usize;
        for (i, chunk) in bytes.split(|b| *b == RECORD_SEPARATOR).skip(1).enumerate() {
            if i >= MAX_CEL_RECORDS {
                return Err(Error::TooLarge {
                    offset,
                    what: "CEL log (records)",
                    len: i as u64 + 1,
                    max: MAX_CEL_RECORDS as u64,
                });
            }
            let Some(json) = chunk.strip_suffix(b"\n") else {
                return Err(Error::CelFraming {
                    offset: offset + chunk.len(),
                    record: i,
                    expected: "a line feed (0x0A) ending the record",
                });
            };
            let value = crate::json::parse(json).map_err(|detail| Error::CelJson {
                offset,
                record: i,
                detail,
            })?;
            records.push(record_from_value(&value, offset, i)?);
            offset += chunk.len() + 1;
        }
        Ok(Self { records })
    }

    /// The records, in log order.
    pub fn records(&self) -> &[CelRecord] {
        &self.records
    }

    /// The provenix system measurements in the log (checked against their
    /// digests when parsed), with their record positions.
    pub fn system_measurements(&self) -> impl Iterator<Item = (usize, &SystemMeasurement)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.content {
                CelContent::Provenix(m) => Some((i, m)),
                _ => None,
            })
    }

    /// The log's bytes: every record's [`CelRecord::to_json_seq`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.records
            .iter()
            .flat_map(CelRecord::to_json_seq)
            .collect()
    }

    /// Replays the log alone over `banks`, every PCR starting at its reset
    /// value.
    pub fn replay(&self, banks: &[HashAlgorithm]) -> Result<Replay> {
        let mut r = Replay::reset(banks);
        r.apply_cel(self)?;
        Ok(r)
    }
}

impl Replay {
    /// Applies every record of `cel` on top of this replay (typically the
    /// firmware log's), in order: each record extends its PCR in every
    /// replayed bank it lists a digest for; other banks stay as they are.
    pub fn apply_cel(&mut self, cel: &CelLog) -> Result<()> {
        for r in &cel.records {
            self.extend_listed_banks(r.pcr, &r.digests)?;
        }
        Ok(())
    }
}

const RECORD_FIELDS: [&str; 5] = ["content", "content_type", "digests", "pcr", "recnum"];

fn record_from_value(v: &Value, offset: usize, record: usize) -> Result<CelRecord> {
    let field = |field: &'static str, expected: &'static str| Error::CelField {
        offset,
        record,
        field,
        expected,
    };
    let obj = v.as_object().ok_or(field("(record)", "a JSON object"))?;
    if obj.keys().any(|k| !RECORD_FIELDS.contains(&k.as_str())) {
        return Err(field(
            "(record)",
            "only the fields recnum, pcr, digests, content_type and content",
        ));
    }
    let recnum = match obj.get("recnum") {
        None => None,
        Some(n) => {
            let n = n.as_u64().ok_or(field("recnum", "an unsigned integer"))?;
            if n != record as u64 {
                return Err(Error::CelRecnum {
                    offset,
                    record,
                    found: n,
                });
            }
            Some(n)
        }
    };
    let pcr = obj
        .get("pcr")
        .ok_or(field("pcr", "a PCR index (required)"))?
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .and_then(|n| PcrIndex::new(n).ok())
        .ok_or(field("pcr", "a PCR index 0-23"))?;
    let list = obj
        .get("digests")
        .ok_or(field("digests", "a list of digests (required)"))?
        .as_array()
        .ok_or(field("digests", "a JSON array"))?;
    if list.is_empty() || list.len() > HashAlgorithm::ALL.len() {
        return Err(field(
            "digests",
            "one to five digests (at most one per bank)",
        ));
    }
    let mut digests: Vec<Digest> = Vec::with_capacity(list.len());
    for d in list {
        let d = d
            .as_object()
            .ok_or(field("digests", "objects {\"hashAlg\", \"digest\"}"))?;
        if d.len() != 2 {
            return Err(field(
                "digests",
                "objects with exactly the fields hashAlg and digest",
            ));
        }
        let name = d
            .get("hashAlg")
            .and_then(Value::as_str)
            .ok_or(field("digests.hashAlg", "a hash algorithm name"))?;
        let bank = HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or(field(
                "digests.hashAlg",
                "sha1, sha256, sha384, sha512 or sm3_256",
            ))?;
        if digests.iter().any(|e| e.algorithm() == bank.id()) {
            return Err(field("digests.hashAlg", "each bank at most once"));
        }
        let hex = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or(field("digests.digest", "a hex string"))?;
        let bytes = hex_decode(hex).ok_or(field("digests.digest", "hexadecimal digits"))?;
        let digest = Digest::new(bank.id(), &bytes)
            .map_err(|_| field("digests.digest", "as many bytes as the bank's digest size"))?;
        digests.push(digest);
    }
    let content_type = obj
        .get("content_type")
        .ok_or(field("content_type", "a content type (required)"))?
        .as_str()
        .ok_or(field("content_type", "a string"))?;
    let content = obj
        .get("content")
        .ok_or(field("content", "the record's content (required)"))?;
    let content = match content_type {
        CONTENT_TYPE_SYSTEMD => {
            if !content.is_object() {
                return Err(field("content", "a JSON object (systemd content)"));
            }
            CelContent::Systemd(JsonContent(content.clone()))
        }
        CONTENT_TYPE_PROVENIX => {
            let m = system_from_value(content, offset, record)?;
            m.check_digests(&digests)?;
            CelContent::Provenix(m)
        }
        other => CelContent::Other(OtherContent {
            content_type: other.to_string(),
            content: JsonContent(content.clone()),
        }),
    };
    Ok(CelRecord {
        recnum,
        pcr,
        digests,
        content,
    })
}

const PROVENIX_FIELDS: [&str; 5] = [
    "closure_digest",
    "mode",
    "system",
    "toplevel",
    "verity_root_hash",
];

fn system_from_value(v: &Value, offset: usize, record: usize) -> Result<SystemMeasurement> {
    let field = |field: &'static str, expected: &'static str| Error::CelField {
        offset,
        record,
        field,
        expected,
    };
    let obj = v
        .as_object()
        .ok_or(field("content", "a JSON object (provenix content)"))?;
    if obj.keys().any(|k| !PROVENIX_FIELDS.contains(&k.as_str())) {
        return Err(field(
            "content",
            "only the fields toplevel, mode, verity_root_hash, closure_digest and system",
        ));
    }
    let digest = |name: &'static str, path: &'static str| -> Result<Sha256Digest> {
        obj.get(name)
            .and_then(Value::as_str)
            .and_then(|s| Sha256Digest::from_hex(s).ok())
            .ok_or(field(path, "64 hex digits"))
    };
    let toplevel = obj
        .get("toplevel")
        .and_then(Value::as_str)
        .and_then(|s| StorePath::parse(s).ok())
        .ok_or(field(
            "content.toplevel",
            "a store path /nix/store/<hash>-<name>",
        ))?;
    let mode = match obj.get("mode").and_then(Value::as_str) {
        Some("content-rehash") => {
            if obj.contains_key("verity_root_hash") {
                return Err(field(
                    "content.verity_root_hash",
                    "no verity root hash with mode content-rehash",
                ));
            }
            MeasurementMode::ContentRehash
        }
        Some("dm-verity") => MeasurementMode::DmVerity {
            root_hash: digest("verity_root_hash", "content.verity_root_hash")?,
        },
        _ => return Err(field("content.mode", "\"content-rehash\" or \"dm-verity\"")),
    };
    let closure_digest = digest("closure_digest", "content.closure_digest")?;
    let system = digest("system", "content.system")?;
    let m = SystemMeasurement::new(SystemIdentity {
        toplevel,
        mode,
        closure_digest,
    })?;
    if m.digest != system {
        return Err(Error::SystemEventMismatch {
            what: "the \"system\" field is not the digest of toplevel, mode and closure_digest",
        });
    }
    Ok(m)
}

/// Hex (either case) to bytes, at most 64 of them.
fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [h, l] => {
                Some((char::from(*h).to_digit(16)? * 16 + char::from(*l).to_digit(16)?) as u8)
            }
            _ => None,
        })
        .collect()
}

impl CelRecord {
    /// A one-line summary for people (content cut and escaped; it is
    /// unauthenticated except for provenix records).
    pub fn summary(&self) -> String {
        summary(self)
    }
}

fn summary(record: &CelRecord) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "PCR {} {}: ",
        record.pcr.get(),
        record.content.content_type()
    );
    match &record.content {
        CelContent::Provenix(m) => {
            let _ = write!(
                s,
                "system {} toplevel {}",
                m.digest.to_hex(),
                m.identity.toplevel.as_str()
            );
        }
        CelContent::Systemd(c) | CelContent::Other(OtherContent { content: c, .. }) => {
            let text: String = c.to_json().chars().take(200).collect();
            s.extend(text.escape_debug());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use provenix_protocol::system::ClosurePath;

    fn identity() -> SystemIdentity {
        let top = StorePath::parse("/nix/store/hankx0fjnr9lyabf7s6drr5wcd787iag-hello").unwrap();
        SystemIdentity::from_closure(
            top.clone(),
            MeasurementMode::ContentRehash,
            &[ClosurePath {
                path: top,
                nar_hash: provenix_protocol::hash::NarHash(Sha256Digest([1; 32])),
                nar_size: 128,
            }],
        )
        .unwrap()
    }

    #[test]
    fn systemd_record_as_systemd_writes_it() {
        let line = "\u{1e}{\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"C7E0E1A5EAD8D81F2C8E51F7D4D5C0B1E4A3A1C8A2D5B3C4D5E6F708192A3B4C\"}],\"content_type\":\"systemd\",\"content\":{\"string\":\"enter-initrd\",\"bootId\":\"0123456789abcdef0123456789abcdef\",\"timestamp\":1234,\"eventType\":\"phase\"}}\n";
        let log = CelLog::parse(line.as_bytes()).unwrap();
        let r = &log.records()[0];
        assert_eq!(r.pcr().get(), 11);
        assert_eq!(r.recnum(), None);
        match r.content() {
            CelContent::Systemd(c) => {
                assert_eq!(c.get_str("string"), Some("enter-initrd"));
                assert_eq!(c.get_str("eventType"), Some("phase"));
            }
            other => panic!("{other:?}"),
        }
        let again = CelLog::parse(&log.to_bytes()).unwrap();
        assert_eq!(again, log);
    }

    #[test]
    fn provenix_record_round_trips_and_replays() {
        let m = SystemMeasurement::new(identity()).unwrap();
        let pcr = PcrIndex::new(14).unwrap();
        let rec = m
            .to_record(pcr, &[HashAlgorithm::Sha256, HashAlgorithm::Sha1])
            .unwrap()
            .with_recnum(0);
        let log = CelLog::new(vec![rec]).unwrap();
        let parsed = CelLog::parse(&log.to_bytes()).unwrap();
        assert_eq!(parsed, log);
        assert_eq!(parsed.to_bytes(), log.to_bytes());
        let replay = parsed.replay(&[HashAlgorithm::Sha256]).unwrap();
        let zero = HashAlgorithm::Sha256.filled(0);
        let expected = HashAlgorithm::Sha256
            .extend(
                &zero,
                &Digest::new(HashAlgorithm::Sha256.id(), m.digest().as_bytes()).unwrap(),
            )
            .unwrap();
        assert_eq!(
            replay.bank(HashAlgorithm::Sha256).unwrap().value(pcr),
            expected
        );
    }
}
