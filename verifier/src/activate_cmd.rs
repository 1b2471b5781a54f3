//! `provenix activate`: credential activation of a builder's AK, and the
//! auditor's signed record of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::note::NoteSigningKey;
use provenix_verifier::activate::{
    activate_online, challenge, Activation, ActivationError, Pending,
};
use provenix_verifier::policy::Policy;

#[derive(Args)]
pub(crate) struct ActivateArgs {
    /// One JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: ActivateCommand,
}

#[derive(Subcommand)]
pub(crate) enum ActivateCommand {
    /// Create the auditor's key that signs activation records: writes the
    /// signer key (secret, mode 0600), prints the verifier key policies
    /// list as `trusted_activators`.
    Init {
        /// The auditor's name (e.g. a host or team name).
        #[arg(long)]
        name: String,
        /// Where to write the signer key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Challenge a builder through its log service (POST /activate) and,
    /// if its TPM answers, write the signed activation record.
    Online {
        /// The policy (for the trusted EK roots and deny-lists).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The auditor's signer key (from `provenix activate init`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the record (e.g. into the policy's `activations`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Root certificates (PEM) for an HTTPS log service.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// The builder's log service URL.
        url: String,
    },
    /// For a builder reached by files: write the challenge for its
    /// enrollment record (`provenix-agent activate --challenge FILE`
    /// answers it); the secret is kept beside it (FILE.secret, 0600).
    Challenge {
        /// The policy (for the trusted EK roots and deny-lists).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The builder's enrollment record.
        #[arg(long, value_name = "FILE")]
        enrollment: PathBuf,
        /// Where to write the challenge.
        #[arg(long, value_name = "FILE")]
        challenge_out: PathBuf,
    },
    /// Check a builder's answer to a challenge made with `challenge`, and
    /// write the signed activation record.
    Answer {
        /// The challenge file (its FILE.secret must be beside it).
        #[arg(long, value_name = "FILE")]
        challenge: PathBuf,
        /// The builder's answer.
        #[arg(long, value_name = "FILE")]
        answer: PathBuf,
        /// The auditor's signer key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the record.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn read_key(path: &Path) -> anyhow::Result<NoteSigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    NoteSigningKey::parse(text.trim())
        .with_context(|| format!("{}: not a note signer key", path.display()))
}

/// Write the signed record of a successful activation (exit 0), or say
/// why there is none (exit 1).
fn conclude(
    result: Result<Activation, ActivationError>,
    key: &NoteSigningKey,
    out: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(a) => {
            let record = a.sign(key)?;
            provenix_io::durable::write_durable(out, record.as_bytes(), 0o644)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "activated": true,
                        "builder": a.builder.to_hex(),
                        "ek_certificate_sha256": a.ek_cert_sha256.to_hex(),
                        "time": a.time,
                        "record": out.display().to_string(),
                    })
                );
            } else {
                println!(
                    "activated: AK {} lives in the TPM of EK certificate {}",
                    a.builder, a.ek_cert_sha256
                );
                println!("  record {}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"activated": false, "error": e.to_string()})
                );
            } else {
                println!("NOT ACTIVATED: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub(crate) fn run(args: ActivateArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    match args.cmd {
        ActivateCommand::Init { name, key } => {
            let signer: NoteSigningKey = crate::new_key_file(&name, &key)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verifier_key": signer.verifier_key().to_string()})
                );
            } else {
                println!("{}", signer.verifier_key());
            }
            Ok(ExitCode::SUCCESS)
        }
        ActivateCommand::Online {
            policy,
            key,
            out,
            ca_file,
            url,
        } => {
            let policy = Policy::load(&policy)?;
            let key = read_key(&key)?;
            let client =
                provenix_io::client(ca_file.as_deref(), std::time::Duration::from_secs(90))?;
            conclude(activate_online(&url, &client, &policy), &key, &out, json)
        }
        ActivateCommand::Challenge {
            policy,
            enrollment,
            challenge_out,
        } => {
            let policy = Policy::load(&policy)?;
            let bytes = std::fs::read(&enrollment)
                .with_context(|| format!("reading {}", enrollment.display()))?;
            let e =
                Enrollment::decode(&bytes).with_context(|| format!("{}", enrollment.display()))?;
            let pending = challenge(
                &e,
                &policy,
                e.tpm_firmware_version,
                provenix_verifier::unix_time(),
            )?;
            provenix_io::durable::write_durable(
                &challenge_out,
                &pending.challenge.to_bytes(),
                0o644,
            )?;
            let mut secret = challenge_out.clone().into_os_string();
            secret.push(".secret");
            provenix_io::durable::write_durable(
                PathBuf::from(secret).as_path(),
                &pending.to_secret_file(),
                0o600,
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "challenge": challenge_out.display().to_string(),
                        "builder": pending.builder.to_hex(),
                        "ek_certificate_sha256": pending.ek_cert_sha256.to_hex(),
                    })
                );
            } else {
                println!("challenge written to {}", challenge_out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ActivateCommand::Answer {
            challenge,
            answer,
            key,
            out,
        } => {
            let key = read_key(&key)?;
            let mut secret = challenge.clone().into_os_string();
            secret.push(".secret");
            let secret = PathBuf::from(secret);
            let pending = Pending::from_files(
                &std::fs::read(&challenge)
                    .with_context(|| format!("reading {}", challenge.display()))?,
                &std::fs::read(&secret).with_context(|| format!("reading {}", secret.display()))?,
            )?;
            let answer =
                std::fs::read(&answer).with_context(|| format!("reading {}", answer.display()))?;
            conclude(
                pending.finish(&answer, provenix_verifier::unix_time()),
                &key,
                &out,
                json,
            )
        }
    }
}
