//! `provenix witness init` and `provenix witness serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use provenix_protocol::note::{CosignerSigningKey, NoteVerifierKey};
use provenix_verifier::witness::Witness;

#[derive(Subcommand)]
pub(crate) enum WitnessCommand {
    /// Create a witness key: writes the signer key (secret, mode 0600) and
    /// prints the verifier key that logs and policies name.
    Init {
        /// The witness's name (e.g. its host name).
        #[arg(long)]
        name: String,
        /// Where to write the signer key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Serve C2SP tlog-witness `POST /add-checkpoint` for the given logs.
    Serve {
        /// The witness's signer key (from `provenix witness init`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A log to follow: its checkpoint verifier key, whose name is the
        /// log's origin (`provenix/<AK name hex>` for a builder).
        #[arg(long = "log", value_name = "VKEY", required = true)]
        logs: Vec<String>,
        /// Where the witness keeps what it cosigned, per log.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// Listen here.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        #[command(flatten)]
        tls: crate::ServeTls,
    },
}

pub(crate) fn run(cmd: WitnessCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WitnessCommand::Init { name, key } => {
            let signer: CosignerSigningKey = crate::new_key_file(&name, &key)?;
            println!("{}", signer.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        WitnessCommand::Serve {
            key,
            logs,
            state_dir,
            listen,
            tls,
        } => {
            let skey = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let signer = CosignerSigningKey::parse(skey.trim())
                .with_context(|| format!("{}: not a witness signer key", key.display()))?;
            let logs = logs
                .iter()
                .map(|l| NoteVerifierKey::parse(l).with_context(|| format!("--log {l}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let witness = Arc::new(Witness::new(signer, logs, &state_dir)?);
            let plain_http = tls.plain_http;
            let tls = tls
                .tls_cert
                .zip(tls.tls_key)
                .map(|(cert, key)| provenix_io::TlsFiles { cert, key });
            let opts = provenix_io::ListenOptions::new(listen, tls, plain_http);
            let scheme = opts.scheme();
            provenix_io::init_logging();
            crate::serve_until_stopped(opts, witness.handler(), |addr| {
                tracing::info!("serving {scheme}://{addr}/add-checkpoint");
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
