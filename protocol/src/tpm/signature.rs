//! TPMT_SIGNATURE (Part 2 §11.3.4) and its verification under a TPMT_PUBLIC:
//! ECDSA on P-256 and P-384, RSASSA-PKCS1-v1_5 and RSA-PSS.

use alloc::vec::Vec;

use super::attest::{Attest, AttestType};
use super::codec::{Reader, Writer};
use super::public::{EccCurve, EccScheme, Public, PublicKey, RsaScheme};
use super::types::{EccParameter, HashAlg, PublicKeyRsa};
use crate::error::{Error, Result};

/// TPM_ALG_RSASSA.
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAPSS.
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_ECDSA.
pub const TPM_ALG_ECDSA: u16 = 0x0018;

/// A TPMT_SIGNATURE of one of the schemes attestation keys use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Signature {
    /// TPM_ALG_RSASSA: PKCS#1 v1.5 (TPMS_SIGNATURE_RSA).
    RsaSsa {
        /// The hash the message was digested with.
        hash: HashAlg,
        /// The signature, as long as the modulus.
        sig: PublicKeyRsa,
    },
    /// TPM_ALG_RSAPSS (TPMS_SIGNATURE_RSA).
    RsaPss {
        /// The hash (also MGF1's).
        hash: HashAlg,
        /// The signature.
        sig: PublicKeyRsa,
    },
    /// TPM_ALG_ECDSA (TPMS_SIGNATURE_ECC).
    EcDsa {
        /// The hash.
        hash: HashAlg,
        /// r, big-endian.
        r: EccParameter,
        /// s, big-endian.
        s: EccParameter,
    },
}

impl Signature {
    /// Parse a marshalled TPMT_SIGNATURE (what `tpm2_quote -s` and
    /// `tpm2_certify -s` write); refuses other schemes and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPMT_SIGNATURE")?;
        Ok(v)
    }

    /// The marshalled TPMT_SIGNATURE.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    /// The signature algorithm (TPM_ALG_ID).
    pub fn sig_alg(&self) -> u16 {
        match self {
            Self::RsaSsa { .. } => TPM_ALG_RSASSA,
            Self::RsaPss { .. } => TPM_ALG_RSAPSS,
            Self::EcDsa { .. } => TPM_ALG_ECDSA,
        }
    }

    /// The hash the signed message was digested with.
    pub fn hash(&self) -> HashAlg {
        match self {
            Self::RsaSsa { hash, .. } | Self::RsaPss { hash, .. } | Self::EcDsa { hash, .. } => {
                *hash
            }
        }
    }

    /// Verify this signature over `message` (e.g. a TPMS_ATTEST's bytes,
    /// exactly as the TPM returned them) under `key`.
    ///
    /// The key must be an RSA or ECC signing key (sign attribute set); when
    /// its scheme is not NULL (every restricted key), the signature's scheme
    /// and hash must be that scheme's, else [`Error::TpmSchemeMismatch`].
    /// Supported: ECDSA on P-256 and P-384, RSASSA and RSA-PSS (salt as long
    /// as the digest, or the longest possible), each with SHA-256, SHA-384 or
    /// SHA-512; SHA-1 is refused. A signature that does not verify is
    /// [`Error::TpmBadSignature`].
    pub fn verify(&self, key: &Public, message: &[u8]) -> Result<()> {
        if !key.attributes.sign() {
            return Err(Error::TpmInvalidKey {
                what: "TPM signature verification",
                reason: "the key's sign attribute is clear",
            });
        }
        let hash = self.hash();
        match (&key.key, self) {
            (PublicKey::Ecc { params, point }, Self::EcDsa { r, s, .. }) => {
                match params.scheme {
                    EccScheme::Null => {}
                    EccScheme::EcDsa(h) if h == hash => {}
                    EccScheme::EcDsa(_) => {
                        return Err(Error::TpmSchemeMismatch {
                            reason: "signature hash differs from the key's ECDSA hash",
                        })
                    }
                    _ => {
                        return Err(Error::TpmSchemeMismatch {
                            reason: "the key's scheme is not ECDSA",
                        })
                    }
                }
                #[cfg(feature = "fast-ecdsa")]
                if let Some(result) = ring_ecdsa(params.curve, hash, point, r, s, message) {
                    return result;
                }
                let digest = hash.hash(&[message])?;
                match params.curve {
                    EccCurve::NistP256 => ecdsa_p256(point, r, s, digest.as_bytes()),
                    EccCurve::NistP384 => ecdsa_p384(point, r, s, digest.as_bytes()),
                    other => Err(Error::TpmUnsupportedAlgorithm {
                        what: "ECDSA verification curve",
                        alg: other.id(),
                    }),
                }
            }
            (
                PublicKey::Rsa { params, modulus },
                Self::RsaSsa { sig, .. } | Self::RsaPss { sig, .. },
            ) => {
                let pss = matches!(self, Self::RsaPss { .. });
                match params.scheme {
                    RsaScheme::Null => {}
                    RsaScheme::RsaSsa(h) if !pss && h == hash => {}
                    RsaScheme::RsaPss(h) if pss && h == hash => {}
                    RsaScheme::RsaSsa(_) | RsaScheme::RsaPss(_) => {
                        return Err(Error::TpmSchemeMismatch {
                            reason: "signature scheme or hash differs from the key's",
                        })
                    }
                    _ => {
                        return Err(Error::TpmSchemeMismatch {
                            reason: "the key's scheme is not a signing scheme",
                        })
                    }
                }
                let digest = hash.hash(&[message])?;
                rsa_verify(
                    modulus,
                    params.effective_exponent(),
                    pss,
                    hash,
                    digest.as_bytes(),
                    sig.as_bytes(),
                )
            }
            _ => Err(Error::TpmSchemeMismatch {
                reason: "signature algorithm does not fit the key type",
            }),
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        const W: &str = "TPMT_SIGNATURE";
        let alg = r.u16("TPMT_SIGNATURE sigAlg")?;
        Ok(match alg {
            TPM_ALG_RSASSA => Self::RsaSsa {
                hash: HashAlg::read(r, W)?,
                sig: PublicKeyRsa::read(r)?,
            },
            TPM_ALG_RSAPSS => Self::RsaPss {
                hash: HashAlg::read(r, W)?,
                sig: PublicKeyRsa::read(r)?,
            },
            TPM_ALG_ECDSA => Self::EcDsa {
                hash: HashAlg::read(r, W)?,
                r: EccParameter::read(r)?,
                s: EccParameter::read(r)?,
            },
            alg => {
                return Err(Error::TpmUnsupportedAlgorithm {
                    what: "TPMT_SIGNATURE sigAlg",
                    alg,
                })
            }
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u16(self.sig_alg());
        self.hash().write(w);
        match self {
            Self::RsaSsa { sig, .. } | Self::RsaPss { sig, .. } => sig.write(w),
            Self::EcDsa { r, s, .. } => {
                r.write(w);
                s.write(w);
            }
        }
    }
}

/// Verify the signature `sig` over `attest_bytes` (a marshalled TPMS_ATTEST
/// exactly as the TPM returned it) under the signing key `key`, then parse
/// the attestation and require type `expected`. Nothing is parsed from
/// bytes whose signature failed.
pub fn verify_attest(
    key: &Public,
    attest_bytes: &[u8],
    sig: &Signature,
    expected: AttestType,
) -> Result<Attest> {
    sig.verify(key, attest_bytes)?;
    Attest::from_bytes_expecting(attest_bytes, expected)
}

/// `bytes` left-padded with zeros to exactly `N` bytes; refuses longer
/// values (after dropping leading zeros).
fn left_pad<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N]> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let significant = bytes.get(start..).unwrap_or_default();
    if significant.len() > N {
        return Err(Error::InvalidLength {
            what,
            expected: N,
            found: bytes.len(),
        });
    }
    let mut out = [0u8; N];
    let offset = N - significant.len();
    for (dst, src) in out.iter_mut().skip(offset).zip(significant) {
        *dst = *src;
    }
    Ok(out)
}

/// SEC1 uncompressed encoding `04 || x || y` of a TPMS_ECC_POINT on a curve
/// whose field elements are `N` bytes.
pub(crate) fn sec1_uncompressed<const N: usize>(
    point: &super::public::EccPoint,
) -> Result<Vec<u8>> {
    let x = left_pad::<N>(point.x.as_bytes(), "ECC point x")?;
    let y = left_pad::<N>(point.y.as_bytes(), "ECC point y")?;
    let mut v = Vec::with_capacity(1 + 2 * N);
    v.push(0x04);
    v.extend_from_slice(&x);
    v.extend_from_slice(&y);
    Ok(v)
}

macro_rules! ecdsa_verify {
    ($fn_name:ident, $curve:ident, $n:literal) => {
        fn $fn_name(
            point: &super::public::EccPoint,
            r: &EccParameter,
            s: &EccParameter,
            digest: &[u8],
        ) -> Result<()> {
            use $curve::ecdsa::signature::hazmat::PrehashVerifier;
            let key =
                $curve::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_uncompressed::<$n>(point)?)
                    .map_err(|_| Error::TpmInvalidKey {
                        what: "ECDSA verification",
                        reason: "public point is not on the curve",
                    })?;
            let mut rs = Vec::with_capacity(2 * $n);
            rs.extend_from_slice(&left_pad::<$n>(r.as_bytes(), "ECDSA r")?);
            rs.extend_from_slice(&left_pad::<$n>(s.as_bytes(), "ECDSA s")?);
            let sig =
                $curve::ecdsa::Signature::from_slice(&rs).map_err(|_| Error::TpmBadSignature)?;
            key.verify_prehash(digest, &sig)
                .map_err(|_| Error::TpmBadSignature)
        }
    };
}

ecdsa_verify!(ecdsa_p256, p256, 32);

/// ECDSA verification by ring, for the curve-hash pairs it has in fixed
/// (r || s) form: P-256 with SHA-256 and P-384 with SHA-384; `None` for
/// the others, which the
/// portable code verifies. Same verdicts: a point not on the curve and a
/// bad signature are both refused.
#[cfg(feature = "fast-ecdsa")]
fn ring_ecdsa(
    curve: EccCurve,
    hash: HashAlg,
    point: &super::public::EccPoint,
    r: &EccParameter,
    s: &EccParameter,
    message: &[u8],
) -> Option<Result<()>> {
    use ring::signature as rs;
    let (alg, key, n): (&rs::EcdsaVerificationAlgorithm, _, usize) = match (curve, hash) {
        (EccCurve::NistP256, HashAlg::Sha256) => (
            &rs::ECDSA_P256_SHA256_FIXED,
            sec1_uncompressed::<32>(point),
            32,
        ),
        (EccCurve::NistP384, HashAlg::Sha384) => (
            &rs::ECDSA_P384_SHA384_FIXED,
            sec1_uncompressed::<48>(point),
            48,
        ),
        _ => return None,
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => return Some(Err(e)),
    };
    let mut sig = Vec::with_capacity(2 * n);
    for (part, what) in [(r, "ECDSA r"), (s, "ECDSA s")] {
        let padded = if n == 32 {
            left_pad::<32>(part.as_bytes(), what).map(|a| a.to_vec())
        } else {
            left_pad::<48>(part.as_bytes(), what).map(|a| a.to_vec())
        };
        match padded {
            Ok(p) => sig.extend_from_slice(&p),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(
        rs::UnparsedPublicKey::new(alg, &key)
            .verify(message, &sig)
            .map_err(|_| Error::TpmBadSignature),
    )
}
ecdsa_verify!(ecdsa_p384, p384, 48);

/// An RSA public key from a TPM modulus and exponent.
pub(crate) fn rsa_key(
    modulus: &PublicKeyRsa,
    exponent: u32,
    what: &'static str,
) -> Result<rsa::RsaPublicKey> {
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus.as_bytes()),
        rsa::BigUint::from(exponent),
    )
    .map_err(|_| Error::TpmInvalidKey {
        what,
        reason: "not a valid RSA public key (modulus or exponent)",
    })
}

fn rsa_verify(
    modulus: &PublicKeyRsa,
    exponent: u32,
    pss: bool,
    hash: HashAlg,
    digest: &[u8],
    sig: &[u8],
) -> Result<()> {
    use rsa::traits::PublicKeyParts;
    use rsa::{Pkcs1v15Sign, Pss};
    use sha2::{Sha256, Sha384, Sha512};

    let key = rsa_key(modulus, exponent, "RSA signature verification")?;
    if sig.len() != key.size() {
        return Err(Error::TpmBadSignature);
    }
    let ok = if pss {
        // TPMs use a salt as long as the digest; TPMs in FIPS mode use the
        // longest salt the modulus allows. Accept either.
        let max_salt = key
            .size()
            .saturating_sub(hash.digest_size())
            .saturating_sub(2);
        let try_salt = |salt: usize| -> Result<bool> {
            let scheme = match hash {
                HashAlg::Sha256 => Pss::new_with_salt::<Sha256>(salt),
                HashAlg::Sha384 => Pss::new_with_salt::<Sha384>(salt),
                HashAlg::Sha512 => Pss::new_with_salt::<Sha512>(salt),
                other => return Err(other.not_computed("RSA-PSS verification hash")),
            };
            Ok(key.verify(scheme, digest, sig).is_ok())
        };
        try_salt(hash.digest_size())? || try_salt(max_salt)?
    } else {
        let scheme = match hash {
            HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
            other => return Err(other.not_computed("RSASSA verification hash")),
        };
        key.verify(scheme, digest, sig).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(Error::TpmBadSignature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::types::HASH_ALGS;
    use proptest::prelude::*;

    pub(crate) fn arb_signature() -> impl Strategy<Value = Signature> {
        let hash = prop::sample::select(HASH_ALGS.to_vec());
        let bytes = |max: usize| prop::collection::vec(any::<u8>(), 0..=max);
        prop_oneof![
            (hash.clone(), bytes(512)).prop_map(|(hash, s)| Signature::RsaSsa {
                hash,
                sig: PublicKeyRsa::new(&s).unwrap()
            }),
            (hash.clone(), bytes(512)).prop_map(|(hash, s)| Signature::RsaPss {
                hash,
                sig: PublicKeyRsa::new(&s).unwrap()
            }),
            (hash, bytes(128), bytes(128)).prop_map(|(hash, r, s)| Signature::EcDsa {
                hash,
                r: EccParameter::new(&r).unwrap(),
                s: EccParameter::new(&s).unwrap()
            }),
        ]
    }

    #[test]
    fn left_pad_keeps_value_and_refuses_longer() {
        assert_eq!(left_pad::<4>(&[1, 2], "t").unwrap(), [0, 0, 1, 2]);
        assert_eq!(left_pad::<2>(&[0, 0, 1, 2], "t").unwrap(), [1, 2]);
        assert!(matches!(
            left_pad::<2>(&[1, 2, 3], "t"),
            Err(Error::InvalidLength { .. })
        ));
    }

    #[test]
    fn unknown_sig_alg_is_refused() {
        assert!(matches!(
            Signature::from_bytes(&[0x00, 0x05, 0x00, 0x0b]),
            Err(Error::TpmUnsupportedAlgorithm { alg: 0x0005, .. })
        ));
    }

    fn attrs() -> crate::tpm::public::ObjectAttributes {
        use crate::tpm::public::ObjectAttributes as A;
        A::default()
            .with(A::SIGN, true)
            .with(A::RESTRICTED, true)
            .with(A::FIXED_TPM, true)
    }

    fn ecc_key(curve: EccCurve, scheme: EccScheme, x: &[u8], y: &[u8]) -> Public {
        use crate::tpm::public::{EccParams, EccPoint, KdfScheme};
        Public {
            name_alg: HashAlg::Sha256,
            attributes: attrs(),
            auth_policy: crate::tpm::types::Digest::default(),
            key: PublicKey::Ecc {
                params: EccParams {
                    symmetric: None,
                    scheme,
                    curve,
                    kdf: KdfScheme::Null,
                },
                point: EccPoint {
                    x: EccParameter::new(x).unwrap(),
                    y: EccParameter::new(y).unwrap(),
                },
            },
        }
    }

    /// The portable verifier and (with `fast-ecdsa`) ring give the same
    /// verdicts on good and bad signatures, whichever `verify` uses.
    #[test]
    fn both_ecdsa_implementations_agree() {
        use crate::tpm::public::EccPoint;
        let mut rng = rand_core::OsRng;
        let sk = p256::ecdsa::SigningKey::random(&mut rng);
        let pt = sk.verifying_key().to_encoded_point(false);
        let point = EccPoint {
            x: EccParameter::new(pt.x().unwrap()).unwrap(),
            y: EccParameter::new(pt.y().unwrap()).unwrap(),
        };
        let msg = b"quoted bytes";
        let (sig, _): (p256::ecdsa::Signature, _) = sk.sign_recoverable(msg).unwrap();
        let (r, s) = sig.split_bytes();
        let (r, s) = (
            EccParameter::new(&r).unwrap(),
            EccParameter::new(&s).unwrap(),
        );
        let digest = HashAlg::Sha256.hash(&[msg]).unwrap();
        let mut bad = r.as_bytes().to_vec();
        bad[5] ^= 1;
        let bad = EccParameter::new(&bad).unwrap();
        assert!(ecdsa_p256(&point, &r, &s, digest.as_bytes()).is_ok());
        assert!(matches!(
            ecdsa_p256(&point, &bad, &s, digest.as_bytes()),
            Err(Error::TpmBadSignature)
        ));
        #[cfg(feature = "fast-ecdsa")]
        {
            let ring = |r: &EccParameter, m: &[u8]| {
                ring_ecdsa(EccCurve::NistP256, HashAlg::Sha256, &point, r, &s, m).unwrap()
            };
            assert!(ring(&r, msg).is_ok());
            assert!(matches!(ring(&bad, msg), Err(Error::TpmBadSignature)));
            assert!(matches!(ring(&r, b"other"), Err(Error::TpmBadSignature)));
            assert!(ring_ecdsa(EccCurve::NistP256, HashAlg::Sha512, &point, &r, &s, msg).is_none());
        }
    }

    #[test]
    fn ecdsa_p256_and_p384_software_signatures_verify() {
        let msg = b"TPMS_ATTEST bytes";
        let mut rng = rand_core::OsRng;

        let sk = p256::ecdsa::SigningKey::random(&mut rng);
        let (sig, _): (p256::ecdsa::Signature, _) = sk.sign_recoverable(msg).unwrap();
        let pt = sk.verifying_key().to_encoded_point(false);
        let key = ecc_key(
            EccCurve::NistP256,
            EccScheme::EcDsa(HashAlg::Sha256),
            pt.x().unwrap(),
            pt.y().unwrap(),
        );
        let (r, s) = sig.split_bytes();
        let tpm_sig = Signature::EcDsa {
            hash: HashAlg::Sha256,
            r: EccParameter::new(&r).unwrap(),
            s: EccParameter::new(&s).unwrap(),
        };
        tpm_sig.verify(&key, msg).unwrap();
        assert!(matches!(
            tpm_sig.verify(&key, b"other"),
            Err(Error::TpmBadSignature)
        ));
        // A key restricted to SHA-384 refuses a SHA-256 signature.
        let k384 = ecc_key(
            EccCurve::NistP256,
            EccScheme::EcDsa(HashAlg::Sha384),
            pt.x().unwrap(),
            pt.y().unwrap(),
        );
        assert!(matches!(
            tpm_sig.verify(&k384, msg),
            Err(Error::TpmSchemeMismatch { .. })
        ));
        // A NULL-scheme key accepts any supported hash.
        let null = ecc_key(
            EccCurve::NistP256,
            EccScheme::Null,
            pt.x().unwrap(),
            pt.y().unwrap(),
        );
        tpm_sig.verify(&null, msg).unwrap();
        // Without the sign attribute the key is refused.
        let mut nosign = key.clone();
        nosign.attributes = nosign
            .attributes
            .with(crate::tpm::public::ObjectAttributes::SIGN, false);
        assert!(matches!(
            tpm_sig.verify(&nosign, msg),
            Err(Error::TpmInvalidKey { .. })
        ));

        let sk = p384::ecdsa::SigningKey::random(&mut rng);
        let (sig, _): (p384::ecdsa::Signature, _) = sk.sign_recoverable(msg).unwrap();
        let pt = sk.verifying_key().to_encoded_point(false);
        let key = ecc_key(
            EccCurve::NistP384,
            EccScheme::EcDsa(HashAlg::Sha384),
            pt.x().unwrap(),
            pt.y().unwrap(),
        );
        let (r, s) = sig.split_bytes();
        let tpm_sig = Signature::EcDsa {
            hash: HashAlg::Sha384,
            r: EccParameter::new(&r).unwrap(),
            s: EccParameter::new(&s).unwrap(),
        };
        tpm_sig.verify(&key, msg).unwrap();
        // An RSA signature for an ECC key is a scheme mismatch.
        let rsa_sig = Signature::RsaSsa {
            hash: HashAlg::Sha384,
            sig: PublicKeyRsa::new(&[1; 256]).unwrap(),
        };
        assert!(matches!(
            rsa_sig.verify(&key, msg),
            Err(Error::TpmSchemeMismatch { .. })
        ));
    }

    #[test]
    fn rsa_software_signatures_verify() {
        use crate::tpm::public::RsaParams;
        use rsa::traits::PublicKeyParts;
        use sha2::{Digest as _, Sha256};
        let mut rng = rand_core::OsRng;
        let sk = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let msg = b"TPMS_ATTEST bytes";
        let digest = Sha256::digest(msg);
        let key = |scheme| Public {
            name_alg: HashAlg::Sha256,
            attributes: attrs(),
            auth_policy: crate::tpm::types::Digest::default(),
            key: PublicKey::Rsa {
                params: RsaParams {
                    symmetric: None,
                    scheme,
                    key_bits: 1024,
                    exponent: 0,
                },
                modulus: PublicKeyRsa::new(&sk.n().to_bytes_be()).unwrap(),
            },
        };
        let ssa = sk
            .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
            .unwrap();
        let sig = Signature::RsaSsa {
            hash: HashAlg::Sha256,
            sig: PublicKeyRsa::new(&ssa).unwrap(),
        };
        sig.verify(&key(RsaScheme::RsaSsa(HashAlg::Sha256)), msg)
            .unwrap();
        assert!(matches!(
            sig.verify(&key(RsaScheme::RsaPss(HashAlg::Sha256)), msg),
            Err(Error::TpmSchemeMismatch { .. })
        ));
        for salt in [32, 128 - 32 - 2] {
            let pss = sk
                .sign_with_rng(&mut rng, rsa::Pss::new_with_salt::<Sha256>(salt), &digest)
                .unwrap();
            let sig = Signature::RsaPss {
                hash: HashAlg::Sha256,
                sig: PublicKeyRsa::new(&pss).unwrap(),
            };
            sig.verify(&key(RsaScheme::RsaPss(HashAlg::Sha256)), msg)
                .unwrap();
            let mut bad = pss.clone();
            bad[5] ^= 1;
            let bad = Signature::RsaPss {
                hash: HashAlg::Sha256,
                sig: PublicKeyRsa::new(&bad).unwrap(),
            };
            assert!(matches!(
                bad.verify(&key(RsaScheme::RsaPss(HashAlg::Sha256)), msg),
                Err(Error::TpmBadSignature)
            ));
        }
    }

    proptest! {
        #[test]
        fn signature_round_trips(s in arb_signature()) {
            let bytes = s.to_bytes();
            prop_assert_eq!(Signature::from_bytes(&bytes).unwrap(), s.clone());
            for cut in 0..bytes.len() {
                prop_assert!(matches!(Signature::from_bytes(&bytes[..cut]), Err(Error::Truncated { .. })), "cut at {}", cut);
            }
        }
    }
}
