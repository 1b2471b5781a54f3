//! The EK certificate: its chain to a trusted manufacturer root, its key
//! equal to the EK the AK was made under, what TPM it names, and the
//! deny-lists.
//!
//! ```text
//! EK certificate ─ issuer found among the enrollment's intermediates and
//!   the policy's (subject = issuer, a CA, signature verifies, valid now)
//!   ─ … ─ a policy root ─ its public key = the enrollment's EK public area
//!   ─ manufacturer and model from its subjectAltName (TCG OIDs)
//!   ─ deny-list: manufacturer + firmware version (the AK-signed one) ─
//!   ROCA: an RSA EK whose modulus has the vulnerable structure
//! ```

use provenix_protocol::tpm::{Public, PublicKey};
use provenix_protocol::Sha256Digest;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey as X509Key;

/// Longest chain followed.
const MAX_DEPTH: usize = 8;
/// TCG OIDs in an EK certificate's subjectAltName directoryName.
const TPM_MANUFACTURER: &str = "2.23.133.2.1";
const TPM_MODEL: &str = "2.23.133.2.2";
const TPM_VERSION: &str = "2.23.133.2.3";

/// Why an EK certificate is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EkError {
    /// A certificate does not parse.
    #[error("{what}: not an X.509 certificate: {reason}")]
    Unparsable {
        /// Which.
        what: String,
        /// Why.
        reason: String,
    },
    /// No chain to a trusted root.
    #[error("the EK certificate does not chain to a trusted root: {0}")]
    Chain(String),
    /// The certificate's key is not the EK's.
    #[error("the EK certificate's key is not the EK the AK was made under")]
    KeyMismatch,
    /// The TPM is on the deny-list.
    #[error("denied TPM (manufacturer {manufacturer}, firmware {firmware:#018x}): {reason}")]
    Denied {
        /// Its manufacturer ID.
        manufacturer: String,
        /// Its firmware version.
        firmware: u64,
        /// The policy's reason.
        reason: String,
    },
    /// An RSA EK with the ROCA key structure (CVE-2017-15361).
    #[error("the RSA EK has the ROCA structure (CVE-2017-15361): its private key can be factored")]
    Roca,
}

/// What the EK certificate says about the TPM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmIdentity {
    /// SHA-256 of the EK certificate.
    pub cert_sha256: Sha256Digest,
    /// TPM manufacturer (as the certificate writes it, e.g. `id:49465800`).
    pub manufacturer: Option<String>,
    /// TPM model.
    pub model: Option<String>,
    /// TPM version.
    pub version: Option<String>,
    /// The subject of the root the chain ends at.
    pub root: String,
}

/// One deny-list rule: a manufacturer and an inclusive firmware range.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    /// The manufacturer ID as EK certificates write it (`id:XXXXXXXX`).
    pub manufacturer: String,
    /// Lowest affected firmware version (TPM_PT_FIRMWARE_VERSION_1 || _2).
    #[serde(default)]
    pub firmware_from: u64,
    /// Highest affected firmware version.
    #[serde(default = "max_u64")]
    pub firmware_to: u64,
    /// Why (e.g. the CVE).
    pub reason: String,
}

fn max_u64() -> u64 {
    u64::MAX
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, EkError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| EkError::Unparsable {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(EkError::Unparsable {
            what: what.to_owned(),
            reason: format!("{} bytes after the certificate", rest.len()),
        });
    }
    Ok(cert)
}

/// Whether `issuer` issued `cert`: names match, the issuer is a CA, the
/// signature verifies with its key.
fn issued(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), String> {
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err("names differ".into());
    }
    let is_ca = issuer
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    if !is_ca {
        return Err(format!("{} is not a CA", issuer.subject()));
    }
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|e| format!("signature by {}: {e}", issuer.subject()))
}

/// The certificate's subjectAltName TCG attributes.
fn tpm_attributes(cert: &X509Certificate<'_>) -> (Option<String>, Option<String>, Option<String>) {
    let (mut manufacturer, mut model, mut version) = (None, None, None);
    for ext in cert.extensions() {
        let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() else {
            continue;
        };
        for name in &san.general_names {
            let GeneralName::DirectoryName(dn) = name else {
                continue;
            };
            for attr in dn.iter_attributes() {
                let value = attr.as_str().ok().map(str::to_owned);
                match attr.attr_type().to_id_string().as_str() {
                    TPM_MANUFACTURER => manufacturer = value,
                    TPM_MODEL => model = value,
                    TPM_VERSION => version = value,
                    _ => {}
                }
            }
        }
    }
    (manufacturer, model, version)
}

/// `bytes` without leading zero bytes.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The certificate's key equals the EK public area's.
fn same_key(cert: &X509Certificate<'_>, ek: &Public) -> Result<(), EkError> {
    let parsed = cert
        .public_key()
        .parsed()
        .map_err(|e| EkError::Unparsable {
            what: "EK certificate key".into(),
            reason: e.to_string(),
        })?;
    let same = match (&parsed, &ek.key) {
        (X509Key::RSA(k), PublicKey::Rsa { params, modulus }) => {
            let e = trim(k.exponent);
            let tpm_e = params.effective_exponent().to_be_bytes();
            trim(k.modulus) == trim(modulus.as_bytes()) && e == trim(&tpm_e)
        }
        (X509Key::EC(point), PublicKey::Ecc { point: p, .. }) => {
            let data = point.data();
            let mut expected = vec![4u8];
            let n = (data.len().saturating_sub(1)) / 2;
            for c in [p.x.as_bytes(), p.y.as_bytes()] {
                let c = trim(c);
                expected.extend(std::iter::repeat_n(0u8, n.saturating_sub(c.len())));
                expected.extend_from_slice(c);
            }
            data == expected.as_slice()
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(EkError::KeyMismatch)
    }
}

/// The ROCA fingerprint (Nemec et al., CCS 2017): the moduli of keys made
/// by the vulnerable Infineon library are, modulo each small prime below,
/// in the subgroup generated by 65537. A random modulus is in all of them
/// with negligible probability.
pub fn is_roca(modulus: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    if trim(modulus).is_empty() {
        return false;
    }
    PRIMES.iter().all(|&p| {
        let r = modulus
            .iter()
            .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % p);
        let g = 65537 % p;
        let mut x = 1u32;
        for _ in 0..p {
            if x == r {
                return true;
            }
            x = x * g % p;
        }
        false
    })
}

/// Check the EK certificate of an enrollment: the chain to one of `roots`
/// (DER) through `intermediates` (the enrollment's and the policy's), the
/// key against the EK public area, the deny-list for its manufacturer and
/// the AK-attested `firmware` version, and ROCA for RSA EKs.
pub fn check_ek(
    ek_cert: &[u8],
    intermediates: &[Vec<u8>],
    roots: &[Vec<u8>],
    ek_public: &Public,
    firmware: u64,
    deny: &[DenyRule],
    now: i64,
) -> Result<TpmIdentity, EkError> {
    let leaf = parse(ek_cert, "EK certificate")?;
    let inter = intermediates
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("intermediate {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let anchors = roots
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, &format!("root {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let at = x509_parser::time::ASN1Time::from_timestamp(now)
        .map_err(|e| EkError::Chain(format!("time: {e}")))?;
    let mut current = &leaf;
    let mut tried = Vec::new();
    let root = 'chain: {
        for _ in 0..MAX_DEPTH {
            if !current.validity().is_valid_at(at) {
                return Err(EkError::Chain(format!(
                    "{} is not valid now",
                    if current.subject().as_raw().is_empty() {
                        "the EK certificate".to_string()
                    } else {
                        current.subject().to_string()
                    }
                )));
            }
            for a in &anchors {
                match issued(current, a) {
                    Ok(()) => break 'chain a.subject().to_string(),
                    Err(e) => tried.push(e),
                }
            }
            match inter.iter().find(|c| issued(current, c).is_ok()) {
                Some(next) => current = next,
                None => break,
            }
        }
        return Err(EkError::Chain(format!(
            "no issuer of {} among the intermediates and roots ({})",
            current.issuer(),
            if tried.is_empty() {
                "none given".to_string()
            } else {
                tried.join("; ")
            }
        )));
    };
    same_key(&leaf, ek_public)?;
    let (manufacturer, model, version) = tpm_attributes(&leaf);
    if let Some(m) = &manufacturer {
        if let Some(rule) = deny.iter().find(|r| {
            r.manufacturer.eq_ignore_ascii_case(m)
                && (r.firmware_from..=r.firmware_to).contains(&firmware)
        }) {
            return Err(EkError::Denied {
                manufacturer: m.clone(),
                firmware,
                reason: rule.reason.clone(),
            });
        }
    }
    if let PublicKey::Rsa { modulus, .. } = &ek_public.key {
        if is_roca(modulus.as_bytes()) {
            return Err(EkError::Roca);
        }
    }
    Ok(TpmIdentity {
        cert_sha256: Sha256Digest::of(ek_cert),
        manufacturer,
        model,
        version,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roca_fingerprint() {
        // A modulus built to be ≡ 65537^k mod every listed prime (here:
        // 65537 itself) has the structure; 65539 (prime) does not.
        assert!(is_roca(&65537u32.to_be_bytes()));
        assert!(!is_roca(&65539u32.to_be_bytes()));
        assert!(!is_roca(&[0, 0]));
    }
}
