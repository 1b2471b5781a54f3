//! `provenix verify`: appraise builders' logs (directories or log service
//! URLs), each against the checkpoint accepted from it last time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use provenix_protocol::Sha256Digest;
use provenix_verifier::appraise::{appraise, Appraisal, AppraisalError, Seen};
use provenix_verifier::source::LogSource;

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Where the checkpoint accepted from each builder is kept (the next run
    /// requires the log to extend it). Without it, nothing is remembered.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Root certificates (PEM) for HTTPS log services (default: the system's).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// One JSON object per log instead of text.
    #[arg(long)]
    json: bool,
    /// Builder logs: log directories or log service URLs (http[s]://).
    #[arg(required = true, value_name = "LOG")]
    logs: Vec<String>,
}

fn state_file(dir: &Path, origin_key: &str) -> PathBuf {
    dir.join(format!(
        "{}.checkpoint",
        Sha256Digest::of(origin_key.as_bytes()).to_hex()
    ))
}

/// The checkpoint accepted before from the log at `name`.
fn seen(dir: &Path, name: &str) -> anyhow::Result<Option<Seen>> {
    let path = state_file(dir, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut lines = text.lines();
    let size = lines.next().and_then(|s| s.parse().ok());
    let root = lines.next().and_then(|r| Sha256Digest::from_hex(r).ok());
    match (size, root) {
        (Some(size), Some(root)) => Ok(Some(Seen { size, root })),
        _ => anyhow::bail!("{}: damaged state file", path.display()),
    }
}

pub(crate) fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let client = provenix_io::client(args.ca_file.as_deref(), std::time::Duration::from_secs(60))?;
    if let Some(d) = &args.state_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut worst = 0u8;
    for arg in &args.logs {
        let source = LogSource::from_arg(arg, &client);
        let name = source.name();
        let previous = match &args.state_dir {
            Some(d) => seen(d, &name)?,
            None => None,
        };
        let result = appraise(&source, previous, &mut |_, _| {});
        match result {
            Ok(a) => {
                report_ok(&name, &a, args.json);
                if let Some(d) = &args.state_dir {
                    let state = format!("{}\n{}\n", a.checkpoint.size, a.checkpoint.root.to_hex());
                    provenix_io::durable::write_durable(
                        &state_file(d, &name),
                        state.as_bytes(),
                        0o644,
                    )?;
                }
            }
            Err(e) => {
                let code = if matches!(e, AppraisalError::Fetch(_)) {
                    2
                } else {
                    1
                };
                worst = worst.max(code);
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"log": name, "verified": false, "error": e.to_string()})
                    );
                } else {
                    println!("{name}: REFUSED: {e}");
                }
            }
        }
    }
    Ok(ExitCode::from(worst))
}

fn report_ok(name: &str, a: &Appraisal, json: bool) {
    let cosigs = a.checkpoint_note.signatures().len().saturating_sub(1);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "log": name,
                "verified": true,
                "builder": a.builder.to_hex(),
                "size": a.checkpoint.size,
                "root": a.checkpoint.root.to_hex(),
                "entries": a.entries,
                "batches": a.batches,
                "sk_bindings": a.bindings,
                "software_tpm": a.enrollment.insecure_swtpm,
                "unverified_cosignature_lines": cosigs,
            })
        );
    } else {
        println!("{name}: verified");
        println!("  builder     {}", a.builder);
        println!(
            "  checkpoint  size {}, root {}",
            a.checkpoint.size, a.checkpoint.root
        );
        println!(
            "  {} entries in {} batches; {} SK binding(s); AK quotes, SK and LK signatures checked",
            a.entries, a.batches, a.bindings
        );
        if a.enrollment.insecure_swtpm {
            println!("  software TPM (insecure: its evidence proves nothing about hardware)");
        }
        println!(
            "  not yet checked: EK certificate chain, activation, event-log replay, witnesses ({cosigs} cosignature line(s) present)"
        );
    }
}
