//! `provenix-agent enroll`: make this TPM a builder identity, and
//! `load_keys`: derive SK and LK at start and check them against the record.
//!
//! ```text
//! enroll: EK cert (NV or --ek-cert) ─┐
//!         AK under the EK, persisted ├─> Enrollment (protocol) ──> state/enrollment.bin
//!         NV batch counter           │   + TPM blobs (ak, k, l)  ──> state/*.pub|*.priv (0600)
//!         K (PolicyPCR), L           │
//!         SK, LK = HMAC in the TPM   │
//!         bindings: Certify + quote ─┘   (extraData = key_binding_digest(pub, Name))
//! ```

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use provenix_protocol::binding::key_binding_digest;
use provenix_protocol::enrollment::{
    EkKind, Enrollment, KeyBinding, KeyRebinding, ENROLLMENT_VERSION, REBINDING_VERSION,
};
use provenix_protocol::tpm::{Attest, AttestType, Public};
use provenix_protocol::PcrIndex;
use tss_esapi::handles::KeyHandle;

use crate::error::{AgentError, Result};
use crate::identity::AkBlob;
use crate::keys::{KeyBlob, PcrSet, LK_LABEL, SK_LABEL};
use crate::state::StateDir;
use crate::tpm::Tpm;

/// The enrollment record's file in the state directory.
pub const ENROLLMENT_FILE: &str = "enrollment.bin";
/// The latest key rebinding's file in the state directory.
pub const REBINDING_FILE: &str = "rebinding.bin";
/// Where Linux exposes the firmware event log.
pub const DEFAULT_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// How to enroll.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// The seal and quote set.
    pub seal: PcrSet,
    /// The system PCR (must be in `seal`).
    pub system_pcr: PcrIndex,
    /// Persistent handle for the AK.
    pub ak_handle: u32,
    /// NV index of the batch counter.
    pub counter_index: u32,
    /// Which EK to use (default: the first whose certificate is in NV).
    pub ek_kind: Option<EkKind>,
    /// The EK certificate, for firmware TPMs without one in NV.
    pub ek_cert: Option<Vec<u8>>,
    /// The firmware event log to record (None: none, e.g. on swtpm).
    pub firmware_event_log: Option<PathBuf>,
    /// Unix seconds.
    pub now: u64,
}

/// SK and LK, checked against the enrollment record.
pub struct Keys {
    /// The signing key of this boot state.
    pub sk: SigningKey,
    /// The stable log key.
    pub lk: SigningKey,
    /// The record they were checked against.
    pub enrollment: Enrollment,
    /// SK's binding in force: the enrollment's, or the latest rebinding's.
    pub binding: KeyBinding,
}

fn name_of(public: &[u8]) -> Result<Vec<u8>> {
    Ok(Public::from_bytes(public)?.name()?.as_bytes().to_vec())
}

fn save_blob(state: &StateDir, stem: &str, blob: &KeyBlob) -> Result<()> {
    state.write(&format!("{stem}.pub"), &blob.public)?;
    state.write(&format!("{stem}.priv"), &blob.private)
}

/// File stem of a rebound K: named by its public area, so a new K never
/// overwrites the one a record still refers to.
fn rebound_stem(public: &[u8]) -> String {
    let id = provenix_protocol::Sha256Digest::of(public).to_hex();
    format!("k-{}", id.get(..16).unwrap_or_default())
}

fn load_blob(state: &StateDir, stem: &str) -> Result<KeyBlob> {
    Ok(KeyBlob {
        public: state.read(&format!("{stem}.pub"))?,
        private: state.read(&format!("{stem}.priv"))?,
    })
}

/// Derive a key from `blob` (under `policy`, the PCRs K is sealed to) and
/// bind it: TPM2_Certify of the TPM key and a quote of `quote_set`, both
/// with extraData = key_binding_digest. Enrollment and rebinding pass the
/// seal set as both; a verifier refuses a binding where they differ.
pub fn bind(
    tpm: &mut Tpm,
    blob: &KeyBlob,
    policy: Option<&PcrSet>,
    label: &[u8],
    ak: KeyHandle,
    quote_set: &PcrSet,
) -> Result<(SigningKey, KeyBinding)> {
    let key = tpm.derive_key(blob, policy, label)?;
    let public_key = key.verifying_key().to_bytes();
    let extra = key_binding_digest(&public_key, &name_of(&blob.public)?).0;
    let certify = tpm.certify(blob, ak, &extra)?;
    // The quoted values, read with the quote: a verifier can then name the
    // PCR an event log fails to explain. Read again if a PCR moved between
    // the quote and the read (their digest would not be the quote's).
    let mut tries = 0;
    let (quote, values) = loop {
        let quote = tpm.quote(ak, quote_set, &extra)?;
        let values = tpm.read_pcrs(quote_set)?;
        let attest = Attest::from_bytes_expecting(&quote.attest, AttestType::Quote)?;
        let read = provenix_protocol::Sha256Digest::of(&values.concat());
        tries += 1;
        if attest.quote()?.pcr_digest.as_bytes() == read.as_bytes() || tries == 3 {
            break (quote, values);
        }
    };
    Ok((
        key,
        KeyBinding {
            public_key,
            tpm_public: blob.public.clone(),
            certify_attest: certify.attest,
            certify_signature: certify.signature,
            quote_attest: quote.attest,
            quote_signature: quote.signature,
            quote_pcr_values: values,
        },
    ))
}

/// Enroll this TPM into `state`. Refuses a state directory that already
/// holds an enrollment.
pub fn enroll(tpm: &mut Tpm, opts: &EnrollOptions, state: &StateDir) -> Result<Enrollment> {
    if state.exists(ENROLLMENT_FILE) {
        return Err(AgentError::AlreadyEnrolled(state.path().to_path_buf()));
    }
    if !opts.seal.indices().any(|i| i == opts.system_pcr) {
        return Err(AgentError::Config(format!(
            "the system PCR {} is not in the seal set",
            opts.system_pcr
        )));
    }
    let certs = tpm.ek_certificates()?;
    let (ek_kind, ek_certificate) = match (&opts.ek_cert, opts.ek_kind) {
        (Some(cert), kind) => (kind.unwrap_or(EkKind::Rsa2048), cert.clone()),
        (None, Some(kind)) => certs.into_iter().find(|(k, _)| *k == kind).ok_or_else(|| {
            AgentError::Config(format!(
                "no {kind:?} EK certificate in the TPM's NV (index {:#010x}); pass --ek-cert FILE",
                kind.cert_nv_index()
            ))
        })?,
        (None, None) => certs.into_iter().next().ok_or_else(|| {
            AgentError::Config(
                "the TPM holds no EK certificate in NV (0x01c00002, 0x01c0000a, 0x01c00016); \
                 pass --ek-cert FILE from the TPM vendor"
                    .into(),
            )
        })?,
    };
    let ek_public = tpm.ek_public(ek_kind)?;
    let ak: AkBlob = tpm.create_ak(ek_kind)?;
    tpm.persist_ak(ek_kind, &ak, opts.ak_handle)?;
    let ak_handle = tpm.ak_handle(opts.ak_handle)?;
    tpm.define_counter(opts.counter_index)?;

    let k = tpm.create_derivation_key(Some(&opts.seal))?;
    let l = tpm.create_derivation_key(None)?;
    let (_, signing_key) = bind(tpm, &k, Some(&opts.seal), SK_LABEL, ak_handle, &opts.seal)?;
    let (_, log_key) = bind(tpm, &l, None, LK_LABEL, ak_handle, &opts.seal)?;

    let firmware_event_log = match &opts.firmware_event_log {
        Some(p) => std::fs::read(p).map_err(|e| AgentError::Io {
            path: p.clone(),
            source: e,
        })?,
        None => Vec::new(),
    };
    let cel_event_log = if state.exists("cel.log") {
        state.read("cel.log")?
    } else {
        Vec::new()
    };
    let info = tpm.info().clone();
    let record = Enrollment {
        version: ENROLLMENT_VERSION,
        insecure_swtpm: info.software,
        tpm_manufacturer: info.manufacturer,
        tpm_vendor: info.vendor,
        tpm_firmware_version: info.firmware_version,
        ek_kind,
        ek_certificate,
        ek_intermediates: tpm.ek_chain()?,
        ek_public,
        ak_public: ak.public.clone(),
        ak_handle: opts.ak_handle,
        counter_index: opts.counter_index,
        seal_pcrs: opts.seal.indices().map(PcrIndex::get).collect(),
        system_pcr: opts.system_pcr.get(),
        log_key,
        signing_key,
        firmware_event_log,
        cel_event_log,
        time: opts.now,
    };
    let bytes = record.encode()?;
    // Blobs first, the record last: a state directory with a record is complete.
    save_blob(
        state,
        "ak",
        &KeyBlob {
            public: ak.public,
            private: ak.private,
        },
    )?;
    save_blob(state, "k", &k)?;
    save_blob(state, "l", &l)?;
    state.write(ENROLLMENT_FILE, &bytes)?;
    Ok(record)
}

/// Derive SK and LK from the TPM and check them against the record. In a
/// boot state other than the enrolled one, SK cannot be derived and the
/// error says so.
pub fn load_keys(tpm: &mut Tpm, state: &StateDir) -> Result<Keys> {
    let enrollment = Enrollment::decode(&state.read(ENROLLMENT_FILE)?)?;
    let seal = PcrSet::new(&enrollment.seal_pcrs)?;
    let (binding, k) = current_binding(state, &enrollment)?;
    let l = load_blob(state, "l")?;
    if l.public != enrollment.log_key.tpm_public {
        return Err(AgentError::KeyMismatch {
            which: "LK",
            why: "the key blobs are not the ones the record binds (state directory mixed up)",
        });
    }
    let lk = tpm.derive_key(&l, None, LK_LABEL)?;
    if lk.verifying_key().to_bytes() != enrollment.log_key.public_key {
        return Err(AgentError::KeyMismatch {
            which: "LK",
            why: "this is not the TPM that enrolled (or it was cleared)",
        });
    }
    let sk = tpm.derive_key(&k, Some(&seal), SK_LABEL)?;
    if sk.verifying_key().to_bytes() != binding.public_key {
        return Err(AgentError::KeyMismatch {
            which: "SK",
            why: "the record does not belong to this key",
        });
    }
    Ok(Keys {
        sk,
        lk,
        enrollment,
        binding,
    })
}

/// SK's binding in force and its K blob: the latest rebinding's if any,
/// else the enrollment's.
fn current_binding(state: &StateDir, enrollment: &Enrollment) -> Result<(KeyBinding, KeyBlob)> {
    let (binding, stem) = if state.exists(REBINDING_FILE) {
        let r = KeyRebinding::decode(&state.read(REBINDING_FILE)?)?;
        let stem = rebound_stem(&r.signing_key.tpm_public);
        (r.signing_key, stem)
    } else {
        (enrollment.signing_key.clone(), String::from("k"))
    };
    let k = load_blob(state, &stem)?;
    if k.public != binding.tpm_public {
        return Err(AgentError::KeyMismatch {
            which: "SK",
            why: "the key blobs are not the ones the record binds (state directory mixed up)",
        });
    }
    Ok((binding, k))
}

/// After an approved upgrade: seal a new K to the seal set's current values,
/// derive and bind a new SK, and record it (`rebinding.bin`, written last:
/// until then the old binding stays in force). Refuses another TPM (LK must
/// still derive) and a boot state the current SK still works in.
pub fn rebind(
    tpm: &mut Tpm,
    state: &StateDir,
    firmware_event_log: Option<&std::path::Path>,
    now: u64,
) -> Result<KeyRebinding> {
    let enrollment = Enrollment::decode(&state.read(ENROLLMENT_FILE)?)?;
    let seal = PcrSet::new(&enrollment.seal_pcrs)?;
    let l = load_blob(state, "l")?;
    if tpm
        .derive_key(&l, None, LK_LABEL)?
        .verifying_key()
        .to_bytes()
        != enrollment.log_key.public_key
    {
        return Err(AgentError::KeyMismatch {
            which: "LK",
            why: "this is not the TPM that enrolled (or it was cleared)",
        });
    }
    let (current, k) = current_binding(state, &enrollment)?;
    if let Ok(sk) = tpm.derive_key(&k, Some(&seal), SK_LABEL) {
        if sk.verifying_key().to_bytes() == current.public_key {
            return Err(AgentError::Config(
                "the signing key still derives in this boot state: nothing to rebind".into(),
            ));
        }
    }
    let k = tpm.create_derivation_key(Some(&seal))?;
    let ak = tpm.ak_handle(enrollment.ak_handle)?;
    let (_, signing_key) = bind(tpm, &k, Some(&seal), SK_LABEL, ak, &seal)?;
    let firmware_event_log = match firmware_event_log {
        Some(p) => std::fs::read(p).map_err(|e| AgentError::Io {
            path: p.to_path_buf(),
            source: e,
        })?,
        None => Vec::new(),
    };
    let cel_event_log = if state.exists(crate::measure::CEL_LOG) {
        state.read(crate::measure::CEL_LOG)?
    } else {
        Vec::new()
    };
    let record = KeyRebinding {
        version: REBINDING_VERSION,
        signing_key,
        firmware_event_log,
        cel_event_log,
        time: now,
    };
    let bytes = record.encode()?;
    save_blob(state, &rebound_stem(&k.public), &k)?;
    state.write(REBINDING_FILE, &bytes)?;
    Ok(record)
}
