//! The agent's configuration: defaults < TOML file < `PROVENIX_*`
//! environment < command-line flags.
//!
//! The file (`--config FILE`, env `PROVENIX_CONFIG`, default
//! `/etc/provenix/agent.toml`; a missing default file is fine, a missing
//! named file is an error) uses the keys below; unknown keys are refused so
//! that a typo cannot silently fall back to a default. An annotated sample
//! is `agent/provenix-agent.toml.sample`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{AgentError, Result};

/// Where the agent looks when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/provenix/agent.toml";
/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/provenix";
/// The default log directory.
pub const DEFAULT_LOG_DIR: &str = "/var/lib/provenix/log";

/// The configuration file's keys; every one optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// TPM interface (tpm2-tss TCTI string).
    pub tcti: Option<String>,
    /// Accept a software TPM (tests and demos only).
    pub insecure_allow_swtpm: Option<bool>,
    /// The agent's state directory.
    pub state_dir: Option<PathBuf>,
    /// The seal and quote set (SHA-256 PCR indices).
    pub seal_pcrs: Option<Vec<u8>>,
    /// The system PCR.
    pub system_pcr: Option<u8>,
    /// Persistent handle of the AK.
    pub ak_handle: Option<u32>,
    /// NV index of the batch counter.
    pub counter_index: Option<u32>,
    /// Largest counter jump an unclean shutdown may explain.
    pub orderly_jump: Option<u64>,
    /// The transparency log's directory.
    pub log_dir: Option<PathBuf>,
    /// Root of the Nix store builds are recorded from.
    pub store_root: Option<PathBuf>,
    /// Source reference for every entry.
    pub source: Option<String>,
    /// The daemon's submission socket.
    pub socket: Option<PathBuf>,
    /// The job spool (default: `<state_dir>/spool`).
    pub spool_dir: Option<PathBuf>,
    /// User ids allowed to submit jobs.
    pub allowed_uids: Option<Vec<u32>>,
    /// Jobs per batch, at most.
    pub batch_size: Option<usize>,
    /// How long a job may wait for its batch to fill (milliseconds).
    pub batch_delay_ms: Option<u64>,
    /// The hook's bound on reaching the daemon (milliseconds).
    pub hook_timeout_ms: Option<u64>,
    /// How often (seconds), when idle, the daemon looks for builds that
    /// never reached the log.
    pub reconcile_every_s: Option<u64>,
    /// How long (seconds) a build must have been registered before
    /// reconciliation may take it.
    pub reconcile_settle_s: Option<u64>,
    /// Address the log service listens on (none: no service).
    pub listen: Option<String>,
    /// TLS certificate chain (PEM) for the service.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the service.
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead (loopback addresses only).
    pub plain_http: Option<bool>,
    /// Connections the service serves at once.
    pub max_connections: Option<usize>,
    /// Credential activations the service answers per minute.
    pub activations_per_minute: Option<u32>,
    /// Serve LK's Nix `Sig:` lines at `/sig/` (default true).
    pub serve_nix_sigs: Option<bool>,
    /// This boot's firmware event log, as served.
    pub firmware_event_log: Option<PathBuf>,
    /// Witnesses each checkpoint is submitted to.
    pub witnesses: Option<Vec<crate::witness::WitnessConfig>>,
    /// Root certificates (PEM) for HTTPS to witnesses and the agent's own
    /// service (default: the system's).
    pub ca_file: Option<PathBuf>,
}

impl ConfigFile {
    /// Parse a configuration file's text.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| AgentError::Config(format!("configuration: {e}")))
    }

    /// Load `path`; when `path` is None, the default file if it exists.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| match e {
                AgentError::Config(m) => AgentError::Config(format!("{}: {m}", path.display())),
                other => other,
            }),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(AgentError::Io { path, source: e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_parses_and_says_what_the_defaults_are() {
        let c = ConfigFile::parse(include_str!("../provenix-agent.toml.sample")).unwrap();
        assert_eq!(c.tcti.as_deref(), Some(crate::tpm::DEFAULT_TCTI));
        assert_eq!(c.insecure_allow_swtpm, Some(false));
        assert_eq!(c.state_dir.as_deref(), Some(Path::new(DEFAULT_STATE_DIR)));
        assert_eq!(
            c.seal_pcrs.as_deref(),
            Some(&crate::keys::DEFAULT_SEAL_PCRS[..])
        );
        assert_eq!(c.system_pcr, Some(crate::keys::DEFAULT_SYSTEM_PCR));
        assert_eq!(c.ak_handle, Some(crate::identity::DEFAULT_AK_HANDLE));
        assert_eq!(c.counter_index, Some(crate::counter::DEFAULT_COUNTER_INDEX));
        assert_eq!(c.orderly_jump, Some(crate::counter::DEFAULT_ORDERLY_JUMP));
        assert_eq!(c.log_dir.as_deref(), Some(Path::new(DEFAULT_LOG_DIR)));
        assert_eq!(c.store_root.as_deref(), Some(Path::new("/")));
        assert_eq!(c.source, None);
        assert_eq!(
            c.socket.as_deref(),
            Some(Path::new(crate::daemon::DEFAULT_SOCKET))
        );
        assert_eq!(
            c.spool_dir.as_deref(),
            Some(Path::new("/var/lib/provenix/spool"))
        );
        assert_eq!(c.allowed_uids, Some(vec![0]));
        assert_eq!(c.batch_size, Some(crate::daemon::DEFAULT_BATCH_SIZE));
        assert_eq!(
            c.batch_delay_ms,
            Some(crate::daemon::DEFAULT_BATCH_DELAY.as_millis() as u64)
        );
        assert_eq!(
            c.hook_timeout_ms,
            Some(crate::daemon::DEFAULT_HOOK_TIMEOUT.as_millis() as u64)
        );
        assert_eq!(
            c.reconcile_every_s,
            Some(crate::daemon::DEFAULT_RECONCILE_EVERY.as_secs())
        );
        assert_eq!(c.reconcile_settle_s, Some(crate::reconcile::DEFAULT_SETTLE));
        assert_eq!(c.listen, None);
        assert_eq!(c.plain_http, Some(false));
        assert_eq!(
            c.max_connections,
            Some(provenix_io::DEFAULT_MAX_CONNECTIONS)
        );
        assert_eq!(
            c.activations_per_minute,
            Some(crate::service::DEFAULT_ACTIVATIONS_PER_MINUTE)
        );
        assert_eq!(c.serve_nix_sigs, Some(true));
        assert_eq!(
            c.firmware_event_log.as_deref(),
            Some(Path::new(crate::enroll::DEFAULT_EVENT_LOG))
        );
        assert_eq!(c.witnesses, Some(Vec::new()));
    }

    #[test]
    fn witnesses_are_tables_with_url_and_key() {
        let c = ConfigFile::parse(
            "[[witnesses]]\nurl = \"https://w.example/\"\nkey = \"w+01234567+AAAA\"\n",
        )
        .unwrap();
        assert_eq!(c.witnesses.unwrap()[0].url, "https://w.example/");
        assert!(ConfigFile::parse("[[witnesses]]\nurl = \"x\"\n").is_err());
    }

    #[test]
    fn typos_and_wrong_types_are_refused() {
        assert!(matches!(
            ConfigFile::parse("tcit = \"x\""),
            Err(AgentError::Config(_))
        ));
        assert!(matches!(
            ConfigFile::parse("system_pcr = \"14\""),
            Err(AgentError::Config(_))
        ));
        assert!(matches!(
            ConfigFile::parse("system_pcr = 300"),
            Err(AgentError::Config(_))
        ));
        assert_eq!(ConfigFile::parse("").unwrap(), ConfigFile::default());
    }

    #[test]
    fn a_named_missing_file_is_an_error_the_default_is_not() {
        assert!(matches!(
            ConfigFile::load(Some(Path::new("/nonexistent/agent.toml"))),
            Err(AgentError::Io { .. })
        ));
    }
}
