//! TPM-derived Ed25519 keys: SK (bound to the measured boot state) and LK
//! (the builder's stable log key).
//!
//! ```text
//! SRK  = ECC P-256 storage primary in the owner hierarchy (recreated on demand)
//! K    = keyedHash HMAC-SHA256 under SRK, authPolicy = PolicyPCR(seal set, values now),
//!        userWithAuth clear, adminWithPolicy clear, sensitiveDataOrigin: usable only in
//!        a boot whose seal-set PCRs equal the enrollment values
//! L    = the same without a policy (userWithAuth set): stable per TPM
//! SK seed = TPM2_HMAC(K, "provenix/sk/v1"),  LK seed = TPM2_HMAC(L, "provenix/log/v1")
//! ```
//! The HMAC runs in a session salted with the SRK and with response
//! encryption, so the seed does not cross the bus in clear. Only K's and L's
//! TPM blobs (public area and private area wrapped by the SRK) go to disk;
//! no seed ever does.

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use provenix_protocol::PcrIndex;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, EccPoint, KeyedHashScheme, MaxBuffer, PcrSelectionList, PcrSelectionListBuilder,
    PcrSlot, Private, Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters,
    SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};

use crate::error::{AgentError, Result};
use crate::tpm::Tpm;

/// Label of the SK derivation.
pub const SK_LABEL: &[u8] = b"provenix/sk/v1";
/// Label of the LK derivation.
pub const LK_LABEL: &[u8] = b"provenix/log/v1";
/// The default system PCR (systemd owns 11, 12, 13 and 15).
pub const DEFAULT_SYSTEM_PCR: u8 = 14;
/// The default seal and quote set (DESIGN.md "Which PCRs").
pub const DEFAULT_SEAL_PCRS: [u8; 8] = [0, 2, 4, 7, 9, 12, 13, DEFAULT_SYSTEM_PCR];

/// A set of SHA-256 PCRs that a key is sealed to (and quotes cover).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcrSet(BTreeSet<PcrIndex>);

impl PcrSet {
    /// A set from indices (each checked to be 0..=23).
    pub fn new(indices: &[u8]) -> Result<Self> {
        let mut set = BTreeSet::new();
        for &i in indices {
            set.insert(PcrIndex::new(i)?);
        }
        if set.is_empty() {
            return Err(AgentError::Config("the PCR set is empty".into()));
        }
        Ok(Self(set))
    }

    /// The default seal set.
    pub fn default_seal_set() -> Self {
        Self(
            DEFAULT_SEAL_PCRS
                .iter()
                .filter_map(|&i| PcrIndex::new(i).ok())
                .collect(),
        )
    }

    /// The indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = PcrIndex> + '_ {
        self.0.iter().copied()
    }

    pub(crate) fn selection(&self) -> Result<PcrSelectionList> {
        let mut slots = Vec::new();
        for i in &self.0 {
            let slot = PcrSlot::try_from(1u32 << i.get())
                .map_err(|e| AgentError::tpm("PCR selection", e))?;
            slots.push(slot);
        }
        PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &slots)
            .build()
            .map_err(|e| AgentError::tpm("PCR selection", e))
    }
}

/// A key's TPM blobs, as stored on disk: the marshalled TPMT_PUBLIC and the
/// TPM2B_PRIVATE contents (wrapped by the SRK; useless without this TPM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBlob {
    /// Marshalled TPMT_PUBLIC (its hash is the key's Name).
    pub public: Vec<u8>,
    /// The private area, encrypted under the SRK.
    pub private: Vec<u8>,
}

fn srk_template() -> Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_decrypt(true)
        .with_no_da(true)
        .build()
        .map_err(|e| AgentError::tpm("SRK template", e))?;
    let params = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()
    .map_err(|e| AgentError::tpm("SRK template", e))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(|e| AgentError::tpm("SRK template", e))
}

fn hmac_key_template(auth_policy: Option<Digest>) -> Result<Public> {
    let attrs = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_sign_encrypt(true)
        .with_user_with_auth(auth_policy.is_none())
        .with_admin_with_policy(false)
        .with_no_da(true)
        .build()
        .map_err(|e| AgentError::tpm("key template", e))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs)
        .with_auth_policy(auth_policy.unwrap_or_default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(
            KeyedHashScheme::HMAC_SHA_256,
        ))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .map_err(|e| AgentError::tpm("key template", e))
}

fn policy_session(s: Option<AuthSession>) -> Result<PolicySession> {
    s.ok_or_else(|| AgentError::Config("the TPM returned no session".into()))?
        .try_into()
        .map_err(|e| AgentError::tpm("StartAuthSession", e))
}

impl Tpm {
    /// Create the storage root key (deterministic from the owner seed).
    fn srk(&mut self) -> Result<KeyHandle> {
        let template = srk_template()?;
        self.context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.create_primary(Hierarchy::Owner, template, None, None, None, None),
            )
            .map(|r| r.key_handle)
            .map_err(|e| AgentError::tpm("CreatePrimary (SRK)", e))
    }

    fn flush(&mut self, handle: impl Into<ObjectHandle>) {
        self.flush_handle(handle.into());
    }

    /// The PolicyPCR digest of `set` at the PCRs' current values, computed
    /// by the TPM in a trial session.
    pub fn pcr_policy_digest(&mut self, set: &PcrSet) -> Result<[u8; 32]> {
        let sel = set.selection()?;
        let ctx = self.context();
        let session = ctx
            .start_auth_session(
                None,
                None,
                None,
                SessionType::Trial,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(|e| AgentError::tpm("StartAuthSession (trial)", e))?;
        let ps = policy_session(session)?;
        let result = ctx
            .policy_pcr(ps, Digest::default(), sel)
            .and_then(|()| ctx.policy_get_digest(ps))
            .map_err(|e| AgentError::tpm("PolicyPCR (trial)", e));
        self.flush(ObjectHandle::from(tss_esapi::handles::SessionHandle::from(
            ps,
        )));
        digest32(&result?)
    }

    /// Create a derivation key under the SRK: K (sealed to `policy`'s
    /// current values) when `policy` is given, L otherwise.
    pub fn create_derivation_key(&mut self, policy: Option<&PcrSet>) -> Result<KeyBlob> {
        let auth_policy = match policy {
            Some(set) => Some(
                Digest::try_from(self.pcr_policy_digest(set)?.to_vec())
                    .map_err(|e| AgentError::tpm("policy digest", e))?,
            ),
            None => None,
        };
        let template = hmac_key_template(auth_policy)?;
        let srk = self.srk()?;
        let created = self.context().execute_with_session(
            Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
            |ctx| ctx.create(srk, template, None, None, None, None),
        );
        self.flush(srk);
        let created = created.map_err(|e| AgentError::tpm("Create (derivation key)", e))?;
        let public = created
            .out_public
            .marshall()
            .map_err(|e| AgentError::tpm("marshal public", e))?;
        Ok(KeyBlob {
            public,
            private: created.out_private.value().to_vec(),
        })
    }

    /// Derive a 32-byte seed: TPM2_HMAC(key, label) in a session salted with
    /// the SRK and with response encryption. With `policy`, the session is a
    /// PolicyPCR session over the set's current values, and the TPM refuses
    /// (TPM_RC_POLICY_FAIL) in any other boot state.
    pub fn derive_seed(
        &mut self,
        blob: &KeyBlob,
        policy: Option<&PcrSet>,
        label: &[u8],
    ) -> Result<[u8; 32]> {
        let public =
            Public::unmarshall(&blob.public).map_err(|e| AgentError::tpm("unmarshal public", e))?;
        let private = Private::try_from(blob.private.clone())
            .map_err(|e| AgentError::tpm("private blob", e))?;
        let data =
            MaxBuffer::try_from(label.to_vec()).map_err(|e| AgentError::tpm("HMAC input", e))?;
        let sel = policy.map(PcrSet::selection).transpose()?;
        let srk = self.srk()?;
        let loaded = self.context().execute_with_session(
            Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
            |ctx| ctx.load(srk, private, public),
        );
        let key = match loaded {
            Ok(k) => k,
            Err(e) => {
                self.flush(srk);
                return Err(AgentError::tpm("Load (derivation key)", e));
            }
        };
        let kind = if sel.is_some() {
            SessionType::Policy
        } else {
            SessionType::Hmac
        };
        let ctx = self.context();
        let session = ctx
            .start_auth_session(
                Some(srk),
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(|e| AgentError::tpm("StartAuthSession (salted)", e));
        let result = session.and_then(|s| {
            let s = s.ok_or_else(|| AgentError::Config("the TPM returned no session".into()))?;
            // continueSession stays set: the session is flushed below on
            // every path, so tss-esapi's handle tracking stays true.
            let (attrs, mask) = SessionAttributesBuilder::new()
                .with_encrypt(true)
                .with_continue_session(true)
                .build();
            let run = (|| {
                ctx.tr_sess_set_attributes(s, attrs, mask)
                    .map_err(|e| AgentError::tpm("session attributes", e))?;
                if let Some(sel) = sel {
                    let ps = policy_session(Some(s))?;
                    ctx.policy_pcr(ps, Digest::default(), sel)
                        .map_err(|e| AgentError::tpm("PolicyPCR", e))?;
                }
                ctx.execute_with_session(Some(s), |ctx| {
                    ctx.hmac(key.into(), data, HashingAlgorithm::Sha256)
                })
                .map_err(|e| AgentError::tpm("HMAC", e))
            })();
            let _ = ctx.flush_context(ObjectHandle::from(tss_esapi::handles::SessionHandle::from(
                s,
            )));
            run
        });
        self.flush(key);
        self.flush(srk);
        digest32(&result?)
    }

    /// SK or LK: the Ed25519 key whose seed is [`Self::derive_seed`].
    pub fn derive_key(
        &mut self,
        blob: &KeyBlob,
        policy: Option<&PcrSet>,
        label: &[u8],
    ) -> Result<SigningKey> {
        Ok(SigningKey::from_bytes(
            &self.derive_seed(blob, policy, label)?,
        ))
    }

    /// TPM2_Certify of a derivation key (K or L) by the AK: proves the key
    /// with this public area (hence this authPolicy) lives in the AK's TPM.
    /// `extra_data` is the qualifying data (the key-binding digest).
    pub fn certify(
        &mut self,
        blob: &KeyBlob,
        ak: KeyHandle,
        extra_data: &[u8; 32],
    ) -> Result<crate::identity::SignedAttestation> {
        use tss_esapi::structures::{Data, SignatureScheme};
        let public =
            Public::unmarshall(&blob.public).map_err(|e| AgentError::tpm("unmarshal public", e))?;
        let private = Private::try_from(blob.private.clone())
            .map_err(|e| AgentError::tpm("private blob", e))?;
        let data = Data::try_from(extra_data.to_vec()).map_err(|e| AgentError::tpm("data", e))?;
        let srk = self.srk()?;
        let loaded = self.context().execute_with_session(
            Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
            |ctx| ctx.load(srk, private, public),
        );
        self.flush(srk);
        let key = loaded.map_err(|e| AgentError::tpm("Load (derivation key)", e))?;
        // Certify needs the ADMIN role on the key (adminWithPolicy is clear,
        // so its empty authValue) and the USER role on the AK.
        let certified = self.context().execute_with_sessions(
            (
                Some(AuthSession::Password),
                Some(AuthSession::Password),
                None,
            ),
            |ctx| ctx.certify(key.into(), ak, data, SignatureScheme::Null),
        );
        self.flush(key);
        let (attest, sig) = certified.map_err(|e| AgentError::tpm("Certify", e))?;
        Ok(crate::identity::SignedAttestation {
            attest: attest
                .marshall()
                .map_err(|e| AgentError::tpm("marshal attest", e))?,
            signature: sig
                .marshall()
                .map_err(|e| AgentError::tpm("marshal signature", e))?,
        })
    }

    /// Read the SHA-256 values of `set`, in ascending index order.
    pub fn read_pcrs(&mut self, set: &PcrSet) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        // PCR_Read returns at most 8 values per call: ask one at a time.
        for i in set.indices() {
            let one = PcrSet::new(&[i.get()])?.selection()?;
            let (_, _, digests) = self
                .context()
                .pcr_read(one)
                .map_err(|e| AgentError::tpm("PCR_Read", e))?;
            let d = digests
                .value()
                .first()
                .ok_or_else(|| AgentError::Config(format!("PCR {i} has no SHA-256 bank")))?;
            out.push(digest32(d)?);
        }
        Ok(out)
    }

    /// Extend SHA-256 PCR `index` with `digest`.
    pub fn extend_pcr(&mut self, index: PcrIndex, digest: [u8; 32]) -> Result<()> {
        use tss_esapi::handles::PcrHandle;
        use tss_esapi::structures::DigestValues;
        let handle = PcrHandle::try_from(u32::from(index.get()))
            .map_err(|e| AgentError::tpm("PCR handle", e))?;
        let mut values = DigestValues::new();
        values.set(
            HashingAlgorithm::Sha256,
            Digest::try_from(digest.to_vec()).map_err(|e| AgentError::tpm("digest", e))?,
        );
        self.context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.pcr_extend(handle, values),
            )
            .map_err(|e| AgentError::tpm("PCR_Extend", e))
    }
}

fn digest32(d: &Digest) -> Result<[u8; 32]> {
    d.value()
        .try_into()
        .map_err(|_| AgentError::Config(format!("expected a 32-byte digest, got {}", d.len())))
}
