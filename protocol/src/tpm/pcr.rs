//! PCR selections (TPMS_PCR_SELECTION, TPML_PCR_SELECTION; Part 2 §10.6.2,
//! §10.9.7), PCR values and the digest a quote or a PolicyPCR takes over them.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::types::{Digest, HashAlg};
use crate::error::{Error, Result};
use crate::ids::PcrIndex;

/// Largest `sizeofSelect`: 3 bytes select the 24 PCRs of a PC Client TPM
/// (PCR_SELECT_MAX).
pub const PCR_SELECT_MAX: usize = 3;

/// Most banks one TPML_PCR_SELECTION may hold here (HASH_COUNT of any TPM
/// is far below).
pub const MAX_PCR_BANKS: usize = 16;

/// One bank's selection: a hash algorithm and a bitmap of PCR indices
/// (bit `i % 8` of byte `i / 8` selects PCR `i`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcrSelection {
    hash: HashAlg,
    size_of_select: u8,
    select: [u8; PCR_SELECT_MAX],
}

impl PcrSelection {
    /// A selection of `pcrs` in the `hash` bank, with a 3-byte bitmap (as
    /// TPMs and tpm2-tools write it).
    pub fn new(hash: HashAlg, pcrs: impl IntoIterator<Item = PcrIndex>) -> Self {
        let mut select = [0u8; PCR_SELECT_MAX];
        for p in pcrs {
            let i = usize::from(p.get());
            if let Some(b) = select.get_mut(i / 8) {
                *b |= 1 << (i % 8);
            }
        }
        Self {
            hash,
            size_of_select: 3,
            select,
        }
    }

    /// The bank.
    pub fn hash(&self) -> HashAlg {
        self.hash
    }

    /// The bitmap's length in bytes as marshalled (0 to 3).
    pub fn size_of_select(&self) -> u8 {
        self.size_of_select
    }

    /// Whether PCR `index` is selected.
    pub fn contains(&self, index: PcrIndex) -> bool {
        let i = usize::from(index.get());
        self.select
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// The selected PCRs in ascending order (the order their values are
    /// concatenated in).
    pub fn pcrs(&self) -> impl Iterator<Item = PcrIndex> + '_ {
        (0..=PcrIndex::MAX)
            .filter_map(|i| PcrIndex::new(i).ok())
            .filter(|p| self.contains(*p))
    }

    /// The selected PCRs as a set.
    pub fn to_set(&self) -> BTreeSet<PcrIndex> {
        self.pcrs().collect()
    }

    /// Whether no PCR is selected.
    pub fn is_empty(&self) -> bool {
        self.select.iter().all(|b| *b == 0)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let hash = HashAlg::read(r, "TPMS_PCR_SELECTION hash")?;
        let size_of_select = r.u8("TPMS_PCR_SELECTION sizeofSelect")?;
        let len = usize::from(size_of_select);
        if len > PCR_SELECT_MAX {
            return Err(Error::TooLarge {
                what: "TPMS_PCR_SELECTION sizeofSelect",
                len,
                max: PCR_SELECT_MAX,
            });
        }
        let bits = r.take(len, "TPMS_PCR_SELECTION pcrSelect")?;
        let mut select = [0u8; PCR_SELECT_MAX];
        for (dst, src) in select.iter_mut().zip(bits) {
            *dst = *src;
        }
        Ok(Self {
            hash,
            size_of_select,
            select,
        })
    }

    fn write(&self, w: &mut Writer) {
        self.hash.write(w);
        w.u8(self.size_of_select);
        w.bytes(
            self.select
                .get(..usize::from(self.size_of_select))
                .unwrap_or(&self.select),
        );
    }
}

/// A TPML_PCR_SELECTION: banks in order, each at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PcrSelectionList(Vec<PcrSelection>);

impl PcrSelectionList {
    /// Checked: at most [`MAX_PCR_BANKS`] selections, no bank twice.
    pub fn new(selections: Vec<PcrSelection>) -> Result<Self> {
        if selections.len() > MAX_PCR_BANKS {
            return Err(Error::TooLarge {
                what: "TPML_PCR_SELECTION",
                len: selections.len(),
                max: MAX_PCR_BANKS,
            });
        }
        let mut seen = BTreeSet::new();
        for s in &selections {
            if !seen.insert(s.hash) {
                return Err(Error::InvalidValue {
                    what: "TPML_PCR_SELECTION",
                    reason: "a bank is selected twice",
                });
            }
        }
        Ok(Self(selections))
    }

    /// One bank's selection.
    pub fn single(hash: HashAlg, pcrs: impl IntoIterator<Item = PcrIndex>) -> Self {
        Self(alloc::vec![PcrSelection::new(hash, pcrs)])
    }

    /// From a set of PCRs per bank, banks in algorithm-identifier order.
    pub fn from_banks(banks: &BTreeMap<HashAlg, BTreeSet<PcrIndex>>) -> Result<Self> {
        Self::new(
            banks
                .iter()
                .map(|(h, pcrs)| PcrSelection::new(*h, pcrs.iter().copied()))
                .collect(),
        )
    }

    /// The set of PCRs per bank (empty selections included).
    pub fn banks(&self) -> BTreeMap<HashAlg, BTreeSet<PcrIndex>> {
        self.0.iter().map(|s| (s.hash, s.to_set())).collect()
    }

    /// The PCRs selected in `hash`'s bank (empty if the bank is absent).
    pub fn bank(&self, hash: HashAlg) -> BTreeSet<PcrIndex> {
        self.0
            .iter()
            .find(|s| s.hash == hash)
            .map(PcrSelection::to_set)
            .unwrap_or_default()
    }

    /// The selections, in order.
    pub fn selections(&self) -> &[PcrSelection] {
        &self.0
    }

    /// Every selected (bank, PCR) in the order a TPM concatenates their
    /// values: selections in list order, PCRs ascending within each.
    pub fn selected(&self) -> impl Iterator<Item = (HashAlg, PcrIndex)> + '_ {
        self.0
            .iter()
            .flat_map(|s| s.pcrs().map(move |p| (s.hash, p)))
    }

    /// The concatenation of the selected PCRs' values, in selection order.
    pub fn concat_values(&self, values: &PcrValues) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (hash, index) in self.selected() {
            let v = values.get(hash, index).ok_or(Error::TpmMissingPcrValue {
                bank: hash.id(),
                index: index.get(),
            })?;
            out.extend_from_slice(v.as_bytes());
        }
        Ok(out)
    }

    /// The PCR digest a quote or PolicyPCR takes: `H_hash(value_1 || ... ||
    /// value_n)` over the selected values in selection order.
    pub fn pcr_digest(&self, hash: HashAlg, values: &PcrValues) -> Result<Digest> {
        hash.hash(&[&self.concat_values(values)?])
    }

    /// Parse a marshalled TPML_PCR_SELECTION; refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPML_PCR_SELECTION")?;
        Ok(v)
    }

    /// The marshalled TPML_PCR_SELECTION.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let count = r.u32("TPML_PCR_SELECTION count")?;
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        if n > MAX_PCR_BANKS {
            return Err(Error::TooLarge {
                what: "TPML_PCR_SELECTION",
                len: n,
                max: MAX_PCR_BANKS,
            });
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(PcrSelection::read(r)?);
        }
        Self::new(v)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        // At most MAX_PCR_BANKS selections: the count fits.
        w.u32(u32::try_from(self.0.len()).unwrap_or(u32::MAX));
        for s in &self.0 {
            s.write(w);
        }
    }
}

/// PCR values by bank and index, each as long as its bank's digest.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PcrValues(BTreeMap<(HashAlg, PcrIndex), Digest>);

impl PcrValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record PCR `index` of bank `hash`; the value must have the bank's
    /// digest size. Replaces an earlier value.
    pub fn insert(&mut self, hash: HashAlg, index: PcrIndex, value: &[u8]) -> Result<()> {
        if value.len() != hash.digest_size() {
            return Err(Error::InvalidLength {
                what: "PCR value",
                expected: hash.digest_size(),
                found: value.len(),
            });
        }
        self.0.insert((hash, index), Digest::new(value)?);
        Ok(())
    }

    /// The value of PCR `index` in bank `hash`.
    pub fn get(&self, hash: HashAlg, index: PcrIndex) -> Option<&Digest> {
        self.0.get(&(hash, index))
    }

    /// Values given back to back in selection order (what `tpm2_quote -o
    /// FILE -F values` and `tpm2_pcrread -o FILE` write); refuses missing or
    /// extra bytes.
    pub fn from_selection_order(selection: &PcrSelectionList, bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let mut v = Self::new();
        for (hash, index) in selection.selected() {
            v.insert(hash, index, r.take(hash.digest_size(), "PCR values")?)?;
        }
        r.finish("PCR values")?;
        Ok(v)
    }

    /// Every value, by bank and index.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, PcrIndex, &Digest)> + '_ {
        self.0.iter().map(|((h, i), d)| (*h, *i, d))
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Size of tpm2-tools' in-memory TPML_PCR_SELECTION: a count and 16
/// TPMS_PCR_SELECTIONs of 8 bytes (hash, sizeofSelect, 4-byte bitmap, pad).
const TOOLS_SELECTION_LEN: usize = 4 + 16 * 8;
/// Size of tpm2-tools' in-memory TPML_DIGEST: a count and 8 TPM2B_DIGESTs
/// of 66 bytes (size, 64-byte buffer).
const TOOLS_DIGESTS_LEN: usize = 4 + 8 * 66;
/// Most TPML_DIGEST lists in a tpm2-tools PCR file (16 banks × 24 PCRs / 8).
const TOOLS_MAX_LISTS: usize = 48;

fn le_u16(bytes: &[u8], at: usize, what: &'static str) -> Result<u16> {
    bytes
        .get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(Error::Truncated { what })
}

fn le_u32(bytes: &[u8], at: usize, what: &'static str) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(Error::Truncated { what })
}

impl PcrValues {
    /// Parse the PCR file that `tpm2_quote -o FILE` and `tpm2_pcrread -o
    /// FILE` write by default (`-F serialized`): tpm2-tools' C structures
    /// as they lie in a little-endian machine's memory. A TPML_PCR_SELECTION
    /// (132 bytes), a `u32` count of TPML_DIGEST lists, then the lists (532
    /// bytes each), whose values follow the selection's order. Returns the
    /// selection and the values; refuses a length, count or digest size that
    /// does not fit, and values missing or left over.
    pub fn from_tpm2_tools_serialized(bytes: &[u8]) -> Result<(PcrSelectionList, Self)> {
        const W: &str = "tpm2-tools PCR file";
        let banks = le_u32(bytes, 0, W)?;
        let banks = usize::try_from(banks).unwrap_or(usize::MAX);
        if banks > 16 {
            return Err(Error::TooLarge {
                what: "tpm2-tools PCR file banks",
                len: banks,
                max: 16,
            });
        }
        let mut selections = Vec::with_capacity(banks);
        for i in 0..banks {
            let at = 4 + 8 * i;
            let hash = HashAlg::from_id(le_u16(bytes, at, W)?, W)?;
            let size = bytes
                .get(at + 2)
                .copied()
                .ok_or(Error::Truncated { what: W })?;
            if size > 3 {
                return Err(Error::InvalidValue {
                    what: W,
                    reason: "a PCR bitmap longer than 3 bytes",
                });
            }
            let bitmap = bytes
                .get(at + 3..at + 3 + usize::from(size))
                .ok_or(Error::Truncated { what: W })?;
            let pcrs = (0..8 * u16::from(size)).filter_map(|i| {
                let byte = bitmap.get(usize::from(i / 8))?;
                (byte & (1 << (i % 8)) != 0)
                    .then(|| PcrIndex::new(u8::try_from(i).ok()?).ok())
                    .flatten()
            });
            selections.push(PcrSelection::new(hash, pcrs));
        }
        let selection = PcrSelectionList::new(selections)?;
        let lists = le_u32(bytes, TOOLS_SELECTION_LEN, W)?;
        let lists = usize::try_from(lists).unwrap_or(usize::MAX);
        if lists > TOOLS_MAX_LISTS {
            return Err(Error::TooLarge {
                what: "tpm2-tools PCR file digest lists",
                len: lists,
                max: TOOLS_MAX_LISTS,
            });
        }
        let expected = TOOLS_SELECTION_LEN + 4 + lists * TOOLS_DIGESTS_LEN;
        if bytes.len() != expected {
            return Err(Error::InvalidLength {
                what: W,
                expected,
                found: bytes.len(),
            });
        }
        let mut digests: Vec<&[u8]> = Vec::new();
        for l in 0..lists {
            let at = TOOLS_SELECTION_LEN + 4 + l * TOOLS_DIGESTS_LEN;
            let count = le_u32(bytes, at, W)?;
            if count > 8 {
                return Err(Error::TooLarge {
                    what: "tpm2-tools PCR file digests in a list",
                    len: usize::try_from(count).unwrap_or(usize::MAX),
                    max: 8,
                });
            }
            for d in 0..count as usize {
                let at = at + 4 + d * 66;
                let size = usize::from(le_u16(bytes, at, W)?);
                if size > 64 {
                    return Err(Error::InvalidValue {
                        what: W,
                        reason: "a digest longer than 64 bytes",
                    });
                }
                digests.push(
                    bytes
                        .get(at + 2..at + 2 + size)
                        .ok_or(Error::Truncated { what: W })?,
                );
            }
        }
        let selected: Vec<(HashAlg, PcrIndex)> = selection.selected().collect();
        if selected.len() != digests.len() {
            return Err(Error::InvalidLength {
                what: "tpm2-tools PCR file values",
                expected: selected.len(),
                found: digests.len(),
            });
        }
        let mut values = Self::new();
        for ((hash, index), d) in selected.into_iter().zip(digests) {
            values.insert(hash, index, d)?;
        }
        Ok((selection, values))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::encoding::hex_encode;
    use proptest::prelude::*;

    fn idx(i: u8) -> PcrIndex {
        PcrIndex::new(i).unwrap()
    }

    #[test]
    fn bitmap_matches_tpm2_tools() {
        // tpm2_print of a quote over sha256:0,2,4,7,9,12,13,14 shows 957200.
        let s = PcrSelectionList::single(HashAlg::Sha256, [0, 2, 4, 7, 9, 12, 13, 14].map(idx));
        assert_eq!(hex_encode(&s.to_bytes()), "00000001000b03957200");
        assert_eq!(PcrSelectionList::from_bytes(&s.to_bytes()).unwrap(), s);
    }

    #[test]
    fn refusals() {
        // sizeofSelect 4
        assert!(matches!(
            PcrSelectionList::from_bytes(&[0, 0, 0, 1, 0, 0x0b, 4, 1, 2, 3, 4]),
            Err(Error::TooLarge { .. })
        ));
        // duplicate bank
        assert!(matches!(
            PcrSelectionList::from_bytes(&[0, 0, 0, 2, 0, 0x0b, 3, 1, 0, 0, 0, 0x0b, 3, 2, 0, 0]),
            Err(Error::InvalidValue { .. })
        ));
        // count beyond the bound
        assert!(matches!(
            PcrSelectionList::from_bytes(&[0xff, 0xff, 0xff, 0xff]),
            Err(Error::TooLarge { .. })
        ));
        // trailing
        assert!(matches!(
            PcrSelectionList::from_bytes(&[0, 0, 0, 0, 0]),
            Err(Error::TrailingBytes { .. })
        ));
        let mut v = PcrValues::new();
        assert!(matches!(
            v.insert(HashAlg::Sha256, idx(0), &[0u8; 20]),
            Err(Error::InvalidLength { .. })
        ));
        let sel = PcrSelectionList::single(HashAlg::Sha256, [idx(1)]);
        assert!(matches!(
            sel.pcr_digest(HashAlg::Sha256, &v),
            Err(Error::TpmMissingPcrValue {
                bank: 0x000b,
                index: 1
            })
        ));
    }

    fn arb_selection() -> impl Strategy<Value = PcrSelection> {
        (
            prop::sample::select(super::super::types::HASH_ALGS.to_vec()),
            0u8..=3,
            any::<[u8; 3]>(),
        )
            .prop_map(|(hash, size, mut select)| {
                for (i, b) in select.iter_mut().enumerate() {
                    if i >= usize::from(size) {
                        *b = 0;
                    }
                }
                PcrSelection {
                    hash,
                    size_of_select: size,
                    select,
                }
            })
    }

    pub(crate) fn arb_list() -> impl Strategy<Value = PcrSelectionList> {
        prop::collection::vec(arb_selection(), 0..4).prop_map(|mut v| {
            let mut seen = BTreeSet::new();
            v.retain(|s| seen.insert(s.hash));
            PcrSelectionList::new(v).unwrap()
        })
    }

    proptest! {
        #[test]
        fn list_round_trips(list in arb_list()) {
            let bytes = list.to_bytes();
            prop_assert_eq!(PcrSelectionList::from_bytes(&bytes).unwrap(), list.clone());
            // banks <-> sets: the same PCRs come back per bank.
            let again = PcrSelectionList::from_banks(&list.banks()).unwrap();
            prop_assert_eq!(again.banks(), list.banks());
        }

        #[test]
        fn set_round_trips(pcrs in prop::collection::btree_set(0u8..=23, 0..24)) {
            let set: BTreeSet<PcrIndex> = pcrs.iter().map(|i| idx(*i)).collect();
            let s = PcrSelection::new(HashAlg::Sha256, set.iter().copied());
            prop_assert_eq!(s.to_set(), set);
        }

        #[test]
        fn values_round_trip_in_selection_order(list in arb_list(), seed in any::<u8>()) {
            let mut bytes = Vec::new();
            for (n, (h, _)) in list.selected().enumerate() {
                bytes.extend((0..h.digest_size()).map(|i| seed.wrapping_add((n + i) as u8)));
            }
            let values = PcrValues::from_selection_order(&list, &bytes).unwrap();
            prop_assert_eq!(list.concat_values(&values).unwrap(), bytes);
        }
    }
}
