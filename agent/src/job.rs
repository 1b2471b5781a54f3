//! A build job: what the post-build hook hands to the daemon (over its
//! socket, or through the spool directory when the daemon is down).
//!
//! Wire form: one JSON object, at most [`MAX_JOB`] bytes, unknown fields
//! refused: `{"drv_path": …, "out_paths": […], "nix_config": …, "submitted": unix seconds}`.

use serde::{Deserialize, Serialize};

use provenix_protocol::{DrvPath, StorePath};

use crate::build::MAX_NIX_CONFIG;
use crate::error::{AgentError, Result};

/// Largest encoded job.
pub const MAX_JOB: usize = MAX_NIX_CONFIG + 64 * 1024;
/// Most output paths a job may name.
pub const MAX_OUT_PATHS: usize = 64;

/// One finished build to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// `DRV_PATH`.
    pub drv_path: DrvPath,
    /// `OUT_PATHS` (empty on Nix 2.8.0).
    pub out_paths: Vec<StorePath>,
    /// `NIX_CONFIG`: Nix's effective settings for this build.
    pub nix_config: String,
    /// When the hook ran (unix seconds).
    pub submitted: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobWire {
    drv_path: String,
    out_paths: Vec<String>,
    nix_config: String,
    submitted: u64,
}

impl Job {
    /// A job from the hook's environment values.
    pub fn from_hook_env(
        drv_path: &str,
        out_paths: &str,
        nix_config: &str,
        submitted: u64,
    ) -> Result<Self> {
        let job = Self {
            drv_path: DrvPath::parse(drv_path.trim())?,
            out_paths: out_paths
                .split_whitespace()
                .map(StorePath::parse)
                .collect::<std::result::Result<_, _>>()?,
            nix_config: nix_config.to_string(),
            submitted,
        };
        job.check()?;
        Ok(job)
    }

    fn check(&self) -> Result<()> {
        if self.out_paths.len() > MAX_OUT_PATHS {
            return Err(AgentError::Config(format!(
                "a job names {} output paths, more than {MAX_OUT_PATHS}",
                self.out_paths.len()
            )));
        }
        if self.nix_config.len() > MAX_NIX_CONFIG {
            return Err(AgentError::Config(format!(
                "a job's NIX_CONFIG is {} bytes, more than {MAX_NIX_CONFIG}",
                self.nix_config.len()
            )));
        }
        Ok(())
    }

    /// The wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = JobWire {
            drv_path: self.drv_path.as_str().to_string(),
            out_paths: self
                .out_paths
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            nix_config: self.nix_config.clone(),
            submitted: self.submitted,
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Parse wire bytes (bounded; every path checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_JOB {
            return Err(AgentError::Config(format!(
                "a job of {} bytes is larger than {MAX_JOB}",
                bytes.len()
            )));
        }
        let wire: JobWire = serde_json::from_slice(bytes)
            .map_err(|e| AgentError::Config(format!("not a build job: {e}")))?;
        let job = Self {
            drv_path: DrvPath::parse(&wire.drv_path)?,
            out_paths: wire
                .out_paths
                .iter()
                .map(|p| StorePath::parse(p))
                .collect::<std::result::Result<_, _>>()?,
            nix_config: wire.nix_config,
            submitted: wire.submitted,
        };
        job.check()?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let j = Job::from_hook_env(
            "/nix/store/f0s2vv2ybwdmd6nfskqnfsf2xy9cv9y4-hello.drv\n",
            "",
            "sandbox = true\n",
            5,
        )
        .unwrap();
        assert_eq!(Job::from_bytes(&j.to_bytes()).unwrap(), j);
        assert!(Job::from_bytes(b"{}").is_err());
        assert!(Job::from_bytes(b"garbage").is_err());
        let mut extra = j.to_bytes();
        extra.pop();
        extra.extend_from_slice(br#","more":1}"#);
        assert!(Job::from_bytes(&extra).is_err());
        assert!(Job::from_hook_env("/nix/store/x-hello", "", "", 0).is_err());
        assert!(Job::from_bytes(&vec![b' '; MAX_JOB + 1]).is_err());
    }
}
