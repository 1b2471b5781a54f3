//! TPMS_ATTEST (Part 2 §10.12.12): what a TPM signs in TPM2_Quote and
//! TPM2_Certify.

use alloc::vec::Vec;

use super::codec::{Reader, Writer};
use super::pcr::{PcrSelectionList, PcrValues};
use super::types::{Data, Digest, HashAlg, Name};
use crate::error::{Error, Result};

/// TPM_GENERATED_VALUE: the first four bytes of everything a TPM signs
/// about itself; a restricted key refuses to sign data starting with it.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_CERTIFY.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// TPMS_CLOCK_INFO (Part 2 §10.11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared
    /// (may go back after an unorderly shutdown).
    pub clock: u64,
    /// TPM2_Startup(CLEAR) count since the last TPM2_Clear.
    pub reset_count: u32,
    /// TPM2_Shutdown(STATE) + Startup(STATE/CLEAR) count since the last
    /// reset.
    pub restart_count: u32,
    /// `false` when `clock` may have been reported before (after an
    /// unorderly shutdown); TPMI_YES_NO, so only 0 and 1 are accepted.
    pub safe: bool,
}

impl ClockInfo {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let clock = r.u64("TPMS_CLOCK_INFO clock")?;
        let reset_count = r.u32("TPMS_CLOCK_INFO resetCount")?;
        let restart_count = r.u32("TPMS_CLOCK_INFO restartCount")?;
        let safe = match r.u8("TPMS_CLOCK_INFO safe")? {
            0 => false,
            1 => true,
            _ => {
                return Err(Error::InvalidValue {
                    what: "TPMS_CLOCK_INFO safe",
                    reason: "TPMI_YES_NO must be 0 or 1",
                })
            }
        };
        Ok(Self {
            clock,
            reset_count,
            restart_count,
            safe,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.u64(self.clock);
        w.u32(self.reset_count);
        w.u32(self.restart_count);
        w.u8(u8::from(self.safe));
    }
}

/// TPMS_QUOTE_INFO (Part 2 §10.12.4): the PCRs quoted and the digest of
/// their values, hashed with the signing scheme's hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuoteInfo {
    /// The PCRs quoted, banks in order.
    pub pcr_select: PcrSelectionList,
    /// `H(selected values concatenated in selection order)`.
    pub pcr_digest: Digest,
}

impl QuoteInfo {
    /// Check that `values` hash (with `hash`, the signing scheme's hash) to
    /// this quote's pcrDigest.
    pub fn check_pcr_values(&self, hash: HashAlg, values: &PcrValues) -> Result<()> {
        let d = self.pcr_select.pcr_digest(hash, values)?;
        if d == self.pcr_digest {
            Ok(())
        } else {
            Err(Error::TpmPcrDigestMismatch)
        }
    }
}

/// TPMS_CERTIFY_INFO (Part 2 §10.12.3): the certified object's Name and
/// qualified name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertifyInfo {
    /// Name of the certified object (`nameAlg || H(TPMT_PUBLIC)`).
    pub name: Name,
    /// Its qualified name.
    pub qualified_name: Name,
}

/// The attestation types read here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttestType {
    /// TPM_ST_ATTEST_QUOTE (0x8018).
    Quote,
    /// TPM_ST_ATTEST_CERTIFY (0x8017).
    Certify,
}

impl AttestType {
    /// The TPM_ST value.
    pub const fn id(self) -> u16 {
        match self {
            Self::Quote => TPM_ST_ATTEST_QUOTE,
            Self::Certify => TPM_ST_ATTEST_CERTIFY,
        }
    }
}

/// The type-specific part of a TPMS_ATTEST (TPMU_ATTEST).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attested {
    /// From TPM2_Quote.
    Quote(QuoteInfo),
    /// From TPM2_Certify.
    Certify(CertifyInfo),
}

/// A TPMS_ATTEST of type quote or certify. The magic is not stored: it is
/// always TPM_GENERATED_VALUE, checked on parsing and written back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attest {
    /// Qualified name of the signing key.
    pub qualified_signer: Name,
    /// The caller's qualifying data (nonce).
    pub extra_data: Data,
    /// The TPM's clock and boot counters.
    pub clock_info: ClockInfo,
    /// TPM vendor firmware version.
    pub firmware_version: u64,
    /// Quote or certify information.
    pub attested: Attested,
}

impl Attest {
    /// Parse a marshalled TPMS_ATTEST (the bytes a TPM signed); refuses a
    /// wrong magic, other attestation types and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPMS_ATTEST")?;
        Ok(v)
    }

    /// Parse a TPMS_ATTEST that must be of type `expected`.
    pub fn from_bytes_expecting(bytes: &[u8], expected: AttestType) -> Result<Self> {
        let a = Self::from_bytes(bytes)?;
        a.expect_type(expected)?;
        Ok(a)
    }

    /// Parse a TPM2B_ATTEST (a `u16` size, then the TPMS_ATTEST).
    pub fn from_tpm2b_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let mut inner = r.sized("TPM2B_ATTEST", usize::from(u16::MAX))?;
        let v = Self::read(&mut inner)?;
        inner.finish("TPMS_ATTEST")?;
        r.finish("TPM2B_ATTEST")?;
        Ok(v)
    }

    /// The marshalled TPMS_ATTEST.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    /// Its type.
    pub fn attest_type(&self) -> AttestType {
        match self.attested {
            Attested::Quote(_) => AttestType::Quote,
            Attested::Certify(_) => AttestType::Certify,
        }
    }

    /// Fails with [`Error::TpmAttestTypeMismatch`] unless of type `expected`.
    pub fn expect_type(&self, expected: AttestType) -> Result<()> {
        let found = self.attest_type();
        if found == expected {
            Ok(())
        } else {
            Err(Error::TpmAttestTypeMismatch {
                expected: expected.id(),
                found: found.id(),
            })
        }
    }

    /// The quote information, or [`Error::TpmAttestTypeMismatch`].
    pub fn quote(&self) -> Result<&QuoteInfo> {
        match &self.attested {
            Attested::Quote(q) => Ok(q),
            Attested::Certify(_) => Err(Error::TpmAttestTypeMismatch {
                expected: TPM_ST_ATTEST_QUOTE,
                found: TPM_ST_ATTEST_CERTIFY,
            }),
        }
    }

    /// The certify information, or [`Error::TpmAttestTypeMismatch`].
    pub fn certify(&self) -> Result<&CertifyInfo> {
        match &self.attested {
            Attested::Certify(c) => Ok(c),
            Attested::Quote(_) => Err(Error::TpmAttestTypeMismatch {
                expected: TPM_ST_ATTEST_CERTIFY,
                found: TPM_ST_ATTEST_QUOTE,
            }),
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let magic = r.u32("TPMS_ATTEST magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(Error::TpmBadMagic { found: magic });
        }
        let ty = r.u16("TPMS_ATTEST type")?;
        if ty != TPM_ST_ATTEST_QUOTE && ty != TPM_ST_ATTEST_CERTIFY {
            return Err(Error::TpmUnsupportedAttestType { found: ty });
        }
        let qualified_signer = Name::read(r, "TPMS_ATTEST qualifiedSigner")?;
        let extra_data = Data::read(r)?;
        let clock_info = ClockInfo::read(r)?;
        let firmware_version = r.u64("TPMS_ATTEST firmwareVersion")?;
        let attested = if ty == TPM_ST_ATTEST_QUOTE {
            Attested::Quote(QuoteInfo {
                pcr_select: PcrSelectionList::read(r)?,
                pcr_digest: Digest::read(r)?,
            })
        } else {
            Attested::Certify(CertifyInfo {
                name: Name::read(r, "TPMS_CERTIFY_INFO name")?,
                qualified_name: Name::read(r, "TPMS_CERTIFY_INFO qualifiedName")?,
            })
        };
        Ok(Self {
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            attested,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(TPM_GENERATED_VALUE);
        w.u16(self.attest_type().id());
        self.qualified_signer.write(w);
        self.extra_data.write(w);
        self.clock_info.write(w);
        w.u64(self.firmware_version);
        match &self.attested {
            Attested::Quote(q) => {
                q.pcr_select.write(w);
                q.pcr_digest.write(w);
            }
            Attested::Certify(c) => {
                c.name.write(w);
                c.qualified_name.write(w);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::types::HASH_ALGS;
    use proptest::prelude::*;

    pub(crate) fn arb_name() -> impl Strategy<Value = Name> {
        prop_oneof![
            Just(Name::default()),
            any::<u32>().prop_map(Name::from_handle),
            (prop::sample::select(HASH_ALGS.to_vec()), any::<[u8; 64]>()).prop_map(|(alg, d)| {
                Name::from_digest(alg, &Digest::new(&d[..alg.digest_size()]).unwrap()).unwrap()
            }),
        ]
    }

    pub(crate) fn arb_attest() -> impl Strategy<Value = Attest> {
        let quote = (
            crate::tpm::pcr::tests::arb_list(),
            prop::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(|(pcr_select, d)| {
                Attested::Quote(QuoteInfo {
                    pcr_select,
                    pcr_digest: Digest::new(&d).unwrap(),
                })
            });
        let certify = (arb_name(), arb_name()).prop_map(|(name, qualified_name)| {
            Attested::Certify(CertifyInfo {
                name,
                qualified_name,
            })
        });
        (
            arb_name(),
            prop::collection::vec(any::<u8>(), 0..=66),
            any::<(u64, u32, u32, bool)>(),
            any::<u64>(),
            prop_oneof![quote, certify],
        )
            .prop_map(
                |(qualified_signer, extra, c, firmware_version, attested)| Attest {
                    qualified_signer,
                    extra_data: Data::new(&extra).unwrap(),
                    clock_info: ClockInfo {
                        clock: c.0,
                        reset_count: c.1,
                        restart_count: c.2,
                        safe: c.3,
                    },
                    firmware_version,
                    attested,
                },
            )
    }

    proptest! {
        #[test]
        fn attest_round_trips(a in arb_attest()) {
            let bytes = a.to_bytes();
            prop_assert_eq!(Attest::from_bytes(&bytes).unwrap(), a.clone());
            let mut sized = Vec::new();
            sized.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
            sized.extend_from_slice(&bytes);
            prop_assert_eq!(Attest::from_tpm2b_bytes(&sized).unwrap(), a.clone());
            // Every proper prefix is refused as truncated.
            for cut in 0..bytes.len() {
                prop_assert!(
                    matches!(Attest::from_bytes(&bytes[..cut]), Err(Error::Truncated { .. })),
                    "cut at {}", cut
                );
            }
        }
    }
}
