//! Big-endian TPM marshalling: a bounded reader and a writer.
//!
//! Every TPM structure is big-endian. A `TPM2B_*` is a `u16` byte count
//! followed by that many bytes; [`Reader::sized`] hands out exactly those
//! bytes as a sub-reader, so a structure inside a `TPM2B` can neither read
//! past its size nor leave bytes unread ([`Reader::finish`]).

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Reads TPM structures from a byte slice, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(Error::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| Error::Truncated { what })
    }

    /// A `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        self.take_array::<1>(what).map(|[b]| b)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.take_array(what).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.take_array(what).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.take_array(what).map(u64::from_be_bytes)
    }

    /// The body of a `TPM2B_*`: a `u16` size, then that many bytes, at most
    /// `max` of them.
    pub fn tpm2b(&mut self, what: &'static str, max: usize) -> Result<&'a [u8]> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(Error::TooLarge { what, len, max });
        }
        self.take(len, what)
    }

    /// A sub-reader over the body of a `TPM2B_*` that holds a structure.
    pub fn sized(&mut self, what: &'static str, max: usize) -> Result<Reader<'a>> {
        self.tpm2b(what, max).map(Reader::new)
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                what,
                extra: self.buf.len(),
            })
        }
    }
}

/// Writes TPM structures, big-endian.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Raw bytes, no size.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A `TPM2B_*`: the `u16` size of `b`, then `b`. Refuses more than
    /// 65,535 bytes.
    pub fn tpm2b(&mut self, what: &'static str, b: &[u8]) -> Result<()> {
        let size = u16::try_from(b.len()).map_err(|_| Error::TooLarge {
            what,
            len: b.len(),
            max: usize::from(u16::MAX),
        })?;
        self.u16(size);
        self.bytes(b);
        Ok(())
    }

    /// A `TPM2B_*` for bytes whose length the caller's type bounds to at most
    /// 65,535 (every bounded type of this module): never fails. Were the
    /// bound ever broken, the size and the bytes written would still agree.
    pub(crate) fn tpm2b_bounded(&mut self, b: &[u8]) {
        let size = u16::try_from(b.len()).unwrap_or(u16::MAX);
        self.u16(size);
        self.bytes(b.get(..usize::from(size)).unwrap_or_default());
    }

    /// A `TPM2B_*` holding a structure: what `f` writes, prefixed by its size.
    pub(crate) fn sized_bounded(&mut self, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        f(&mut inner);
        self.tpm2b_bounded(&inner.buf);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reader_refuses_short_long_and_oversized() {
        let mut r = Reader::new(&[0x00, 0x03, 1, 2]);
        assert!(matches!(r.tpm2b("x", 8), Err(Error::Truncated { .. })));
        let mut r = Reader::new(&[0x00, 0x03, 1, 2, 3]);
        assert!(matches!(r.tpm2b("x", 2), Err(Error::TooLarge { .. })));
        let mut r = Reader::new(&[0x00, 0x01, 1, 2]);
        assert_eq!(r.tpm2b("x", 8).ok(), Some(&[1u8][..]));
        assert!(matches!(
            r.finish("x"),
            Err(Error::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn writer_refuses_oversized_tpm2b() {
        let mut w = Writer::new();
        let big = alloc::vec![0u8; 65_536];
        assert!(matches!(w.tpm2b("x", &big), Err(Error::TooLarge { .. })));
        assert!(w.is_empty());
    }

    proptest! {
        #[test]
        fn integers_and_tpm2b_round_trip(
            a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
            e in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut w = Writer::new();
            w.u8(a);
            w.u16(b);
            w.u32(c);
            w.u64(d);
            w.tpm2b("e", &e).unwrap();
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.u8("a").unwrap(), a);
            prop_assert_eq!(r.u16("b").unwrap(), b);
            prop_assert_eq!(r.u32("c").unwrap(), c);
            prop_assert_eq!(r.u64("d").unwrap(), d);
            prop_assert_eq!(r.tpm2b("e", 300).unwrap(), &e[..]);
            prop_assert!(r.finish("all").is_ok());
        }
    }
}
