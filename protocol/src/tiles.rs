//! C2SP tlog-tiles: the static-file layout of a builder's log.
//!
//! ```text
//! checkpoint                     signed note (LK)
//! tile/<L>/<N>[.p/<W>]           hash tile: up to 256 hashes of level-L nodes
//! tile/entries/<N>[.p/<W>]       entry bundle: up to 256 leaves (see leaf::encode_bundle)
//! ```
//! A level-L node is the root of a perfect subtree of 256^L leaves, so hash
//! tile (L, N) holds the roots of leaves `[(256N + i)·256^L, (256N + i + 1)·256^L)`
//! for `i < W`. `<N>` is written in 3-digit groups, all but the last with an
//! `x` (1234067 → `x001/x234/067`); the `.p/<W>` suffix (1 ≤ W ≤ 255) marks
//! a partial tile at the right edge of a tree.
//!
//! [`TiledTree`] is the writer's side: it takes leaf hashes in order, hands
//! back every tile that becomes full, and gives the partial tiles and root
//! for the current size; it resumes from the partial tiles alone (they hold
//! every node the next appends need). [`TileId`] names and parses tile paths.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::hash::Sha256Digest;
use crate::merkle::{node_hash, CompactTree};

/// Hashes (or leaves) in a full tile.
pub const TILE_WIDTH: usize = 256;
/// Highest tile level the spec allows.
pub const MAX_LEVEL: u8 = 63;

/// Which kind of tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    /// A hash tile at a level (0 = leaf hashes).
    Hashes(u8),
    /// An entry bundle.
    Entries,
}

/// One tile: kind, index within its level, width (1..=256; 256 = full).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// Hash tile level or entry bundle.
    pub kind: TileKind,
    /// Index within the level.
    pub index: u64,
    /// Number of hashes (or leaves): 256 for a full tile.
    pub width: u16,
}

const WHAT: &str = "tile path";

fn bad(reason: &'static str) -> Error {
    Error::InvalidValue { what: WHAT, reason }
}

impl TileId {
    /// The tile's path below the log's root, e.g. `tile/0/x001/234.p/5`.
    pub fn path(&self) -> String {
        let kind = match self.kind {
            TileKind::Hashes(level) => format!("{level}"),
            TileKind::Entries => String::from("entries"),
        };
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut path = format!("tile/{kind}");
        let last = groups.len() - 1;
        for (i, g) in groups.iter().rev().enumerate() {
            if i == last {
                path.push_str(&format!("/{g:03}"));
            } else {
                path.push_str(&format!("/x{g:03}"));
            }
        }
        if usize::from(self.width) < TILE_WIDTH {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parse a tile path (as [`Self::path`] writes it; nothing else).
    pub fn parse(path: &str) -> Result<Self> {
        if path.len() > 128 {
            return Err(Error::TooLarge {
                what: WHAT,
                len: path.len(),
                max: 128,
            });
        }
        let rest = path.strip_prefix("tile/").ok_or(bad("not under tile/"))?;
        let (kind, rest) = rest.split_once('/').ok_or(bad("no tile index"))?;
        let kind = if kind == "entries" {
            TileKind::Entries
        } else {
            let level = decimal(kind).ok_or(bad("level is not a decimal number"))?;
            if level > u64::from(MAX_LEVEL) {
                return Err(bad("level above 63"));
            }
            TileKind::Hashes(level as u8)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w = decimal(w).ok_or(bad("partial width is not a decimal number"))?;
                if w == 0 || w >= TILE_WIDTH as u64 {
                    return Err(bad("partial width outside 1..=255"));
                }
                (index, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        let last = groups.len() - 1;
        for (i, g) in groups.iter().enumerate() {
            let digits = if i == last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or(bad("index group without its x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index group is not 3 digits"));
            }
            let v = decimal_unchecked(digits);
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(v))
                .ok_or(bad("index does not fit in 64 bits"))?;
        }
        let id = TileId { kind, index, width };
        // One spelling per tile: leading zero groups are refused.
        if id.path() != path {
            return Err(Error::NonCanonical { what: WHAT });
        }
        Ok(id)
    }

    /// Whether a tree of `size` leaves covers this tile's whole content
    /// (what a server may serve once that tree's checkpoint is published).
    pub fn within(&self, size: u64) -> bool {
        let count = match self.kind {
            TileKind::Entries | TileKind::Hashes(0) => size,
            TileKind::Hashes(level) => {
                let shift = 8 * u32::from(level);
                size.checked_shr(shift).unwrap_or(0)
            }
        };
        let end = self
            .index
            .checked_mul(TILE_WIDTH as u64)
            .and_then(|s| s.checked_add(u64::from(self.width)));
        matches!(end, Some(end) if end <= count)
    }
}

/// A decimal number without sign or leading zeros (but `0`), up to 20 digits.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn decimal_unchecked(s: &str) -> u64 {
    s.bytes().fold(0, |acc, b| acc * 10 + u64::from(b - b'0'))
}

/// The root of a perfect tree over `hashes` (a power of two, at least one).
fn perfect_root(hashes: &[Sha256Digest]) -> Sha256Digest {
    let mut level = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [l, r] => node_hash(l, r),
                [one] => *one,
                _ => Sha256Digest([0; 32]),
            })
            .collect();
    }
    level.first().copied().unwrap_or(Sha256Digest([0; 32]))
}

/// The entry bundles that hold leaves `[from, to)` of a log of published
/// size `size` (`to` is capped at `size`), in order, each with the range of
/// leaf indices to take from it: full bundles where the tree has them, and
/// the partial bundle at the right edge at exactly `size`'s width.
pub fn bundles(
    from: u64,
    to: u64,
    size: u64,
) -> impl Iterator<Item = (TileId, core::ops::Range<u64>)> {
    let to = to.min(size);
    let width = TILE_WIDTH as u64;
    let first = from / width;
    let last = if from < to { to.div_ceil(width) } else { first };
    (first..last).map(move |index| {
        let start = index * width;
        let tile_width = if start + width <= size {
            TILE_WIDTH as u16
        } else {
            (size - start) as u16
        };
        let id = TileId {
            kind: TileKind::Entries,
            index,
            width: tile_width,
        };
        (id, from.max(start)..to.min(start + width))
    })
}

/// The Merkle tree hash of leaves `[lo, hi)` of a tree of `size` leaves,
/// from its stored hash tiles: `read(id)` returns a tile's hashes. The range
/// must be one RFC 6962 proofs use (see
/// [`crate::merkle::inclusion_proof_with`]): it splits into perfect subtrees,
/// each aligned to its size, and each such subtree is computed from at most
/// 128 hashes of one tile.
pub fn subtree_hash(
    size: u64,
    lo: u64,
    hi: u64,
    read: &mut impl FnMut(&TileId) -> Result<Vec<Sha256Digest>>,
) -> Result<Sha256Digest> {
    let bad = |reason| Error::InvalidValue {
        what: "subtree range",
        reason,
    };
    if lo >= hi || hi > size {
        return Err(bad("empty or beyond the tree"));
    }
    let n = hi - lo;
    if !n.is_power_of_two() {
        let mut k = 1u64;
        while k < n - k {
            k <<= 1;
        }
        let left = subtree_hash(size, lo, lo + k, read)?;
        let right = subtree_hash(size, lo + k, hi, read)?;
        return Ok(node_hash(&left, &right));
    }
    if !lo.is_multiple_of(n) {
        return Err(bad("a perfect subtree not aligned to its size"));
    }
    // The node at height h = log2(n), index lo / n: stored at tile level
    // h / 8 as the fold of 2^(h % 8) consecutive hashes of one tile.
    let h = n.trailing_zeros();
    let level = h / 8;
    let span = 1usize << (h % 8);
    let first = lo >> (8 * level); // index among that level's hashes
    let count = size >> (8 * level); // hashes stored at that level
    let tile = first / TILE_WIDTH as u64;
    let width = if (tile + 1) * TILE_WIDTH as u64 <= count {
        TILE_WIDTH as u16
    } else {
        (count % TILE_WIDTH as u64) as u16
    };
    let id = TileId {
        kind: TileKind::Hashes(level as u8),
        index: tile,
        width,
    };
    let hashes = read(&id)?;
    if hashes.len() != usize::from(width) {
        return Err(bad("a tile of the wrong width"));
    }
    let at = (first % TILE_WIDTH as u64) as usize;
    let run = hashes
        .get(at..at + span)
        .ok_or(bad("the subtree is not within its tile"))?;
    Ok(perfect_root(run))
}

/// Tiles as bytes: the concatenated 32-byte hashes.
pub fn tile_bytes(hashes: &[Sha256Digest]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

/// Split a hash tile's bytes into hashes (a multiple of 32, 1 to 256 of them).
pub fn parse_tile(bytes: &[u8]) -> Result<Vec<Sha256Digest>> {
    const T: &str = "hash tile";
    if bytes.is_empty() || !bytes.len().is_multiple_of(32) {
        return Err(Error::InvalidLength {
            what: T,
            expected: 32,
            found: bytes.len(),
        });
    }
    if bytes.len() > 32 * TILE_WIDTH {
        return Err(Error::TooLarge {
            what: T,
            len: bytes.len(),
            max: 32 * TILE_WIDTH,
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Sha256Digest(h)
        })
        .collect())
}

/// The writer's view of a tiled tree: the partial tile at each level and
/// the tree's peaks.
#[derive(Clone, Debug, Default)]
pub struct TiledTree {
    tree: CompactTree,
    /// `partial[L]`: the hashes of level L after the last full tile.
    partial: Vec<Vec<Sha256Digest>>,
}

impl TiledTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resume a tree of `size` leaves from its partial hash tiles, lowest
    /// level first: `partial[L]` must hold `(size >> 8L) % 256` hashes.
    pub fn resume(size: u64, partial: Vec<Vec<Sha256Digest>>) -> Result<Self> {
        let levels = Self::levels(size);
        if partial.len() > levels {
            return Err(bad("more partial tiles than the tree has levels"));
        }
        let mut peaks = Vec::new();
        for level in (0..levels).rev() {
            let want = ((size >> (8 * level)) % TILE_WIDTH as u64) as usize;
            let have = partial.get(level).map_or(&[][..], Vec::as_slice);
            if have.len() != want {
                return Err(Error::InvalidLength {
                    what: "partial hash tile",
                    expected: want,
                    found: have.len(),
                });
            }
            // The set bits of the width, highest first, are the peaks this
            // level contributes.
            let mut start = 0usize;
            for bit in (0..8).rev() {
                let span = 1usize << bit;
                if want & span != 0 {
                    let chunk = have.get(start..start + span).ok_or(bad("tile too short"))?;
                    peaks.push(perfect_root(chunk));
                    start += span;
                }
            }
        }
        let tree = CompactTree::from_peaks(size, peaks)?;
        let mut partial = partial;
        partial.resize(levels, Vec::new());
        Ok(Self { tree, partial })
    }

    /// Number of levels that have (full or partial) tiles in a tree of `size`.
    fn levels(size: u64) -> usize {
        let mut levels = 0;
        let mut n = size;
        while n > 0 {
            levels += 1;
            n >>= 8;
        }
        levels
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// RFC 6962 root of the tree so far.
    pub fn root(&self) -> Sha256Digest {
        self.tree.root()
    }

    /// Append a leaf hash; returns the hash tiles it completed (lowest level
    /// first) with their contents.
    pub fn append(&mut self, leaf_hash: Sha256Digest) -> Result<Vec<(TileId, Vec<Sha256Digest>)>> {
        let index = self.tree.size();
        self.tree.append(leaf_hash)?;
        let mut done = Vec::new();
        let mut node = leaf_hash;
        let mut level = 0usize;
        loop {
            if self.partial.len() <= level {
                self.partial.push(Vec::new());
            }
            let tile = self
                .partial
                .get_mut(level)
                .ok_or(bad("tile level missing"))?;
            tile.push(node);
            if tile.len() < TILE_WIDTH {
                break;
            }
            let full = core::mem::take(tile);
            node = perfect_root(&full);
            let tile_index = (index >> (8 * level)) / TILE_WIDTH as u64;
            done.push((
                TileId {
                    kind: TileKind::Hashes(level as u8),
                    index: tile_index,
                    width: TILE_WIDTH as u16,
                },
                full,
            ));
            level += 1;
        }
        Ok(done)
    }

    /// The partial hash tiles at the right edge (lowest level first).
    pub fn partial_tiles(&self) -> Vec<(TileId, &[Sha256Digest])> {
        let size = self.tree.size();
        self.partial
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(level, t)| {
                (
                    TileId {
                        kind: TileKind::Hashes(level as u8),
                        index: (size >> (8 * level)) / TILE_WIDTH as u64,
                        width: t.len() as u16,
                    },
                    t.as_slice(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    #[test]
    fn paths_follow_the_spec_examples() {
        let t = |kind, index, width| TileId { kind, index, width };
        assert_eq!(
            t(TileKind::Hashes(0), 1_234_067, 256).path(),
            "tile/0/x001/x234/067"
        );
        assert_eq!(t(TileKind::Hashes(1), 5, 7).path(), "tile/1/005.p/7");
        assert_eq!(t(TileKind::Entries, 0, 256).path(), "tile/entries/000");
        assert_eq!(
            t(TileKind::Entries, 1000, 1).path(),
            "tile/entries/x001/000.p/1"
        );
        for id in [
            t(TileKind::Hashes(0), 1_234_067, 256),
            t(TileKind::Hashes(63), u64::MAX, 255),
            t(TileKind::Entries, 999, 3),
        ] {
            assert_eq!(TileId::parse(&id.path()).unwrap(), id);
        }
        for bad in [
            "tile/0/x000/001",
            "tile/0/1",
            "tile/64/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/00/000",
            "tile/0/001/002",
            "tile/entries/000.p/",
            "tiles/0/000",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(TileId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within_a_published_size() {
        let t = |kind, index, width| TileId { kind, index, width };
        assert!(t(TileKind::Hashes(0), 0, 256).within(256));
        assert!(!t(TileKind::Hashes(0), 1, 1).within(256));
        assert!(t(TileKind::Hashes(0), 1, 1).within(257));
        assert!(t(TileKind::Hashes(1), 0, 1).within(256));
        assert!(!t(TileKind::Hashes(1), 0, 2).within(511));
        assert!(t(TileKind::Entries, 0, 5).within(5));
        assert!(!t(TileKind::Entries, 0, 6).within(5));
    }

    /// Appending leaf by leaf gives the RFC 6962 root at every size; every
    /// full tile holds the right hashes; resuming from the partial tiles at
    /// any size carries on to the same roots.
    #[test]
    fn tiles_roots_and_resume() {
        let leaves: Vec<Sha256Digest> = (0u32..70_000)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut tree = TiledTree::new();
        let mut full: Vec<(TileId, Vec<Sha256Digest>)> = Vec::new();
        for (i, h) in leaves.iter().enumerate() {
            full.extend(tree.append(*h).unwrap());
            let n = i + 1;
            if [1, 2, 255, 256, 257, 511, 65_535, 65_536, 65_537, 70_000].contains(&n) {
                assert_eq!(tree.root(), root(&leaves[..n]), "root at {n}");
                let partial: Vec<Vec<Sha256Digest>> = {
                    let mut p = vec![Vec::new(); TiledTree::levels(n as u64)];
                    for (id, hashes) in tree.partial_tiles() {
                        let TileKind::Hashes(l) = id.kind else {
                            panic!()
                        };
                        p[l as usize] = hashes.to_vec();
                    }
                    p
                };
                let mut resumed = TiledTree::resume(n as u64, partial.clone()).unwrap();
                assert_eq!(resumed.root(), tree.root());
                let next = leaf_hash(b"next");
                let mut a = tree.clone();
                a.append(next).unwrap();
                resumed.append(next).unwrap();
                assert_eq!(resumed.root(), a.root(), "resume at {n}");
                if let Some(first) = partial.iter().position(|p| !p.is_empty()) {
                    let mut short = partial;
                    short[first].pop();
                    assert!(TiledTree::resume(n as u64, short).is_err());
                }
            }
        }
        // Level-0 tile k is leaf hashes 256k..256k+256; level-1 tile 0 holds
        // the roots of the first 256 level-0 tiles.
        let l0: Vec<_> = full
            .iter()
            .filter(|(id, _)| id.kind == TileKind::Hashes(0))
            .collect();
        assert_eq!(l0.len(), 70_000 / 256);
        assert_eq!(l0[3].1, leaves[768..1024].to_vec());
        let l1 = full
            .iter()
            .find(|(id, _)| id.kind == TileKind::Hashes(1))
            .unwrap();
        assert_eq!(l1.0.index, 0);
        assert_eq!(l1.1[5], root(&leaves[5 * 256..6 * 256]));
        assert_eq!(root(&leaves[..65_536]), perfect_root(&l1.1));
        assert_eq!(parse_tile(&tile_bytes(&l1.1)).unwrap(), l1.1);
        assert!(parse_tile(&[0; 33]).is_err());
    }

    #[test]
    fn proofs_from_tiles_equal_proofs_from_leaves() {
        use crate::merkle::{
            consistency_proof, consistency_proof_with, inclusion_proof, inclusion_proof_with,
        };
        use std::collections::BTreeMap;
        let leaves: Vec<Sha256Digest> = (0u32..70_000)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut tree = TiledTree::new();
        let mut stored: BTreeMap<TileId, Vec<Sha256Digest>> = BTreeMap::new();
        for (i, h) in leaves.iter().enumerate() {
            stored.extend(tree.append(*h).unwrap());
            let n = i as u64 + 1;
            if ![1, 2, 300, 65_536, 65_537, 70_000].contains(&n) {
                continue;
            }
            let mut tiles = stored.clone();
            for (id, hashes) in tree.partial_tiles() {
                tiles.insert(id, hashes.to_vec());
            }
            let mut reads = 0;
            let mut read = |id: &TileId| {
                reads += 1;
                tiles
                    .get(id)
                    .cloned()
                    .ok_or(Error::Truncated { what: "tile" })
            };
            let mut sub = |lo, hi| subtree_hash(n, lo, hi, &mut read);
            for old in [1, 2, 255, 256, 257, 1000, 65_535, 65_536, 69_999, 70_000] {
                if old > n {
                    continue;
                }
                assert_eq!(
                    consistency_proof_with(old, n, &mut sub).unwrap(),
                    consistency_proof(&leaves[..n as usize], old).unwrap(),
                    "consistency {old} -> {n}"
                );
                let index = old - 1;
                assert_eq!(
                    inclusion_proof_with(index, n, &mut sub).unwrap(),
                    inclusion_proof(&leaves[..n as usize], index).unwrap(),
                    "inclusion of {index} in {n}"
                );
            }
            assert_eq!(sub(0, n).unwrap(), root(&leaves[..n as usize]));
            assert!(sub(1, 3).is_err(), "an unaligned perfect range is refused");
            assert!(sub(0, n + 1).is_err());
            assert!(reads > 0);
        }
    }

    #[test]
    fn bundles_cover_exactly_the_range() {
        let all: Vec<_> = bundles(0, 600, 600).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0.path(), "tile/entries/000");
        assert_eq!(all[2].0.path(), "tile/entries/002.p/88");
        assert_eq!(all[2].1, 512..600);
        let some: Vec<_> = bundles(300, 301, 600).collect();
        assert_eq!(some, vec![(all[1].0, 300..301)]);
        // A range ending inside the partial bundle reads it at the size's width.
        let edge: Vec<_> = bundles(520, 530, 600).collect();
        assert_eq!(edge[0].0.width, 88);
        assert_eq!(bundles(5, 5, 600).count(), 0);
        assert_eq!(bundles(0, 900, 256).count(), 1, "capped at the size");
    }
}
