//! The builder's TPM identity: EK certificates, the EK, and the attestation
//! key (AK) that signs quotes and certifications.
//!
//! ```text
//! EK (TCG default template, recreated from the endorsement seed on demand)
//!  └─ AK = ECC P-256 ECDSA-SHA256, restricted | sign | fixedTPM | fixedParent |
//!         sensitiveDataOrigin, not decrypt; in the endorsement hierarchy (so
//!         quotes carry true resetCount/restartCount/firmwareVersion);
//!         persisted at a persistent handle
//! quote(AK, extraData[32], PCR set) -> (TPMS_ATTEST bytes, TPMT_SIGNATURE bytes)
//! ```

use tss_esapi::abstraction::{ak, ek, nv, AsymmetricAlgorithmSelection};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Provision;
use tss_esapi::structures::{Data, Public, SignatureScheme};
use tss_esapi::traits::{Marshall, UnMarshall};

use crate::error::{AgentError, Result};
use crate::keys::PcrSet;
use crate::tpm::Tpm;

/// Where the AK is persisted by default (TCG "TPM v2.0 Provisioning
/// Guidance" leaves 0x8101xxxx to the platform owner's keys).
pub const DEFAULT_AK_HANDLE: u32 = 0x8101_0002;

pub use provenix_protocol::enrollment::EkKind;

fn selection(kind: EkKind) -> AsymmetricAlgorithmSelection {
    match kind {
        EkKind::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        EkKind::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        EkKind::EccP384 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP384),
    }
}

/// An AK as created: its public area and its private area wrapped by the EK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AkBlob {
    /// Marshalled TPMT_PUBLIC (SHA-256 of it is the AK's Name digest).
    pub public: Vec<u8>,
    /// The private area, encrypted under the EK.
    pub private: Vec<u8>,
}

/// A quote or certification as the TPM signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    /// Marshalled TPMS_ATTEST (what was signed).
    pub attest: Vec<u8>,
    /// Marshalled TPMT_SIGNATURE.
    pub signature: Vec<u8>,
}

impl Tpm {
    /// The EK certificates present in NV (DER), by kind.
    pub fn ek_certificates(&mut self) -> Result<Vec<(EkKind, Vec<u8>)>> {
        let present: Vec<u32> = nv::list(self.context())
            .map_err(|e| AgentError::tpm("GetCapability (NV indices)", e))?
            .iter()
            .map(|(p, _)| u32::from(p.nv_index()))
            .collect();
        let mut out = Vec::new();
        for kind in EkKind::ALL {
            if present.contains(&kind.cert_nv_index()) {
                let cert = ek::retrieve_ek_pubcert(self.context(), selection(kind))
                    .map_err(|e| AgentError::tpm("NV_Read (EK certificate)", e))?;
                out.push((kind, cert));
            }
        }
        Ok(out)
    }

    /// The EK certificate chain the TPM stores (NV 0x01c00100..=0x01c001ff,
    /// concatenated DER), in index order; empty when it stores none.
    pub fn ek_chain(&mut self) -> Result<Vec<Vec<u8>>> {
        use provenix_protocol::enrollment::{split_der_certificates, EK_CHAIN_NV_RANGE};
        use tss_esapi::handles::NvIndexTpmHandle;
        use tss_esapi::interface_types::resource_handles::NvAuth;
        let mut indices: Vec<u32> = nv::list(self.context())
            .map_err(|e| AgentError::tpm("GetCapability (NV indices)", e))?
            .iter()
            .map(|(p, _)| u32::from(p.nv_index()))
            .filter(|i| EK_CHAIN_NV_RANGE.contains(i))
            .collect();
        indices.sort_unstable();
        let mut chain = Vec::new();
        for index in indices {
            let tpm_index =
                NvIndexTpmHandle::new(index).map_err(|e| AgentError::tpm("NV index", e))?;
            let data = self
                .context()
                .execute_without_session(|ctx| {
                    ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_index))
                })
                .and_then(|h| {
                    self.context().execute_with_session(
                        Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                        |ctx| nv::read_full(ctx, NvAuth::NvIndex(h.into()), tpm_index),
                    )
                })
                .map_err(|e| AgentError::tpm("NV_Read (EK chain)", e))?;
            chain.extend(split_der_certificates(&data)?);
        }
        Ok(chain)
    }

    /// Create the EK of `kind` from the endorsement seed (transient; the
    /// caller flushes it).
    pub fn create_ek(&mut self, kind: EkKind) -> Result<KeyHandle> {
        ek::create_ek_object_2(self.context(), selection(kind), None)
            .map_err(|e| AgentError::tpm("CreatePrimary (EK)", e))
    }

    /// The EK's public area (marshalled TPMT_PUBLIC).
    pub fn ek_public(&mut self, kind: EkKind) -> Result<Vec<u8>> {
        let ek = self.create_ek(kind)?;
        let public = self.context().read_public(ek);
        self.flush_handle(ek.into());
        public
            .map_err(|e| AgentError::tpm("ReadPublic (EK)", e))?
            .0
            .marshall()
            .map_err(|e| AgentError::tpm("marshal EK public", e))
    }

    /// Create an AK under the EK of `kind`.
    pub fn create_ak(&mut self, kind: EkKind) -> Result<AkBlob> {
        let ek = self.create_ek(kind)?;
        let created = ak::create_ak_2(
            self.context(),
            ek,
            HashingAlgorithm::Sha256,
            AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
            SignatureSchemeAlgorithm::EcDsa,
            None,
            None,
        );
        self.flush_handle(ek.into());
        let created = created.map_err(|e| AgentError::tpm("Create (AK)", e))?;
        Ok(AkBlob {
            public: created
                .out_public
                .marshall()
                .map_err(|e| AgentError::tpm("marshal AK public", e))?,
            private: created.out_private.value().to_vec(),
        })
    }

    /// Load the AK under the EK of `kind` and make it persistent at `handle`.
    pub fn persist_ak(&mut self, kind: EkKind, blob: &AkBlob, handle: u32) -> Result<()> {
        let public =
            Public::unmarshall(&blob.public).map_err(|e| AgentError::tpm("AK public", e))?;
        let private = tss_esapi::structures::Private::try_from(blob.private.clone())
            .map_err(|e| AgentError::tpm("AK private", e))?;
        let ek = self.create_ek(kind)?;
        let loaded = ak::load_ak(self.context(), ek, None, private, public);
        self.flush_handle(ek.into());
        let loaded = loaded.map_err(|e| AgentError::tpm("Load (AK)", e))?;
        let persistent = PersistentTpmHandle::new(handle)
            .map_err(|e| AgentError::tpm("persistent handle", e))?;
        let result = self.context().execute_with_session(
            Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
            |ctx| {
                ctx.evict_control(
                    Provision::Owner,
                    loaded.into(),
                    Persistent::Persistent(persistent),
                )
            },
        );
        self.flush_handle(loaded.into());
        result
            .map(|_| ())
            .map_err(|e| AgentError::tpm("EvictControl (persist AK)", e))
    }

    /// The persisted AK at `handle`.
    pub fn ak_handle(&mut self, handle: u32) -> Result<KeyHandle> {
        let tpm_handle = TpmHandle::Persistent(
            PersistentTpmHandle::new(handle).map_err(|e| AgentError::tpm("AK handle", e))?,
        );
        self.context()
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(tpm_handle))
            .map(KeyHandle::from)
            .map_err(|e| AgentError::tpm("ReadPublic (persisted AK)", e))
    }

    /// Quote `set` (SHA-256 bank) with the AK, `extra_data` as qualifying data.
    pub fn quote(
        &mut self,
        ak: KeyHandle,
        set: &PcrSet,
        extra_data: &[u8; 32],
    ) -> Result<SignedAttestation> {
        let sel = set.selection()?;
        let data = Data::try_from(extra_data.to_vec()).map_err(|e| AgentError::tpm("data", e))?;
        let (attest, sig) = self
            .context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.quote(ak, data, SignatureScheme::Null, sel),
            )
            .map_err(|e| AgentError::tpm("Quote", e))?;
        Ok(SignedAttestation {
            attest: attest
                .marshall()
                .map_err(|e| AgentError::tpm("marshal attest", e))?,
            signature: sig
                .marshall()
                .map_err(|e| AgentError::tpm("marshal signature", e))?,
        })
    }

    pub(crate) fn flush_handle(&mut self, handle: ObjectHandle) {
        // Flushing a transient handle only fails if it is already gone.
        let _ = self.context().flush_context(handle);
    }
}

impl Tpm {
    /// Answer a credential-activation challenge (TPM2_ActivateCredential):
    /// recovers the secret only if the challenge was made for this TPM's EK
    /// of `kind` and the AK persisted at `ak_handle`. The RSA-2048 and
    /// P-256 EK templates have userWithAuth clear, so the EK is authorized
    /// by a PolicySecret(TPM_RH_ENDORSEMENT) session; the high-range
    /// templates (P-384) accept their empty authValue.
    pub fn activate_credential(
        &mut self,
        kind: EkKind,
        ak_handle: u32,
        challenge: &provenix_protocol::tpm::CredentialChallenge,
    ) -> Result<Vec<u8>> {
        use tss_esapi::constants::SessionType;
        use tss_esapi::handles::AuthHandle;
        use tss_esapi::handles::SessionHandle;
        use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
        use tss_esapi::structures::{EncryptedSecret, IdObject, SymmetricDefinition};

        let blob_tpm2b = challenge.credential_blob.to_tpm2b_bytes();
        let blob = IdObject::try_from(blob_tpm2b.get(2..).unwrap_or_default().to_vec())
            .map_err(|e| AgentError::tpm("credential blob", e))?;
        let secret = EncryptedSecret::try_from(challenge.encrypted_secret.as_bytes().to_vec())
            .map_err(|e| AgentError::tpm("encrypted secret", e))?;
        let ak = self.ak_handle(ak_handle)?;
        let ek = self.create_ek(kind)?;
        let needs_policy = matches!(kind, EkKind::Rsa2048 | EkKind::EccP256);
        let ctx = self.context();
        let result = if needs_policy {
            let session = ctx
                .start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Policy,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
                .map_err(|e| AgentError::tpm("StartAuthSession (EK policy)", e))
                .and_then(|s| {
                    s.ok_or_else(|| AgentError::Config("the TPM returned no session".into()))
                });
            session.and_then(|s| {
                let r = PolicySession::try_from(s)
                    .and_then(|ps| {
                        ctx.execute_with_session(
                            Some(
                                tss_esapi::interface_types::session_handles::AuthSession::Password,
                            ),
                            |ctx| {
                                ctx.policy_secret(
                                    ps,
                                    AuthHandle::Endorsement,
                                    Default::default(),
                                    Default::default(),
                                    Default::default(),
                                    None,
                                )
                            },
                        )
                    })
                    .and_then(|_| {
                        ctx.execute_with_sessions(
                            (Some(AuthSession::Password), Some(s), None),
                            |ctx| ctx.activate_credential(ak, ek, blob, secret),
                        )
                    })
                    .map_err(|e| AgentError::tpm("ActivateCredential", e));
                let _ = ctx.flush_context(ObjectHandle::from(SessionHandle::from(s)));
                r
            })
        } else {
            ctx.execute_with_sessions(
                (
                    Some(AuthSession::Password),
                    Some(AuthSession::Password),
                    None,
                ),
                |ctx| ctx.activate_credential(ak, ek, blob, secret),
            )
            .map_err(|e| AgentError::tpm("ActivateCredential", e))
        };
        self.flush_handle(ek.into());
        Ok(result?.value().to_vec())
    }
}
