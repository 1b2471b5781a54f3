//! `provenix substituter init` and `provenix substituter [--listen …]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::{Args, Subcommand};
use provenix_protocol::nix_sig::NixSecretKey;
use provenix_verifier::policy::Policy;
use provenix_verifier::state::StateDir;
use provenix_verifier::substituter::{read_key, Substituter, SubstituterConfig, Upstream};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SubstituterArgs {
    #[command(subcommand)]
    init: Option<InitCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum InitCommand {
    /// Create the substituter's signing key: writes a Nix secret key file
    /// (mode 0600) and prints the public key, the one entry of
    /// `trusted-public-keys` for users of this substituter.
    Init {
        /// The key's name (e.g. the substituter's host name).
        #[arg(long)]
        name: String,
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// A configuration file (TOML, keys as the long options with `_`);
    /// options given here override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen here.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The upstream binary cache: file:///path or http(s)://host/path.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The policy (TOML; see verifier/policy.toml.sample).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The substituter's Nix secret key (from `provenix substituter init`).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Keep each builder's appraisal here between runs.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Root certificates (PEM) for HTTPS logs and upstream.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds between log syncs [default: 30].
    #[arg(long, value_name = "SECS")]
    sync_interval_secs: Option<u64>,
    /// Seconds a decision is kept [default: 10].
    #[arg(long, value_name = "SECS")]
    decision_ttl_secs: Option<u64>,
    /// Priority in /nix-cache-info [default: 40].
    #[arg(long)]
    priority: Option<u32>,
    #[command(flatten)]
    tls: crate::ServeTls,
}

pub(crate) fn run(args: SubstituterArgs) -> anyhow::Result<ExitCode> {
    if let Some(InitCommand::Init { name, key }) = args.init {
        let secret = crate::new_secret_file(&key, |seed| {
            let secret = NixSecretKey::from_seed(&name, seed).context("--name")?;
            let text = secret.to_file_string();
            Ok((secret, text))
        })?;
        println!("{}", secret.public());
        return Ok(ExitCode::SUCCESS);
    }
    serve(args.serve)
}

fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let file: SubstituterConfig = match &a.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}", p.display()))?,
        None => SubstituterConfig::default(),
    };
    let need = |what: &str| {
        anyhow!(
            "--{what} (or `{}` in --config) is required",
            what.replace('-', "_")
        )
    };
    let listen = a.listen.or(file.listen).ok_or_else(|| need("listen"))?;
    let upstream = a
        .upstream
        .or(file.upstream)
        .ok_or_else(|| need("upstream"))?;
    let policy = a.policy.or(file.policy).ok_or_else(|| need("policy"))?;
    let key = a.key.or(file.key).ok_or_else(|| need("key"))?;
    let state_dir = a.state_dir.or(file.state_dir);
    let ca_file = a.ca_file.or(file.ca_file);
    let interval = a
        .sync_interval_secs
        .or(file.sync_interval_secs)
        .unwrap_or(30)
        .max(1);
    let ttl = a.decision_ttl_secs.or(file.decision_ttl_secs).unwrap_or(10);
    let priority = a.priority.or(file.priority).unwrap_or(40);
    let tls_files = a
        .tls
        .tls_cert
        .or(file.tls_cert)
        .zip(a.tls.tls_key.or(file.tls_key))
        .map(|(cert, key)| provenix_io::TlsFiles { cert, key });
    let plain_http = a.tls.plain_http || file.plain_http.unwrap_or(false);

    let policy = Policy::load(&policy)?;
    let key = read_key(&key).map_err(|e| anyhow!(e))?;
    let client = provenix_io::client(ca_file.as_deref(), Duration::from_secs(3600))?;
    let upstream = Upstream::parse(&upstream, client.clone()).map_err(|e| anyhow!(e))?;
    let state = state_dir.as_deref().map(StateDir::open).transpose()?;
    let opts = provenix_io::ListenOptions::new(listen, tls_files, plain_http);
    opts.check()?;
    let scheme = opts.scheme();
    provenix_io::init_logging();
    let public = key.public();
    let sub = Arc::new(Substituter::new(
        policy,
        upstream,
        key,
        &client,
        state,
        Duration::from_secs(ttl),
        priority,
    )?);
    sub.sync()?;
    // Logs are synced in the background; a failed sync (state directory
    // unwritable) is logged and retried.
    let stop = Arc::new(AtomicBool::new(false));
    let syncer = {
        let (sub, stop) = (Arc::clone(&sub), Arc::clone(&stop));
        std::thread::spawn(move || {
            let step = Duration::from_millis(200);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
                if waited >= Duration::from_secs(interval) {
                    waited = Duration::ZERO;
                    if let Err(e) = sub.sync() {
                        tracing::error!("sync: {e}");
                    }
                }
            }
        })
    };
    let served = crate::serve_until_stopped(opts, Arc::clone(&sub).handler(), |addr| {
        tracing::info!("substituting at {scheme}://{addr}/ (users trust only {public})");
    });
    stop.store(true, Ordering::Relaxed);
    let _ = syncer.join();
    served?;
    Ok(ExitCode::SUCCESS)
}
