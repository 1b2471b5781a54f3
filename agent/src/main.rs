//! `provenix-agent`: the builder side of provenix.
//!
//! Exit codes: 0 = done, 1 = the TPM or the system state refused the
//! operation, 2 = usage, configuration or IO error.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use provenix_agent::config::{ConfigFile, DEFAULT_STATE_DIR};
use provenix_agent::counter::DEFAULT_COUNTER_INDEX;
use provenix_agent::enroll::{enroll, load_keys, EnrollOptions, DEFAULT_EVENT_LOG};
use provenix_agent::identity::{EkKind, DEFAULT_AK_HANDLE};
use provenix_agent::keys::{PcrSet, DEFAULT_SEAL_PCRS, DEFAULT_SYSTEM_PCR};
use provenix_agent::state::StateDir;
use provenix_agent::tpm::{Tpm, TpmConfig, DEFAULT_TCTI};
use provenix_agent::{unix_time, AgentError};
use provenix_protocol::encoding::hex_encode;
use provenix_protocol::{PcrIndex, Sha256Digest};

/// provenix builder agent: TPM-backed provenance for every Nix build.
#[derive(Parser)]
#[command(name = "provenix-agent", version, about, propagate_version = true)]
struct Cli {
    /// The TPM interface (tpm2-tss TCTI string).
    #[arg(long, env = "PROVENIX_TCTI", global = true)]
    tcti: Option<String>,
    /// Accept a software TPM (swtpm). Records made with it say so, and
    /// verifiers refuse them unless their policy allows swtpm. Tests and
    /// demos only.
    #[arg(long, env = "PROVENIX_INSECURE_ALLOW_SWTPM", global = true)]
    insecure_allow_swtpm: bool,
    /// Configuration file (TOML; see provenix-agent.toml.sample). Default:
    /// /etc/provenix/agent.toml if it exists.
    #[arg(long, env = "PROVENIX_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
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
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// PCRs (SHA-256 bank) SK is sealed to and quotes cover.
        #[arg(long, value_delimiter = ',')]
        seal_pcrs: Option<Vec<u8>>,
        /// The PCR the system measurement extends.
        #[arg(long)]
        system_pcr: Option<u8>,
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
        /// After an approved upgrade: keep the identity (AK, LK, counter),
        /// seal a new K to this boot state and bind a new SK
        /// (a KeyRebinding record). Refused if the current SK still derives.
        #[arg(long)]
        rebind: bool,
        /// Persistent handle for the AK.
        #[arg(long, value_parser = parse_u32)]
        ak_handle: Option<u32>,
        /// NV index of the batch counter.
        #[arg(long, value_parser = parse_u32)]
        counter_index: Option<u32>,
    },
    /// Derive SK and LK from the TPM and check them against the enrollment
    /// record: succeeds only in the enrolled boot state.
    Keys {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Answer a credential-activation challenge (made by an auditor's
    /// `provenix activate` for this builder's EK and AK) with
    /// TPM2_ActivateCredential. Writes the answer file for the auditor.
    Activate {
        /// The agent's state directory (for the EK kind and AK handle).
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The challenge file.
        #[arg(long, value_name = "FILE")]
        challenge: PathBuf,
        /// Where to write the answer.
        #[arg(long, value_name = "FILE")]
        answer_out: PathBuf,
    },
    /// Measure the booted system: the closure of the toplevel named by the
    /// measured kernel command line's init=, every path hashed from content
    /// (never trusting the Nix database), SystemIdentity extended into the
    /// system PCR. Meant for the initrd, before switch-root (--root /sysroot).
    Measure {
        /// The root holding /nix/store (the new root in the initrd).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The store registration of the image (`nix-store --dump-db` of
        /// the closure, as nixpkgs' closureInfo writes it). Without it, the
        /// Nix database is read instead.
        #[arg(long, value_name = "FILE", conflicts_with = "nix_db")]
        registration: Option<PathBuf>,
        /// The Nix database (default: <root>/nix/var/nix/db/db.sqlite).
        #[arg(long, value_name = "FILE")]
        nix_db: Option<PathBuf>,
        /// The measured kernel command line.
        #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
        cmdline: PathBuf,
        /// Take the toplevel from here instead of the measured init=.
        /// Tests only: nothing then ties the measurement to the boot.
        #[arg(long, value_name = "STORE_PATH")]
        insecure_test_toplevel: Option<String>,
        /// The PCR to extend.
        #[arg(long)]
        system_pcr: Option<u8>,
        /// Compute and print only; open no TPM, extend nothing, log nothing.
        #[arg(long)]
        no_extend: bool,
        /// The agent's state directory (its CEL-JSON event log is appended).
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Paths hashed at once (default: all cores).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record one finished build without a running daemon (for images and
    /// tests): its entry, signed with SK, attested in a batch of its own
    /// and appended to the log. Takes the hook's variables: DRV_PATH,
    /// OUT_PATHS and NIX_CONFIG (Nix's effective settings; without them the
    /// build cannot count as built locally).
    Record {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The log directory.
        #[arg(long, env = "PROVENIX_LOG_DIR")]
        log_dir: Option<PathBuf>,
        /// Root of the Nix store (a chroot store's root; default /).
        #[arg(long, env = "PROVENIX_STORE_ROOT")]
        store_root: Option<PathBuf>,
        /// The derivation built.
        #[arg(long, env = "DRV_PATH", value_name = "DRV")]
        drv: String,
        /// Its output paths (space-separated; empty: all of its outputs).
        #[arg(long, env = "OUT_PATHS", default_value = "")]
        out_paths: String,
        /// Nix's effective settings for the build (`name = value` lines).
        #[arg(long, env = "NIX_CONFIG", default_value = "", hide_env_values = true)]
        nix_config: String,
        /// A source reference for the entry.
        #[arg(long, env = "PROVENIX_SOURCE")]
        source: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Nix's post-build hook: hand the finished build (DRV_PATH, OUT_PATHS,
    /// NIX_CONFIG from the environment) to the daemon, or spool it when the
    /// daemon is unreachable. Always exits 0: a failing hook would stop Nix.
    Hook {
        /// The daemon's socket.
        #[arg(long, env = "PROVENIX_SOCKET")]
        socket: Option<PathBuf>,
        /// The agent's state directory (for the default spool).
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The job spool.
        #[arg(long, env = "PROVENIX_SPOOL_DIR")]
        spool_dir: Option<PathBuf>,
    },
    /// The daemon: take jobs from the hook (socket and spool), record each
    /// build as a signed entry, attest them in batches with counter-based
    /// quotes, append them to the log.
    Run {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The log directory.
        #[arg(long, env = "PROVENIX_LOG_DIR")]
        log_dir: Option<PathBuf>,
        /// Root of the Nix store (a chroot store's root; default /).
        #[arg(long, env = "PROVENIX_STORE_ROOT")]
        store_root: Option<PathBuf>,
        /// The submission socket.
        #[arg(long, env = "PROVENIX_SOCKET")]
        socket: Option<PathBuf>,
        /// The job spool.
        #[arg(long, env = "PROVENIX_SPOOL_DIR")]
        spool_dir: Option<PathBuf>,
        /// A source reference for every entry.
        #[arg(long, env = "PROVENIX_SOURCE")]
        source: Option<String>,
        /// Jobs per batch, at most.
        #[arg(long, env = "PROVENIX_BATCH_SIZE")]
        batch_size: Option<usize>,
        /// How long a job may wait for its batch to fill (milliseconds).
        #[arg(long, env = "PROVENIX_BATCH_DELAY_MS")]
        batch_delay_ms: Option<u64>,
        /// Serve the log here (docs/service.md), e.g. `[::]:8443`.
        #[arg(long, env = "PROVENIX_LISTEN", value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// TLS certificate chain (PEM) for the service.
        #[arg(long, env = "PROVENIX_TLS_CERT", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM) for the service.
        #[arg(long, env = "PROVENIX_TLS_KEY", value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP (only on a loopback address).
        #[arg(long, env = "PROVENIX_PLAIN_HTTP")]
        plain_http: bool,
    },
    /// Show the enrollment, whether SK unseals in this boot state, the job
    /// queue, the log and its last batch. Exit 1 when not enrolled or when
    /// SK cannot be derived.
    Status {
        /// The agent's state directory.
        #[arg(long, env = "PROVENIX_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// The log directory.
        #[arg(long, env = "PROVENIX_LOG_DIR")]
        log_dir: Option<PathBuf>,
        /// The job spool.
        #[arg(long, env = "PROVENIX_SPOOL_DIR")]
        spool_dir: Option<PathBuf>,
        /// Do not open the TPM to check SK (when no daemon holds it).
        #[arg(long)]
        no_tpm: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add this builder's Nix `Sig:` lines (by LK, over the fields its log
    /// attests) to the narinfos of a binary cache it uploaded to. The
    /// signatures come from the running daemon's service; a narinfo whose
    /// NarHash, NarSize or References differ from the log's is reported
    /// and left alone (exit 1).
    SignCache {
        /// The binary cache: `file:///path` or a directory.
        cache: String,
        /// The agent's service (default: from `listen` in the configuration).
        #[arg(long, env = "PROVENIX_AGENT_URL", value_name = "URL")]
        agent: Option<String>,
        /// Root certificates (PEM) for HTTPS to the service.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
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
    if let Command::Hook {
        socket,
        state_dir,
        spool_dir,
    } = cli.command
    {
        run_hook(cli.config.as_deref(), socket, state_dir, spool_dir);
        return ExitCode::SUCCESS;
    }
    // The hook does not log this way: its few lines go to Nix's build log.
    provenix_io::init_logging();
    let file = match ConfigFile::load(cli.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("provenix-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = TpmConfig {
        tcti: cli
            .tcti
            .or_else(|| file.tcti.clone())
            .unwrap_or_else(|| DEFAULT_TCTI.to_owned()),
        insecure_allow_swtpm: cli.insecure_allow_swtpm
            || file.insecure_allow_swtpm.unwrap_or(false),
    };
    match run(&cfg, &file, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provenix-agent: {e}");
            match e {
                AgentError::SoftwareTpmRefused { .. }
                | AgentError::Tpm { .. }
                | AgentError::KeyMismatch { .. }
                | AgentError::Unhealthy(_) => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}

/// The hook: never fails, never blocks Nix for longer than its timeout.
fn run_hook(
    config: Option<&std::path::Path>,
    socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    spool_dir: Option<PathBuf>,
) {
    use provenix_agent::daemon::{hook, HookResult, DEFAULT_HOOK_TIMEOUT, DEFAULT_SOCKET};
    let file = ConfigFile::load(config).unwrap_or_else(|e| {
        eprintln!("provenix-agent hook: {e}; using defaults");
        ConfigFile::default()
    });
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let job = match provenix_agent::job::Job::from_hook_env(
        &env("DRV_PATH"),
        &env("OUT_PATHS"),
        &env("NIX_CONFIG"),
        unix_time(),
    ) {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "provenix-agent hook: NOT RECORDED: {e} (DRV_PATH={:?})",
                env("DRV_PATH")
            );
            return;
        }
    };
    let socket = socket
        .or(file.socket.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let spool = spool_dir_of(spool_dir, &file, &state_dir_of(state_dir, &file));
    let timeout = file
        .hook_timeout_ms
        .map_or(DEFAULT_HOOK_TIMEOUT, std::time::Duration::from_millis);
    match hook(&socket, &spool, &job, timeout) {
        Ok(HookResult::Submitted) => {}
        Ok(HookResult::Spooled(path, why)) => eprintln!(
            "provenix-agent hook: daemon unreachable ({why}); spooled {}",
            path.display()
        ),
        Err(e) => eprintln!(
            "provenix-agent hook: NOT RECORDED: {} could neither be submitted nor spooled: {e}. \
             The daemon's reconciliation will find the build.",
            job.drv_path
        ),
    }
}

fn recorder_options(
    file: &ConfigFile,
    log_dir: Option<PathBuf>,
    store_root: Option<PathBuf>,
    source: Option<String>,
) -> Result<provenix_agent::recorder::RecorderOptions, AgentError> {
    let source = match source.or_else(|| file.source.clone()) {
        Some(s) => Some(provenix_protocol::SourceRef::new(&s)?),
        None => None,
    };
    Ok(provenix_agent::recorder::RecorderOptions {
        log_dir: log_dir_of(log_dir, file),
        store_root: store_root
            .or_else(|| file.store_root.clone())
            .unwrap_or_else(|| PathBuf::from("/")),
        source,
        orderly_jump: file
            .orderly_jump
            .unwrap_or(provenix_agent::counter::DEFAULT_ORDERLY_JUMP),
    })
}

/// The log directory: flag (or env), else the file's, else the default.
fn log_dir_of(flag: Option<PathBuf>, file: &ConfigFile) -> PathBuf {
    flag.or_else(|| file.log_dir.clone())
        .unwrap_or_else(|| PathBuf::from(provenix_agent::config::DEFAULT_LOG_DIR))
}

/// The job spool: flag (or env), else the file's, else `<state dir>/spool`.
fn spool_dir_of(flag: Option<PathBuf>, file: &ConfigFile, state_dir: &std::path::Path) -> PathBuf {
    flag.or_else(|| file.spool_dir.clone())
        .unwrap_or_else(|| state_dir.join("spool"))
}

fn state_dir_of(flag: Option<PathBuf>, file: &ConfigFile) -> PathBuf {
    flag.or_else(|| file.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn run(cfg: &TpmConfig, file: &ConfigFile, command: Command) -> Result<(), AgentError> {
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
            rebind,
            ak_handle,
            counter_index,
        } => {
            let state_dir = state_dir_of(state_dir, file);
            let state = StateDir::open(&state_dir)?;
            let now = unix_time();
            if rebind {
                let mut tpm = Tpm::open(cfg)?;
                let log = (!no_event_log).then_some(event_log.as_path());
                let r = provenix_agent::enroll::rebind(&mut tpm, &state, log, now)?;
                println!("rebound in {}", state_dir.display());
                println!(
                    "  SK (new boot state) {}",
                    hex_encode(&r.signing_key.public_key)
                );
                return Ok(());
            }
            let ek_cert = match ek_cert {
                Some(p) => Some(std::fs::read(&p).map_err(|e| AgentError::Io {
                    path: p.clone(),
                    source: e,
                })?),
                None => None,
            };
            let opts = EnrollOptions {
                seal: PcrSet::new(
                    &seal_pcrs
                        .or_else(|| file.seal_pcrs.clone())
                        .unwrap_or_else(|| DEFAULT_SEAL_PCRS.to_vec()),
                )?,
                system_pcr: PcrIndex::new(
                    system_pcr.or(file.system_pcr).unwrap_or(DEFAULT_SYSTEM_PCR),
                )?,
                ak_handle: ak_handle.or(file.ak_handle).unwrap_or(DEFAULT_AK_HANDLE),
                counter_index: counter_index
                    .or(file.counter_index)
                    .unwrap_or(DEFAULT_COUNTER_INDEX),
                ek_kind: ek.map(|e| match e {
                    EkArg::Rsa => EkKind::Rsa2048,
                    EkArg::P256 => EkKind::EccP256,
                    EkArg::P384 => EkKind::EccP384,
                }),
                ek_cert,
                firmware_event_log: (!no_event_log).then_some(event_log),
                now,
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
            let state = StateDir::open(&state_dir_of(state_dir, file))?;
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
        Command::Activate {
            state_dir,
            challenge,
            answer_out,
        } => {
            use provenix_protocol::enrollment::Enrollment;
            use provenix_protocol::tpm::{CredentialAnswer, CredentialChallenge, Digest};
            let state = StateDir::open(&state_dir_of(state_dir, file))?;
            let record = Enrollment::decode(&state.read(provenix_agent::enroll::ENROLLMENT_FILE)?)?;
            let bytes = std::fs::read(&challenge).map_err(|e| AgentError::Io {
                path: challenge.clone(),
                source: e,
            })?;
            let c = CredentialChallenge::from_bytes(&bytes)?;
            let mut tpm = Tpm::open(cfg)?;
            let secret = tpm.activate_credential(record.ek_kind, record.ak_handle, &c)?;
            let answer = CredentialAnswer {
                secret: Digest::new(&secret)?,
            };
            std::fs::write(&answer_out, answer.to_bytes()).map_err(|e| AgentError::Io {
                path: answer_out.clone(),
                source: e,
            })?;
            println!("answered the challenge: {}", answer_out.display());
            Ok(())
        }
        Command::Measure {
            root,
            registration,
            nix_db,
            cmdline,
            insecure_test_toplevel,
            system_pcr,
            no_extend,
            state_dir,
            jobs,
            json,
        } => {
            use provenix_agent::measure::{measure, toplevel_from_cmdline};
            use provenix_protocol::registration::parse_registration;
            use provenix_protocol::StorePath;
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| AgentError::Io {
                    path: p.clone(),
                    source: e,
                })
            };
            let toplevel = match insecure_test_toplevel {
                Some(t) => StorePath::parse(&t)?,
                None => toplevel_from_cmdline(&read(&cmdline)?)?,
            };
            let regs = match registration {
                Some(r) => parse_registration(&read(&r)?)?,
                None => provenix_agent::measure::registrations_from_nix_db(
                    &nix_db.unwrap_or_else(|| root.join("nix/var/nix/db/db.sqlite")),
                )?,
            };
            let jobs = jobs
                .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(1);
            let system_pcr = system_pcr.or(file.system_pcr).unwrap_or(DEFAULT_SYSTEM_PCR);
            let m = measure(&root, &toplevel, &regs, jobs)?;
            if !no_extend {
                let pcr = PcrIndex::new(system_pcr)?;
                let state = StateDir::open(&state_dir_of(state_dir, file))?;
                let mut tpm = Tpm::open(cfg)?;
                // Log first: a logged event that was not extended shows as a
                // replay mismatch; an extend without its event could not be
                // explained at all.
                let current = tpm.read_pcrs(&PcrSet::new(&[system_pcr])?)?;
                let current = current.first().map(|c| &c[..]).unwrap_or_default();
                provenix_agent::measure::append_cel(&state, &m.identity, pcr, current)?;
                tpm.extend_pcr(pcr, m.digest.0)?;
            }
            let secs = m.elapsed.as_secs_f64();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "toplevel": m.identity.toplevel.as_str(),
                        "closure_digest": m.identity.closure_digest.to_hex(),
                        "system": m.digest.to_hex(),
                        "paths": m.paths,
                        "nar_bytes": m.nar_bytes,
                        "seconds": secs,
                        "extended_pcr": (!no_extend).then_some(system_pcr),
                        "changed": m.changed.iter().map(|c| serde_json::json!({
                            "path": c.path.as_str(),
                            "claimed": c.claimed.to_nix_string(),
                            "content": c.content.to_nix_string(),
                        })).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("system {}", m.identity.toplevel);
                println!(
                    "  closure        {} paths, {} NAR bytes, hashed in {secs:.3} s",
                    m.paths, m.nar_bytes
                );
                println!("  closure digest {}", m.identity.closure_digest);
                println!("  system digest  {}", m.digest);
                if no_extend {
                    println!("  not extended (--no-extend)");
                } else {
                    println!("  extended into PCR {system_pcr}");
                }
                for c in &m.changed {
                    println!(
                        "  CHANGED since registration: {} (database claims {}, content is {})",
                        c.path, c.claimed, c.content
                    );
                }
            }
            Ok(())
        }
        Command::Record {
            state_dir,
            log_dir,
            store_root,
            drv,
            out_paths,
            nix_config,
            source,
            json,
        } => {
            use provenix_agent::recorder::{Outcome, Recorder};
            let state = StateDir::open(&state_dir_of(state_dir, file))?;
            let opts = recorder_options(file, log_dir, store_root, source)?;
            let job = provenix_agent::job::Job::from_hook_env(
                &drv,
                &out_paths,
                &nix_config,
                unix_time(),
            )?;
            let mut rec = Recorder::open(Tpm::open(cfg)?, &state, &opts)?;
            let outcome = rec.record(std::slice::from_ref(&job))?;
            let (status, leaf) = match outcome.first() {
                Some(Outcome::Recorded(l)) => ("recorded", *l),
                Some(Outcome::AlreadyRecorded(l)) => ("already recorded", *l),
                Some(Outcome::Failed(m)) => return Err(AgentError::Config(m.clone())),
                None => return Err(AgentError::Config("nothing recorded".into())),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "status": status,
                        "leaf": leaf,
                        "log_size": rec.log().size(),
                        "builder": rec.builder().to_hex(),
                        "system": rec.system().to_hex(),
                    })
                );
            } else {
                println!("{status}: {} at leaf {leaf}", job.drv_path);
                println!(
                    "  log {} ({} leaves)",
                    opts.log_dir.display(),
                    rec.log().size()
                );
            }
            Ok(())
        }
        Command::Hook { .. } => Ok(()),
        Command::Run {
            state_dir,
            log_dir,
            store_root,
            socket,
            spool_dir,
            source,
            batch_size,
            batch_delay_ms,
            listen,
            tls_cert,
            tls_key,
            plain_http,
        } => {
            use provenix_agent::daemon::{
                bind, spawn_acceptor, work, worker_channel, DaemonOptions, Msg,
                DEFAULT_BATCH_DELAY, DEFAULT_BATCH_SIZE, DEFAULT_RECONCILE_EVERY, DEFAULT_SOCKET,
            };
            use provenix_agent::recorder::Recorder;
            use provenix_agent::spool::Spool;
            let state_path = state_dir_of(state_dir, file);
            let state = StateDir::open(&state_path)?;
            let opts = recorder_options(file, log_dir, store_root, source)?;
            let spool = Spool::open(&spool_dir_of(spool_dir, file, &state_path))?;
            let d = DaemonOptions {
                socket: socket
                    .or_else(|| file.socket.clone())
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
                allowed_uids: file.allowed_uids.clone().unwrap_or_else(|| vec![0]),
                batch_size: batch_size
                    .or(file.batch_size)
                    .unwrap_or(DEFAULT_BATCH_SIZE)
                    .max(1),
                batch_delay: batch_delay_ms
                    .or(file.batch_delay_ms)
                    .map_or(DEFAULT_BATCH_DELAY, std::time::Duration::from_millis),
                reconcile_every: file
                    .reconcile_every_s
                    .map_or(DEFAULT_RECONCILE_EVERY, std::time::Duration::from_secs),
                reconcile_settle: file
                    .reconcile_settle_s
                    .unwrap_or(provenix_agent::reconcile::DEFAULT_SETTLE),
            };
            let listen = match listen {
                Some(l) => Some(l),
                None => file
                    .listen
                    .as_deref()
                    .map(|l| {
                        l.parse::<std::net::SocketAddr>()
                            .map_err(|e| AgentError::Config(format!("listen = {l:?}: {e}")))
                    })
                    .transpose()?,
            };
            let tls = match (
                tls_cert.or(file.tls_cert.clone()),
                tls_key.or(file.tls_key.clone()),
            ) {
                (Some(cert), Some(key)) => Some(provenix_io::TlsFiles { cert, key }),
                (None, None) => None,
                _ => {
                    return Err(AgentError::Config(
                        "tls_cert and tls_key go together".into(),
                    ))
                }
            };
            let witnesses = file
                .witnesses
                .iter()
                .flatten()
                .map(provenix_agent::witness::Witness::new)
                .collect::<Result<Vec<_>, _>>()?;
            // One thread drives signals, the service and its connections
            // (file reads go to tokio's blocking pool); the main thread is
            // the worker. A current-thread runtime keeps the daemon small.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AgentError::Config(format!("cannot start the runtime: {e}")))?;
            let mut recorder = Recorder::open(Tpm::open(cfg)?, &state, &opts)?;
            let listener = bind(&d.socket)?;
            let (tx, rx) = worker_channel();
            spawn_acceptor(listener, spool.clone(), d.allowed_uids.clone(), tx.clone());
            // SIGTERM / SIGINT: finish the batch in hand, stop serving.
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
            let stop_tx = std::sync::Arc::new(stop_tx);
            {
                let (stop_tx, tx) = (std::sync::Arc::clone(&stop_tx), tx.clone());
                let mut term = rt
                    .block_on(async {
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    })
                    .map_err(|e| AgentError::Config(format!("SIGTERM handler: {e}")))?;
                rt.spawn(async move {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: finishing the batch in hand"),
                        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing the batch in hand"),
                    }
                    let _ = stop_tx.send(true);
                    let _ = tx.send(Msg::Stop);
                });
            }
            let server = match listen {
                None => None,
                Some(addr) => {
                    let mut lo = provenix_io::ListenOptions::new(
                        addr,
                        tls,
                        plain_http || file.plain_http.unwrap_or(false),
                    );
                    if let Some(m) = file.max_connections {
                        lo.max_connections = m;
                    }
                    let scheme = lo.scheme();
                    let server = rt
                        .block_on(provenix_io::Server::bind(lo))
                        .map_err(|e| AgentError::Config(e.to_string()))?;
                    let bound = server
                        .local_addr()
                        .map_err(|e| AgentError::Config(e.to_string()))?;
                    let lk = recorder.log_key().to_bytes();
                    let ctx = provenix_agent::service::ServiceContext {
                        log_dir: opts.log_dir.clone(),
                        state: StateDir::open(&state_path)?,
                        spool: spool.clone(),
                        firmware_event_log: file
                            .firmware_event_log
                            .clone()
                            .unwrap_or_else(|| PathBuf::from(DEFAULT_EVENT_LOG)),
                        nix_key: if file.serve_nix_sigs.unwrap_or(true) {
                            Some(provenix_protocol::nix_sig::NixSecretKey::from_seed(
                                &provenix_agent::service::nix_key_name(recorder.builder()),
                                &lk,
                            )?)
                        } else {
                            None
                        },
                        worker: tx.clone(),
                        activations_per_minute: file
                            .activations_per_minute
                            .unwrap_or(provenix_agent::service::DEFAULT_ACTIVATIONS_PER_MINUTE),
                    };
                    let handler = provenix_agent::service::handler(ctx);
                    tracing::info!("serving the log at {scheme}://{bound}/");
                    Some(rt.spawn(server.run(handler, async move {
                        let _ = stop_rx.wait_for(|s| *s).await;
                    })))
                }
            };
            let witness_tx = if witnesses.is_empty() {
                None
            } else {
                let client = provenix_io::client(
                    file.ca_file.as_deref(),
                    std::time::Duration::from_secs(10),
                )
                .map_err(|e| AgentError::Config(e.to_string()))?;
                let w = provenix_agent::witness::spawn(
                    witnesses,
                    client,
                    opts.log_dir.clone(),
                    tx.clone(),
                );
                // The checkpoint at start may not be cosigned yet.
                let _ = w.send(recorder.log().checkpoint().to_vec());
                Some(w)
            };
            tracing::info!(
                "builder {} serving {} (log {}, {} leaves; {} jobs spooled)",
                recorder.builder(),
                d.socket.display(),
                opts.log_dir.display(),
                recorder.log().size(),
                spool.depth()
            );
            let mut driver_stop = stop_tx.subscribe();
            let driver = std::thread::Builder::new()
                .name("provenix-service".into())
                .spawn(move || {
                    rt.block_on(async move {
                        let _ = driver_stop.wait_for(|s| *s).await;
                        // The server stops accepting and drains within its grace.
                        if let Some(server) = server {
                            let _ = server.await;
                        }
                    });
                    rt.shutdown_timeout(std::time::Duration::from_secs(1));
                })
                .map_err(|e| AgentError::Config(format!("cannot start the service thread: {e}")))?;
            let result = work(&mut recorder, &spool, &d, &rx, |cp| {
                if let Some(w) = &witness_tx {
                    let _ = w.send(cp.to_vec());
                }
            });
            let _ = stop_tx.send(true);
            let _ = driver.join();
            let _ = std::fs::remove_file(&d.socket);
            if result.is_ok() {
                tracing::info!("stopped");
            }
            result
        }
        Command::Status {
            state_dir,
            log_dir,
            spool_dir,
            no_tpm,
            json,
        } => {
            use provenix_agent::recorder::LogView;
            use provenix_agent::spool::Spool;
            let state_path = state_dir_of(state_dir, file);
            let state = StateDir::open(&state_path)?;
            let log_dir = log_dir_of(log_dir, file);
            let spool = Spool::open(&spool_dir_of(spool_dir, file, &state_path))?;
            let enrolled = state.exists(provenix_agent::enroll::ENROLLMENT_FILE);
            let mut healthy = enrolled;
            let keys = if !enrolled {
                "not enrolled".to_string()
            } else if provenix_agent::log::writer_running(&log_dir) {
                "derived by the running daemon (it holds the log)".to_string()
            } else if no_tpm {
                "not checked (--no-tpm)".to_string()
            } else {
                match Tpm::open(cfg).and_then(|mut t| load_keys(&mut t, &state)) {
                    Ok(_) => "derivable: this boot state is the enrolled one".to_string(),
                    Err(e) => {
                        healthy = false;
                        format!("NOT derivable: {e}")
                    }
                }
            };
            let st = provenix_agent::status::collect(
                &state,
                &spool,
                &log_dir,
                &mut LogView::default(),
                keys,
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&st).map_err(|e| AgentError::Config(e.to_string()))?
                );
            } else {
                print!("{}", st.to_text());
            }
            if healthy {
                Ok(())
            } else {
                Err(AgentError::Unhealthy(
                    "not enrolled, or SK cannot be derived in this boot state".into(),
                ))
            }
        }
        Command::SignCache {
            cache,
            agent,
            ca_file,
        } => {
            let agent = match agent {
                Some(a) => a,
                None => {
                    let l = file.listen.as_deref().ok_or_else(|| {
                        AgentError::Config(
                            "no --agent URL, and no `listen` in the configuration".into(),
                        )
                    })?;
                    let l: std::net::SocketAddr = l
                        .parse()
                        .map_err(|e| AgentError::Config(format!("listen = {l:?}: {e}")))?;
                    let host = if l.ip().is_unspecified() {
                        format!("localhost:{}", l.port())
                    } else {
                        l.to_string()
                    };
                    let scheme = if file.plain_http.unwrap_or(false) {
                        "http"
                    } else {
                        "https"
                    };
                    format!("{scheme}://{host}")
                }
            };
            let client = provenix_io::client(
                ca_file.as_deref().or(file.ca_file.as_deref()),
                std::time::Duration::from_secs(30),
            )
            .map_err(|e| AgentError::Config(e.to_string()))?;
            let dir = PathBuf::from(cache.strip_prefix("file://").unwrap_or(&cache));
            let r = provenix_agent::sign_cache::sign_cache(&client, &agent, &dir)?;
            println!(
                "{}: {} signed, {} already signed, {} not in this builder's log, {} differing from the log",
                dir.display(),
                r.signed,
                r.already,
                r.not_in_log,
                r.differing.len()
            );
            for d in &r.differing {
                println!("  DIFFERS: {d}");
            }
            if r.differing.is_empty() {
                Ok(())
            } else {
                Err(AgentError::Unhealthy(format!(
                    "{} narinfo(s) differ from what this builder's log attests",
                    r.differing.len()
                )))
            }
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
