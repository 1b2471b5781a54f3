//! TPM2_MakeCredential in software (Part 1 §24 "Credential Protection",
//! §11.4.10 KDFa/KDFe; Part 3 §12.6), and the challenge and answer of
//! credential activation.
//!
//! ```text
//!  seed ── RSA EK: random, nameAlg-sized; secret = RSA-OAEP(EK, nameAlg, label "IDENTITY\0")
//!       └─ ECC EK: ephemeral (d, Q); Z = x(d·EK); seed = KDFe(nameAlg, Z, "IDENTITY", Q.x, EK.x)
//!                  secret = TPMS_ECC_POINT Q
//!  symKey      = KDFa(nameAlg, seed, "STORAGE", Name(AK), -, EK's symmetric key bits)
//!  encIdentity = AES-CFB(symKey, IV = 0, TPM2B_DIGEST(credential))
//!  HMACkey     = KDFa(nameAlg, seed, "INTEGRITY", -, -, nameAlg digest bits)
//!  outerHMAC   = HMAC_nameAlg(HMACkey, encIdentity || Name(AK))
//!  credentialBlob = TPM2B_ID_OBJECT(TPM2B_DIGEST(outerHMAC) || encIdentity)
//! ```
//! Only the TPM holding the EK's private key recovers the seed, and it
//! releases the credential only if an object with that Name is loaded.

use alloc::vec::Vec;

use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use rand_core::CryptoRngCore;

use super::codec::{Reader, Writer};
use super::public::{EccCurve, Public, PublicKey, SymAlg, SymDef, SymMode};
use super::signature::{rsa_key, sec1_uncompressed};
use super::types::{Digest, EccParameter, EncryptedSecret, HashAlg, Name};
use crate::error::{Error, Result};

/// KDFa/KDFe label of the seed that protects a credential.
pub const LABEL_IDENTITY: &[u8] = b"IDENTITY";
/// KDFa label of the credential's symmetric key.
pub const LABEL_STORAGE: &[u8] = b"STORAGE";
/// KDFa label of the credential's HMAC key.
pub const LABEL_INTEGRITY: &[u8] = b"INTEGRITY";
/// Magic of tpm2-tools' credential file (`tpm2_makecredential -o`,
/// `tpm2_activatecredential -i`).
pub const TPM2_TOOLS_CREDENTIAL_MAGIC: u32 = 0xbadc_c0de;
/// Version of tpm2-tools' credential file.
pub const TPM2_TOOLS_CREDENTIAL_VERSION: u32 = 1;

/// Largest KDF output asked for here (bits): no key or seed is longer.
const MAX_KDF_BITS: u32 = 8 * 1024;

/// The label as the KDFs take it: with one terminating zero octet (added
/// if absent).
fn label_with_nul(label: &[u8]) -> Vec<u8> {
    let mut l = label.to_vec();
    if l.last() != Some(&0) {
        l.push(0);
    }
    l
}

fn check_bits(bits: u32) -> Result<usize> {
    if bits == 0 || bits > MAX_KDF_BITS {
        return Err(Error::InvalidValue {
            what: "KDF output size",
            reason: "must be 1 to 8192 bits",
        });
    }
    Ok(usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX))
}

/// Trim a KDF stream to `bits`: drop the excess bytes, then clear the
/// excess high bits of the first octet.
fn trim(mut out: Vec<u8>, bits: u32) -> Vec<u8> {
    out.truncate(usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX));
    if !bits.is_multiple_of(8) {
        if let Some(first) = out.first_mut() {
            *first &= 0xff >> (8 - bits % 8);
        }
    }
    out
}

/// KDFa (SP 800-108 counter mode with HMAC, Part 1 §11.4.10.2):
/// `HMAC_hash(key, i (u32 BE) || label || 0x00 || context_u || context_v ||
/// bits (u32 BE))` for i = 1, 2, ..., trimmed to `bits`.
pub fn kdf_a(
    hash: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Result<Vec<u8>> {
    let len = check_bits(bits)?;
    let label = label_with_nul(label);
    let mut out = Vec::with_capacity(len + hash.digest_size());
    let mut counter: u32 = 1;
    while out.len() < len {
        let block = hash.hmac(
            key,
            &[
                &counter.to_be_bytes(),
                &label,
                context_u,
                context_v,
                &bits.to_be_bytes(),
            ],
        )?;
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    Ok(trim(out, bits))
}

/// KDFe (SP 800-56A concatenation KDF, Part 1 §11.4.10.3):
/// `H_hash(i (u32 BE) || Z || label || 0x00 || party_u || party_v)` for
/// i = 1, 2, ..., trimmed to `bits`.
pub fn kdf_e(
    hash: HashAlg,
    z: &[u8],
    label: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Result<Vec<u8>> {
    let len = check_bits(bits)?;
    let label = label_with_nul(label);
    let mut out = Vec::with_capacity(len + hash.digest_size());
    let mut counter: u32 = 1;
    while out.len() < len {
        let block = hash.hash(&[&counter.to_be_bytes(), z, &label, party_u, party_v])?;
        out.extend_from_slice(block.as_bytes());
        counter = counter.wrapping_add(1);
    }
    Ok(trim(out, bits))
}

/// A TPM2B_ID_OBJECT (TPMS_ID_OBJECT, Part 2 §12.4.2): the integrity HMAC
/// and the encrypted TPM2B_DIGEST of the credential (its size field is
/// encrypted too, so it is opaque here).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdObject {
    integrity_hmac: Digest,
    enc_identity: Vec<u8>,
}

impl IdObject {
    /// Largest TPM2B_ID_OBJECT body: `sizeof(TPMS_ID_OBJECT)` = 2 + 64 + 2 + 64.
    pub const MAX: usize = 132;
    /// Smallest and largest encIdentity: an encrypted `u16` size and up to
    /// 64 bytes.
    pub const ENC_IDENTITY: (usize, usize) = (2, 66);

    /// Checked: encIdentity of 2 to 66 bytes.
    pub fn new(integrity_hmac: Digest, enc_identity: &[u8]) -> Result<Self> {
        let (min, max) = Self::ENC_IDENTITY;
        if enc_identity.len() < min {
            return Err(Error::Truncated {
                what: "TPMS_ID_OBJECT encIdentity",
            });
        }
        if enc_identity.len() > max {
            return Err(Error::TooLarge {
                what: "TPMS_ID_OBJECT encIdentity",
                len: enc_identity.len(),
                max,
            });
        }
        Ok(Self {
            integrity_hmac,
            enc_identity: enc_identity.to_vec(),
        })
    }

    /// The outer HMAC.
    pub fn integrity_hmac(&self) -> &Digest {
        &self.integrity_hmac
    }

    /// The encrypted credential (AES-CFB of its TPM2B_DIGEST).
    pub fn enc_identity(&self) -> &[u8] {
        &self.enc_identity
    }

    /// Parse a marshalled TPM2B_ID_OBJECT (with its size); refuses trailing
    /// bytes.
    pub fn from_tpm2b_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPM2B_ID_OBJECT")?;
        Ok(v)
    }

    /// The marshalled TPM2B_ID_OBJECT.
    pub fn to_tpm2b_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let mut inner = r.sized("TPM2B_ID_OBJECT", Self::MAX)?;
        let integrity_hmac = Digest::read(&mut inner)?;
        let rest = inner.remaining();
        let enc = inner.take(rest, "TPMS_ID_OBJECT encIdentity")?;
        Self::new(integrity_hmac, enc)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.sized_bounded(|w| {
            self.integrity_hmac.write(w);
            w.bytes(&self.enc_identity);
        });
    }
}

/// What TPM2_MakeCredential returns: the credential blob and the seed
/// encrypted to the EK.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MadeCredential {
    /// TPM2B_ID_OBJECT credentialBlob.
    pub credential_blob: IdObject,
    /// TPM2B_ENCRYPTED_SECRET secret.
    pub secret: EncryptedSecret,
}

impl MadeCredential {
    /// tpm2-tools' credential file: `0xBADCC0DE (u32 BE) || 1 (u32 BE) ||
    /// TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET`.
    pub fn to_tpm2_tools_file(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM2_TOOLS_CREDENTIAL_MAGIC);
        w.u32(TPM2_TOOLS_CREDENTIAL_VERSION);
        self.credential_blob.write(&mut w);
        self.secret.write(&mut w);
        w.into_vec()
    }

    /// Parse tpm2-tools' credential file; refuses another magic or version
    /// and trailing bytes.
    pub fn from_tpm2_tools_file(bytes: &[u8]) -> Result<Self> {
        const W: &str = "tpm2-tools credential file";
        let mut r = Reader::new(bytes);
        if r.u32(W)? != TPM2_TOOLS_CREDENTIAL_MAGIC {
            return Err(Error::InvalidValue {
                what: W,
                reason: "magic is not 0xBADCC0DE",
            });
        }
        let version = r.u32(W)?;
        if version != TPM2_TOOLS_CREDENTIAL_VERSION {
            return Err(Error::UnknownVersion {
                what: W,
                found: version,
            });
        }
        let credential_blob = IdObject::read(&mut r)?;
        let secret = EncryptedSecret::read(&mut r)?;
        r.finish(W)?;
        Ok(Self {
            credential_blob,
            secret,
        })
    }
}

/// The protection parameters of a storage key (an EK): its name algorithm
/// and its AES-CFB key size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageParams {
    /// The key's nameAlg: the hash of every KDF and of the HMAC.
    pub name_alg: HashAlg,
    /// AES key size in bits (128, 192 or 256).
    pub aes_bits: u16,
}

impl StorageParams {
    /// The parameters of `ek`, which must be a restricted decryption key
    /// whose symmetric algorithm is AES-CFB, and whose nameAlg this module
    /// computes.
    pub fn of(ek: &Public) -> Result<Self> {
        const W: &str = "MakeCredential";
        if !(ek.attributes.restricted() && ek.attributes.decrypt()) {
            return Err(Error::TpmInvalidKey {
                what: W,
                reason: "not a storage key (restricted and decrypt)",
            });
        }
        let symmetric = match &ek.key {
            PublicKey::Rsa { params, .. } => params.symmetric,
            PublicKey::Ecc { params, .. } => params.symmetric,
            other => {
                return Err(Error::TpmUnsupportedAlgorithm {
                    what: "MakeCredential key type",
                    alg: other.type_id(),
                })
            }
        };
        match symmetric {
            Some(SymDef {
                alg: SymAlg::Aes,
                key_bits: aes_bits @ (128 | 192 | 256),
                mode: SymMode::Cfb,
            }) => {
                // Refuse a nameAlg we cannot compute now, not half-way.
                ek.name_alg.hash(&[])?;
                Ok(Self {
                    name_alg: ek.name_alg,
                    aes_bits,
                })
            }
            Some(SymDef { alg, mode, .. }) if alg == SymAlg::Aes && mode != SymMode::Cfb => {
                Err(Error::TpmUnsupportedAlgorithm {
                    what: "MakeCredential symmetric mode (AES-CFB only)",
                    alg: mode.id(),
                })
            }
            Some(SymDef { alg, .. }) if alg != SymAlg::Aes => Err(Error::TpmUnsupportedAlgorithm {
                what: "MakeCredential symmetric algorithm (AES-CFB only)",
                alg: alg.id(),
            }),
            Some(_) => Err(Error::TpmInvalidKey {
                what: W,
                reason: "AES key size is not 128, 192 or 256 bits",
            }),
            None => Err(Error::TpmInvalidKey {
                what: W,
                reason: "no symmetric algorithm (not a storage key)",
            }),
        }
    }

    fn digest_bits(self) -> u32 {
        u32::try_from(self.name_alg.digest_size() * 8).unwrap_or(u32::MAX)
    }
}

fn aes_cfb(bits: u16, key: &[u8], buf: &mut [u8], encrypt: bool) -> Result<()> {
    let iv = [0u8; 16];
    let bad = |_| Error::InvalidValue {
        what: "AES-CFB key",
        reason: "wrong length",
    };
    macro_rules! run {
        ($c:ty) => {
            if encrypt {
                cfb_mode::Encryptor::<$c>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .encrypt(buf)
            } else {
                cfb_mode::Decryptor::<$c>::new_from_slices(key, &iv)
                    .map_err(bad)?
                    .decrypt(buf)
            }
        };
    }
    match bits {
        128 => run!(aes::Aes128),
        192 => run!(aes::Aes192),
        256 => run!(aes::Aes256),
        _ => {
            return Err(Error::TpmInvalidKey {
                what: "MakeCredential",
                reason: "AES key size is not 128, 192 or 256 bits",
            })
        }
    }
    Ok(())
}

/// The credential blob for `credential`, given the seed (the deterministic
/// half of MakeCredential, Part 1 §24.4-24.5).
pub fn protect_credential(
    params: StorageParams,
    seed: &[u8],
    name: &Name,
    credential: &Digest,
) -> Result<IdObject> {
    if credential.len() > params.name_alg.digest_size() {
        return Err(Error::TooLarge {
            what: "MakeCredential credential",
            len: credential.len(),
            max: params.name_alg.digest_size(),
        });
    }
    let sym_key = kdf_a(
        params.name_alg,
        seed,
        LABEL_STORAGE,
        name.as_bytes(),
        &[],
        u32::from(params.aes_bits),
    )?;
    let mut enc = Writer::new();
    credential.write(&mut enc);
    let mut enc = enc.into_vec();
    aes_cfb(params.aes_bits, &sym_key, &mut enc, true)?;
    let hmac_key = kdf_a(
        params.name_alg,
        seed,
        LABEL_INTEGRITY,
        &[],
        &[],
        params.digest_bits(),
    )?;
    let hmac = params.name_alg.hmac(&hmac_key, &[&enc, name.as_bytes()])?;
    IdObject::new(Digest::new(&hmac)?, &enc)
}

/// The inverse of [`protect_credential`] (what TPM2_ActivateCredential does
/// once it has the seed): checks the integrity HMAC against `name`
/// ([`Error::TpmCredentialIntegrity`]), then decrypts.
pub fn unprotect_credential(
    params: StorageParams,
    seed: &[u8],
    name: &Name,
    blob: &IdObject,
) -> Result<Digest> {
    let hmac_key = kdf_a(
        params.name_alg,
        seed,
        LABEL_INTEGRITY,
        &[],
        &[],
        params.digest_bits(),
    )?;
    let expected = params
        .name_alg
        .hmac(&hmac_key, &[blob.enc_identity(), name.as_bytes()])?;
    if !Digest::new(&expected)?.ct_eq(blob.integrity_hmac()) {
        return Err(Error::TpmCredentialIntegrity);
    }
    let sym_key = kdf_a(
        params.name_alg,
        seed,
        LABEL_STORAGE,
        name.as_bytes(),
        &[],
        u32::from(params.aes_bits),
    )?;
    let mut plain = blob.enc_identity().to_vec();
    aes_cfb(params.aes_bits, &sym_key, &mut plain, false)?;
    let mut r = Reader::new(&plain);
    let credential = Digest::read(&mut r)?;
    r.finish("TPMS_ID_OBJECT encIdentity")?;
    Ok(credential)
}

/// The seed of an ECC credential from the ECDH shared x-coordinate `z`,
/// the ephemeral point's x and the EK's x (as marshalled in its public
/// area): `KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, ek.x, digest bits)`.
pub fn ecc_seed(
    params: StorageParams,
    z: &[u8],
    ephemeral_x: &[u8],
    ek_x: &[u8],
) -> Result<Vec<u8>> {
    kdf_e(
        params.name_alg,
        z,
        LABEL_IDENTITY,
        ephemeral_x,
        ek_x,
        params.digest_bits(),
    )
}

macro_rules! ecc_encrypt_seed {
    ($fn_name:ident, $curve:ident, $n:literal) => {
        fn $fn_name(
            params: StorageParams,
            point: &super::public::EccPoint,
            rng: &mut impl CryptoRngCore,
        ) -> Result<(Vec<u8>, EncryptedSecret)> {
            let ek = $curve::PublicKey::from_sec1_bytes(&sec1_uncompressed::<$n>(point)?).map_err(
                |_| Error::TpmInvalidKey {
                    what: "MakeCredential",
                    reason: "EK point is not on the curve",
                },
            )?;
            let ephemeral = $curve::ecdh::EphemeralSecret::random(rng);
            let shared = ephemeral.diffie_hellman(&ek);
            let q = $curve::EncodedPoint::from(ephemeral.public_key());
            let (Some(x), Some(y)) = (q.x(), q.y()) else {
                return Err(Error::TpmInvalidKey {
                    what: "MakeCredential",
                    reason: "ephemeral point has no affine coordinates",
                });
            };
            let seed = ecc_seed(
                params,
                shared.raw_secret_bytes().as_slice(),
                x.as_slice(),
                point.x.as_bytes(),
            )?;
            let eph = super::public::EccPoint {
                x: EccParameter::new(x.as_slice())?,
                y: EccParameter::new(y.as_slice())?,
            };
            Ok((seed, EncryptedSecret::new(&eph.to_bytes())?))
        }
    };
}

ecc_encrypt_seed!(ecc_seed_p256, p256, 32);
ecc_encrypt_seed!(ecc_seed_p384, p384, 48);

fn rsa_encrypt_seed(
    params: StorageParams,
    modulus: &super::types::PublicKeyRsa,
    exponent: u32,
    rng: &mut impl CryptoRngCore,
) -> Result<(Vec<u8>, EncryptedSecret)> {
    use rsa::Oaep;
    use sha2::{Sha256, Sha384, Sha512};
    let key = rsa_key(modulus, exponent, "MakeCredential")?;
    let mut seed = alloc::vec![0u8; params.name_alg.digest_size()];
    rng.fill_bytes(&mut seed);
    // The label is "IDENTITY" with its terminating zero octet.
    let label = "IDENTITY\0";
    let padding = match params.name_alg {
        HashAlg::Sha256 => Oaep::new_with_label::<Sha256, _>(label),
        HashAlg::Sha384 => Oaep::new_with_label::<Sha384, _>(label),
        HashAlg::Sha512 => Oaep::new_with_label::<Sha512, _>(label),
        other => return Err(other.not_computed("MakeCredential OAEP hash")),
    };
    let ct = key
        .encrypt(rng, padding, &seed)
        .map_err(|_| Error::TpmInvalidKey {
            what: "MakeCredential",
            reason: "RSA-OAEP encryption failed (modulus too small for the seed)",
        })?;
    Ok((seed, EncryptedSecret::new(&ct)?))
}

/// TPM2_MakeCredential in software: protect `credential` (at most the EK
/// nameAlg's digest size) so that only the TPM holding `ek`'s private key,
/// with the object named `ak_name` loaded, can recover it with
/// TPM2_ActivateCredential.
///
/// `ek` must be a storage key with AES-CFB: an RSA key (the seed goes
/// under RSA-OAEP with the nameAlg and label "IDENTITY") or an ECC key on
/// P-256 or P-384 (ECDH with an ephemeral key from `rng`, then KDFe).
pub fn make_credential(
    ek: &Public,
    ak_name: &Name,
    credential: &Digest,
    rng: &mut impl CryptoRngCore,
) -> Result<MadeCredential> {
    let params = StorageParams::of(ek)?;
    if credential.len() > params.name_alg.digest_size() {
        return Err(Error::TooLarge {
            what: "MakeCredential credential",
            len: credential.len(),
            max: params.name_alg.digest_size(),
        });
    }
    let (seed, secret) = match &ek.key {
        PublicKey::Rsa { params: p, modulus } => {
            rsa_encrypt_seed(params, modulus, p.effective_exponent(), rng)?
        }
        PublicKey::Ecc { params: p, point } => match p.curve {
            EccCurve::NistP256 => ecc_seed_p256(params, point, rng)?,
            EccCurve::NistP384 => ecc_seed_p384(params, point, rng)?,
            other => {
                return Err(Error::TpmUnsupportedAlgorithm {
                    what: "MakeCredential curve (P-256 and P-384 only)",
                    alg: other.id(),
                })
            }
        },
        other => {
            return Err(Error::TpmUnsupportedAlgorithm {
                what: "MakeCredential key type",
                alg: other.type_id(),
            })
        }
    };
    Ok(MadeCredential {
        credential_blob: protect_credential(params, &seed, ak_name, credential)?,
        secret,
    })
}

/// Version byte of [`CredentialChallenge`] and [`CredentialAnswer`].
pub const CREDENTIAL_WIRE_VERSION: u8 = 1;

/// The verifier's credential-activation challenge to an agent: "activate
/// this credential for the AK named `ak_name` with your EK".
///
/// Encoding: `0x01 || TPM2B_NAME ak_name || TPM2B_ID_OBJECT credential_blob
/// || TPM2B_ENCRYPTED_SECRET encrypted_secret`, nothing after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialChallenge {
    /// The AK the credential is bound to.
    pub ak_name: Name,
    /// TPM2B_ID_OBJECT from MakeCredential.
    pub credential_blob: IdObject,
    /// TPM2B_ENCRYPTED_SECRET from MakeCredential.
    pub encrypted_secret: EncryptedSecret,
}

impl CredentialChallenge {
    /// A challenge from a MakeCredential result.
    pub fn new(ak_name: Name, made: MadeCredential) -> Self {
        Self {
            ak_name,
            credential_blob: made.credential_blob,
            encrypted_secret: made.secret,
        }
    }

    /// The blob and secret as MakeCredential returned them.
    pub fn made_credential(&self) -> MadeCredential {
        MadeCredential {
            credential_blob: self.credential_blob.clone(),
            secret: self.encrypted_secret.clone(),
        }
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CREDENTIAL_WIRE_VERSION);
        self.ak_name.write(&mut w);
        self.credential_blob.write(&mut w);
        self.encrypted_secret.write(&mut w);
        w.into_vec()
    }

    /// Decode; refuses another version and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const W: &str = "credential challenge";
        let mut r = versioned_reader(bytes, W)?;
        let v = Self {
            ak_name: Name::read(&mut r, "credential challenge AK name")?,
            credential_blob: IdObject::read(&mut r)?,
            encrypted_secret: EncryptedSecret::read(&mut r)?,
        };
        r.finish(W)?;
        Ok(v)
    }
}

/// A reader past the wire-version byte of a challenge or answer; refuses
/// any version but [`CREDENTIAL_WIRE_VERSION`].
fn versioned_reader<'a>(bytes: &'a [u8], what: &'static str) -> Result<Reader<'a>> {
    let mut r = Reader::new(bytes);
    let version = r.u8(what)?;
    if version != CREDENTIAL_WIRE_VERSION {
        return Err(Error::UnknownVersion {
            what,
            found: u32::from(version),
        });
    }
    Ok(r)
}

/// The agent's answer: the credential TPM2_ActivateCredential returned.
///
/// Encoding: `0x01 || TPM2B_DIGEST secret`, nothing after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialAnswer {
    /// The recovered credential.
    pub secret: Digest,
}

impl CredentialAnswer {
    /// Whether the answer holds `expected` (compared in constant time).
    pub fn matches(&self, expected: &Digest) -> bool {
        self.secret.ct_eq(expected)
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CREDENTIAL_WIRE_VERSION);
        self.secret.write(&mut w);
        w.into_vec()
    }

    /// Decode; refuses another version and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        const W: &str = "credential answer";
        let mut r = versioned_reader(bytes, W)?;
        let secret = Digest::read(&mut r)?;
        r.finish(W)?;
        Ok(Self { secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::hex_encode;
    use crate::tpm::attest::tests::arb_name;
    use crate::tpm::public::{EccParams, EccScheme, KdfScheme, ObjectAttributes};
    use proptest::prelude::*;

    fn params(name_alg: HashAlg, aes_bits: u16) -> StorageParams {
        StorageParams { name_alg, aes_bits }
    }

    #[test]
    fn kdfa_known_answer() {
        // KDFa is HMAC in counter mode; one block equals one HMAC over the
        // spelled-out input.
        let key = [7u8; 32];
        let one = kdf_a(HashAlg::Sha256, &key, b"STORAGE", b"u", b"v", 256).unwrap();
        let direct = HashAlg::Sha256
            .hmac(
                &key,
                &[&[0, 0, 0, 1], b"STORAGE\0", b"u", b"v", &[0, 0, 1, 0]],
            )
            .unwrap();
        assert_eq!(one, direct);
        // A longer output starts with the 2-block stream for its own bits.
        let two = kdf_a(HashAlg::Sha256, &key, b"STORAGE", b"u", b"v", 384).unwrap();
        assert_eq!(two.len(), 48);
        // A label already ending in NUL is not given a second one.
        assert_eq!(
            kdf_a(HashAlg::Sha256, &key, b"STORAGE\0", b"u", b"v", 256).unwrap(),
            one
        );
        // Odd bit counts clear the first octet's excess bits.
        let odd = kdf_a(HashAlg::Sha256, &key, b"X", b"", b"", 12).unwrap();
        assert_eq!(odd.len(), 2);
        assert_eq!(odd[0] & 0xf0, 0);
        assert!(matches!(
            kdf_a(HashAlg::Sha256, &key, b"X", b"", b"", 0),
            Err(Error::InvalidValue { .. })
        ));
    }

    #[test]
    fn kdfe_known_answer() {
        let e = kdf_e(HashAlg::Sha384, b"z", b"IDENTITY", b"u", b"v", 384).unwrap();
        let direct = HashAlg::Sha384
            .hash(&[&[0, 0, 0, 1], b"z", b"IDENTITY\0", b"u", b"v"])
            .unwrap();
        assert_eq!(hex_encode(&e), direct.to_hex());
    }

    #[test]
    fn integrity_catches_a_wrong_name_and_tampering() {
        let p = params(HashAlg::Sha256, 128);
        let name =
            Name::from_digest(HashAlg::Sha256, &HashAlg::Sha256.hash(&[b"ak"]).unwrap()).unwrap();
        let other =
            Name::from_digest(HashAlg::Sha256, &HashAlg::Sha256.hash(&[b"x"]).unwrap()).unwrap();
        let cred = Digest::new(b"sixteen byte sec").unwrap();
        let blob = protect_credential(p, &[1; 32], &name, &cred).unwrap();
        assert_eq!(
            unprotect_credential(p, &[1; 32], &name, &blob).unwrap(),
            cred
        );
        assert!(matches!(
            unprotect_credential(p, &[1; 32], &other, &blob),
            Err(Error::TpmCredentialIntegrity)
        ));
        assert!(matches!(
            unprotect_credential(p, &[2; 32], &name, &blob),
            Err(Error::TpmCredentialIntegrity)
        ));
        let mut enc = blob.enc_identity().to_vec();
        enc[3] ^= 1;
        let bad = IdObject::new(blob.integrity_hmac().clone(), &enc).unwrap();
        assert!(matches!(
            unprotect_credential(p, &[1; 32], &name, &bad),
            Err(Error::TpmCredentialIntegrity)
        ));
        assert!(matches!(
            protect_credential(p, &[1; 32], &name, &Digest::new(&[0; 33]).unwrap()),
            Err(Error::TooLarge { .. })
        ));
    }

    fn ecc_ek(curve: EccCurve, name_alg: HashAlg, aes_bits: u16, x: &[u8], y: &[u8]) -> Public {
        Public {
            name_alg,
            attributes: ObjectAttributes::default()
                .with(ObjectAttributes::RESTRICTED, true)
                .with(ObjectAttributes::DECRYPT, true),
            auth_policy: Digest::default(),
            key: PublicKey::Ecc {
                params: EccParams {
                    symmetric: Some(SymDef {
                        alg: SymAlg::Aes,
                        key_bits: aes_bits,
                        mode: SymMode::Cfb,
                    }),
                    scheme: EccScheme::Null,
                    curve,
                    kdf: KdfScheme::Null,
                },
                point: crate::tpm::public::EccPoint {
                    x: EccParameter::new(x).unwrap(),
                    y: EccParameter::new(y).unwrap(),
                },
            },
        }
    }

    #[test]
    fn ecc_p384_make_credential_opens_with_the_ek_private_key() {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        let mut rng = rand_core::OsRng;
        let ek_secret = p384::SecretKey::random(&mut rng);
        let ek_point = ek_secret.public_key().to_encoded_point(false);
        let ek = ecc_ek(
            EccCurve::NistP384,
            HashAlg::Sha384,
            256,
            ek_point.x().unwrap(),
            ek_point.y().unwrap(),
        );
        let name =
            Name::from_digest(HashAlg::Sha256, &HashAlg::Sha256.hash(&[b"ak"]).unwrap()).unwrap();
        let cred = Digest::new(&[9u8; 48]).unwrap();
        let made = make_credential(&ek, &name, &cred, &mut rng).unwrap();
        // What the TPM does with its private key:
        let q = crate::tpm::public::EccPoint::from_bytes(made.secret.as_bytes()).unwrap();
        let mut sec1 = alloc::vec![4u8];
        sec1.extend_from_slice(q.x.as_bytes());
        sec1.extend_from_slice(q.y.as_bytes());
        let q_pub = p384::PublicKey::from_sec1_bytes(&sec1).unwrap();
        let z = p384::ecdh::diffie_hellman(ek_secret.to_nonzero_scalar(), q_pub.as_affine());
        let p = StorageParams::of(&ek).unwrap();
        let seed = ecc_seed(
            p,
            z.raw_secret_bytes(),
            q.x.as_bytes(),
            ek_point.x().unwrap(),
        )
        .unwrap();
        assert_eq!(
            unprotect_credential(p, &seed, &name, &made.credential_blob).unwrap(),
            cred
        );
        // 49 bytes exceed SHA-384's digest size.
        assert!(matches!(
            make_credential(&ek, &name, &Digest::new(&[0; 49]).unwrap(), &mut rng),
            Err(Error::TooLarge { .. })
        ));
        // A point off the curve is refused.
        let mut bad_y = ek_point.y().unwrap().to_vec();
        bad_y[10] ^= 1;
        let bad = ecc_ek(
            EccCurve::NistP384,
            HashAlg::Sha384,
            256,
            ek_point.x().unwrap(),
            &bad_y,
        );
        assert!(matches!(
            make_credential(&bad, &name, &cred, &mut rng),
            Err(Error::TpmInvalidKey { .. })
        ));
    }

    #[test]
    fn non_storage_keys_are_refused() {
        let mut ek = ecc_ek(EccCurve::NistP256, HashAlg::Sha256, 128, &[1; 32], &[2; 32]);
        ek.attributes = ek.attributes.with(ObjectAttributes::RESTRICTED, false);
        assert!(matches!(
            StorageParams::of(&ek),
            Err(Error::TpmInvalidKey { .. })
        ));
        let ek = ecc_ek(EccCurve::NistP256, HashAlg::Sha256, 100, &[1; 32], &[2; 32]);
        assert!(matches!(
            StorageParams::of(&ek),
            Err(Error::TpmInvalidKey { .. })
        ));
        let ek = ecc_ek(EccCurve::NistP256, HashAlg::Sha1, 128, &[1; 32], &[2; 32]);
        assert!(matches!(
            StorageParams::of(&ek),
            Err(Error::TpmUnsupportedAlgorithm { .. })
        ));
    }

    fn arb_id_object() -> impl Strategy<Value = IdObject> {
        (
            prop::collection::vec(any::<u8>(), 0..=64),
            prop::collection::vec(any::<u8>(), 2..=66),
        )
            .prop_map(|(h, e)| IdObject::new(Digest::new(&h).unwrap(), &e).unwrap())
    }

    proptest! {
        #[test]
        fn challenge_and_answer_round_trip(
            ak_name in arb_name(),
            credential_blob in arb_id_object(),
            secret in prop::collection::vec(any::<u8>(), 0..=512),
            answer in prop::collection::vec(any::<u8>(), 0..=64),
        ) {
            let c = CredentialChallenge {
                ak_name,
                credential_blob,
                encrypted_secret: EncryptedSecret::new(&secret).unwrap(),
            };
            let bytes = c.to_bytes();
            prop_assert_eq!(CredentialChallenge::from_bytes(&bytes).unwrap(), c.clone());
            for cut in 0..bytes.len() {
                prop_assert!(CredentialChallenge::from_bytes(&bytes[..cut]).is_err());
            }
            let file = c.made_credential().to_tpm2_tools_file();
            prop_assert_eq!(MadeCredential::from_tpm2_tools_file(&file).unwrap(), c.made_credential());
            let a = CredentialAnswer { secret: Digest::new(&answer).unwrap() };
            prop_assert_eq!(CredentialAnswer::from_bytes(&a.to_bytes()).unwrap(), a.clone());
            prop_assert!(a.matches(&a.secret));
        }

        #[test]
        fn protect_unprotect_round_trip(
            seed in prop::collection::vec(any::<u8>(), 1..64),
            cred in prop::collection::vec(any::<u8>(), 0..=32),
            ak in any::<[u8; 32]>(),
            aes in prop::sample::select(alloc::vec![128u16, 192, 256]),
        ) {
            let p = params(HashAlg::Sha256, aes);
            let name = Name::from_digest(HashAlg::Sha256, &Digest::new(&ak).unwrap()).unwrap();
            let cred = Digest::new(&cred).unwrap();
            let blob = protect_credential(p, &seed, &name, &cred).unwrap();
            prop_assert_eq!(IdObject::from_tpm2b_bytes(&blob.to_tpm2b_bytes()).unwrap(), blob.clone());
            prop_assert_eq!(unprotect_credential(p, &seed, &name, &blob).unwrap(), cred);
        }
    }
}
