//! NAR (Nix ARchive) serialisation and streaming NAR hashing.
//!
//! A NAR is a sequence of *strings*: a little-endian `u64` length, the bytes,
//! and zero padding to a multiple of 8. The archive is
//! `"nix-archive-1"` followed by one node:
//!
//! ```text
//! node      = "(" "type" ( regular | symlink | directory ) ")"
//! regular   = "regular" [ "executable" "" ] "contents" <u64 size> bytes pad
//! symlink   = "symlink" "target" <target>
//! directory = "directory" { "entry" "(" "name" <name> "node" node ")" }
//! ```
//!
//! Directory entries appear in bytewise order of their names; only the
//! owner-executable bit, file contents and symlink targets are recorded.
//! [`NarWriter`] emits this token stream into any [`NarSink`]; a
//! [`NarHasher`] sink computes the NAR hash and size without ever holding the
//! archive, and [`crate::nar::hash_path`] (feature `std`) walks a path on
//! disk, streaming each file through a fixed buffer.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use sha2::{Digest as _, Sha256};

use crate::error::Result;
use crate::hash::{NarHash, Sha256Digest};

/// The archive's magic string.
pub const MAGIC: &[u8] = b"nix-archive-1";

/// Where NAR bytes go.
pub trait NarSink {
    /// Accept the next bytes of the archive.
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
}

impl NarSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A sink that hashes the archive with SHA-256 and counts its bytes.
#[derive(Clone, Default)]
pub struct NarHasher {
    sha: Sha256,
    size: u64,
}

/// A NAR's hash and size, the two numbers Nix records for a store path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NarSummary {
    /// SHA-256 of the archive.
    pub hash: NarHash,
    /// Length of the archive in bytes.
    pub size: u64,
}

impl NarHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hash and size of everything put so far.
    pub fn finish(self) -> NarSummary {
        NarSummary {
            hash: NarHash(Sha256Digest(self.sha.finalize().into())),
            size: self.size,
        }
    }
}

impl NarSink for NarHasher {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.sha.update(bytes);
        self.size = self.size.wrapping_add(bytes.len() as u64);
        Ok(())
    }
}

const ZEROS: [u8; 8] = [0; 8];

fn padding(len: u64) -> &'static [u8] {
    let pad = ((8 - len % 8) % 8) as usize;
    ZEROS.get(..pad).unwrap_or_default()
}

/// Emits the NAR token stream. The caller drives the structure: the writer
/// does not check nesting, [`Node::serialize`] and the disk walk do.
pub struct NarWriter<S> {
    sink: S,
}

impl<S: NarSink> NarWriter<S> {
    /// Start an archive: writes the magic string.
    pub fn new(mut sink: S) -> Result<Self> {
        write_str(&mut sink, MAGIC)?;
        Ok(Self { sink })
    }

    /// The sink, once the archive is complete.
    pub fn into_sink(self) -> S {
        self.sink
    }

    fn strs(&mut self, parts: &[&[u8]]) -> Result<()> {
        parts.iter().try_for_each(|p| write_str(&mut self.sink, p))
    }

    /// A symlink node.
    pub fn symlink(&mut self, target: &[u8]) -> Result<()> {
        self.strs(&[b"(", b"type", b"symlink", b"target", target, b")"])
    }

    /// Start a regular file of `size` bytes; follow with [`Self::contents`]
    /// chunks adding up to `size`, then [`Self::end_regular`].
    pub fn begin_regular(&mut self, executable: bool, size: u64) -> Result<()> {
        self.strs(&[b"(", b"type", b"regular"])?;
        if executable {
            self.strs(&[b"executable", b""])?;
        }
        self.strs(&[b"contents"])?;
        self.sink.put(&size.to_le_bytes())
    }

    /// A chunk of file contents.
    pub fn contents(&mut self, chunk: &[u8]) -> Result<()> {
        self.sink.put(chunk)
    }

    /// End a regular file of `size` bytes (writes the padding).
    pub fn end_regular(&mut self, size: u64) -> Result<()> {
        self.sink.put(padding(size))?;
        self.strs(&[b")"])
    }

    /// Start a directory node.
    pub fn begin_directory(&mut self) -> Result<()> {
        self.strs(&[b"(", b"type", b"directory"])
    }

    /// Start a directory entry; follow with its node, then [`Self::end_entry`].
    pub fn begin_entry(&mut self, name: &[u8]) -> Result<()> {
        self.strs(&[b"entry", b"(", b"name", name, b"node"])
    }

    /// End a directory entry.
    pub fn end_entry(&mut self) -> Result<()> {
        self.strs(&[b")"])
    }

    /// End a directory node.
    pub fn end_directory(&mut self) -> Result<()> {
        self.strs(&[b")"])
    }
}

fn write_str<S: NarSink>(sink: &mut S, s: &[u8]) -> Result<()> {
    let len = s.len() as u64;
    sink.put(&len.to_le_bytes())?;
    sink.put(s)?;
    sink.put(padding(len))
}

/// An in-memory file-system tree, for building NARs without a disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    Regular {
        /// Owner-executable bit.
        executable: bool,
        /// File contents.
        contents: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Link target, as stored.
        target: Vec<u8>,
    },
    /// A directory; the map keeps names in bytewise order, as NAR requires.
    Directory(BTreeMap<Vec<u8>, Node>),
}

impl Node {
    /// Write this tree as a complete archive into `sink`.
    pub fn write_to<S: NarSink>(&self, sink: S) -> Result<S> {
        let mut w = NarWriter::new(sink)?;
        self.write_node(&mut w)?;
        Ok(w.into_sink())
    }

    fn write_node<S: NarSink>(&self, w: &mut NarWriter<S>) -> Result<()> {
        match self {
            Node::Regular {
                executable,
                contents,
            } => {
                let size = contents.len() as u64;
                w.begin_regular(*executable, size)?;
                w.contents(contents)?;
                w.end_regular(size)
            }
            Node::Symlink { target } => w.symlink(target),
            Node::Directory(entries) => {
                w.begin_directory()?;
                for (name, node) in entries {
                    w.begin_entry(name)?;
                    node.write_node(w)?;
                    w.end_entry()?;
                }
                w.end_directory()
            }
        }
    }

    /// The archive's bytes.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        self.write_to(Vec::new())
    }

    /// The archive's hash and size, without holding the archive.
    pub fn summary(&self) -> Result<NarSummary> {
        Ok(self.write_to(NarHasher::new())?.finish())
    }
}

mod refs;
pub use refs::{RefScanner, Tee, HASH_PART_LEN};
#[cfg(feature = "std")]
mod disk;
#[cfg(feature = "std")]
pub use disk::{
    dump_path, hash_and_scan, hash_path, hash_path_single_thread, hash_paths, DEFAULT_BUFFER,
};

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn single_file_bytes() {
        let node = Node::Regular {
            executable: false,
            contents: b"hello\n".to_vec(),
        };
        let nar = node.serialize().unwrap();
        // 13-byte magic padded to 16, then 8 strings and the contents.
        assert_eq!(nar.len(), 120);
        assert_eq!(&nar[..8], &13u64.to_le_bytes());
        assert_eq!(&nar[8..21], MAGIC);
        assert_eq!(&nar[21..24], &[0, 0, 0]);
        let s = node.summary().unwrap();
        assert_eq!(s.size, 120);
        assert_eq!(
            s.hash.to_nix_string(),
            "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
        );
    }

    #[test]
    fn hasher_equals_hash_of_bytes() {
        let mut dir = BTreeMap::new();
        dir.insert(
            b"b".to_vec(),
            Node::Symlink {
                target: b"a".to_vec(),
            },
        );
        dir.insert(
            b"a".to_vec(),
            Node::Regular {
                executable: true,
                contents: vec![7; 9],
            },
        );
        let node = Node::Directory(dir);
        let bytes = node.serialize().unwrap();
        let s = node.summary().unwrap();
        assert_eq!(s.size, bytes.len() as u64);
        assert_eq!(s.hash.0, Sha256Digest::of(&bytes));
    }
}
