//! The properties the agent's fuzz target checks, shared by the cargo-fuzz
//! target (`fuzz/fuzz_targets/agent_input.rs`, nightly) and the stable
//! corpus replay (`agent/tests/fuzz_corpora.rs`). A panic is a finding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use provenix_agent::build::NixSettings;
use provenix_agent::job::Job;

/// What reaches the agent from outside: a job on the socket or in the
/// spool, and the NIX_CONFIG inside it. A job that parses re-encodes to a
/// job that parses to the same value; settings that parse have a digest
/// and a build environment whatever they say.
pub(crate) fn agent_input(data: &[u8]) {
    if let Ok(job) = Job::from_bytes(data) {
        assert_eq!(Job::from_bytes(&job.to_bytes()).unwrap(), job);
        if let Ok(s) = NixSettings::parse(&job.nix_config) {
            let (env, local) = s.build_env();
            assert!(!local || (env.sandbox && !env.remote_builders));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(s) = NixSettings::parse(text) {
            let _ = s.digest();
            let (env, local) = s.build_env();
            assert!(!local || (env.sandbox && !env.remote_builders));
        }
    }
}
