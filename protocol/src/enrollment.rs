//! The enrollment record: everything a verifier needs to trust a builder's
//! keys, written by `provenix-agent enroll` and read by the verifier.
//!
//! ```text
//! Enrollment
//!  ├─ TPM facts (manufacturer, vendor, firmware), insecure_swtpm flag
//!  ├─ EK: kind, certificate (DER) + intermediates, public area
//!  ├─ AK: public area (its Name is the builder id), persistent handle
//!  ├─ batch counter NV index, seal set, system PCR
//!  ├─ log_key:     KeyBinding of LK (from L, no PCR policy)
//!  ├─ signing_key: KeyBinding of SK (from K, PolicyPCR over the seal set)
//!  └─ that boot's firmware event log and CEL log (raw)
//! KeyBinding = Ed25519 public key, TPM key's public area,
//!              TPM2_Certify(key) by the AK and a quote of the seal set,
//!              both with extraData = binding::key_binding_digest(public key, Name(key))
//! ```
//! Encoded with postcard in one canonical form (decode, re-encode, compare);
//! in the log ([`Enrollment::to_leaves`], tags 01 and 02) the bulky parts
//! (EK intermediates and both event logs, 50-75 KB on real machines) move
//! into `Blob` leaves right before the record, which names them by SHA-256
//! and length (CONVENTIONS.md "Leaf size");
//! every TPM structure inside is parsed with [`crate::tpm`] on decode, so a
//! malformed record is refused with the kind of the first bad field. This
//! module checks form only: signatures, chains and policies are the
//! verifier's appraisal.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::entry::{decode_exact, encode};
use crate::error::{Error, Result};
use crate::hash::Sha256Digest;
use crate::ids::{BuilderId, PcrIndex};
use crate::leaf::{record_leaves, LeafTag, MAX_LEAF};
use crate::tpm::{Attest, AttestType, Public, Signature};

/// Encoding version of [`Enrollment`].
pub const ENROLLMENT_VERSION: u8 = 2;
/// Largest certificate accepted.
pub const MAX_CERT: usize = 8 * 1024;
/// Most intermediate certificates.
pub const MAX_INTERMEDIATES: usize = 8;
/// Largest TPM structure (public area, attestation, signature).
pub const MAX_TPM_BLOB: usize = 2 * 1024;
/// Largest event log carried.
pub const MAX_EVENT_LOG: usize = 4 * 1024 * 1024;
/// Longest TPM description string.
pub const MAX_TPM_STRING: usize = 64;

/// The EK kinds provenix knows, with the NV index of their certificate
/// (TCG EK Credential Profile 2.5, §2.2.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EkKind {
    /// RSA-2048, low-range template L-1 (certificate at 0x01c00002).
    Rsa2048,
    /// ECC NIST P-256, template L-2 (certificate at 0x01c0000a).
    EccP256,
    /// ECC NIST P-384, high-range template H-3 (certificate at 0x01c00016):
    /// what swtpm provisions as its ECC EK.
    EccP384,
}

impl EkKind {
    /// Every kind, in the order the agent tries them.
    pub const ALL: [EkKind; 3] = [EkKind::Rsa2048, EkKind::EccP256, EkKind::EccP384];

    /// NV index of the EK certificate.
    pub fn cert_nv_index(self) -> u32 {
        match self {
            EkKind::Rsa2048 => 0x01c0_0002,
            EkKind::EccP256 => 0x01c0_000a,
            EkKind::EccP384 => 0x01c0_0016,
        }
    }
}

/// A key derived in the TPM, bound to the AK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// The Ed25519 public key (SK or LK).
    pub public_key: [u8; 32],
    /// TPMT_PUBLIC of the TPM key it is derived from (K or L).
    pub tpm_public: Vec<u8>,
    /// TPMS_ATTEST of TPM2_Certify(K or L) by the AK.
    pub certify_attest: Vec<u8>,
    /// TPMT_SIGNATURE over `certify_attest`.
    pub certify_signature: Vec<u8>,
    /// TPMS_ATTEST of the AK's quote of the seal set.
    pub quote_attest: Vec<u8>,
    /// TPMT_SIGNATURE over `quote_attest`.
    pub quote_signature: Vec<u8>,
    /// The quoted PCRs' SHA-256 values, as read with the quote, in
    /// selection order. Not signed, but authenticated when their SHA-256
    /// equals the quote's PCR digest: then a verifier whose event-log
    /// replay fails can say which PCR differs.
    pub quote_pcr_values: Vec<[u8; 32]>,
}

/// A builder's enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// [`ENROLLMENT_VERSION`].
    pub version: u8,
    /// Made with a software TPM (`--insecure-allow-swtpm`).
    pub insecure_swtpm: bool,
    /// TPM_PT_MANUFACTURER as text.
    pub tpm_manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4 as text.
    pub tpm_vendor: String,
    /// TPM_PT_FIRMWARE_VERSION_1 || _2.
    pub tpm_firmware_version: u64,
    /// Which EK the AK lives under.
    pub ek_kind: EkKind,
    /// The EK certificate (DER).
    pub ek_certificate: Vec<u8>,
    /// Intermediate certificates (DER), issuer first.
    pub ek_intermediates: Vec<Vec<u8>>,
    /// TPMT_PUBLIC of the EK.
    pub ek_public: Vec<u8>,
    /// TPMT_PUBLIC of the AK.
    pub ak_public: Vec<u8>,
    /// Persistent handle of the AK.
    pub ak_handle: u32,
    /// NV index of the batch counter.
    pub counter_index: u32,
    /// The seal and quote set (SHA-256 bank), ascending.
    pub seal_pcrs: Vec<u8>,
    /// The system PCR (in the seal set).
    pub system_pcr: u8,
    /// LK's binding.
    pub log_key: KeyBinding,
    /// SK's binding (the boot state at enrollment).
    pub signing_key: KeyBinding,
    /// The firmware's binary event log of the enrollment boot.
    pub firmware_event_log: Vec<u8>,
    /// The agent's CEL-JSON event log of the enrollment boot.
    pub cel_event_log: Vec<u8>,
    /// Unix seconds.
    pub time: u64,
}

/// Encoding version of [`KeyRebinding`].
pub const REBINDING_VERSION: u8 = 2;

/// A new SK binding after an approved upgrade (`provenix-agent enroll
/// --rebind`): the boot state changed, so a new K is sealed to the new
/// seal-set values and a new SK bound to the builder's AK. It carries that
/// boot's event logs, so a verifier can appraise the new state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRebinding {
    /// [`REBINDING_VERSION`].
    pub version: u8,
    /// The SK binding of the new boot state.
    pub signing_key: KeyBinding,
    /// The firmware's binary event log of that boot.
    pub firmware_event_log: Vec<u8>,
    /// The agent's CEL-JSON event log of that boot.
    pub cel_event_log: Vec<u8>,
    /// Unix seconds.
    pub time: u64,
}

impl KeyRebinding {
    /// Check bounds and that every TPM structure parses.
    pub fn validate(&self) -> Result<()> {
        if self.version != REBINDING_VERSION {
            return Err(Error::UnknownVersion {
                what: "key rebinding",
                found: u32::from(self.version),
            });
        }
        self.signing_key.validate()?;
        bounded(
            "firmware event log",
            self.firmware_event_log.len(),
            MAX_EVENT_LOG,
        )?;
        bounded("CEL event log", self.cel_event_log.len(), MAX_EVENT_LOG)
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_checked("key rebinding", self, Self::validate)
    }

    /// Decode canonical bytes (at most `2 * MAX_EVENT_LOG + 1 MiB`).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode_checked("key rebinding", bytes, Self::validate)
    }
}

/// The parts of a record that its log leaf keeps in `Blob` leaves.
#[derive(Default, Serialize, Deserialize)]
struct Attachments {
    ek_intermediates: Vec<Vec<u8>>,
    firmware_event_log: Vec<u8>,
    cel_event_log: Vec<u8>,
}

/// How a record leaf names its attachments.
#[derive(Serialize, Deserialize)]
struct AttachmentsRef {
    sha256: [u8; 32],
    len: u32,
}

/// `tag || postcard((record without attachments, reference))`, after the
/// attachments' blob leaves.
fn to_record_leaves<T: Serialize>(
    what: &'static str,
    tag: LeafTag,
    core: &T,
    attachments: &Attachments,
) -> Result<Vec<Vec<u8>>> {
    let blob = encode(what, attachments)?;
    let len = u32::try_from(blob.len()).map_err(|_| Error::TooLarge {
        what,
        len: blob.len(),
        max: u32::MAX as usize,
    })?;
    let reference = AttachmentsRef {
        sha256: Sha256Digest::of(&blob).0,
        len,
    };
    let body = encode(what, &(core, reference))?;
    bounded(what, 1 + body.len(), MAX_LEAF)?;
    Ok(record_leaves(tag, &[&body], Some(&blob)))
}

/// Split a record leaf's body and check its blob against the reference.
fn from_record_leaf<T>(
    what: &'static str,
    body: &[u8],
    blob: Option<&[u8]>,
) -> Result<(T, Attachments)>
where
    T: Serialize + for<'a> Deserialize<'a>,
{
    let (core, reference): (T, AttachmentsRef) = decode_exact(what, body)?;
    let blob = blob.ok_or(Error::InvalidValue {
        what,
        reason: "no blob leaves before the record",
    })?;
    if blob.len() != reference.len as usize || Sha256Digest::of(blob).0 != reference.sha256 {
        return Err(Error::InvalidValue {
            what,
            reason: "blob leaves do not match the digest in the record",
        });
    }
    bounded(what, blob.len(), 2 * MAX_EVENT_LOG + (1 << 20))?;
    Ok((core, decode_exact(what, blob)?))
}

/// A record whose bulky parts travel in `Blob` leaves.
trait Attached: Sized + Clone + Serialize + for<'a> Deserialize<'a> {
    const WHAT: &'static str;
    const TAG: LeafTag;
    fn check(&self) -> Result<()>;
    /// Move the bulky parts out (leaving them empty).
    fn take(&mut self) -> Attachments;
    /// Put them back; refuses parts this record does not have.
    fn put(&mut self, a: Attachments) -> Result<()>;
    /// Whether the bulky fields are empty (as the leaf must hold them).
    fn bare(&self) -> bool;

    fn leaves(&self) -> Result<Vec<Vec<u8>>> {
        self.check()?;
        let mut core = self.clone();
        let attachments = core.take();
        to_record_leaves(Self::WHAT, Self::TAG, &core, &attachments)
    }

    fn from_leaf_parts(body: &[u8], blob: Option<&[u8]>) -> Result<Self> {
        let (mut record, a): (Self, Attachments) = from_record_leaf(Self::WHAT, body, blob)?;
        if !record.bare() {
            return Err(Error::NonCanonical { what: Self::WHAT });
        }
        record.put(a)?;
        record.check()?;
        Ok(record)
    }
}

impl Attached for KeyRebinding {
    const WHAT: &'static str = "key rebinding leaf";
    const TAG: LeafTag = LeafTag::KeyBinding;
    fn check(&self) -> Result<()> {
        self.validate()
    }
    fn take(&mut self) -> Attachments {
        Attachments {
            ek_intermediates: Vec::new(),
            firmware_event_log: core::mem::take(&mut self.firmware_event_log),
            cel_event_log: core::mem::take(&mut self.cel_event_log),
        }
    }
    fn put(&mut self, a: Attachments) -> Result<()> {
        if !a.ek_intermediates.is_empty() {
            return Err(Error::NonCanonical { what: Self::WHAT });
        }
        self.firmware_event_log = a.firmware_event_log;
        self.cel_event_log = a.cel_event_log;
        Ok(())
    }
    fn bare(&self) -> bool {
        self.firmware_event_log.is_empty() && self.cel_event_log.is_empty()
    }
}

impl Attached for Enrollment {
    const WHAT: &'static str = "enrollment leaf";
    const TAG: LeafTag = LeafTag::Enrollment;
    fn check(&self) -> Result<()> {
        self.validate()
    }
    fn take(&mut self) -> Attachments {
        Attachments {
            ek_intermediates: core::mem::take(&mut self.ek_intermediates),
            firmware_event_log: core::mem::take(&mut self.firmware_event_log),
            cel_event_log: core::mem::take(&mut self.cel_event_log),
        }
    }
    fn put(&mut self, a: Attachments) -> Result<()> {
        self.ek_intermediates = a.ek_intermediates;
        self.firmware_event_log = a.firmware_event_log;
        self.cel_event_log = a.cel_event_log;
        Ok(())
    }
    fn bare(&self) -> bool {
        self.ek_intermediates.is_empty()
            && self.firmware_event_log.is_empty()
            && self.cel_event_log.is_empty()
    }
}

impl KeyRebinding {
    /// The log leaves that store this record: its event logs in `Blob`
    /// leaves, then the tag-02 leaf.
    pub fn to_leaves(&self) -> Result<Vec<Vec<u8>>> {
        self.leaves()
    }

    /// Rebuild the record from its leaf (bytes after the tag) and the
    /// concatenated blob leaves before it.
    pub fn from_leaf(body: &[u8], blob: Option<&[u8]>) -> Result<Self> {
        Self::from_leaf_parts(body, blob)
    }
}

impl Enrollment {
    /// The log leaves that store this record: its EK intermediates and event
    /// logs in `Blob` leaves, then the tag-01 leaf.
    pub fn to_leaves(&self) -> Result<Vec<Vec<u8>>> {
        self.leaves()
    }

    /// Rebuild the record from its leaf (bytes after the tag) and the
    /// concatenated blob leaves before it.
    pub fn from_leaf(body: &[u8], blob: Option<&[u8]>) -> Result<Self> {
        Self::from_leaf_parts(body, blob)
    }
}

/// NV indices a TPM may keep its EK certificate chain in (TCG EK
/// Credential Profile 2.5, §2.2.1.5: 0x01c00100 to 0x01c001ff).
pub const EK_CHAIN_NV_RANGE: core::ops::RangeInclusive<u32> = 0x01c0_0100..=0x01c0_01ff;

/// Split concatenated DER certificates (what an EK chain NV index holds).
/// Each must be a SEQUENCE with a definite length; nothing may be left over
/// except zero padding, which some TPMs leave at the end of an index.
pub fn split_der_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&tag, after_tag)) = rest.split_first() {
        if tag == 0 && rest.iter().all(|&b| b == 0) {
            break;
        }
        if tag != 0x30 {
            return Err(Error::InvalidValue {
                what: "EK certificate chain",
                reason: "not a DER SEQUENCE",
            });
        }
        let (len, header) = match after_tag {
            [n, ..] if *n < 0x80 => (usize::from(*n), 2),
            [0x81, n, ..] => (usize::from(*n), 3),
            [0x82, a, b, ..] => (usize::from(u16::from_be_bytes([*a, *b])), 4),
            [0x83, a, b, c, ..] => (
                (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c),
                5,
            ),
            _ => {
                return Err(Error::InvalidValue {
                    what: "EK certificate chain",
                    reason: "bad or unsupported DER length",
                })
            }
        };
        let total = header + len;
        bounded("EK chain certificate", total, MAX_CERT)?;
        let cert = rest.get(..total).ok_or(Error::Truncated {
            what: "EK certificate chain",
        })?;
        out.push(cert.to_vec());
        rest = rest.get(total..).unwrap_or_default();
        bounded("EK intermediates", out.len(), MAX_INTERMEDIATES)?;
    }
    Ok(out)
}

/// Validate, then encode canonically.
fn encode_checked<T: Serialize>(
    what: &'static str,
    v: &T,
    validate: fn(&T) -> Result<()>,
) -> Result<Vec<u8>> {
    validate(v)?;
    encode(what, v)
}

/// Decode canonically (bounded: records carry at most two event logs), then validate.
fn decode_checked<T>(what: &'static str, bytes: &[u8], validate: fn(&T) -> Result<()>) -> Result<T>
where
    T: Serialize + for<'a> Deserialize<'a>,
{
    bounded(what, bytes.len(), 2 * MAX_EVENT_LOG + (1 << 20))?;
    let v: T = decode_exact(what, bytes)?;
    validate(&v)?;
    Ok(v)
}

fn bounded(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::TooLarge { what, len, max });
    }
    Ok(())
}

fn text(what: &'static str, s: &str) -> Result<()> {
    bounded(what, s.len(), MAX_TPM_STRING)?;
    if !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(Error::InvalidValue {
            what,
            reason: "not printable ASCII",
        });
    }
    Ok(())
}

impl KeyBinding {
    fn validate(&self) -> Result<()> {
        for (what, b) in [
            ("key binding public area", &self.tpm_public),
            ("key binding certify", &self.certify_attest),
            ("key binding certify signature", &self.certify_signature),
            ("key binding quote", &self.quote_attest),
            ("key binding quote signature", &self.quote_signature),
        ] {
            bounded(what, b.len(), MAX_TPM_BLOB)?;
        }
        Public::from_bytes(&self.tpm_public)?;
        Attest::from_bytes_expecting(&self.certify_attest, AttestType::Certify)?;
        Signature::from_bytes(&self.certify_signature)?;
        Attest::from_bytes_expecting(&self.quote_attest, AttestType::Quote)?;
        Signature::from_bytes(&self.quote_signature)?;
        bounded(
            "key binding quoted PCR values",
            self.quote_pcr_values.len(),
            usize::from(PcrIndex::MAX) + 1,
        )?;
        Ok(())
    }
}

impl Enrollment {
    /// Check bounds and that every TPM structure parses.
    pub fn validate(&self) -> Result<()> {
        if self.version != ENROLLMENT_VERSION {
            return Err(Error::UnknownVersion {
                what: "enrollment",
                found: u32::from(self.version),
            });
        }
        text("TPM manufacturer", &self.tpm_manufacturer)?;
        text("TPM vendor", &self.tpm_vendor)?;
        if self.ek_certificate.is_empty() {
            return Err(Error::InvalidValue {
                what: "EK certificate",
                reason: "empty",
            });
        }
        bounded("EK certificate", self.ek_certificate.len(), MAX_CERT)?;
        bounded(
            "EK intermediates",
            self.ek_intermediates.len(),
            MAX_INTERMEDIATES,
        )?;
        for c in &self.ek_intermediates {
            bounded("EK intermediate", c.len(), MAX_CERT)?;
        }
        bounded("EK public area", self.ek_public.len(), MAX_TPM_BLOB)?;
        bounded("AK public area", self.ak_public.len(), MAX_TPM_BLOB)?;
        Public::from_bytes(&self.ek_public)?;
        Public::from_bytes(&self.ak_public)?.builder_id()?;
        if self.seal_pcrs.is_empty() {
            return Err(Error::InvalidValue {
                what: "seal set",
                reason: "empty",
            });
        }
        for w in self.seal_pcrs.windows(2) {
            if let [a, b] = w {
                if a >= b {
                    return Err(Error::Unsorted { what: "seal set" });
                }
            }
        }
        for &p in &self.seal_pcrs {
            PcrIndex::new(p)?;
        }
        if !self.seal_pcrs.contains(&self.system_pcr) {
            return Err(Error::InvalidValue {
                what: "system PCR",
                reason: "not in the seal set",
            });
        }
        self.log_key.validate()?;
        self.signing_key.validate()?;
        for b in [&self.log_key, &self.signing_key] {
            if b.quote_pcr_values.len() != self.seal_pcrs.len() {
                return Err(Error::InvalidLength {
                    what: "key binding quoted PCR values",
                    expected: self.seal_pcrs.len(),
                    found: b.quote_pcr_values.len(),
                });
            }
        }
        bounded(
            "firmware event log",
            self.firmware_event_log.len(),
            MAX_EVENT_LOG,
        )?;
        bounded("CEL event log", self.cel_event_log.len(), MAX_EVENT_LOG)?;
        Ok(())
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_checked("enrollment", self, Self::validate)
    }

    /// Decode canonical bytes (at most `2 * MAX_EVENT_LOG + 1 MiB`).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode_checked("enrollment", bytes, Self::validate)
    }

    /// The builder id: the AK's Name.
    pub fn builder_id(&self) -> Result<BuilderId> {
        Public::from_bytes(&self.ak_public)?.builder_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(body: usize) -> Vec<u8> {
        let mut v = vec![0x30, 0x82];
        v.extend_from_slice(&(body as u16).to_be_bytes());
        v.extend(core::iter::repeat_n(0xab, body));
        v
    }

    #[test]
    fn der_chains_split_and_refuse() {
        let (a, b) = (cert(300), cert(5));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(
            split_der_certificates(&both).unwrap(),
            vec![a.clone(), b.clone()]
        );
        let mut padded = both.clone();
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(split_der_certificates(&padded).unwrap().len(), 2);
        assert!(split_der_certificates(&[]).unwrap().is_empty());
        assert!(matches!(
            split_der_certificates(&both[..both.len() - 1]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            split_der_certificates(&[0x31, 0x00]),
            Err(Error::InvalidValue { .. })
        ));
        let mut junk = both;
        junk.push(0x01);
        assert!(matches!(
            split_der_certificates(&junk),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            split_der_certificates(&cert(MAX_CERT)),
            Err(Error::TooLarge { .. })
        ));
    }
}
