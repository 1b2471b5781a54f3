//! The TPM shell: one owner of the tss-esapi `Context`, speaking the domain.
//!
//! Opened from a TCTI string (`device:/dev/tpmrm0` by default; `swtpm:…`,
//! `mssim:…`, `tabrmd:…` as tpm2-tss accepts them). A software TPM — by its
//! TCTI or by what the TPM reports about itself — is refused unless the
//! configuration says `insecure_allow_swtpm`, and [`TpmInfo::software`]
//! records it so every record made with it can say so.
//!
//! Commands on objects with an empty authValue (the AK, K and L under their
//! user role, NV indices, PCRs, the owner and endorsement hierarchies of a
//! fresh TPM) are authorized with a password session: an HMAC session keyed
//! with an empty value protects nothing more, and costs a StartAuthSession
//! round trip per command. Secrets never travel this way: the SK/LK
//! derivation uses a session salted with the SRK and response encryption.

use std::str::FromStr as _;

use tss_esapi::constants::PropertyTag;
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::Context;

use crate::error::{AgentError, Result};

/// The production default: the kernel's TPM resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// How to reach the TPM.
#[derive(Clone, Debug)]
pub struct TpmConfig {
    /// TCTI string.
    pub tcti: String,
    /// Accept a software TPM (swtpm, the simulator). Tests and demos only.
    pub insecure_allow_swtpm: bool,
}

impl Default for TpmConfig {
    fn default() -> Self {
        Self {
            tcti: DEFAULT_TCTI.to_owned(),
            insecure_allow_swtpm: false,
        }
    }
}

/// What the TPM reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmInfo {
    /// TPM_PT_MANUFACTURER as its four ASCII characters (e.g. "IBM", "INTC").
    pub manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4, concatenated and trimmed.
    pub vendor: String,
    /// TPM_PT_FIRMWARE_VERSION_1 and _2 as one u64 (as quotes report it).
    pub firmware_version: u64,
    /// Whether this is a software TPM.
    pub software: bool,
}

/// An open TPM.
pub struct Tpm {
    ctx: Context,
    info: TpmInfo,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn ascii(v: u32) -> String {
    v.to_be_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .map(|&b| char::from(b))
        .collect()
}

fn software_tcti(tcti: &str) -> bool {
    let kind = tcti.split(':').next().unwrap_or_default();
    matches!(kind, "swtpm" | "mssim" | "libtpms")
}

/// swtpm (libtpms) and the IBM/Microsoft simulators identify themselves.
fn software_vendor(info: &TpmInfo) -> bool {
    let v = info.vendor.to_ascii_lowercase();
    v.contains("sw") && v.contains("tpm") || v.contains("simulat") || v.contains("swtpm")
}

impl Tpm {
    /// Open the TPM named by `cfg`, refusing a software TPM unless allowed.
    pub fn open(cfg: &TpmConfig) -> Result<Self> {
        let name = TctiNameConf::from_str(&cfg.tcti).map_err(|e| AgentError::Tcti {
            tcti: cfg.tcti.clone(),
            reason: e.to_string(),
        })?;
        let mut ctx = Context::new(name).map_err(|e| AgentError::Tcti {
            tcti: cfg.tcti.clone(),
            reason: format!("cannot open: {e}"),
        })?;
        let mut prop = |tag| {
            ctx.get_tpm_property(tag)
                .map_err(|e| AgentError::tpm("GetCapability", e))
                .map(Option::unwrap_or_default)
        };
        let manufacturer = ascii(prop(PropertyTag::Manufacturer)?).trim().to_owned();
        let mut vendor = String::new();
        for tag in [
            PropertyTag::VendorString1,
            PropertyTag::VendorString2,
            PropertyTag::VendorString3,
            PropertyTag::VendorString4,
        ] {
            vendor.push_str(&ascii(prop(tag)?));
        }
        let fw1 = u64::from(prop(PropertyTag::FirmwareVersion1)?);
        let fw2 = u64::from(prop(PropertyTag::FirmwareVersion2)?);
        let mut info = TpmInfo {
            manufacturer,
            vendor: vendor.trim().to_owned(),
            firmware_version: fw1 << 32 | fw2,
            software: false,
        };
        info.software = software_tcti(&cfg.tcti) || software_vendor(&info);
        if info.software && !cfg.insecure_allow_swtpm {
            return Err(AgentError::SoftwareTpmRefused {
                tcti: cfg.tcti.clone(),
                vendor: format!("{} {}", info.manufacturer, info.vendor),
            });
        }
        Ok(Self { ctx, info })
    }

    /// What the TPM reports about itself.
    pub fn info(&self) -> &TpmInfo {
        &self.info
    }

    /// The tss-esapi context, for the agent's own TPM modules.
    pub(crate) fn context(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(manufacturer: &str, vendor: &str) -> TpmInfo {
        TpmInfo {
            manufacturer: manufacturer.into(),
            vendor: vendor.into(),
            firmware_version: 0,
            software: false,
        }
    }

    #[test]
    fn software_tpms_are_recognised() {
        // What swtpm 0.7 (libtpms) reports: manufacturer "IBM", vendor "SW   TPM".
        assert!(software_vendor(&info("IBM", "SW   TPM")));
        assert!(software_tcti("swtpm:host=127.0.0.1,port=2321"));
        assert!(software_tcti("mssim:host=localhost"));
        // Hardware vendors as they report themselves.
        assert!(!software_vendor(&info("IFX", "SLB9670")));
        assert!(!software_vendor(&info("NTC", "NPCT75x")));
        assert!(!software_vendor(&info("INTC", "Intel")));
        assert!(!software_tcti("device:/dev/tpmrm0"));
        assert_eq!(ascii(0x4942_4d00), "IBM");
    }
}
