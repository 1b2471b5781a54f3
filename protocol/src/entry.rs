//! Provenance entries (v1): what a builder signs for every build.
//!
//! An [`Entry`] says "I, builder B, built these outputs with these NAR hashes
//! from derivation D with these resolved inputs, on the measured system S".
//! It is encoded once, canonically, with postcard (byte layout in
//! `docs/wire-format.md`), and signed with the builder's boot-state key SK as
//! `ed25519(SK, "provenix/entry/v1\0" || body)`, where `body` is the entry as
//! stored in its log leaf.
//!
//! A log leaf holds at most 65,535 bytes (C2SP tlog-tiles entry bundles use a
//! 16-bit length). An entry whose lists (outputs with their references, and
//! resolved inputs) would overflow that keeps them in `Blob` leaves right
//! before it and stores only their SHA-256 and length; the signature covers
//! the leaf as stored. [`SignedEntry::to_leaves`] does the split and
//! [`crate::leaf::LeafReader`] puts entries back together.
//!
//! Decoding is strict: unknown versions, trailing bytes, unsorted or
//! duplicate list items, oversized fields and any encoding that does not
//! re-encode to the same bytes are refused, each with its own error kind.

use alloc::string::String;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::{NarHash, Sha256Digest};
use crate::ids::BuilderId;
use crate::leaf::{LeafTag, MAX_LEAF};
use crate::store_path::{DrvPath, StorePath};

/// Encoding version of [`Entry`].
pub const ENTRY_VERSION: u8 = 1;
/// Domain prefix of the entry signature.
pub const ENTRY_DOMAIN: &[u8] = b"provenix/entry/v1\0";
/// Most outputs of one derivation.
pub const MAX_OUTPUTS: usize = 64;
/// Longest output name.
pub const MAX_OUTPUT_NAME: usize = 64;
/// Most references of one output.
pub const MAX_REFERENCES: usize = 16 * 1024;
/// Most resolved inputs of one entry.
pub const MAX_INPUTS: usize = 16 * 1024;
/// Longest source reference.
pub const MAX_SOURCE: usize = 1024;
/// Largest detached list block (the bytes spread over `Blob` leaves).
pub const MAX_DETACHED: usize = 16 * 1024 * 1024;

/// One output of the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryOutput {
    /// Output name (`out`, `dev`, …).
    pub name: String,
    /// The output's store path.
    pub store_path: StorePath,
    /// NAR hash computed from the output's content.
    pub nar_hash: NarHash,
    /// NAR size.
    pub nar_size: u64,
    /// Store paths the output refers to, sorted, no duplicates.
    pub references: Vec<StorePath>,
}

/// A direct input as it was on this builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedInput {
    /// The input's store path (an input derivation's output or an input source).
    pub store_path: StorePath,
    /// Its NAR hash, computed from content.
    pub nar_hash: NarHash,
}

/// What Nix's effective settings were for this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildEnv {
    /// Digest of the effective settings the hook saw.
    pub settings_digest: Sha256Digest,
    /// Whether the sandbox was on.
    pub sandbox: bool,
    /// Whether remote builders were configured.
    pub remote_builders: bool,
}

/// A claimed source reference (flake URL with rev, or a nixpkgs rev):
/// 1 to 1024 printable ASCII characters, no spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef(String);

impl SourceRef {
    /// A checked source reference.
    pub fn new(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > MAX_SOURCE {
            return Err(Error::TooLarge {
                what: "source reference",
                len: s.len(),
                max: MAX_SOURCE,
            });
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidValue {
                what: "source reference",
                reason: "not printable ASCII without spaces",
            });
        }
        Ok(Self(String::from(s)))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A provenance entry, v1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The builder (its AK's TPM Name).
    pub builder: BuilderId,
    /// Index of this entry's leaf in the builder's log.
    pub seq: u64,
    /// The derivation built.
    pub drv_path: DrvPath,
    /// Nix's `hashDerivationModulo` of the derivation.
    pub drv_hash: Sha256Digest,
    /// Outputs, sorted by name.
    pub outputs: Vec<EntryOutput>,
    /// True only for a local, sandboxed build under locked-down settings.
    pub built_locally: bool,
    /// Nix's effective settings for the build.
    pub build_env: BuildEnv,
    /// Direct inputs as resolved on this builder, sorted by store path.
    pub resolved_inputs: Vec<ResolvedInput>,
    /// Claimed source reference.
    pub source: Option<SourceRef>,
    /// The system digest of the booted system (`SystemIdentity::digest`).
    pub system: Sha256Digest,
    /// Unix seconds.
    pub time: u64,
}

// ---------------------------------------------------------------------------
// Wire form: what postcard reads and writes. Converting to the typed form
// checks every field and gives each failure its own error kind.

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct OutputWire {
    name: String,
    store_path: String,
    nar_hash: [u8; 32],
    nar_size: u64,
    references: Vec<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct InputWire {
    store_path: String,
    nar_hash: [u8; 32],
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct ListsWire {
    outputs: Vec<OutputWire>,
    resolved_inputs: Vec<InputWire>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
enum ListsField {
    Inline(ListsWire),
    Detached { sha256: [u8; 32], len: u32 },
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct EntryWire {
    version: u8,
    builder: [u8; 32],
    seq: u64,
    drv_path: String,
    drv_hash: [u8; 32],
    built_locally: bool,
    settings_digest: [u8; 32],
    sandbox: bool,
    remote_builders: bool,
    source: Option<String>,
    system: [u8; 32],
    time: u64,
    lists: ListsField,
}

fn postcard_err(what: &'static str) -> impl Fn(postcard::Error) -> Error {
    move |e| match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated { what },
        _ => Error::Malformed { what },
    }
}

pub(crate) fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(postcard_err(what))
}

/// Decode `bytes` as exactly one canonical `T`.
pub(crate) fn decode_exact<'a, T>(what: &'static str, bytes: &'a [u8]) -> Result<T>
where
    T: Serialize + Deserialize<'a>,
{
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(postcard_err(what))?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    if encode(what, &v)? != bytes {
        return Err(Error::NonCanonical { what });
    }
    Ok(v)
}

fn strictly_sorted<T, K: Ord + ?Sized>(
    what: &'static str,
    items: &[T],
    key: impl Fn(&T) -> &K,
) -> Result<()> {
    let ok = items.windows(2).all(|w| match w {
        [a, b] => key(a) < key(b),
        _ => true,
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Unsorted { what })
    }
}

fn bounded(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::TooLarge { what, len, max });
    }
    Ok(())
}

fn check_output_name(name: &str) -> Result<()> {
    bounded("output name", name.len(), MAX_OUTPUT_NAME)?;
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "output name",
            reason: "empty, starts with '.', or outside [A-Za-z0-9+-._?=]",
        })
    }
}

impl Entry {
    /// Check the bounds and orderings that make the encoding canonical.
    pub fn validate(&self) -> Result<()> {
        if self.outputs.is_empty() {
            return Err(Error::InvalidValue {
                what: "entry outputs",
                reason: "no outputs",
            });
        }
        bounded("entry outputs", self.outputs.len(), MAX_OUTPUTS)?;
        strictly_sorted("entry outputs", &self.outputs, |o| o.name.as_str())?;
        for o in &self.outputs {
            check_output_name(&o.name)?;
            bounded("output references", o.references.len(), MAX_REFERENCES)?;
            strictly_sorted("output references", &o.references, |r| r.as_str())?;
        }
        bounded("resolved inputs", self.resolved_inputs.len(), MAX_INPUTS)?;
        strictly_sorted("resolved inputs", &self.resolved_inputs, |i| {
            i.store_path.as_str()
        })?;
        Ok(())
    }

    /// Sort every list (outputs by name, references and inputs by path), so
    /// that an entry assembled in any order can be encoded.
    pub fn normalize(&mut self) {
        self.outputs.sort_by(|a, b| a.name.cmp(&b.name));
        for o in &mut self.outputs {
            o.references.sort();
            o.references.dedup();
        }
        self.resolved_inputs
            .sort_by(|a, b| a.store_path.cmp(&b.store_path));
    }

    fn lists_wire(&self) -> ListsWire {
        ListsWire {
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputWire {
                    name: o.name.clone(),
                    store_path: String::from(o.store_path.as_str()),
                    nar_hash: o.nar_hash.0 .0,
                    nar_size: o.nar_size,
                    references: o
                        .references
                        .iter()
                        .map(|r| String::from(r.as_str()))
                        .collect(),
                })
                .collect(),
            resolved_inputs: self
                .resolved_inputs
                .iter()
                .map(|i| InputWire {
                    store_path: String::from(i.store_path.as_str()),
                    nar_hash: i.nar_hash.0 .0,
                })
                .collect(),
        }
    }

    fn wire(&self, lists: ListsField) -> EntryWire {
        EntryWire {
            version: ENTRY_VERSION,
            builder: self.builder.digest().0,
            seq: self.seq,
            drv_path: String::from(self.drv_path.as_str()),
            drv_hash: self.drv_hash.0,
            built_locally: self.built_locally,
            settings_digest: self.build_env.settings_digest.0,
            sandbox: self.build_env.sandbox,
            remote_builders: self.build_env.remote_builders,
            source: self.source.as_ref().map(|s| s.0.clone()),
            system: self.system.0,
            time: self.time,
            lists,
        }
    }

    /// Encode and sign with SK. Lists too large for one leaf are detached
    /// into blob bytes (see the module docs).
    pub fn sign(&self, sk: &SigningKey) -> Result<SignedEntry> {
        self.validate()?;
        let lists = self.lists_wire();
        let inline = encode("entry", &self.wire(ListsField::Inline(lists)))?;
        let (body, detached) = if 1 + inline.len() + 64 <= MAX_LEAF {
            (inline, None)
        } else {
            let blob = encode("entry lists", &self.lists_wire())?;
            bounded("entry lists", blob.len(), MAX_DETACHED)?;
            let len = u32::try_from(blob.len()).map_err(|_| Error::TooLarge {
                what: "entry lists",
                len: blob.len(),
                max: MAX_DETACHED,
            })?;
            let field = ListsField::Detached {
                sha256: Sha256Digest::of(&blob).0,
                len,
            };
            (encode("entry", &self.wire(field))?, Some(blob))
        };
        bounded("entry leaf", 1 + body.len() + 64, MAX_LEAF)?;
        let signature = sk.sign(&signing_payload(&body)).to_bytes();
        Ok(SignedEntry {
            entry: self.clone(),
            body,
            detached,
            signature,
        })
    }
}

fn signing_payload(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(ENTRY_DOMAIN.len() + body.len());
    msg.extend_from_slice(ENTRY_DOMAIN);
    msg.extend_from_slice(body);
    msg
}

fn nar_hash(bytes: [u8; 32]) -> NarHash {
    NarHash(Sha256Digest(bytes))
}

fn lists_from_wire(w: ListsWire) -> Result<(Vec<EntryOutput>, Vec<ResolvedInput>)> {
    let mut outputs = Vec::with_capacity(w.outputs.len());
    for o in w.outputs {
        let mut references = Vec::with_capacity(o.references.len());
        for r in &o.references {
            references.push(StorePath::parse(r)?);
        }
        outputs.push(EntryOutput {
            name: o.name,
            store_path: StorePath::parse(&o.store_path)?,
            nar_hash: nar_hash(o.nar_hash),
            nar_size: o.nar_size,
            references,
        });
    }
    let mut inputs = Vec::with_capacity(w.resolved_inputs.len());
    for i in w.resolved_inputs {
        inputs.push(ResolvedInput {
            store_path: StorePath::parse(&i.store_path)?,
            nar_hash: nar_hash(i.nar_hash),
        });
    }
    Ok((outputs, inputs))
}

/// An entry leaf as read from the log, before its detached lists (if any)
/// are attached. Obtained from [`crate::leaf::Leaf::decode`].
#[derive(Debug, PartialEq, Eq)]
pub struct EntryLeaf {
    wire: EntryWire,
    body: Vec<u8>,
    signature: [u8; 64],
}

impl EntryLeaf {
    /// Decode the bytes after the leaf tag: `body || signature[64]`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "entry";
        let (wire, rest) =
            postcard::take_from_bytes::<EntryWire>(bytes).map_err(postcard_err(WHAT))?;
        if wire.version != ENTRY_VERSION {
            return Err(Error::UnknownVersion {
                what: WHAT,
                found: u32::from(wire.version),
            });
        }
        let sig: [u8; 64] = match rest.len() {
            64 => rest
                .try_into()
                .map_err(|_| Error::Truncated { what: WHAT })?,
            n if n < 64 => return Err(Error::Truncated { what: WHAT }),
            n => {
                return Err(Error::TrailingBytes {
                    what: WHAT,
                    extra: n - 64,
                })
            }
        };
        let body_len = bytes.len() - 64;
        let body = bytes.get(..body_len).unwrap_or_default().to_vec();
        if encode(WHAT, &wire)? != body {
            return Err(Error::NonCanonical { what: WHAT });
        }
        Ok(Self {
            wire,
            body,
            signature: sig,
        })
    }

    /// If the lists are detached: their SHA-256 and length in bytes, i.e.
    /// what the `Blob` leaves right before this one must add up to.
    pub fn detached(&self) -> Option<(Sha256Digest, usize)> {
        match &self.wire.lists {
            ListsField::Inline(_) => None,
            ListsField::Detached { sha256, len } => Some((Sha256Digest(*sha256), *len as usize)),
        }
    }

    /// Complete the entry: `blob` must be the concatenated `Blob` leaves when
    /// [`Self::detached`] is `Some`, and `None` otherwise. The signature is
    /// not checked here: see [`SignedEntry::verify`].
    pub fn attach(self, blob: Option<&[u8]>) -> Result<SignedEntry> {
        let EntryLeaf {
            wire,
            body,
            signature,
        } = self;
        let (lists, detached) = match (wire.lists, blob) {
            (ListsField::Inline(l), None) => (l, None),
            (ListsField::Detached { sha256, len }, Some(b)) => {
                if b.len() != len as usize || Sha256Digest::of(b).0 != sha256 {
                    return Err(Error::InvalidValue {
                        what: "entry lists",
                        reason: "blob leaves do not match the digest in the entry",
                    });
                }
                (
                    decode_exact::<ListsWire>("entry lists", b)?,
                    Some(b.to_vec()),
                )
            }
            (ListsField::Inline(_), Some(_)) => {
                return Err(Error::InvalidValue {
                    what: "entry lists",
                    reason: "blob leaves precede an entry with inline lists",
                })
            }
            (ListsField::Detached { .. }, None) => {
                return Err(Error::InvalidValue {
                    what: "entry lists",
                    reason: "detached lists but no blob leaves before the entry",
                })
            }
        };
        let (outputs, resolved_inputs) = lists_from_wire(lists)?;
        let source = match wire.source {
            Some(s) => Some(SourceRef::new(&s)?),
            None => None,
        };
        let entry = Entry {
            builder: BuilderId::from_public_digest(&Sha256Digest(wire.builder)),
            seq: wire.seq,
            drv_path: DrvPath::parse(&wire.drv_path)?,
            drv_hash: Sha256Digest(wire.drv_hash),
            outputs,
            built_locally: wire.built_locally,
            build_env: BuildEnv {
                settings_digest: Sha256Digest(wire.settings_digest),
                sandbox: wire.sandbox,
                remote_builders: wire.remote_builders,
            },
            resolved_inputs,
            source,
            system: Sha256Digest(wire.system),
            time: wire.time,
        };
        entry.validate()?;
        Ok(SignedEntry {
            entry,
            body,
            detached,
            signature,
        })
    }
}

/// An entry with its signature, in the exact form it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEntry {
    entry: Entry,
    body: Vec<u8>,
    detached: Option<Vec<u8>>,
    signature: [u8; 64],
}

impl SignedEntry {
    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The signed bytes (the leaf body without tag and signature).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The Ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Verify the signature with SK's public key (`verify_strict`).
    pub fn verify(&self, sk_public: &VerifyingKey) -> Result<()> {
        sk_public
            .verify_strict(
                &signing_payload(&self.body),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| Error::BadSignature { what: "entry" })
    }

    /// The log leaves that store this entry: `Blob` leaves (if its lists are
    /// detached) and then the entry leaf; each at most 65,535 bytes.
    pub fn to_leaves(&self) -> Vec<Vec<u8>> {
        crate::leaf::record_leaves(
            LeafTag::Entry,
            &[&self.body, &self.signature],
            self.detached.as_deref(),
        )
    }
}
