//! A bounded little-endian reader that knows its absolute offset in the log,
//! so every error can say where it happened.

use crate::error::{Error, Result};

/// What went wrong inside a sub-structure, turned into an [`Error`] by the
/// caller (which knows which kind applies).
#[derive(Clone, Copy)]
pub(crate) struct Fault {
    pub(crate) offset: usize,
    pub(crate) expected: &'static str,
    pub(crate) truncated: bool,
}

impl Fault {
    /// The error for a fault while reading log records.
    pub(crate) fn record(self) -> Error {
        if self.truncated {
            Error::Truncated {
                offset: self.offset,
                expected: self.expected,
            }
        } else {
            Error::MalformedRecord {
                offset: self.offset,
                expected: self.expected,
            }
        }
    }
}

/// Reads from `bytes`, whose first byte sits at `base` in the log.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn short(&self, expected: &'static str) -> Fault {
        Fault {
            offset: self.offset(),
            expected,
            truncated: true,
        }
    }

    /// A fault at the current offset that is not a truncation.
    pub(crate) fn invalid(&self, expected: &'static str) -> Fault {
        Fault {
            offset: self.offset(),
            expected,
            truncated: false,
        }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, expected: &'static str) -> Result<&'a [u8], Fault> {
        let end = self.pos.checked_add(n).ok_or(self.short(expected))?;
        let out = self.bytes.get(self.pos..end).ok_or(self.short(expected))?;
        self.pos = end;
        Ok(out)
    }

    /// The next `n` bytes, `n` given as a 64-bit length from the input.
    pub(crate) fn take_u64(&mut self, n: u64, expected: &'static str) -> Result<&'a [u8], Fault> {
        let n = usize::try_from(n).map_err(|_| self.short(expected))?;
        self.take(n, expected)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        expected: &'static str,
    ) -> Result<[u8; N], Fault> {
        let at = self.short(expected);
        self.take(N, expected)?.try_into().map_err(|_| at)
    }

    pub(crate) fn u8(&mut self, expected: &'static str) -> Result<u8, Fault> {
        let [b] = self.array::<1>(expected)?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, expected: &'static str) -> Result<u16, Fault> {
        Ok(u16::from_le_bytes(self.array(expected)?))
    }

    pub(crate) fn u32(&mut self, expected: &'static str) -> Result<u32, Fault> {
        Ok(u32::from_le_bytes(self.array(expected)?))
    }

    pub(crate) fn u64(&mut self, expected: &'static str) -> Result<u64, Fault> {
        Ok(u64::from_le_bytes(self.array(expected)?))
    }
}
