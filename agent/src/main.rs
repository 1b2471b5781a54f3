//! `provenix-agent`: the builder side of provenix.
//!
//! Exit codes: 0 = done, 1 = the TPM or the system state refused the
//! operation, 2 = usage, configuration or IO error.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use provenix_agent::counter::DEFAULT_COUNTER_INDEX;
use provenix_agent::enroll::{enroll, load_keys, EnrollOptions, DEFAULT_EVENT_LOG};
use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::{PcrSet, DEFAULT_SEAL_PCRS, DEFAULT_SYSTEM_PCR};
use provenix_agent::state::StateDir;
use provenix_agent::tpm::{Tpm, TpmConfig, DEFAULT_TCTI};
use provenix_agent::AgentError;
use provenix_protocol::encoding::hex_encode;
use provenix_protocol::{PcrIndex, Sha256Digest};

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

/// Which EK the AK is created under.
#[derive(Clone, Copy, ValueEnum)]
enum EkArg {
    /// RSA-2048 (certificate at NV 0x01c00002).
    Rsa,
    /// ECC P-256 (certificate at NV 0x01c0000a).
    P256,
    /// ECC P-384 (certificate at NV 0x01c00016).
    P384,
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
    /// Enroll this TPM as a builder: EK certificate, attestation key (AK),
    /// batch counter, the TPM keys K (sealed to the seal set's current
    /// values) and L, and the bindings of SK and LK. Writes the enrollment
    /// record and TPM blobs (never a secret) to the state directory.
    Enroll {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR", default_value = "/var/lib/provenix")]
        state_dir: PathBuf,
        /// PCRs (SHA-256 bank) SK is sealed to and quotes cover.
        #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SEAL_PCRS)]
        seal_pcrs: Vec<u8>,
        /// The PCR the system measurement extends.
        #[arg(long, default_value_t = DEFAULT_SYSTEM_PCR)]
        system_pcr: u8,
        /// Which EK to use (default: the first with a certificate in NV).
        #[arg(long, value_enum)]
        ek: Option<EkArg>,
        /// The EK certificate (DER), for firmware TPMs that keep none in NV.
        #[arg(long, value_name = "FILE")]
        ek_cert: Option<PathBuf>,
        /// The firmware event log to record.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_EVENT_LOG)]
        event_log: PathBuf,
        /// Record no firmware event log (a TPM without firmware, e.g. swtpm in tests).
        #[arg(long, conflicts_with = "event_log")]
        no_event_log: bool,
        /// Persistent handle for the AK.
        #[arg(long, default_value_t = DEFAULT_AK_HANDLE, value_parser = parse_u32)]
        ak_handle: u32,
        /// NV index of the batch counter.
        #[arg(long, default_value_t = DEFAULT_COUNTER_INDEX, value_parser = parse_u32)]
        counter_index: u32,
    },
    /// Derive SK and LK from the TPM and check them against the enrollment
    /// record: succeeds only in the enrolled boot state.
    Keys {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR", default_value = "/var/lib/provenix")]
        state_dir: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extend a PCR (SHA-256 bank) with the SHA-256 of a string. For tests
    /// and demos on a software TPM only: refused on a hardware TPM.
    DebugExtend {
        /// The PCR.
        #[arg(long)]
        pcr: u8,
        /// The string whose SHA-256 is extended.
        data: String,
    },
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
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
                AgentError::SoftwareTpmRefused { .. }
                | AgentError::Tpm { .. }
                | AgentError::KeyMismatch { .. } => ExitCode::from(1),
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
        Command::Enroll {
            state_dir,
            seal_pcrs,
            system_pcr,
            ek,
            ek_cert,
            event_log,
            no_event_log,
            ak_handle,
            counter_index,
        } => {
            let state = StateDir::open(&state_dir)?;
            let ek_cert = match ek_cert {
                Some(p) => Some(std::fs::read(&p).map_err(|e| AgentError::Io {
                    path: p.clone(),
                    source: e,
                })?),
                None => None,
            };
            let opts = EnrollOptions {
                seal: PcrSet::new(&seal_pcrs)?,
                system_pcr: PcrIndex::new(system_pcr)?,
                ak_handle,
                counter_index,
                ek_kind: ek.map(|e| match e {
                    EkArg::Rsa => EkKind::Rsa2048,
                    EkArg::P256 => EkKind::EccP256,
                    EkArg::P384 => EkKind::EccP384,
                }),
                ek_cert,
                firmware_event_log: (!no_event_log).then_some(event_log),
                now: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let mut tpm = Tpm::open(cfg)?;
            let r = enroll(&mut tpm, &opts, &state)?;
            println!("enrolled into {}", state_dir.display());
            println!("  builder (AK name)   {}", r.builder_id()?);
            println!(
                "  EK                  {:?}, certificate SHA-256 {}",
                r.ek_kind,
                Sha256Digest::of(&r.ek_certificate)
            );
            println!(
                "  seal set            sha256:{:?} (system PCR {})",
                r.seal_pcrs, r.system_pcr
            );
            println!(
                "  SK (boot state)     {}",
                hex_encode(&r.signing_key.public_key)
            );
            println!(
                "  LK (log key)        {}",
                hex_encode(&r.log_key.public_key)
            );
            if r.insecure_swtpm {
                println!("  WARNING: software TPM; the record says so and verifiers refuse it by default");
            }
            Ok(())
        }
        Command::Keys { state_dir, json } => {
            let state = StateDir::open(&state_dir)?;
            let mut tpm = Tpm::open(cfg)?;
            let keys = load_keys(&mut tpm, &state)?;
            let (sk, lk) = (
                hex_encode(keys.sk.verifying_key().as_bytes()),
                hex_encode(keys.lk.verifying_key().as_bytes()),
            );
            let builder = keys.enrollment.builder_id()?.to_hex();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"builder": builder, "sk": sk, "lk": lk})
                );
            } else {
                println!(
                    "builder {builder}\n  SK {sk} (this boot state is the enrolled one)\n  LK {lk}"
                );
            }
            Ok(())
        }
        Command::DebugExtend { pcr, data } => {
            let mut tpm = Tpm::open(cfg)?;
            if !tpm.info().software {
                return Err(AgentError::Config(
                    "debug-extend works only on a software TPM".into(),
                ));
            }
            tpm.extend_pcr(PcrIndex::new(pcr)?, Sha256Digest::of(data.as_bytes()).0)
        }
    }
}
