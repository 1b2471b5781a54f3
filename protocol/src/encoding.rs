//! Text encodings: Nix base32 ("nix32"), lowercase hex, standard base64.
//!
//! nix32 is Nix's own base-32: alphabet `0123456789abcdfghijklmnpqrsvwxyz`
//! (no `e o u t`), and the digits are emitted from the most significant
//! 5-bit group of the little-endian bit string first, so it is *not* RFC 4648
//! base32. The length for `n` bytes is `ceil(n * 8 / 5)`.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;

use crate::error::{Error, Result};

/// The nix32 alphabet.
pub const NIX32_ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Length in characters of the nix32 form of `len` bytes.
pub const fn nix32_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

/// Encode bytes as nix32.
pub fn nix32_encode(bytes: &[u8]) -> String {
    let len = nix32_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let lo = u16::from(bytes.get(i).copied().unwrap_or(0)) >> j;
        let hi = u16::from(bytes.get(i + 1).copied().unwrap_or(0)) << (8 - j);
        let digit = usize::from((lo | hi) & 0x1f);
        out.push(char::from(
            NIX32_ALPHABET.get(digit).copied().unwrap_or(b'0'),
        ));
    }
    out
}

fn nix32_digit(c: u8) -> Option<u8> {
    NIX32_ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|p| u8::try_from(p).ok())
}

/// Decode nix32 into exactly `N` bytes. Refuses a wrong length, characters
/// outside the alphabet, and set bits beyond `N` bytes (non-canonical input).
pub fn nix32_decode_array<const N: usize>(s: &str) -> Result<[u8; N]> {
    let input = s.as_bytes();
    if input.len() != nix32_len(N) {
        return Err(Error::InvalidLength {
            what: "nix32",
            expected: nix32_len(N),
            found: input.len(),
        });
    }
    let mut out = [0u8; N];
    for (pos, &c) in input.iter().enumerate() {
        let digit = nix32_digit(c).ok_or(Error::InvalidEncoding { what: "nix32" })?;
        let n = input.len() - pos - 1;
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let wide = u16::from(digit) << j;
        if let Some(b) = out.get_mut(i) {
            *b |= (wide & 0xff) as u8;
        }
        let carry = (wide >> 8) as u8;
        match out.get_mut(i + 1) {
            Some(b) => *b |= carry,
            None if carry != 0 => return Err(Error::InvalidEncoding { what: "nix32" }),
            None => {}
        }
    }
    Ok(out)
}

/// Encode bytes as lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    let digit = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0xf));
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode hex (either case) of any even length, up to `max` bytes.
pub fn hex_decode(s: &str, max: usize) -> Result<Vec<u8>> {
    let input = s.as_bytes();
    if !input.len().is_multiple_of(2) {
        return Err(Error::InvalidEncoding { what: "hex" });
    }
    if input.len() / 2 > max {
        return Err(Error::TooLarge {
            what: "hex",
            len: input.len() / 2,
            max,
        });
    }
    input
        .chunks_exact(2)
        .map(|pair| match pair {
            [h, l] => Some((hex_val(*h)? << 4) | hex_val(*l)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(Error::InvalidEncoding { what: "hex" })
}

/// Decode hex (either case) into exactly `N` bytes.
pub fn hex_decode_array<const N: usize>(s: &str) -> Result<[u8; N]> {
    let input = s.as_bytes();
    if input.len() != N * 2 {
        return Err(Error::InvalidLength {
            what: "hex",
            expected: N * 2,
            found: input.len(),
        });
    }
    let mut out = [0u8; N];
    for (b, pair) in out.iter_mut().zip(input.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [h, l] => (hex_val(*h), hex_val(*l)),
            _ => (None, None),
        };
        *b = (hi.ok_or(Error::InvalidEncoding { what: "hex" })? << 4)
            | lo.ok_or(Error::InvalidEncoding { what: "hex" })?;
    }
    Ok(out)
}

/// Encode bytes as standard, padded base64.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode standard, padded base64 (canonical: trailing bits must be zero).
pub fn base64_decode(s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| Error::InvalidEncoding { what: "base64" })
}

/// Decode standard base64 into exactly `N` bytes.
pub fn base64_decode_array<const N: usize>(s: &str) -> Result<[u8; N]> {
    let v = base64_decode(s)?;
    let found = v.len();
    v.try_into().map_err(|_| Error::InvalidLength {
        what: "base64",
        expected: N,
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nix32_known_values() {
        // Vector made by `nix hash to-base32 --type sha256` (shared testdata).
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(
            nix32_encode(&bytes),
            "07qy3lf1n6hr30bic58l2c91240g1q6hq2qa1440f1h50h1h4080"
        );
        assert_eq!(nix32_encode(&[]), "");
        assert_eq!(nix32_encode(&[0xff]), "7z");
    }

    #[test]
    fn nix32_refuses_bad_input() {
        let good = "07qy3lf1n6hr30bic58l2c91240g1q6hq2qa1440f1h50h1h4080";
        assert!(matches!(
            nix32_decode_array::<32>(&good[1..]),
            Err(Error::InvalidLength { .. })
        ));
        let bad = good.replacen('0', "e", 1);
        assert!(matches!(
            nix32_decode_array::<32>(&bad),
            Err(Error::InvalidEncoding { .. })
        ));
        // The top digit may carry at most 256 - 255 bits of value: "z" overflows 32 bytes.
        let overflow = good.replacen('0', "z", 1);
        assert!(matches!(
            nix32_decode_array::<32>(&overflow),
            Err(Error::InvalidEncoding { .. })
        ));
    }

    #[test]
    fn hex_refuses_bad_input() {
        assert!(matches!(
            hex_decode_array::<2>("abc"),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            hex_decode_array::<2>("abcg"),
            Err(Error::InvalidEncoding { .. })
        ));
        assert_eq!(hex_decode_array::<2>("ABcd").ok(), Some([0xab, 0xcd]));
    }

    proptest! {
        #[test]
        fn nix32_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let s = nix32_encode(&bytes);
            prop_assert_eq!(s.len(), 52);
            prop_assert_eq!(nix32_decode_array::<32>(&s).ok(), Some(bytes));
        }

        #[test]
        fn nix32_round_trip_20(bytes in proptest::array::uniform20(any::<u8>())) {
            let s = nix32_encode(&bytes);
            prop_assert_eq!(s.len(), 32);
            prop_assert_eq!(nix32_decode_array::<20>(&s).ok(), Some(bytes));
        }

        #[test]
        fn hex_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            prop_assert_eq!(hex_decode_array::<32>(&hex_encode(&bytes)).ok(), Some(bytes));
        }

        #[test]
        fn base64_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(base64_decode(&base64_encode(&bytes)).ok(), Some(bytes));
        }
    }
}
