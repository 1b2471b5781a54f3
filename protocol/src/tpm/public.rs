//! TPMT_PUBLIC (Part 2 §12.2.4): an object's public area, its attributes
//! (TPMA_OBJECT, §8.3) and its Name.

use alloc::vec::Vec;
use core::fmt;

use super::codec::{Reader, Writer};
use super::types::{Digest, EccParameter, HashAlg, Name, PublicKeyRsa, TPM_ALG_NULL};
use crate::error::{Error, Result};
use crate::ids::BuilderId;

/// TPM_ALG_RSA.
pub const TPM_ALG_RSA: u16 = 0x0001;
/// TPM_ALG_KEYEDHASH.
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
/// TPM_ALG_ECC.
pub const TPM_ALG_ECC: u16 = 0x0023;
/// TPM_ALG_SYMCIPHER.
pub const TPM_ALG_SYMCIPHER: u16 = 0x0025;

/// Largest marshalled TPMT_PUBLIC accepted (a 4096-bit RSA key needs
/// under 600 bytes).
pub const MAX_PUBLIC: usize = 1024;

/// TPMA_OBJECT: an object's attributes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ObjectAttributes(u32);

impl ObjectAttributes {
    /// fixedTPM (bit 1): the object cannot be duplicated.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// stClear (bit 2): the object's context cannot be loaded after a
    /// Startup(CLEAR).
    pub const ST_CLEAR: u32 = 1 << 2;
    /// fixedParent (bit 4): the object's parent cannot change.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// sensitiveDataOrigin (bit 5): the TPM generated the secret.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// userWithAuth (bit 6): the USER role may use the authValue.
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// adminWithPolicy (bit 7): the ADMIN role needs a policy session.
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// noDA (bit 10): not subject to dictionary-attack protection.
    pub const NO_DA: u32 = 1 << 10;
    /// encryptedDuplication (bit 11).
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// restricted (bit 16): signs only TPM-made digests / decrypts only
    /// TPM-formatted data.
    pub const RESTRICTED: u32 = 1 << 16;
    /// decrypt (bit 17).
    pub const DECRYPT: u32 = 1 << 17;
    /// sign / encrypt (bit 18).
    pub const SIGN: u32 = 1 << 18;
    /// x509sign (bit 19).
    pub const X509_SIGN: u32 = 1 << 19;
    /// Every defined bit; the others are reserved and must be clear.
    pub const DEFINED: u32 = Self::FIXED_TPM
        | Self::ST_CLEAR
        | Self::FIXED_PARENT
        | Self::SENSITIVE_DATA_ORIGIN
        | Self::USER_WITH_AUTH
        | Self::ADMIN_WITH_POLICY
        | Self::NO_DA
        | Self::ENCRYPTED_DUPLICATION
        | Self::RESTRICTED
        | Self::DECRYPT
        | Self::SIGN
        | Self::X509_SIGN;

    /// From the marshalled value; refuses reserved bits.
    pub fn from_bits(bits: u32) -> Result<Self> {
        if bits & !Self::DEFINED != 0 {
            return Err(Error::InvalidValue {
                what: "TPMA_OBJECT",
                reason: "reserved bits set",
            });
        }
        Ok(Self(bits))
    }

    /// The marshalled value.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// These attributes with `flag` (one of the constants) set or cleared.
    /// Reserved bits in `flag` are ignored.
    #[must_use]
    pub fn with(self, flag: u32, on: bool) -> Self {
        let flag = flag & Self::DEFINED;
        Self(if on { self.0 | flag } else { self.0 & !flag })
    }

    fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// fixedTPM.
    pub fn fixed_tpm(self) -> bool {
        self.has(Self::FIXED_TPM)
    }
    /// stClear.
    pub fn st_clear(self) -> bool {
        self.has(Self::ST_CLEAR)
    }
    /// fixedParent.
    pub fn fixed_parent(self) -> bool {
        self.has(Self::FIXED_PARENT)
    }
    /// sensitiveDataOrigin.
    pub fn sensitive_data_origin(self) -> bool {
        self.has(Self::SENSITIVE_DATA_ORIGIN)
    }
    /// userWithAuth.
    pub fn user_with_auth(self) -> bool {
        self.has(Self::USER_WITH_AUTH)
    }
    /// adminWithPolicy.
    pub fn admin_with_policy(self) -> bool {
        self.has(Self::ADMIN_WITH_POLICY)
    }
    /// noDA.
    pub fn no_da(self) -> bool {
        self.has(Self::NO_DA)
    }
    /// encryptedDuplication.
    pub fn encrypted_duplication(self) -> bool {
        self.has(Self::ENCRYPTED_DUPLICATION)
    }
    /// restricted.
    pub fn restricted(self) -> bool {
        self.has(Self::RESTRICTED)
    }
    /// decrypt.
    pub fn decrypt(self) -> bool {
        self.has(Self::DECRYPT)
    }
    /// sign (sign/encrypt).
    pub fn sign(self) -> bool {
        self.has(Self::SIGN)
    }
    /// x509sign.
    pub fn x509_sign(self) -> bool {
        self.has(Self::X509_SIGN)
    }
}

impl fmt::Debug for ObjectAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 12] = [
            (ObjectAttributes::FIXED_TPM, "fixedTPM"),
            (ObjectAttributes::ST_CLEAR, "stClear"),
            (ObjectAttributes::FIXED_PARENT, "fixedParent"),
            (
                ObjectAttributes::SENSITIVE_DATA_ORIGIN,
                "sensitiveDataOrigin",
            ),
            (ObjectAttributes::USER_WITH_AUTH, "userWithAuth"),
            (ObjectAttributes::ADMIN_WITH_POLICY, "adminWithPolicy"),
            (ObjectAttributes::NO_DA, "noDA"),
            (
                ObjectAttributes::ENCRYPTED_DUPLICATION,
                "encryptedDuplication",
            ),
            (ObjectAttributes::RESTRICTED, "restricted"),
            (ObjectAttributes::DECRYPT, "decrypt"),
            (ObjectAttributes::SIGN, "sign"),
            (ObjectAttributes::X509_SIGN, "x509sign"),
        ];
        write!(f, "ObjectAttributes({:#010x}:", self.0)?;
        for (bit, name) in NAMES {
            if self.has(bit) {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// A block cipher for TPMT_SYM_DEF_OBJECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymAlg {
    /// TPM_ALG_AES (0x0006).
    Aes,
    /// TPM_ALG_SM4 (0x0013).
    Sm4,
    /// TPM_ALG_CAMELLIA (0x0026).
    Camellia,
}

impl SymAlg {
    /// The TPM_ALG_ID.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes => 0x0006,
            Self::Sm4 => 0x0013,
            Self::Camellia => 0x0026,
        }
    }
}

/// A block cipher mode (TPMI_ALG_SYM_MODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymMode {
    /// TPM_ALG_CTR (0x0040).
    Ctr,
    /// TPM_ALG_OFB (0x0041).
    Ofb,
    /// TPM_ALG_CBC (0x0042).
    Cbc,
    /// TPM_ALG_CFB (0x0043), the mode of storage keys.
    Cfb,
    /// TPM_ALG_ECB (0x0044).
    Ecb,
}

impl SymMode {
    /// The TPM_ALG_ID.
    pub const fn id(self) -> u16 {
        match self {
            Self::Ctr => 0x0040,
            Self::Ofb => 0x0041,
            Self::Cbc => 0x0042,
            Self::Cfb => 0x0043,
            Self::Ecb => 0x0044,
        }
    }

    fn from_id(id: u16) -> Result<Self> {
        [Self::Ctr, Self::Ofb, Self::Cbc, Self::Cfb, Self::Ecb]
            .into_iter()
            .find(|m| m.id() == id)
            .ok_or(Error::TpmUnsupportedAlgorithm {
                what: "TPMT_SYM_DEF_OBJECT mode",
                alg: id,
            })
    }
}

/// A TPMT_SYM_DEF_OBJECT that is not TPM_ALG_NULL: the symmetric algorithm
/// of a storage key (its children's and credentials' protection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymDef {
    /// The cipher.
    pub alg: SymAlg,
    /// Key size in bits.
    pub key_bits: u16,
    /// The mode.
    pub mode: SymMode,
}

impl SymDef {
    fn read_object(r: &mut Reader<'_>) -> Result<Option<Self>> {
        let id = r.u16("TPMT_SYM_DEF_OBJECT algorithm")?;
        let alg = match id {
            TPM_ALG_NULL => return Ok(None),
            0x0006 => SymAlg::Aes,
            0x0013 => SymAlg::Sm4,
            0x0026 => SymAlg::Camellia,
            _ => {
                return Err(Error::TpmUnsupportedAlgorithm {
                    what: "TPMT_SYM_DEF_OBJECT algorithm",
                    alg: id,
                })
            }
        };
        let key_bits = r.u16("TPMT_SYM_DEF_OBJECT keyBits")?;
        let mode = SymMode::from_id(r.u16("TPMT_SYM_DEF_OBJECT mode")?)?;
        Ok(Some(Self {
            alg,
            key_bits,
            mode,
        }))
    }

    fn write_object(def: Option<&Self>, w: &mut Writer) {
        match def {
            None => w.u16(TPM_ALG_NULL),
            Some(d) => {
                w.u16(d.alg.id());
                w.u16(d.key_bits);
                w.u16(d.mode.id());
            }
        }
    }
}

/// TPMT_RSA_SCHEME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaScheme {
    /// TPM_ALG_NULL: any scheme the caller names (unrestricted keys).
    Null,
    /// TPM_ALG_RSASSA (0x0014): PKCS#1 v1.5 signatures.
    RsaSsa(HashAlg),
    /// TPM_ALG_RSAES (0x0015): PKCS#1 v1.5 encryption.
    RsaEs,
    /// TPM_ALG_RSAPSS (0x0016).
    RsaPss(HashAlg),
    /// TPM_ALG_OAEP (0x0017).
    Oaep(HashAlg),
}

impl RsaScheme {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const W: &str = "TPMT_RSA_SCHEME";
        Ok(match r.u16(W)? {
            TPM_ALG_NULL => Self::Null,
            0x0014 => Self::RsaSsa(HashAlg::read(r, W)?),
            0x0015 => Self::RsaEs,
            0x0016 => Self::RsaPss(HashAlg::read(r, W)?),
            0x0017 => Self::Oaep(HashAlg::read(r, W)?),
            alg => return Err(Error::TpmUnsupportedAlgorithm { what: W, alg }),
        })
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Null => w.u16(TPM_ALG_NULL),
            Self::RsaSsa(h) => {
                w.u16(0x0014);
                h.write(w);
            }
            Self::RsaEs => w.u16(0x0015),
            Self::RsaPss(h) => {
                w.u16(0x0016);
                h.write(w);
            }
            Self::Oaep(h) => {
                w.u16(0x0017);
                h.write(w);
            }
        }
    }
}

/// TPMT_ECC_SCHEME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EccScheme {
    /// TPM_ALG_NULL.
    Null,
    /// TPM_ALG_ECDSA (0x0018).
    EcDsa(HashAlg),
    /// TPM_ALG_ECDH (0x0019).
    EcDh(HashAlg),
    /// TPM_ALG_ECDAA (0x001a), with its count.
    EcDaa {
        /// The hash.
        hash: HashAlg,
        /// The commit count.
        count: u16,
    },
    /// TPM_ALG_SM2 (0x001b).
    Sm2(HashAlg),
    /// TPM_ALG_ECSCHNORR (0x001c).
    EcSchnorr(HashAlg),
    /// TPM_ALG_ECMQV (0x001d).
    EcMqv(HashAlg),
}

impl EccScheme {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const W: &str = "TPMT_ECC_SCHEME";
        Ok(match r.u16(W)? {
            TPM_ALG_NULL => Self::Null,
            0x0018 => Self::EcDsa(HashAlg::read(r, W)?),
            0x0019 => Self::EcDh(HashAlg::read(r, W)?),
            0x001a => Self::EcDaa {
                hash: HashAlg::read(r, W)?,
                count: r.u16(W)?,
            },
            0x001b => Self::Sm2(HashAlg::read(r, W)?),
            0x001c => Self::EcSchnorr(HashAlg::read(r, W)?),
            0x001d => Self::EcMqv(HashAlg::read(r, W)?),
            alg => return Err(Error::TpmUnsupportedAlgorithm { what: W, alg }),
        })
    }

    fn write(&self, w: &mut Writer) {
        let (id, h) = match self {
            Self::Null => {
                w.u16(TPM_ALG_NULL);
                return;
            }
            Self::EcDsa(h) => (0x0018, h),
            Self::EcDh(h) => (0x0019, h),
            Self::EcDaa { hash, count } => {
                w.u16(0x001a);
                hash.write(w);
                w.u16(*count);
                return;
            }
            Self::Sm2(h) => (0x001b, h),
            Self::EcSchnorr(h) => (0x001c, h),
            Self::EcMqv(h) => (0x001d, h),
        };
        w.u16(id);
        h.write(w);
    }
}

/// A key derivation function (TPMI_ALG_KDF, not NULL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfAlg {
    /// TPM_ALG_MGF1 (0x0007).
    Mgf1,
    /// TPM_ALG_KDF1_SP800_56A (0x0020).
    Kdf1Sp800_56a,
    /// TPM_ALG_KDF2 (0x0021).
    Kdf2,
    /// TPM_ALG_KDF1_SP800_108 (0x0022).
    Kdf1Sp800_108,
}

impl KdfAlg {
    /// The TPM_ALG_ID.
    pub const fn id(self) -> u16 {
        match self {
            Self::Mgf1 => 0x0007,
            Self::Kdf1Sp800_56a => 0x0020,
            Self::Kdf2 => 0x0021,
            Self::Kdf1Sp800_108 => 0x0022,
        }
    }

    fn read_or_null(r: &mut Reader<'_>, what: &'static str) -> Result<Option<Self>> {
        let id = r.u16(what)?;
        if id == TPM_ALG_NULL {
            return Ok(None);
        }
        [
            Self::Mgf1,
            Self::Kdf1Sp800_56a,
            Self::Kdf2,
            Self::Kdf1Sp800_108,
        ]
        .into_iter()
        .find(|k| k.id() == id)
        .map(Some)
        .ok_or(Error::TpmUnsupportedAlgorithm { what, alg: id })
    }
}

/// TPMT_KDF_SCHEME: a KDF and its hash, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfScheme {
    /// TPM_ALG_NULL.
    Null,
    /// A KDF with its hash.
    Kdf {
        /// The function.
        alg: KdfAlg,
        /// Its hash.
        hash: HashAlg,
    },
}

impl KdfScheme {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const W: &str = "TPMT_KDF_SCHEME";
        Ok(match KdfAlg::read_or_null(r, W)? {
            None => Self::Null,
            Some(alg) => Self::Kdf {
                alg,
                hash: HashAlg::read(r, W)?,
            },
        })
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Null => w.u16(TPM_ALG_NULL),
            Self::Kdf { alg, hash } => {
                w.u16(alg.id());
                hash.write(w);
            }
        }
    }
}

/// TPMT_KEYEDHASH_SCHEME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyedHashScheme {
    /// TPM_ALG_NULL: a sealed data object.
    Null,
    /// TPM_ALG_HMAC (0x0005): an HMAC key.
    Hmac(HashAlg),
    /// TPM_ALG_XOR (0x000a): an XOR obfuscation key.
    Xor {
        /// The hash.
        hash: HashAlg,
        /// The KDF.
        kdf: KdfAlg,
    },
}

impl KeyedHashScheme {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        const W: &str = "TPMT_KEYEDHASH_SCHEME";
        Ok(match r.u16(W)? {
            TPM_ALG_NULL => Self::Null,
            0x0005 => Self::Hmac(HashAlg::read(r, W)?),
            0x000a => {
                let hash = HashAlg::read(r, W)?;
                let kdf = KdfAlg::read_or_null(r, W)?.ok_or(Error::TpmUnsupportedAlgorithm {
                    what: "TPMS_SCHEME_XOR kdf",
                    alg: TPM_ALG_NULL,
                })?;
                Self::Xor { hash, kdf }
            }
            alg => return Err(Error::TpmUnsupportedAlgorithm { what: W, alg }),
        })
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Null => w.u16(TPM_ALG_NULL),
            Self::Hmac(h) => {
                w.u16(0x0005);
                h.write(w);
            }
            Self::Xor { hash, kdf } => {
                w.u16(0x000a);
                hash.write(w);
                w.u16(kdf.id());
            }
        }
    }
}

/// An elliptic curve (TPMI_ECC_CURVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EccCurve {
    /// TPM_ECC_NIST_P192 (0x0001).
    NistP192,
    /// TPM_ECC_NIST_P224 (0x0002).
    NistP224,
    /// TPM_ECC_NIST_P256 (0x0003).
    NistP256,
    /// TPM_ECC_NIST_P384 (0x0004).
    NistP384,
    /// TPM_ECC_NIST_P521 (0x0005).
    NistP521,
    /// TPM_ECC_BN_P256 (0x0010).
    BnP256,
    /// TPM_ECC_BN_P638 (0x0011).
    BnP638,
    /// TPM_ECC_SM2_P256 (0x0020).
    Sm2P256,
}

impl EccCurve {
    /// The TPM_ECC_CURVE value.
    pub const fn id(self) -> u16 {
        match self {
            Self::NistP192 => 0x0001,
            Self::NistP224 => 0x0002,
            Self::NistP256 => 0x0003,
            Self::NistP384 => 0x0004,
            Self::NistP521 => 0x0005,
            Self::BnP256 => 0x0010,
            Self::BnP638 => 0x0011,
            Self::Sm2P256 => 0x0020,
        }
    }

    fn from_id(id: u16) -> Result<Self> {
        [
            Self::NistP192,
            Self::NistP224,
            Self::NistP256,
            Self::NistP384,
            Self::NistP521,
            Self::BnP256,
            Self::BnP638,
            Self::Sm2P256,
        ]
        .into_iter()
        .find(|c| c.id() == id)
        .ok_or(Error::TpmUnsupportedAlgorithm {
            what: "TPMS_ECC_PARMS curveID",
            alg: id,
        })
    }
}

/// TPMS_RSA_PARMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RsaParams {
    /// The symmetric algorithm of a storage key, `None` otherwise.
    pub symmetric: Option<SymDef>,
    /// The signing or encryption scheme.
    pub scheme: RsaScheme,
    /// Modulus size in bits.
    pub key_bits: u16,
    /// The public exponent as marshalled; 0 means 65537.
    pub exponent: u32,
}

impl RsaParams {
    /// The public exponent (65537 when the marshalled value is 0).
    pub fn effective_exponent(&self) -> u32 {
        if self.exponent == 0 {
            65_537
        } else {
            self.exponent
        }
    }
}

/// TPMS_ECC_PARMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EccParams {
    /// The symmetric algorithm of a storage key, `None` otherwise.
    pub symmetric: Option<SymDef>,
    /// The signing or key-exchange scheme.
    pub scheme: EccScheme,
    /// The curve.
    pub curve: EccCurve,
    /// The KDF.
    pub kdf: KdfScheme,
}

/// TPMS_ECC_POINT: affine coordinates, big-endian.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct EccPoint {
    /// x.
    pub x: EccParameter,
    /// y.
    pub y: EccParameter,
}

impl EccPoint {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            x: EccParameter::read(r)?,
            y: EccParameter::read(r)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.x.write(w);
        self.y.write(w);
    }

    /// The marshalled TPMS_ECC_POINT.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    /// Parse a marshalled TPMS_ECC_POINT; refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPMS_ECC_POINT")?;
        Ok(v)
    }
}

/// The type-specific parameters and unique field of a public area
/// (TPMU_PUBLIC_PARMS with TPMU_PUBLIC_ID).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// TPM_ALG_RSA: parameters and the modulus.
    Rsa {
        /// TPMS_RSA_PARMS.
        params: RsaParams,
        /// The modulus, big-endian.
        modulus: PublicKeyRsa,
    },
    /// TPM_ALG_ECC: parameters and the public point.
    Ecc {
        /// TPMS_ECC_PARMS.
        params: EccParams,
        /// The public point.
        point: EccPoint,
    },
    /// TPM_ALG_KEYEDHASH: an HMAC key or sealed data; `unique` is
    /// `H(seedValue || sensitive data)`.
    KeyedHash {
        /// TPMT_KEYEDHASH_SCHEME.
        scheme: KeyedHashScheme,
        /// The unique digest.
        unique: Digest,
    },
    /// TPM_ALG_SYMCIPHER: a symmetric key.
    SymCipher {
        /// Its algorithm.
        symmetric: Option<SymDef>,
        /// The unique digest.
        unique: Digest,
    },
}

impl PublicKey {
    /// The TPMI_ALG_PUBLIC value.
    pub fn type_id(&self) -> u16 {
        match self {
            Self::Rsa { .. } => TPM_ALG_RSA,
            Self::Ecc { .. } => TPM_ALG_ECC,
            Self::KeyedHash { .. } => TPM_ALG_KEYEDHASH,
            Self::SymCipher { .. } => TPM_ALG_SYMCIPHER,
        }
    }
}

/// A TPMT_PUBLIC: an object's public area.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Public {
    /// The algorithm that makes the object's Name.
    pub name_alg: HashAlg,
    /// TPMA_OBJECT.
    pub attributes: ObjectAttributes,
    /// The policy digest that authorises use (empty for none).
    pub auth_policy: Digest,
    /// Type, parameters and unique field.
    pub key: PublicKey,
}

impl Public {
    /// Parse a marshalled TPMT_PUBLIC; refuses trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_PUBLIC {
            return Err(Error::TooLarge {
                what: "TPMT_PUBLIC",
                len: bytes.len(),
                max: MAX_PUBLIC,
            });
        }
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish("TPMT_PUBLIC")?;
        Ok(v)
    }

    /// Parse a TPM2B_PUBLIC (a `u16` size, then the TPMT_PUBLIC: what
    /// `tpm2_createek -u`, `tpm2_createak -u` and `tpm2_create -u` write).
    pub fn from_tpm2b_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let inner = r.tpm2b("TPM2B_PUBLIC", MAX_PUBLIC)?;
        r.finish("TPM2B_PUBLIC")?;
        Self::from_bytes(inner)
    }

    /// The marshalled TPMT_PUBLIC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    /// The marshalled TPM2B_PUBLIC.
    pub fn to_tpm2b_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.sized_bounded(|w| self.write(w));
        w.into_vec()
    }

    /// The object's Name: `nameAlg (u16 BE) || H_nameAlg(TPMT_PUBLIC)`.
    pub fn name(&self) -> Result<Name> {
        let d = self.name_alg.hash(&[&self.to_bytes()])?;
        Name::from_digest(self.name_alg, &d)
    }

    /// The Name as a [`BuilderId`] (this object being a builder's AK): only
    /// for a SHA-256 nameAlg.
    pub fn builder_id(&self) -> Result<BuilderId> {
        if self.name_alg != HashAlg::Sha256 {
            return Err(Error::TpmUnsupportedAlgorithm {
                what: "AK nameAlg (a builder id is a SHA-256 Name)",
                alg: self.name_alg.id(),
            });
        }
        let d = crate::hash::Sha256Digest::of(&self.to_bytes());
        Ok(BuilderId::from_public_digest(&d))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let ty = r.u16("TPMT_PUBLIC type")?;
        let name_alg = HashAlg::read(r, "TPMT_PUBLIC nameAlg")?;
        let attributes = ObjectAttributes::from_bits(r.u32("TPMT_PUBLIC objectAttributes")?)?;
        let auth_policy = Digest::read(r)?;
        let key = match ty {
            TPM_ALG_RSA => {
                let symmetric = SymDef::read_object(r)?;
                let scheme = RsaScheme::read(r)?;
                let key_bits = r.u16("TPMS_RSA_PARMS keyBits")?;
                let exponent = r.u32("TPMS_RSA_PARMS exponent")?;
                PublicKey::Rsa {
                    params: RsaParams {
                        symmetric,
                        scheme,
                        key_bits,
                        exponent,
                    },
                    modulus: PublicKeyRsa::read(r)?,
                }
            }
            TPM_ALG_ECC => {
                let symmetric = SymDef::read_object(r)?;
                let scheme = EccScheme::read(r)?;
                let curve = EccCurve::from_id(r.u16("TPMS_ECC_PARMS curveID")?)?;
                let kdf = KdfScheme::read(r)?;
                PublicKey::Ecc {
                    params: EccParams {
                        symmetric,
                        scheme,
                        curve,
                        kdf,
                    },
                    point: EccPoint::read(r)?,
                }
            }
            TPM_ALG_KEYEDHASH => PublicKey::KeyedHash {
                scheme: KeyedHashScheme::read(r)?,
                unique: Digest::read(r)?,
            },
            TPM_ALG_SYMCIPHER => PublicKey::SymCipher {
                symmetric: SymDef::read_object(r)?,
                unique: Digest::read(r)?,
            },
            alg => {
                return Err(Error::TpmUnsupportedAlgorithm {
                    what: "TPMT_PUBLIC type",
                    alg,
                })
            }
        };
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            key,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u16(self.key.type_id());
        self.name_alg.write(w);
        w.u32(self.attributes.bits());
        self.auth_policy.write(w);
        match &self.key {
            PublicKey::Rsa { params, modulus } => {
                SymDef::write_object(params.symmetric.as_ref(), w);
                params.scheme.write(w);
                w.u16(params.key_bits);
                w.u32(params.exponent);
                modulus.write(w);
            }
            PublicKey::Ecc { params, point } => {
                SymDef::write_object(params.symmetric.as_ref(), w);
                params.scheme.write(w);
                w.u16(params.curve.id());
                params.kdf.write(w);
                point.write(w);
            }
            PublicKey::KeyedHash { scheme, unique } => {
                scheme.write(w);
                unique.write(w);
            }
            PublicKey::SymCipher { symmetric, unique } => {
                SymDef::write_object(symmetric.as_ref(), w);
                unique.write(w);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::types::HASH_ALGS;
    use proptest::prelude::*;

    fn hash() -> impl Strategy<Value = HashAlg> {
        prop::sample::select(HASH_ALGS.to_vec())
    }

    fn sym() -> impl Strategy<Value = Option<SymDef>> {
        prop::option::of(
            (
                prop::sample::select(alloc::vec![SymAlg::Aes, SymAlg::Sm4, SymAlg::Camellia]),
                any::<u16>(),
                prop::sample::select(alloc::vec![
                    SymMode::Ctr,
                    SymMode::Ofb,
                    SymMode::Cbc,
                    SymMode::Cfb,
                    SymMode::Ecb
                ]),
            )
                .prop_map(|(alg, key_bits, mode)| SymDef {
                    alg,
                    key_bits,
                    mode,
                }),
        )
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..=max)
    }

    fn kdf_alg() -> impl Strategy<Value = KdfAlg> {
        prop::sample::select(alloc::vec![
            KdfAlg::Mgf1,
            KdfAlg::Kdf1Sp800_56a,
            KdfAlg::Kdf2,
            KdfAlg::Kdf1Sp800_108
        ])
    }

    fn key() -> impl Strategy<Value = PublicKey> {
        let rsa_scheme = prop_oneof![
            Just(RsaScheme::Null),
            hash().prop_map(RsaScheme::RsaSsa),
            Just(RsaScheme::RsaEs),
            hash().prop_map(RsaScheme::RsaPss),
            hash().prop_map(RsaScheme::Oaep),
        ];
        let ecc_scheme = prop_oneof![
            Just(EccScheme::Null),
            hash().prop_map(EccScheme::EcDsa),
            hash().prop_map(EccScheme::EcDh),
            (hash(), any::<u16>()).prop_map(|(hash, count)| EccScheme::EcDaa { hash, count }),
            hash().prop_map(EccScheme::Sm2),
            hash().prop_map(EccScheme::EcSchnorr),
            hash().prop_map(EccScheme::EcMqv),
        ];
        let kdf = prop_oneof![
            Just(KdfScheme::Null),
            (kdf_alg(), hash()).prop_map(|(alg, hash)| KdfScheme::Kdf { alg, hash }),
        ];
        let curve = prop::sample::select(alloc::vec![
            EccCurve::NistP192,
            EccCurve::NistP224,
            EccCurve::NistP256,
            EccCurve::NistP384,
            EccCurve::NistP521,
            EccCurve::BnP256,
            EccCurve::BnP638,
            EccCurve::Sm2P256
        ]);
        let kh_scheme = prop_oneof![
            Just(KeyedHashScheme::Null),
            hash().prop_map(KeyedHashScheme::Hmac),
            (hash(), kdf_alg()).prop_map(|(hash, kdf)| KeyedHashScheme::Xor { hash, kdf }),
        ];
        prop_oneof![
            (sym(), rsa_scheme, any::<u16>(), any::<u32>(), bytes(512)).prop_map(
                |(symmetric, scheme, key_bits, exponent, n)| PublicKey::Rsa {
                    params: RsaParams {
                        symmetric,
                        scheme,
                        key_bits,
                        exponent
                    },
                    modulus: PublicKeyRsa::new(&n).unwrap(),
                }
            ),
            (sym(), ecc_scheme, curve, kdf, bytes(128), bytes(128)).prop_map(
                |(symmetric, scheme, curve, kdf, x, y)| PublicKey::Ecc {
                    params: EccParams {
                        symmetric,
                        scheme,
                        curve,
                        kdf
                    },
                    point: EccPoint {
                        x: EccParameter::new(&x).unwrap(),
                        y: EccParameter::new(&y).unwrap(),
                    },
                }
            ),
            (kh_scheme, bytes(64)).prop_map(|(scheme, u)| PublicKey::KeyedHash {
                scheme,
                unique: Digest::new(&u).unwrap()
            }),
            (sym(), bytes(64)).prop_map(|(symmetric, u)| PublicKey::SymCipher {
                symmetric,
                unique: Digest::new(&u).unwrap()
            }),
        ]
    }

    pub(crate) fn arb_public() -> impl Strategy<Value = Public> {
        (hash(), any::<u32>(), bytes(64), key()).prop_map(|(name_alg, bits, policy, key)| Public {
            name_alg,
            attributes: ObjectAttributes::from_bits(bits & ObjectAttributes::DEFINED).unwrap(),
            auth_policy: Digest::new(&policy).unwrap(),
            key,
        })
    }

    #[test]
    fn attributes() {
        let a = ObjectAttributes::from_bits(0x0005_0072).unwrap();
        assert!(a.fixed_tpm() && a.fixed_parent() && a.sensitive_data_origin());
        assert!(a.user_with_auth() && a.restricted() && a.sign());
        assert!(!a.decrypt() && !a.admin_with_policy() && !a.no_da());
        assert_eq!(
            ObjectAttributes::default()
                .with(ObjectAttributes::SIGN, true)
                .with(ObjectAttributes::RESTRICTED, true)
                .with(ObjectAttributes::SIGN, false)
                .bits(),
            ObjectAttributes::RESTRICTED
        );
        assert!(matches!(
            ObjectAttributes::from_bits(1),
            Err(Error::InvalidValue { .. })
        ));
        assert!(alloc::format!("{a:?}").contains("restricted"));
    }

    proptest! {
        #[test]
        fn public_round_trips(p in arb_public()) {
            let bytes = p.to_bytes();
            prop_assert_eq!(Public::from_bytes(&bytes).unwrap(), p.clone());
            prop_assert_eq!(Public::from_tpm2b_bytes(&p.to_tpm2b_bytes()).unwrap(), p.clone());
            for cut in 0..bytes.len() {
                prop_assert!(matches!(Public::from_bytes(&bytes[..cut]), Err(Error::Truncated { .. })), "cut at {}", cut);
            }
            let mut long = bytes.clone();
            long.push(0);
            prop_assert!(matches!(Public::from_bytes(&long), Err(Error::TrailingBytes { .. })), "trailing");
        }
    }
}
