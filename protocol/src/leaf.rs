//! Typed log leaves: a tag byte, then the record.
//!
//! | tag  | record            | defined by |
//! |------|-------------------|------------|
//! | 0x01 | Enrollment        | [`crate::enrollment::Enrollment`] (always after its blobs) |
//! | 0x02 | KeyBinding        | [`crate::enrollment::KeyRebinding`] (always after its blobs) |
//! | 0x03 | Entry             | [`crate::entry`] |
//! | 0x04 | BatchAttestation  | [`crate::batch`] |
//! | 0x05 | Blob              | a chunk (1 to 61,440 bytes) of a record's detached data |
//!
//! Every leaf is at most [`MAX_LEAF`] bytes. `Blob` leaves belong to the
//! first non-blob record after them, which names their concatenation by
//! SHA-256 and length; [`LeafReader`] enforces that pairing.

use alloc::vec::Vec;

use alloc::boxed::Box;

use crate::batch::BatchAttestation;
use crate::enrollment::{Enrollment, KeyRebinding};
use crate::entry::SignedEntry;
use crate::entry::{EntryLeaf, MAX_DETACHED};
use crate::error::{Error, Result};

/// Largest leaf (C2SP tlog-tiles entry bundles use a 16-bit length).
pub const MAX_LEAF: usize = 65_535;
/// Largest chunk in one `Blob` leaf (60 KiB).
pub const BLOB_CHUNK: usize = 60 * 1024;

/// Leaf tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum LeafTag {
    /// Builder enrollment.
    Enrollment = 0x01,
    /// A new SK binding after an upgrade ([`KeyRebinding`]).
    KeyBinding = 0x02,
    /// A signed provenance entry.
    Entry = 0x03,
    /// A batch attestation.
    BatchAttestation = 0x04,
    /// Detached data of the next record.
    Blob = 0x05,
}

/// A decoded leaf.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leaf {
    /// A chunk of the next record's detached data.
    Blob(Vec<u8>),
    /// An entry (its detached lists, if any, still to be attached).
    Entry(alloc::boxed::Box<EntryLeaf>),
    /// A batch attestation.
    Batch(alloc::boxed::Box<BatchAttestation>),
    /// An enrollment leaf's bytes after the tag (its blobs still to attach).
    Enrollment(Vec<u8>),
    /// A key rebinding leaf's bytes after the tag (its blobs still to attach).
    KeyRebinding(Vec<u8>),
}

/// The leaves that store a record: `detached` (if any) cut into `Blob`
/// leaves of at most [`BLOB_CHUNK`] bytes, then `tag || parts...`.
pub(crate) fn record_leaves(
    tag: LeafTag,
    parts: &[&[u8]],
    detached: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    let mut leaves = Vec::new();
    for chunk in detached.unwrap_or_default().chunks(BLOB_CHUNK) {
        let mut leaf = Vec::with_capacity(1 + chunk.len());
        leaf.push(LeafTag::Blob as u8);
        leaf.extend_from_slice(chunk);
        leaves.push(leaf);
    }
    let mut leaf = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    leaf.push(tag as u8);
    for p in parts {
        leaf.extend_from_slice(p);
    }
    leaves.push(leaf);
    leaves
}

impl Leaf {
    /// Decode one leaf.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_LEAF {
            return Err(Error::TooLarge {
                what: "leaf",
                len: bytes.len(),
                max: MAX_LEAF,
            });
        }
        let (&tag, rest) = bytes
            .split_first()
            .ok_or(Error::Truncated { what: "leaf" })?;
        match tag {
            t if t == LeafTag::Entry as u8 => {
                EntryLeaf::decode(rest).map(|e| Leaf::Entry(alloc::boxed::Box::new(e)))
            }
            t if t == LeafTag::BatchAttestation as u8 => {
                BatchAttestation::decode(rest).map(|b| Leaf::Batch(alloc::boxed::Box::new(b)))
            }
            t if t == LeafTag::Enrollment as u8 => Ok(Leaf::Enrollment(rest.to_vec())),
            t if t == LeafTag::KeyBinding as u8 => Ok(Leaf::KeyRebinding(rest.to_vec())),
            t if t == LeafTag::Blob as u8 => {
                if rest.is_empty() {
                    return Err(Error::Truncated { what: "blob leaf" });
                }
                if rest.len() > BLOB_CHUNK {
                    return Err(Error::TooLarge {
                        what: "blob leaf",
                        len: rest.len(),
                        max: BLOB_CHUNK,
                    });
                }
                Ok(Leaf::Blob(rest.to_vec()))
            }
            other => Err(Error::UnknownLeafTag(other)),
        }
    }
}

/// A record completed by [`LeafReader`].
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A signed entry (signature not yet verified).
    Entry(alloc::boxed::Box<SignedEntry>),
    /// A batch attestation (quote not yet appraised).
    Batch(alloc::boxed::Box<BatchAttestation>),
    /// A builder's enrollment (not yet appraised).
    Enrollment(Box<Enrollment>),
    /// A new SK binding (not yet appraised).
    KeyRebinding(Box<KeyRebinding>),
}

/// Reads a log's leaves in order and yields complete records.
#[derive(Default)]
pub struct LeafReader {
    pending: Vec<u8>,
    pending_leaves: usize,
}

impl LeafReader {
    /// A reader at the start of a log (or at a record boundary).
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next leaf; returns a record when one completes.
    pub fn push(&mut self, leaf: &[u8]) -> Result<Option<Record>> {
        match Leaf::decode(leaf)? {
            Leaf::Blob(chunk) => {
                if self.pending.len() + chunk.len() > MAX_DETACHED {
                    return Err(Error::TooLarge {
                        what: "detached data",
                        len: self.pending.len() + chunk.len(),
                        max: MAX_DETACHED,
                    });
                }
                self.pending.extend_from_slice(&chunk);
                self.pending_leaves += 1;
                Ok(None)
            }
            Leaf::Batch(b) => {
                if self.pending_leaves > 0 {
                    return Err(Error::InvalidValue {
                        what: "batch attestation",
                        reason: "blob leaves precede a batch attestation",
                    });
                }
                Ok(Some(Record::Batch(b)))
            }
            Leaf::Entry(e) => {
                let blob = self.take_blob();
                let signed = (*e).attach(blob.as_deref())?;
                Ok(Some(Record::Entry(Box::new(signed))))
            }
            Leaf::Enrollment(body) => {
                let blob = self.take_blob();
                let record = Enrollment::from_leaf(&body, blob.as_deref())?;
                Ok(Some(Record::Enrollment(Box::new(record))))
            }
            Leaf::KeyRebinding(body) => {
                let blob = self.take_blob();
                let record = KeyRebinding::from_leaf(&body, blob.as_deref())?;
                Ok(Some(Record::KeyRebinding(Box::new(record))))
            }
        }
    }

    /// The blob leaves collected since the last record (None if there were none).
    fn take_blob(&mut self) -> Option<Vec<u8>> {
        let blob = core::mem::take(&mut self.pending);
        (core::mem::take(&mut self.pending_leaves) > 0).then_some(blob)
    }

    /// Check that no blob leaves are left without their record.
    pub fn finish(self) -> Result<()> {
        if self.pending_leaves > 0 {
            return Err(Error::Truncated {
                what: "blob leaves without the record they belong to",
            });
        }
        Ok(())
    }
}

/// Most leaves in one entry bundle (a full C2SP tlog-tiles tile).
pub const MAX_BUNDLE_LEAVES: usize = 256;

/// Encode leaves as a C2SP tlog-tiles entry bundle: each leaf as a u16
/// big-endian length and its bytes.
pub fn encode_bundle<L: AsRef<[u8]>>(leaves: &[L]) -> Result<Vec<u8>> {
    if leaves.len() > MAX_BUNDLE_LEAVES {
        return Err(Error::TooLarge {
            what: "entry bundle",
            len: leaves.len(),
            max: MAX_BUNDLE_LEAVES,
        });
    }
    let mut out = Vec::new();
    for leaf in leaves {
        let leaf = leaf.as_ref();
        let len = u16::try_from(leaf.len()).map_err(|_| Error::TooLarge {
            what: "leaf",
            len: leaf.len(),
            max: MAX_LEAF,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(leaf);
    }
    Ok(out)
}

/// Split a C2SP tlog-tiles entry bundle into its leaves (at most 256; a
/// length running past the end is refused).
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut leaves = Vec::new();
    while !bytes.is_empty() {
        if leaves.len() == MAX_BUNDLE_LEAVES {
            return Err(Error::TrailingBytes {
                what: "entry bundle (more than 256 leaves)",
                extra: bytes.len(),
            });
        }
        let (len, rest) = match bytes {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => {
                return Err(Error::Truncated {
                    what: "entry bundle",
                })
            }
        };
        let leaf = rest.get(..len).ok_or(Error::Truncated {
            what: "entry bundle",
        })?;
        leaves.push(leaf);
        bytes = rest.get(len..).unwrap_or_default();
    }
    Ok(leaves)
}
