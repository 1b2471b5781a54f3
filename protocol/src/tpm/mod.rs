//! TPM 2.0 structures without a TPM: the one codec the verifier uses for
//! what TPMs produce and consume (TPM 2.0 Library, Part 1 "Architecture",
//! Part 2 "Structures", Part 3 "Commands").
//!
//! ```text
//!   agent (tss-esapi)                               verifier (this module)
//!   ─────────────────                               ──────────────────────
//!   TPM2_Quote / TPM2_Certify ──attest bytes──────> Signature::verify(AK Public)
//!                              ──TPMT_SIGNATURE───>   then Attest::from_bytes
//!                                                     ├ QuoteInfo: PcrSelectionList,
//!                                                     │  pcrDigest = H(values)
//!                                                     └ CertifyInfo: Name(K) =
//!                                                        Public::name(), authPolicy =
//!                                                        policy_pcr(...)
//!   AK public (TPM2B_PUBLIC) ─────────────────────> Public::from_tpm2b_bytes
//!                                                     → Name = BuilderId
//!   TPM2_ActivateCredential <──CredentialChallenge─ make_credential(EK Public from the
//!                           ──CredentialAnswer────>   verified EK certificate, AK Name)
//! ```
//!
//! Everything is bounded (every `TPM2B_*` by its type's largest size), typed
//! (algorithm identifiers become enums; unknown ones are refused with
//! [`crate::Error::TpmUnsupportedAlgorithm`]) and strict: readers refuse
//! trailing bytes, and whatever parses marshals back to the same bytes, so
//! a Name computed from a parsed public area is the TPM's. No TPM, no IO:
//! randomness for MakeCredential is an argument.
//!
//! Byte layouts are in `docs/wire-format.md`, "TPM structures
//! (protocol::tpm)".

pub mod attest;
pub mod codec;
pub mod credential;
pub mod pcr;
pub mod policy;
pub mod public;
pub mod signature;
pub mod types;

pub use attest::{
    Attest, AttestType, Attested, CertifyInfo, ClockInfo, QuoteInfo, TPM_GENERATED_VALUE,
    TPM_ST_ATTEST_CERTIFY, TPM_ST_ATTEST_QUOTE,
};
pub use codec::{Reader, Writer};
pub use credential::{
    kdf_a, kdf_e, make_credential, CredentialAnswer, CredentialChallenge, IdObject, MadeCredential,
    StorageParams,
};
pub use pcr::{PcrSelection, PcrSelectionList, PcrValues};
pub use policy::{policy_pcr, policy_pcr_with_digest, TPM_CC_POLICY_PCR};
pub use public::{
    EccCurve, EccParams, EccPoint, EccScheme, KdfAlg, KdfScheme, KeyedHashScheme, ObjectAttributes,
    Public, PublicKey, RsaParams, RsaScheme, SymAlg, SymDef, SymMode,
};
pub use signature::{verify_attest, Signature};
pub use types::{Data, Digest, EccParameter, EncryptedSecret, HashAlg, Name, PublicKeyRsa};
