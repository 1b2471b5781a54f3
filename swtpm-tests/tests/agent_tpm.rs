//! The agent's TPM shell on swtpm: software TPMs are refused unless allowed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_agent::AgentError;
use provenix_swtpm_tests::{Swtpm, Template};

#[test]
fn swtpm_is_refused_without_the_insecure_flag_and_reported_with_it() {
    let tpm = Swtpm::start(Template::shared(0).unwrap()).unwrap();
    let cfg = TpmConfig {
        tcti: tpm.tcti(),
        insecure_allow_swtpm: false,
    };
    match Tpm::open(&cfg) {
        Err(AgentError::SoftwareTpmRefused { vendor, .. }) => assert!(!vendor.is_empty()),
        other => panic!("expected SoftwareTpmRefused, got {other:?}"),
    }
    let t = Tpm::open(&TpmConfig {
        insecure_allow_swtpm: true,
        ..cfg
    })
    .unwrap();
    assert!(t.info().software);
    assert!(!t.info().manufacturer.is_empty());
}

#[test]
fn a_bad_tcti_is_a_clear_error() {
    let cfg = TpmConfig {
        tcti: "nonsense-tcti:x".into(),
        insecure_allow_swtpm: true,
    };
    assert!(matches!(Tpm::open(&cfg), Err(AgentError::Tcti { .. })));
}
