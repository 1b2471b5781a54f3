//! provenix swtpm integration tests.
//!
//! Every test in this crate will start its own swtpm (in a temporary
//! directory, killed with the test) and drive the agent's TPM shell against
//! it. The TPM work is tracked in issue 4; this crate holds the harness once
//! that lands.
