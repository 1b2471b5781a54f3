//! The agent's error type, with TPM failures turned into advice a builder
//! operator can act on.

use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};

/// Result alias for the agent.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The TCTI string could not be parsed or loaded.
    #[error("TPM interface {tcti:?}: {reason}")]
    Tcti {
        /// The TCTI given.
        tcti: String,
        /// What went wrong.
        reason: String,
    },
    /// The TPM is a software TPM and the configuration does not allow one.
    #[error(
        "the TPM at {tcti:?} is a software TPM ({vendor}); refusing it. Records made with a \
         software TPM prove nothing about hardware: pass --insecure-allow-swtpm (or set \
         insecure_allow_swtpm) only for tests and demos"
    )]
    SoftwareTpmRefused {
        /// The TCTI given.
        tcti: String,
        /// What the TPM says it is.
        vendor: String,
    },
    /// A TPM command failed.
    #[error("TPM command {command} failed: {code}{}", hint.map(|h| format!(" — {h}")).unwrap_or_default())]
    Tpm {
        /// The command (e.g. "Quote", "NV_Increment").
        command: &'static str,
        /// The TPM's or the TSS's description of the error.
        code: String,
        /// What the operator can do about it, where known.
        hint: Option<&'static str>,
    },
    /// A file in the state directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The state directory already holds an enrollment.
    #[error("{0} already holds an enrollment: this TPM is enrolled there; use another state directory to enroll again")]
    AlreadyEnrolled(std::path::PathBuf),
    /// The derived key does not match the enrollment record.
    #[error("the {which} derived from this TPM does not match the enrollment record in the state directory: {why}")]
    KeyMismatch {
        /// "SK" or "LK".
        which: &'static str,
        /// What this means.
        why: &'static str,
    },
    /// The batch counter says the log or the TPM was rolled back.
    #[error("{0}")]
    CounterRollback(String),
    /// A configuration or state problem outside the TPM.
    #[error("{0}")]
    Config(String),
    /// A check found something wrong (status, sign-cache): exit 1.
    #[error("{0}")]
    Unhealthy(String),
    /// An event-log error (the agent's CEL-JSON log).
    #[error(transparent)]
    EventLog(#[from] provenix_measured_boot::Error),
    /// A protocol-level error.
    #[error(transparent)]
    Protocol(#[from] provenix_protocol::Error),
}

/// Advice for the TPM errors an operator is likely to meet.
pub fn tpm_hint(kind: Tss2ResponseCodeKind) -> Option<&'static str> {
    use Tss2ResponseCodeKind as K;
    Some(match kind {
        K::Lockout => {
            "the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT 0x921) after repeated bad \
             authorizations: wait for the lockout interval or clear it with the lockout \
             authorization (tpm2_dictionarylockout -c)"
        }
        K::ObjectMemory => {
            "the TPM has no free object slots (TPM_RC_OBJECT_MEMORY 0x902): use the kernel's \
             resource manager (device:/dev/tpmrm0) or flush loaded objects"
        }
        K::PolicyFail => {
            "the key's PCR policy does not match this boot (TPM_RC_POLICY_FAIL 0x99d): the \
             signing key is bound to a different boot state: after an approved upgrade, \
             re-enroll the key with `provenix-agent enroll --rebind`"
        }
        K::NvUninitialized => {
            "the NV index was defined but never written (TPM_RC_NV_UNINITIALIZED 0x14a): the \
             enrollment did not finish; run enroll again"
        }
        K::NvRate => "the TPM is rate-limiting NV writes (TPM_RC_NV_RATE): retry later",
        K::Retry | K::Yielded | K::Canceled => "the TPM is busy: retry the command",
        K::AuthFail => {
            "authorization failed (TPM_RC_AUTH_FAIL): the object's authorization value is wrong; \
             repeated failures lead to lockout"
        }
        K::Initialize => {
            "the TPM has not been started up (TPM_RC_INITIALIZE): the firmware should send \
             TPM2_Startup; for swtpm use --flags startup-clear"
        }
        _ => return None,
    })
}

impl AgentError {
    /// Wrap a tss-esapi error from `command`, adding operator advice.
    pub fn tpm(command: &'static str, e: tss_esapi::Error) -> Self {
        let hint = match e {
            tss_esapi::Error::Tss2Error(rc) => rc.kind().and_then(tpm_hint),
            tss_esapi::Error::WrapperError(_) => None,
        };
        let code = match e {
            tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatZero(c)) => c.to_string(),
            tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(c)) => c.to_string(),
            other => other.to_string(),
        };
        Self::Tpm {
            command,
            code,
            hint,
        }
    }
}
