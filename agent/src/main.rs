//! `provenix-agent`: the builder side of provenix.
//!
//! Exit codes: 0 = done, 1 = the TPM or the system state refused the
//! operation, 2 = usage, configuration or IO error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use provenix_agent::tpm::{Tpm, TpmConfig, DEFAULT_TCTI};
use provenix_agent::AgentError;

/// provenix builder agent: TPM-backed provenance for every Nix build.
#[derive(Parser)]
#[command(name = "provenix-agent", version, about, propagate_version = true)]
struct Cli {
    /// The TPM interface (tpm2-tss TCTI string).
    #[arg(long, env = "PROVENIX_TCTI", default_value = DEFAULT_TCTI, global = true)]
    tcti: String,
    /// Accept a software TPM (swtpm). Records made with it say so, and
    /// verifiers refuse them unless their policy allows swtpm. Tests and
    /// demos only.
    #[arg(long, global = true)]
    insecure_allow_swtpm: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what the TPM reports about itself (manufacturer, firmware,
    /// whether it is a software TPM).
    Info {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = TpmConfig {
        tcti: cli.tcti,
        insecure_allow_swtpm: cli.insecure_allow_swtpm,
    };
    match run(&cfg, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provenix-agent: {e}");
            match e {
                AgentError::SoftwareTpmRefused { .. } | AgentError::Tpm { .. } => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}

fn run(cfg: &TpmConfig, command: Command) -> Result<(), AgentError> {
    match command {
        Command::Info { json } => {
            let tpm = Tpm::open(cfg)?;
            let i = tpm.info();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "tcti": cfg.tcti,
                        "manufacturer": i.manufacturer,
                        "vendor": i.vendor,
                        "firmware_version": format!("{:#018x}", i.firmware_version),
                        "software": i.software,
                    })
                );
            } else {
                println!("TPM at {}", cfg.tcti);
                println!("  manufacturer      {}", i.manufacturer);
                println!("  vendor            {}", i.vendor);
                println!("  firmware version  {:#018x}", i.firmware_version);
                println!(
                    "  software TPM      {}",
                    if i.software {
                        "yes (insecure: tests and demos only)"
                    } else {
                        "no"
                    }
                );
            }
            Ok(())
        }
    }
}
