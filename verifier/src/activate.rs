//! Credential activation: proof that the AK lives in the TPM whose EK
//! certificate the enrollment shows, and an auditor's signed record of it.
//!
//! ```text
//! enrollment (from the builder) ─ EK certificate checked against the
//!   policy (chain, key = EK public area, deny-lists) ─ TPM2_MakeCredential
//!   for that EK and the AK's Name, a fresh 32-byte secret
//!   ─ the builder's TPM: TPM2_ActivateCredential (POST /activate, or files)
//!   ─ the answer equals the secret
//!   ─ activation record: a signed note by the auditor's key
//!       provenix activation v1
//!       ak <AK Name hex>
//!       ek-certificate <SHA-256 hex>
//!       time <unix seconds>
//! ```
//! Only a TPM holding both that EK and that AK can answer: a software key
//! dressed as an AK next to a real EK certificate cannot.

use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::note::{Note, NoteSigningKey, NoteVerifierKey};
use provenix_protocol::tpm::{
    make_credential, CredentialAnswer, CredentialChallenge, Digest, Public,
};
use provenix_protocol::{BuilderId, Sha256Digest};

use crate::policy::Policy;

/// The first line of an activation record.
pub const RECORD_HEADER: &str = "provenix activation v1";

/// Why activation failed.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// The enrollment or a TPM structure does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The EK certificate is not accepted by the policy.
    #[error("EK: {0}")]
    Ek(String),
    /// The builder could not be reached or refused the challenge.
    #[error("the builder did not answer: {0}")]
    Unanswered(String),
    /// The answer is not the secret: the AK is not in that EK's TPM.
    #[error(
        "the answer is not the secret: the AK does not live in the TPM of that EK certificate"
    )]
    WrongAnswer,
}

/// A challenge in progress: the challenge to send and the secret it hides.
pub struct Pending {
    /// Send this to the builder.
    pub challenge: CredentialChallenge,
    secret: Digest,
    /// The AK challenged.
    pub builder: BuilderId,
    /// SHA-256 of the verified EK certificate whose key made it.
    pub ek_cert_sha256: Sha256Digest,
}

/// A verified activation: what the record states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// The AK's Name.
    pub builder: BuilderId,
    /// SHA-256 of the EK certificate.
    pub ek_cert_sha256: Sha256Digest,
    /// When (unix seconds).
    pub time: u64,
}

impl Activation {
    /// The record's text (a signed note's body).
    pub fn to_text(&self) -> String {
        format!(
            "{RECORD_HEADER}\nak {}\nek-certificate {}\ntime {}\n",
            self.builder.to_hex(),
            self.ek_cert_sha256.to_hex(),
            self.time
        )
    }

    /// The record signed by the auditor's key.
    pub fn sign(&self, key: &NoteSigningKey) -> Result<String, ActivationError> {
        let mut note =
            Note::new(&self.to_text()).map_err(|e| ActivationError::Malformed(e.to_string()))?;
        note.sign(key)
            .map_err(|e| ActivationError::Malformed(e.to_string()))?;
        Ok(note.render())
    }

    /// Open a record signed by one of `activators`; `None` if it is not
    /// a record, or no trusted activator signed it.
    pub fn open(record: &[u8], activators: &[NoteVerifierKey]) -> Option<Self> {
        let note = Note::open(record, activators).ok()?;
        let mut lines = note.text().lines();
        if lines.next() != Some(RECORD_HEADER) {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()?
                .strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let ak = field("ak")?;
        let ek = field("ek-certificate")?;
        let time = field("time")?.parse().ok()?;
        if lines.next().is_some() {
            return None;
        }
        let builder = BuilderId::from_hex(&ak).ok()?;
        let ek_cert_sha256 = Sha256Digest::from_hex(&ek).ok()?;
        Some(Self {
            builder,
            ek_cert_sha256,
            time,
        })
    }
}

/// Make the challenge for an enrollment: the EK certificate must pass the
/// policy (so the EK key used is the certified one), the AK is the
/// enrollment's.
pub fn challenge(
    enrollment: &Enrollment,
    policy: &Policy,
    firmware_version: u64,
    now: u64,
) -> Result<Pending, ActivationError> {
    let malformed = |e: provenix_protocol::Error| ActivationError::Malformed(e.to_string());
    let ek = Public::from_bytes(&enrollment.ek_public).map_err(malformed)?;
    let ak = Public::from_bytes(&enrollment.ak_public).map_err(malformed)?;
    let tpm = policy
        .check_ek(enrollment, firmware_version, now)
        .map_err(|e| ActivationError::Ek(e.to_string()))?;
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let secret = Digest::new(&secret).map_err(malformed)?;
    let ak_name = ak.name().map_err(malformed)?;
    let made = make_credential(&ek, &ak_name, &secret, &mut rand_core::OsRng).map_err(malformed)?;
    Ok(Pending {
        challenge: CredentialChallenge::new(ak_name, made),
        secret,
        builder: ak.builder_id().map_err(malformed)?,
        ek_cert_sha256: tpm.cert_sha256,
    })
}

impl Pending {
    /// The secret side of a challenge made by files: the secret, the AK
    /// Name (hex) and the EK certificate hash, one per line. Keep it
    /// private until the answer comes.
    pub fn to_secret_file(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n",
            provenix_protocol::encoding::hex_encode(self.secret.as_bytes()),
            self.builder.to_hex(),
            self.ek_cert_sha256.to_hex()
        )
        .into_bytes()
    }

    /// A challenge made by files, from the challenge and its secret file.
    pub fn from_files(challenge: &[u8], secret_file: &[u8]) -> Result<Self, ActivationError> {
        let bad = |what: &str| ActivationError::Malformed(format!("the secret file: {what}"));
        let challenge = CredentialChallenge::from_bytes(challenge)
            .map_err(|e| ActivationError::Malformed(format!("the challenge: {e}")))?;
        let text = std::str::from_utf8(secret_file).map_err(|_| bad("not text"))?;
        let mut lines = text.lines();
        let secret = lines
            .next()
            .and_then(|l| provenix_protocol::encoding::hex_decode_array::<32>(l).ok())
            .ok_or_else(|| bad("no secret"))?;
        let builder = lines
            .next()
            .and_then(|l| BuilderId::from_hex(l).ok())
            .ok_or_else(|| bad("no AK Name"))?;
        let ek_cert_sha256 = lines
            .next()
            .and_then(|l| Sha256Digest::from_hex(l).ok())
            .ok_or_else(|| bad("no EK certificate hash"))?;
        Ok(Self {
            challenge,
            secret: Digest::new(&secret).map_err(|e| ActivationError::Malformed(e.to_string()))?,
            builder,
            ek_cert_sha256,
        })
    }

    /// Check the builder's answer.
    pub fn finish(self, answer: &[u8], now: u64) -> Result<Activation, ActivationError> {
        let answer = CredentialAnswer::from_bytes(answer)
            .map_err(|e| ActivationError::Malformed(format!("the answer: {e}")))?;
        if !answer.matches(&self.secret) {
            return Err(ActivationError::WrongAnswer);
        }
        Ok(Activation {
            builder: self.builder,
            ek_cert_sha256: self.ek_cert_sha256,
            time: now,
        })
    }
}

/// Activate a builder through its log service: fetch its enrollment,
/// challenge, POST to `/activate`, check the answer.
pub fn activate_online(
    base_url: &str,
    client: &ureq::Agent,
    policy: &Policy,
) -> Result<Activation, ActivationError> {
    let base = base_url.trim_end_matches('/');
    let unanswered = |e: String| ActivationError::Unanswered(e);
    let fetch = |path: &str| -> Result<Vec<u8>, ActivationError> {
        let mut r = client
            .get(&format!("{base}/{path}"))
            .call()
            .map_err(|e| unanswered(e.to_string()))?;
        if r.status().as_u16() != 200 {
            return Err(unanswered(format!("GET /{path}: HTTP {}", r.status())));
        }
        r.body_mut()
            .with_config()
            .limit(crate::source::MAX_FETCH)
            .read_to_vec()
            .map_err(|e| unanswered(e.to_string()))
    };
    let enrollment = Enrollment::decode(&fetch("enrollment")?)
        .map_err(|e| ActivationError::Malformed(format!("the enrollment: {e}")))?;
    let now = crate::unix_time();
    let pending = challenge(&enrollment, policy, enrollment.tpm_firmware_version, now)?;
    let mut r = client
        .post(&format!("{base}/activate"))
        .send(&pending.challenge.to_bytes()[..])
        .map_err(|e| unanswered(e.to_string()))?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_vec()
        .map_err(|e| unanswered(e.to_string()))?;
    if status != 200 {
        return Err(unanswered(format!(
            "POST /activate: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    pending.finish(&body, now)
}
