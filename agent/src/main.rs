//! `provenix-agent`: the builder side of provenix.
//!
//! The agent will hold the TPM-derived signing keys, measure the booted
//! system, and record every Nix build as a signed, attested log entry
//! (issues 4 and 5). This first binary only reports its version, so that the
//! workspace, packaging and CI are in place before the TPM work lands.

use clap::Parser;

/// provenix builder agent (TPM identity, measurement, hook and daemon: not yet built).
#[derive(Parser)]
#[command(name = "provenix-agent", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "provenix-agent {}: no subcommands yet (the TPM core and daemon are being built)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
