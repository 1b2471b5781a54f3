//! Reference scanning, as Nix does it after a build: search the NAR of an
//! output for the 32-character hash parts of candidate store paths (the
//! inputs' closure and the outputs). A hash part is found wherever those 32
//! bytes occur in the archive: in contents, file names or symlink targets.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::NarSink;
use crate::error::Result;

/// Length of a store path's hash part.
pub const HASH_PART_LEN: usize = 32;

/// Whether `b` is in Nix's base-32 alphabet (no e, o, t, u).
fn is_nix32(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'd' | b'f'..=b'n' | b'p'..=b's' | b'v'..=b'z')
}

/// A sink that records which candidate hash parts occur in the stream.
#[derive(Clone, Debug, Default)]
pub struct RefScanner {
    candidates: BTreeSet<[u8; HASH_PART_LEN]>,
    found: BTreeSet<[u8; HASH_PART_LEN]>,
    /// The last bytes of the previous chunk (a hash part may straddle two).
    tail: Vec<u8>,
}

impl RefScanner {
    /// Scan for these hash parts.
    pub fn new(candidates: impl IntoIterator<Item = [u8; HASH_PART_LEN]>) -> Self {
        Self {
            candidates: candidates.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The hash parts seen.
    pub fn finish(self) -> BTreeSet<[u8; HASH_PART_LEN]> {
        self.found
    }

    fn search(&mut self, s: &[u8]) {
        let mut i = 0usize;
        while i + HASH_PART_LEN <= s.len() {
            // Check the window right to left; on a non-nix32 byte jump past it.
            let mut bad = None;
            for j in (0..HASH_PART_LEN).rev() {
                let b = s.get(i + j).copied().unwrap_or(0);
                if !is_nix32(b) {
                    bad = Some(j);
                    break;
                }
            }
            if let Some(j) = bad {
                i += j + 1;
                continue;
            }
            if let Some(window) = s.get(i..i + HASH_PART_LEN) {
                let mut key = [0u8; HASH_PART_LEN];
                key.copy_from_slice(window);
                if self.candidates.remove(&key) {
                    self.found.insert(key);
                }
            }
            i += 1;
        }
    }
}

impl NarSink for RefScanner {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if self.candidates.is_empty() {
            return Ok(());
        }
        // Windows that straddle the previous chunk and this one.
        let head = bytes
            .get(..bytes.len().min(HASH_PART_LEN - 1))
            .unwrap_or_default();
        let mut seam = core::mem::take(&mut self.tail);
        seam.extend_from_slice(head);
        self.search(&seam);
        self.search(bytes);
        // Keep the last 31 bytes seen (of the seam, if this chunk is short).
        let keep = HASH_PART_LEN - 1;
        self.tail = if bytes.len() >= keep {
            bytes.get(bytes.len() - keep..).unwrap_or_default().to_vec()
        } else {
            // The seam is the old tail and all of this chunk.
            let start = seam.len().saturating_sub(keep);
            seam.split_off(start)
        };
        Ok(())
    }
}

/// Feed one stream into two sinks (e.g. hash and scan in one pass).
pub struct Tee<A, B>(pub A, pub B);

impl<A: NarSink, B: NarSink> NarSink for Tee<A, B> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.put(bytes)?;
        self.1.put(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";
    const B: &[u8; 32] = b"zyxwvsrqpnmlkjihgfdcba9876543210";
    const C: &[u8; 32] = b"11111111111111111111111111111111";

    fn scan(chunks: &[&[u8]]) -> BTreeSet<[u8; 32]> {
        let mut s = RefScanner::new([*A, *B, *C]);
        for c in chunks {
            s.put(c).unwrap();
        }
        s.finish()
    }

    #[test]
    fn alphabet_is_nix32() {
        for b in 0..=255u8 {
            assert_eq!(
                is_nix32(b),
                crate::encoding::NIX32_ALPHABET.contains(&b),
                "{b}"
            );
        }
    }

    #[test]
    fn finds_hash_parts_anywhere_and_across_chunks() {
        let mut text = b"/nix/store/".to_vec();
        text.extend_from_slice(A);
        text.extend_from_slice(b"-foo e ");
        text.extend_from_slice(B);
        // Whole, and cut at every position, and fed byte by byte.
        let want: BTreeSet<[u8; 32]> = [*A, *B].into_iter().collect();
        assert_eq!(scan(&[&text]), want);
        for cut in 0..text.len() {
            assert_eq!(scan(&[&text[..cut], &text[cut..]]), want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(scan(&bytes), want);
        // A hash part with one byte outside the alphabet is not a match, and
        // one embedded in a longer nix32 run still is (Nix does the same).
        let mut broken = *C;
        broken[10] = b'e';
        assert!(scan(&[&broken]).is_empty());
        let mut longer = b"0000".to_vec();
        longer.extend_from_slice(C);
        longer.extend_from_slice(b"0000");
        assert_eq!(scan(&[&longer]), [*C].into_iter().collect());
    }
}
