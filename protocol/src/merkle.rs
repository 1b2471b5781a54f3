//! RFC 6962 Merkle tree hashing, inclusion and consistency proofs.
//!
//! Hashes (RFC 6962 §2.1, the same in RFC 9162 §2.1.1):
//!
//! ```text
//!   leaf hash  = SHA-256(0x00 || leaf bytes)
//!   node hash  = SHA-256(0x01 || left || right)
//!   empty tree = SHA-256("")
//! ```
//!
//! A tree of `n > 1` leaves splits at `k`, the largest power of two below
//! `n`: its hash is the node hash of the first `k` leaves' tree and the
//! remaining `n - k` leaves' tree. Everything here works on *leaf hashes*
//! (the log stores leaves; callers hash them with [`leaf_hash`] once).
//!
//! Proofs are generated as RFC 6962 §2.1.1 (`PATH`) and §2.1.2 (`PROOF`)
//! define them and verified with the iterative algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2. Every failure is [`Error::InvalidProof`] with its
//! own reason; a proof longer than [`MAX_PROOF_LEN`] hashes is
//! [`Error::TooLarge`] before any hashing.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::hash::Sha256Digest;

/// Longest proof accepted or produced, in hashes. A tree of at most 2^63
/// leaves (every size a `u64` tree-size line can name in practice) needs at
/// most 64.
pub const MAX_PROOF_LEN: usize = 64;

const LEAF_PREFIX: [u8; 1] = [0x00];
const NODE_PREFIX: [u8; 1] = [0x01];

/// The RFC 6962 leaf hash: SHA-256(0x00 || `leaf`).
pub fn leaf_hash(leaf: &[u8]) -> Sha256Digest {
    Sha256Digest::of_parts(&[&LEAF_PREFIX, leaf])
}

/// The RFC 6962 interior node hash: SHA-256(0x01 || `left` || `right`).
pub fn node_hash(left: &Sha256Digest, right: &Sha256Digest) -> Sha256Digest {
    Sha256Digest::of_parts(&[&NODE_PREFIX, left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Sha256Digest {
    Sha256Digest::of(&[])
}

/// The Merkle tree hash (root) of a tree with these leaf hashes, in order.
///
/// Computed level by level: adjacent nodes are paired and an odd last node
/// moves up unchanged, which builds exactly RFC 6962's left-balanced tree.
pub fn root_from_leaf_hashes(leaf_hashes: &[Sha256Digest]) -> Sha256Digest {
    if leaf_hashes.is_empty() {
        return empty_root();
    }
    let mut level: Vec<Sha256Digest> = leaf_hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(left, right),
                [single] => *single,
                _ => empty_root(), // chunks(2) yields one or two items
            })
            .collect();
    }
    level.first().copied().unwrap_or_else(empty_root)
}

/// Same as [`root_from_leaf_hashes`].
pub fn root(leaf_hashes: &[Sha256Digest]) -> Sha256Digest {
    root_from_leaf_hashes(leaf_hashes)
}

/// Largest power of two strictly below `n` (for `n >= 2`).
fn split_point(n: u64) -> u64 {
    let mut k = 1;
    while k < n - k {
        k <<= 1;
    }
    k
}

fn proof_error(reason: &'static str) -> Error {
    Error::InvalidProof { reason }
}

fn check_proof_len(len: usize) -> Result<()> {
    if len > MAX_PROOF_LEN {
        return Err(Error::TooLarge {
            what: "merkle proof",
            len,
            max: MAX_PROOF_LEN,
        });
    }
    Ok(())
}

/// The inclusion proof (audit path) of leaf `index` in the tree of
/// `leaf_hashes`, nearest sibling first (RFC 6962 §2.1.1 `PATH`).
pub fn inclusion_proof(leaf_hashes: &[Sha256Digest], index: u64) -> Result<Vec<Sha256Digest>> {
    inclusion_proof_with(index, leaf_hashes.len() as u64, &mut in_memory(leaf_hashes))
}

/// The Merkle tree hash of leaves `[lo, hi)` of `leaf_hashes`.
fn in_memory(leaf_hashes: &[Sha256Digest]) -> impl FnMut(u64, u64) -> Result<Sha256Digest> + '_ {
    |lo, hi| {
        let range = usize::try_from(lo)
            .ok()
            .zip(usize::try_from(hi).ok())
            .and_then(|(lo, hi)| leaf_hashes.get(lo..hi))
            .ok_or(proof_error("internal range out of bounds"))?;
        Ok(root_from_leaf_hashes(range))
    }
}

/// [`inclusion_proof`] for a tree of `size` leaves whose subtree hashes
/// come from `subtree(lo, hi)` (the Merkle tree hash of leaves `[lo, hi)`;
/// asked only for ranges RFC 6962 proofs use: `lo` a multiple of the
/// largest power of two not above `hi - lo`), e.g. read from tiles.
pub fn inclusion_proof_with(
    index: u64,
    size: u64,
    subtree: &mut impl FnMut(u64, u64) -> Result<Sha256Digest>,
) -> Result<Vec<Sha256Digest>> {
    if index >= size {
        return Err(proof_error("leaf index out of range"));
    }
    let mut proof = Vec::new();
    path(index, 0, size, subtree, &mut proof)?;
    check_proof_len(proof.len())?;
    Ok(proof)
}

/// RFC 6962 `PATH(m, D[lo:hi])`, appending to `out` (deepest sibling first).
fn path(
    m: u64,
    lo: u64,
    hi: u64,
    subtree: &mut impl FnMut(u64, u64) -> Result<Sha256Digest>,
    out: &mut Vec<Sha256Digest>,
) -> Result<()> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(m, lo, lo + k, subtree, out)?;
        out.push(subtree(lo + k, hi)?);
    } else {
        path(m - k, lo + k, hi, subtree, out)?;
        out.push(subtree(lo, lo + k)?);
    }
    Ok(())
}

/// Verify that `leaf_hash` is leaf `index` of the tree of `size` leaves with
/// root `root`, given its inclusion `proof` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Sha256Digest,
    proof: &[Sha256Digest],
    root: &Sha256Digest,
) -> Result<()> {
    check_proof_len(proof.len())?;
    if index >= size {
        return Err(proof_error("leaf index out of range"));
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(proof_error("inclusion proof too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(proof_error("inclusion proof too short"));
    }
    if r != *root {
        return Err(proof_error("inclusion proof does not lead to the root"));
    }
    Ok(())
}

/// The consistency proof from the tree of the first `old_size` leaves to the
/// tree of all `leaf_hashes` (RFC 6962 §2.1.2 `PROOF`). Empty when
/// `old_size` is 0 or equals the new size.
pub fn consistency_proof(leaf_hashes: &[Sha256Digest], old_size: u64) -> Result<Vec<Sha256Digest>> {
    consistency_proof_with(
        old_size,
        leaf_hashes.len() as u64,
        &mut in_memory(leaf_hashes),
    )
}

/// [`consistency_proof`] from `old_size` to `new_size` leaves, with subtree
/// hashes from `subtree` as in [`inclusion_proof_with`].
pub fn consistency_proof_with(
    old_size: u64,
    new_size: u64,
    subtree: &mut impl FnMut(u64, u64) -> Result<Sha256Digest>,
) -> Result<Vec<Sha256Digest>> {
    if old_size > new_size {
        return Err(proof_error("old size exceeds new size"));
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    subproof(old_size, 0, new_size, true, subtree, &mut proof)?;
    check_proof_len(proof.len())?;
    Ok(proof)
}

/// RFC 6962 `SUBPROOF(m, D[lo:hi], b)`, appending to `out`.
fn subproof(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    subtree: &mut impl FnMut(u64, u64) -> Result<Sha256Digest>,
    out: &mut Vec<Sha256Digest>,
) -> Result<()> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(subtree(lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, subtree, out)?;
        out.push(subtree(lo + k, hi)?);
    } else {
        subproof(m - k, lo + k, hi, false, subtree, out)?;
        out.push(subtree(lo, lo + k)?);
    }
    Ok(())
}

/// Verify that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`
/// (RFC 9162 §2.1.4.2).
///
/// Edge cases: equal sizes need an empty proof and equal roots; an old size
/// of 0 needs an empty proof and `old_root` equal to the empty-tree hash.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Sha256Digest,
    new_root: &Sha256Digest,
    proof: &[Sha256Digest],
) -> Result<()> {
    check_proof_len(proof.len())?;
    if old_size > new_size {
        return Err(proof_error("old size exceeds new size"));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(proof_error(
                "consistency proof between equal sizes must be empty",
            ));
        }
        if old_root != new_root {
            return Err(proof_error("roots of equal-size trees differ"));
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(proof_error(
                "consistency proof from the empty tree must be empty",
            ));
        }
        if *old_root != empty_root() {
            return Err(proof_error("old root is not the empty-tree hash"));
        }
        return Ok(());
    }
    let (first, rest) = proof
        .split_first()
        .ok_or(proof_error("consistency proof is empty"))?;
    // When old_size is a power of two the old root is itself a node of the
    // new tree, and the proof starts one level up (RFC 9162 step 2).
    let (seed, path) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = *seed;
    let mut sr = *seed;
    for c in path {
        if sn == 0 {
            return Err(proof_error("consistency proof too long"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(proof_error("consistency proof too short"));
    }
    if fr != *old_root {
        return Err(proof_error(
            "consistency proof does not lead to the old root",
        ));
    }
    if sr != *new_root {
        return Err(proof_error(
            "consistency proof does not lead to the new root",
        ));
    }
    Ok(())
}

/// An append-only Merkle tree kept as its "peaks" (the roots of its perfect
/// subtrees, largest first): O(log n) memory, O(1) amortised hashing per
/// appended leaf, and the root of the whole tree on demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    /// Roots of the perfect subtrees, one per set bit of `size`, from the
    /// highest bit down.
    peaks: Vec<Sha256Digest>,
}

impl CompactTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of `size` leaves from its peaks (the roots of its perfect
    /// subtrees, largest first: one per set bit of `size`).
    pub fn from_peaks(size: u64, peaks: Vec<Sha256Digest>) -> Result<Self> {
        if peaks.len() != size.count_ones() as usize {
            return Err(Error::InvalidLength {
                what: "compact tree peaks",
                expected: size.count_ones() as usize,
                found: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// The roots of its perfect subtrees, largest first (what
    /// [`CompactTree::from_peaks`] takes).
    pub fn peaks(&self) -> &[Sha256Digest] {
        &self.peaks
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash (see [`leaf_hash`]). Refuses to grow past
    /// `u64::MAX` leaves.
    pub fn append(&mut self, leaf_hash: Sha256Digest) -> Result<()> {
        let new_size = self.size.checked_add(1).ok_or(Error::InvalidValue {
            what: "merkle tree size",
            reason: "would exceed 2^64 - 1 leaves",
        })?;
        let mut node = leaf_hash;
        // Each trailing one bit of the old size is a peak of equal height
        // that merges with the new node.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            let left = self
                .peaks
                .pop()
                .ok_or(proof_error("compact tree state corrupt"))?;
            node = node_hash(&left, &node);
            merges -= 1;
        }
        self.peaks.push(node);
        self.size = new_size;
        Ok(())
    }

    /// The root of the tree so far (the empty-tree hash when empty).
    pub fn root(&self) -> Sha256Digest {
        let mut iter = self.peaks.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Sha256Digest {
        Sha256Digest::from_hex(s).unwrap()
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Test data from transparency-dev/merkle, file proof/verify_test.go
    // (the `leaves`, `roots`, `inclusionProofs` and `consistencyProofs`
    // tables; the same tree as certificate-transparency-go and Trillian use).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    // roots[i] is the root of the tree of the first i + 1 leaves.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    // (leaf number, 1-based as in the source table; tree size; proof)
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            3,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            2,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    // (old size, new size, proof)
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn vector_leaf_hashes() -> Vec<Sha256Digest> {
        LEAVES.iter().map(|l| leaf_hash(&hex_bytes(l))).collect()
    }

    fn digests(list: &[&str]) -> Vec<Sha256Digest> {
        list.iter().map(|s| h(s)).collect()
    }

    fn reason(r: Result<()>) -> &'static str {
        match r {
            Err(Error::InvalidProof { reason }) => reason,
            other => panic!("expected InvalidProof, got {other:?}"),
        }
    }

    #[test]
    fn rfc6962_hasher_vectors() {
        // transparency-dev/merkle rfc6962/rfc6962_test.go
        assert_eq!(
            empty_root(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        assert_eq!(root_from_leaf_hashes(&[]), empty_root());
    }

    #[test]
    fn vector_roots() {
        let leaves = vector_leaf_hashes();
        for (i, want) in ROOTS.iter().enumerate() {
            assert_eq!(
                root_from_leaf_hashes(&leaves[..=i]),
                h(want),
                "size {}",
                i + 1
            );
            assert_eq!(root(&leaves[..=i]), h(want));
        }
    }

    #[test]
    fn vector_inclusion_proofs_generate_and_verify() {
        let leaves = vector_leaf_hashes();
        for (leaf, size, proof) in INCLUSION {
            let index = leaf - 1;
            let tree = &leaves[..size as usize];
            let want = digests(proof);
            assert_eq!(inclusion_proof(tree, index).unwrap(), want, "{leaf}/{size}");
            let root = h(ROOTS[size as usize - 1]);
            verify_inclusion(index, size, &leaves[index as usize], &want, &root).unwrap();
        }
    }

    #[test]
    fn vector_consistency_proofs_generate_and_verify() {
        let leaves = vector_leaf_hashes();
        for (old, new, proof) in CONSISTENCY {
            let want = digests(proof);
            assert_eq!(
                consistency_proof(&leaves[..new as usize], old).unwrap(),
                want,
                "{old} -> {new}"
            );
            let old_root = h(ROOTS[old as usize - 1]);
            let new_root = h(ROOTS[new as usize - 1]);
            verify_consistency(old, new, &old_root, &new_root, &want).unwrap();
        }
    }

    #[test]
    fn inclusion_refusals() {
        let leaves = vector_leaf_hashes();
        let (leaf, size, proof) = INCLUSION[2];
        let index = leaf - 1;
        let proof = digests(proof);
        let root = h(ROOTS[size as usize - 1]);
        let lh = leaves[index as usize];
        assert_eq!(
            reason(verify_inclusion(size, size, &lh, &proof, &root)),
            "leaf index out of range"
        );
        assert_eq!(
            reason(verify_inclusion(0, 0, &lh, &[], &empty_root())),
            "leaf index out of range"
        );
        assert_eq!(
            reason(verify_inclusion(index, size, &lh, &proof[..2], &root)),
            "inclusion proof too short"
        );
        let mut long = proof.clone();
        long.push(root);
        assert_eq!(
            reason(verify_inclusion(index, size, &lh, &long, &root)),
            "inclusion proof too long"
        );
        assert_eq!(
            reason(verify_inclusion(index, size, &leaves[0], &proof, &root)),
            "inclusion proof does not lead to the root"
        );
        assert_eq!(
            reason(verify_inclusion(index + 1, size, &lh, &proof, &root)),
            "inclusion proof does not lead to the root"
        );
        assert_eq!(
            reason(verify_inclusion(index, size * 2, &lh, &proof, &root)),
            "inclusion proof too short"
        );
        assert!(matches!(
            verify_inclusion(index, size, &lh, &[root; MAX_PROOF_LEN + 1], &root),
            Err(Error::TooLarge {
                len: 65,
                max: 64,
                ..
            })
        ));
        assert!(matches!(
            inclusion_proof(&leaves, 8),
            Err(Error::InvalidProof {
                reason: "leaf index out of range"
            })
        ));
    }

    #[test]
    fn consistency_refusals() {
        let leaves = vector_leaf_hashes();
        let (old, new, proof) = CONSISTENCY[2];
        let proof = digests(proof);
        let r_old = h(ROOTS[old as usize - 1]);
        let r_new = h(ROOTS[new as usize - 1]);
        assert_eq!(
            reason(verify_consistency(new, old, &r_new, &r_old, &proof)),
            "old size exceeds new size"
        );
        assert_eq!(
            reason(verify_consistency(old, new, &r_old, &r_new, &[])),
            "consistency proof is empty"
        );
        assert_eq!(
            reason(verify_consistency(old, new, &r_old, &r_new, &proof[..2])),
            "consistency proof too short"
        );
        let mut long = proof.clone();
        long.push(r_new);
        assert_eq!(
            reason(verify_consistency(old, new, &r_old, &r_new, &long)),
            "consistency proof too long"
        );
        assert_eq!(
            reason(verify_consistency(old, new, &r_new, &r_new, &proof)),
            "consistency proof does not lead to the old root"
        );
        assert_eq!(
            reason(verify_consistency(old, new, &r_old, &r_old, &proof)),
            "consistency proof does not lead to the new root"
        );
        assert_eq!(
            reason(verify_consistency(new, new, &r_new, &r_new, &proof)),
            "consistency proof between equal sizes must be empty"
        );
        assert_eq!(
            reason(verify_consistency(new, new, &r_old, &r_new, &[])),
            "roots of equal-size trees differ"
        );
        assert_eq!(
            reason(verify_consistency(0, new, &empty_root(), &r_new, &proof)),
            "consistency proof from the empty tree must be empty"
        );
        assert_eq!(
            reason(verify_consistency(0, new, &r_old, &r_new, &[])),
            "old root is not the empty-tree hash"
        );
        verify_consistency(0, new, &empty_root(), &r_new, &[]).unwrap();
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).unwrap();
        assert!(matches!(
            consistency_proof(&leaves, 9),
            Err(Error::InvalidProof {
                reason: "old size exceeds new size"
            })
        ));
        assert!(consistency_proof(&leaves, 0).unwrap().is_empty());
        assert!(consistency_proof(&leaves, 8).unwrap().is_empty());
        assert!(matches!(
            verify_consistency(old, new, &r_old, &r_new, &[r_old; MAX_PROOF_LEN + 1]),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn compact_tree_matches_vectors() {
        let mut tree = CompactTree::new();
        assert_eq!(tree.root(), empty_root());
        for (i, leaf) in vector_leaf_hashes().into_iter().enumerate() {
            tree.append(leaf).unwrap();
            assert_eq!(tree.size(), i as u64 + 1);
            assert_eq!(tree.root(), h(ROOTS[i]));
        }
    }

    fn arb_leaves(max: usize) -> impl Strategy<Value = Vec<Sha256Digest>> {
        proptest::collection::vec(any::<[u8; 8]>(), 1..max)
            .prop_map(|v| v.iter().map(|l| leaf_hash(l)).collect())
    }

    /// The textbook recursive RFC 6962 MTH, as a reference for the
    /// level-by-level implementation.
    fn reference_root(leaves: &[Sha256Digest]) -> Sha256Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    proptest! {
        #[test]
        fn roots_agree(leaves in arb_leaves(130)) {
            let want = reference_root(&leaves);
            prop_assert_eq!(root_from_leaf_hashes(&leaves), want);
            let mut tree = CompactTree::new();
            for l in &leaves {
                tree.append(*l).unwrap();
            }
            prop_assert_eq!(tree.root(), want);
        }

        #[test]
        fn inclusion_proofs_verify(leaves in arb_leaves(130), pick in any::<u64>()) {
            let size = leaves.len() as u64;
            let index = pick % size;
            let root = root_from_leaf_hashes(&leaves);
            let proof = inclusion_proof(&leaves, index).unwrap();
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
        }

        #[test]
        fn inclusion_proof_byte_flip_fails(
            leaves in arb_leaves(130),
            pick in any::<u64>(),
            which in any::<usize>(),
            byte in 0usize..32,
            bit in 0u8..8,
        ) {
            let size = leaves.len() as u64;
            let index = pick % size;
            let root = root_from_leaf_hashes(&leaves);
            let mut proof = inclusion_proof(&leaves, index).unwrap();
            prop_assume!(!proof.is_empty());
            let n = proof.len();
            proof[which % n].0[byte] ^= 1 << bit;
            prop_assert!(
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).is_err()
            );
        }

        #[test]
        fn consistency_proofs_verify(leaves in arb_leaves(130), pick in any::<u64>()) {
            let new_size = leaves.len() as u64;
            let old_size = pick % (new_size + 1);
            let old_root = root_from_leaf_hashes(&leaves[..old_size as usize]);
            let new_root = root_from_leaf_hashes(&leaves);
            let proof = consistency_proof(&leaves, old_size).unwrap();
            verify_consistency(old_size, new_size, &old_root, &new_root, &proof).unwrap();
        }

        #[test]
        fn consistency_proof_byte_flip_fails(
            leaves in arb_leaves(130),
            pick in any::<u64>(),
            which in any::<usize>(),
            byte in 0usize..32,
            bit in 0u8..8,
        ) {
            let new_size = leaves.len() as u64;
            let old_size = pick % (new_size + 1);
            let old_root = root_from_leaf_hashes(&leaves[..old_size as usize]);
            let new_root = root_from_leaf_hashes(&leaves);
            let mut proof = consistency_proof(&leaves, old_size).unwrap();
            prop_assume!(!proof.is_empty());
            let n = proof.len();
            proof[which % n].0[byte] ^= 1 << bit;
            prop_assert!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &proof).is_err()
            );
        }
    }
}
