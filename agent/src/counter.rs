//! The batch counter: a TPM NV counter (TPM_NT_COUNTER | TPMA_NV_ORDERLY |
//! no_da) whose value is part of every batch quote's extraData, and the
//! rollback rule the agent applies before each batch (DESIGN.md, "Keys and
//! trust chain": counter-based nonces).

use provenix_protocol::Counter;
use tss_esapi::attributes::NvIndexAttributesBuilder;
use tss_esapi::constants::NvIndexType;
use tss_esapi::handles::{NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::{NvAuth, Provision};
use tss_esapi::structures::NvPublicBuilder;

use crate::error::{AgentError, Result};
use crate::tpm::Tpm;

/// Default NV index of the batch counter (owner range 0x01800000 -
/// 0x01bfffff of the TCG registry of reserved handles).
pub const DEFAULT_COUNTER_INDEX: u32 = 0x0180_7072;

/// The TPM reference implementation keeps orderly counters in RAM and
/// writes them to NV every 2^ORDERLY_BITS increments; after an unclean
/// shutdown the counter resumes up to that far ahead.
pub const DEFAULT_ORDERLY_JUMP: u64 = 1 << 8;

/// What the agent concludes from the TPM counter and its log's last counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterCheck {
    /// The log and the TPM agree (equal, or the TPM ahead by what a crash
    /// between increment and append, or an orderly jump, explains).
    Consistent,
    /// The TPM counter is below the log's: another TPM, or one cleared.
    TpmBehindLog {
        /// The TPM's value.
        tpm: u64,
        /// The log's last value.
        log: u64,
    },
    /// The TPM is further ahead than a crash explains: the state directory
    /// was restored from an older copy.
    LogRolledBack {
        /// The TPM's value.
        tpm: u64,
        /// The log's last value.
        log: u64,
        /// The largest gap a crash explains (the configured orderly bound).
        allowed: u64,
    },
}

/// Compare the TPM's counter with the last counter recorded in the log
/// (`None` for a log with no batch yet, which must meet a fresh counter).
pub fn check_counter(tpm: Counter, log_last: Option<Counter>, orderly_jump: u64) -> CounterCheck {
    let log = log_last.map_or(0, |c| c.0);
    let allowed = orderly_jump.max(1);
    if tpm.0 < log {
        CounterCheck::TpmBehindLog { tpm: tpm.0, log }
    } else if tpm.0 - log > allowed {
        CounterCheck::LogRolledBack {
            tpm: tpm.0,
            log,
            allowed,
        }
    } else {
        CounterCheck::Consistent
    }
}

impl Tpm {
    fn nv_handle(&mut self, index: u32) -> Result<NvIndexHandle> {
        let tpm_handle =
            NvIndexTpmHandle::new(index).map_err(|e| AgentError::tpm("NV index", e))?;
        self.context()
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(tpm_handle)))
            .map(NvIndexHandle::from)
            .map_err(|e| AgentError::tpm("NV_ReadPublic (batch counter)", e))
    }

    /// Define the batch counter at `index` (owner authorization) and
    /// increment it once, so it can be read.
    pub fn define_counter(&mut self, index: u32) -> Result<()> {
        let attrs = NvIndexAttributesBuilder::new()
            .with_nv_index_type(NvIndexType::Counter)
            .with_auth_write(true)
            .with_auth_read(true)
            .with_no_da(true)
            .with_orderly(true)
            .build()
            .map_err(|e| AgentError::tpm("NV attributes", e))?;
        let public = NvPublicBuilder::new()
            .with_nv_index(
                NvIndexTpmHandle::new(index).map_err(|e| AgentError::tpm("NV index", e))?,
            )
            .with_index_name_algorithm(HashingAlgorithm::Sha256)
            .with_index_attributes(attrs)
            .with_data_area_size(8)
            .build()
            .map_err(|e| AgentError::tpm("NV public", e))?;
        let handle = self
            .context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.nv_define_space(Provision::Owner, None, public),
            )
            .map_err(|e| AgentError::tpm("NV_DefineSpace (batch counter)", e))?;
        // A counter cannot be read before its first increment.
        let r = self
            .context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.nv_increment(NvAuth::NvIndex(handle), handle),
            )
            .map_err(|e| AgentError::tpm("NV_Increment (batch counter)", e));
        self.context()
            .tr_close(&mut ObjectHandle::from(handle))
            .ok();
        r
    }

    /// Read the batch counter.
    pub fn read_counter(&mut self, index: u32) -> Result<Counter> {
        let handle = self.nv_handle(index)?;
        let data = self
            .context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.nv_read(NvAuth::NvIndex(handle), handle, 8, 0),
            )
            .map_err(|e| AgentError::tpm("NV_Read (batch counter)", e))?;
        let bytes: [u8; 8] = data
            .value()
            .try_into()
            .map_err(|_| AgentError::Config("the batch counter is not 8 bytes".into()))?;
        Ok(Counter(u64::from_be_bytes(bytes)))
    }

    /// Increment the batch counter and return its new value.
    pub fn increment_counter(&mut self, index: u32) -> Result<Counter> {
        let handle = self.nv_handle(index)?;
        self.context()
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| ctx.nv_increment(NvAuth::NvIndex(handle), handle),
            )
            .map_err(|e| AgentError::tpm("NV_Increment (batch counter)", e))?;
        self.read_counter(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_rule() {
        let c = |v| Counter(v);
        assert_eq!(
            check_counter(c(5), Some(c(5)), 256),
            CounterCheck::Consistent
        );
        assert_eq!(
            check_counter(c(6), Some(c(5)), 256),
            CounterCheck::Consistent
        );
        assert_eq!(
            check_counter(c(5 + 256), Some(c(5)), 256),
            CounterCheck::Consistent
        );
        assert_eq!(
            check_counter(c(5 + 257), Some(c(5)), 256),
            CounterCheck::LogRolledBack {
                tpm: 262,
                log: 5,
                allowed: 256
            }
        );
        assert_eq!(
            check_counter(c(4), Some(c(5)), 256),
            CounterCheck::TpmBehindLog { tpm: 4, log: 5 }
        );
        // Without orderly slack only one increment (a crash before append) is explained.
        assert_eq!(
            check_counter(c(7), Some(c(5)), 1),
            CounterCheck::LogRolledBack {
                tpm: 7,
                log: 5,
                allowed: 1
            }
        );
        assert_eq!(check_counter(c(1), None, 256), CounterCheck::Consistent);
    }
}
