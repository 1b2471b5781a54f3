//! `provenix`: the auditor's command-line tool.
//!
//! Exit codes: 0 = done / verified, 1 = verification failed, 2 = usage or
//! IO error. A closed output pipe (`provenix … | head`) exits 0.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use provenix_protocol::encoding::hex_decode_array;
use provenix_protocol::leaf::{decode_bundle, LeafReader, Record};
use provenix_protocol::{nar, SignedEntry};

mod activate_cmd;
mod decide_cmd;
mod eventlog_cmd;
mod predict_cmd;
mod quote_cmd;
mod report_cmd;
mod substituter_cmd;
mod verify_cmd;
mod witness_cmd;

/// provenix: check Nix build provenance against TPM-attested builder logs.
#[derive(Parser)]
#[command(name = "provenix", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the NAR hash of each path, computed from its content (as
    /// `nix-hash --type sha256 --base32`, with a `sha256:` prefix).
    ///
    /// One path: `sha256:<nix32>`. Several: `sha256:<nix32>  <path>` per
    /// line, in the order given. `--json`: one object per line,
    /// `{"path": …, "nar_hash": "sha256:…", "nar_size": N}`.
    NarHash {
        /// Emit JSON lines with the NAR size.
        #[arg(long)]
        json: bool,
        /// Paths hashed at once (default: all cores).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Files, directories or symlinks (a symlink is hashed, not followed).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Work with provenance entries.
    #[command(subcommand)]
    Entry(EntryCommand),
    /// A C2SP tlog-witness: cosign builder log checkpoints that are
    /// consistent with the last one cosigned (split views then cannot both
    /// be cosigned).
    #[command(subcommand)]
    Witness(witness_cmd::WitnessCommand),
    /// Check raw TPM quotes (tpm2-tools files).
    #[command(subcommand)]
    Quote(quote_cmd::QuoteCommand),
    /// Appraise builders' logs: the enrollment's key bindings, every entry's
    /// SK signature, every batch's AK quote (nonce, counter, chain, clock,
    /// PCR digest), the checkpoint (LK, root) and consistency with the
    /// checkpoint accepted last time. Exit 0 all verified, 1 one refused,
    /// 2 one unreadable.
    Verify(verify_cmd::VerifyArgs),
    /// Decide M-of-N for an output store path: appraise every builder the
    /// policy lists, apply the policy (pinned AKs, software TPMs, witnesses,
    /// built locally), and count agreement on the NAR hash per distinct
    /// TPM. Prints the agreeing, disagreeing and missing builders. Exit 0
    /// trusted, 1 not trusted, 2 unusable policy or input.
    Decide(decide_cmd::DecideArgs),
    /// Credential activation: prove that a builder's AK lives in the TPM of
    /// its certified EK (TPM2_MakeCredential with the verified EK
    /// certificate's key), and sign a record of it that policies accept
    /// from `trusted_activators`. Exit 0 activated, 1 not.
    Activate(activate_cmd::ActivateArgs),
    /// A Nix binary cache in front of an upstream one (file:// or
    /// http(s)://) that serves only outputs M of the policy's N builders
    /// attest alike, re-signed with its own key (its users trust only that
    /// key), and cuts off any NAR whose content is not the attested one.
    /// `provenix substituter init` creates the key.
    Substituter(substituter_cmd::SubstituterArgs),
    /// The reproducibility table over the policy's builders: per derivation
    /// (by drv_hash) and output, which builders attest which NAR hash, and
    /// who is in the minority. Exit 0 when all agree, 1 when some differ.
    Report(report_cmd::ReportArgs),
    /// Parse TCG PC Client binary event logs and replay them per PCR bank.
    ///
    /// Reads logs as Linux exposes them
    /// (/sys/kernel/security/tpm0/binary_bios_measurements): SHA-1-format
    /// and crypto-agile (Spec ID Event03). Prints each event (index, byte
    /// offset, PCR, type, digests, decoded summary) and the replayed PCR
    /// values per bank. Only the digests are covered by the PCRs: event data
    /// and its summary are unverified.
    ///
    /// `--json`: one JSON object per file, one per line:
    /// {"file", "format": "sha1" | "crypto-agile", "banks": list of bank
    /// names, "startup_locality": n | null,
    /// "pcrs": {bank: {"PCR index": "lowercase hex"}} (only the PCRs the
    /// log extends, plus PCR 0 when a StartupLocality event set it),
    /// "not_replayed": {bank: reason},
    /// "events": [{"index", "offset", "pcr", "measured", "type",
    /// "type_value", "digests": {bank: hex}, "unverified_data": hex,
    /// "unverified_summary": text | null, "unverified_decode_error": text |
    /// null}]}. With `--ccel`: "format": "tdx-ccel", "padding", "rtmrs"
    /// keyed by MR index (1-4 = RTMR0-3) instead of "pcrs", and "mr_index"
    /// instead of "pcr". See docs/wire-format.md.
    ///
    /// Every file is parsed before anything is printed. A malformed file:
    /// nothing on stdout, the byte offset and what was expected on stderr,
    /// exit 2.
    Eventlog {
        /// Emit one JSON object per file.
        #[arg(long)]
        json: bool,
        /// Read Intel TDX CCEL logs (RTMRs; 0xFF padding allowed) instead of
        /// TPM event logs.
        #[arg(long)]
        ccel: bool,
        /// Event log files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Predict the events and PCR values a builder's boot must produce
    /// (PCR 4, 9, 11, 12, 13 and the system PCR), from a UKI or kernel,
    /// initrd and command line, a systemd-pcrphase phase and the system
    /// closure.
    #[command(long_about = predict_cmd::LONG_ABOUT)]
    Predict(Box<predict_cmd::PredictArgs>),
}

#[derive(Subcommand)]
enum EntryCommand {
    /// Decode the entries in C2SP tlog-tiles entry bundles (leaves in log
    /// order) and, with `--sk-public`, verify their signatures.
    ///
    /// Exit 0 when every entry decodes (and verifies), 1 when one does not.
    Show {
        /// One JSON object per entry instead of text.
        #[arg(long)]
        json: bool,
        /// The SK public key (64 hex digits) the entries must be signed with.
        #[arg(long, value_name = "HEX")]
        sk_public: Option<String>,
        /// Entry bundle files, read in order as one run of leaves.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provenix: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A new signer key named `name` (a note key or a witness cosigner key),
/// written to `path` (0600; never over an existing file).
/// How a served endpoint (witness, substituter) is reached: TLS, or plain
/// HTTP on loopback only.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ServeTls {
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP (loopback addresses only).
    #[arg(long)]
    pub(crate) plain_http: bool,
}

/// Serve `handler` until SIGINT or SIGTERM (requests in flight finish);
/// `announce` gets the address bound (port 0 resolved).
pub(crate) fn serve_until_stopped(
    opts: provenix_io::ListenOptions,
    handler: provenix_io::Handler,
    announce: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = provenix_io::Server::bind(opts).await?;
        announce(server.local_addr()?);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        server
            .run(handler, async {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await;
        anyhow::Ok(())
    })
}

/// Write a new secret key to `path` (mode 0600, never over an existing
/// file): `render` makes the key from a fresh random seed and gives it back
/// with the file's text.
fn new_secret_file<K>(
    path: &std::path::Path,
    render: impl FnOnce(&[u8; 32]) -> anyhow::Result<(K, String)>,
) -> anyhow::Result<K> {
    if path.exists() {
        anyhow::bail!("{} exists; not overwriting a key", path.display());
    }
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let (key, text) = render(&seed)?;
    provenix_io::durable::write_durable(path, format!("{text}\n").as_bytes(), 0o600)?;
    Ok(key)
}

/// A new note signer key (witness, auditor) named `name`, written to `path`.
fn new_key_file<const T: u8>(
    name: &str,
    path: &std::path::Path,
) -> anyhow::Result<provenix_protocol::note::SignerKey<T>> {
    new_secret_file(path, |seed| {
        let signer = provenix_protocol::note::SignerKey::<T>::new(
            provenix_protocol::note::KeyName::new(name).context("--name")?,
            ed25519_dalek::SigningKey::from_bytes(seed),
        );
        let text = signer.to_signer_key_string();
        Ok((signer, text))
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::NarHash { json, jobs, paths } => nar_hash(json, jobs, &paths),
        Command::Entry(EntryCommand::Show {
            json,
            sk_public,
            bundles,
        }) => entry_show(json, sk_public.as_deref(), &bundles),
        Command::Eventlog { json, ccel, files } => eventlog_cmd::run(json, ccel, &files),
        Command::Predict(args) => predict_cmd::run(&args),
        Command::Witness(cmd) => witness_cmd::run(cmd),
        Command::Quote(cmd) => quote_cmd::run(cmd),
        Command::Verify(args) => verify_cmd::run(args),
        Command::Decide(args) => decide_cmd::run(args),
        Command::Activate(args) => activate_cmd::run(args),
        Command::Substituter(args) => substituter_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
    }
}

fn entry_show(
    json: bool,
    sk_public: Option<&str>,
    bundles: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let key = match sk_public {
        Some(hex) => {
            let bytes: [u8; 32] = hex_decode_array(hex).context("--sk-public")?;
            Some(
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| anyhow::anyhow!("--sk-public: not an Ed25519 public key"))?,
            )
        }
        None => None,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut reader = LeafReader::new();
    let mut index = 0usize;
    for bundle in bundles {
        let bytes =
            std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
        let leaves = match decode_bundle(&bytes) {
            Ok(l) => l,
            Err(e) => return refuse(&mut out, &format!("{}: {e}", bundle.display())),
        };
        for leaf in leaves {
            match reader.push(leaf) {
                Ok(Some(Record::Entry(e))) => {
                    let verdict = match &key {
                        Some(k) => match e.verify(k) {
                            Ok(()) => "signature verified",
                            Err(err) => {
                                print_entry(&mut out, json, &e, &err.to_string())?;
                                return refuse(&mut out, &format!("leaf {index}: {err}"));
                            }
                        },
                        None => "signature not checked (no --sk-public)",
                    };
                    print_entry(&mut out, json, &e, verdict)?;
                }
                Ok(Some(_) | None) => {}
                Err(e) => return refuse(&mut out, &format!("leaf {index}: {e}")),
            }
            index += 1;
        }
    }
    if let Err(e) = reader.finish() {
        return refuse(&mut out, &e.to_string());
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn refuse(out: &mut impl Write, why: &str) -> anyhow::Result<ExitCode> {
    out.flush()?;
    eprintln!("provenix entry show: REFUSED: {why}");
    Ok(ExitCode::from(1))
}

fn print_entry(out: &mut impl Write, json: bool, s: &SignedEntry, verdict: &str) -> io::Result<()> {
    let e = s.entry();
    if json {
        let obj = serde_json::json!({
            "builder": e.builder.to_hex(),
            "seq": e.seq,
            "drv_path": e.drv_path.as_str(),
            "drv_hash": e.drv_hash.to_hex(),
            "outputs": e.outputs.iter().map(|o| serde_json::json!({
                "name": o.name,
                "path": o.store_path.as_str(),
                "nar_hash": o.nar_hash.to_nix_string(),
                "nar_size": o.nar_size,
                "references": o.references.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "built_locally": e.built_locally,
            "build_env": {
                "settings_digest": e.build_env.settings_digest.to_hex(),
                "sandbox": e.build_env.sandbox,
                "remote_builders": e.build_env.remote_builders,
            },
            "resolved_inputs": e.resolved_inputs.iter().map(|i| serde_json::json!({
                "path": i.store_path.as_str(),
                "nar_hash": i.nar_hash.to_nix_string(),
            })).collect::<Vec<_>>(),
            "source": e.source.as_ref().map(|s| s.as_str()),
            "system": e.system.to_hex(),
            "time": e.time,
            "verdict": verdict,
        });
        return writeln!(out, "{obj}");
    }
    writeln!(out, "entry #{} by builder {}", e.seq, e.builder)?;
    writeln!(out, "  derivation  {}", e.drv_path)?;
    writeln!(out, "  drv_hash    {}", e.drv_hash)?;
    for o in &e.outputs {
        writeln!(
            out,
            "  output {:<4} {} {} ({} bytes)",
            o.name, o.store_path, o.nar_hash, o.nar_size
        )?;
        for r in &o.references {
            writeln!(out, "    references {r}")?;
        }
    }
    for i in &e.resolved_inputs {
        writeln!(out, "  input       {} {}", i.store_path, i.nar_hash)?;
    }
    writeln!(
        out,
        "  built_locally {}, sandbox {}, remote builders {}",
        e.built_locally, e.build_env.sandbox, e.build_env.remote_builders
    )?;
    if let Some(src) = &e.source {
        writeln!(out, "  source      {}", src.as_str())?;
    }
    writeln!(out, "  system      {}", e.system)?;
    writeln!(out, "  time        {}", e.time)?;
    writeln!(out, "  => {verdict}")
}

fn nar_hash(json: bool, jobs: Option<usize>, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let results = nar::hash_paths(paths, jobs);
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut failed = false;
    for (path, result) in paths.iter().zip(results) {
        match result {
            Ok(s) if json => {
                let obj = serde_json::json!({
                    "path": path.to_string_lossy(),
                    "nar_hash": s.hash.to_nix_string(),
                    "nar_size": s.size,
                });
                writeln!(out, "{obj}")?;
            }
            Ok(s) if paths.len() == 1 => writeln!(out, "{}", s.hash)?,
            Ok(s) => writeln!(out, "{}  {}", s.hash, path.display())?,
            Err(e) => {
                out.flush()?;
                eprintln!("provenix nar-hash: {e}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
