//! `provenix verify`: appraise builders' logs (directories or log service
//! URLs), each against the checkpoint accepted from it last time.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use provenix_verifier::appraise::{Appraisal, AppraisalError, Appraiser};
use provenix_verifier::source::LogSource;
use provenix_verifier::state::StateDir;

/// How logs are reached and remembered (shared by `verify` and `decide`).
#[derive(Args)]
pub(crate) struct LogArgs {
    /// Where the checkpoint accepted from each builder is kept (the next run
    /// requires the log to extend it). Without it, nothing is remembered.
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Root certificates (PEM) for HTTPS log services (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

impl LogArgs {
    /// The HTTPS client and the state directory.
    pub(crate) fn open(&self) -> anyhow::Result<(ureq::Agent, Option<StateDir>)> {
        let client =
            provenix_io::client(self.ca_file.as_deref(), std::time::Duration::from_secs(60))?;
        let state = self.state_dir.as_deref().map(StateDir::open).transpose()?;
        Ok((client, state))
    }
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    logs_at: LogArgs,
    /// Also apply a policy's rules for any builder (see
    /// verifier/policy.toml.sample): software TPMs, witnesses, the EK
    /// certificate chain, the deny-lists.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// One JSON object per log instead of text.
    #[arg(long)]
    json: bool,
    /// Builder logs: log directories or log service URLs (`http://`, `https://`).
    #[arg(required = true, value_name = "LOG")]
    logs: Vec<String>,
}

pub(crate) fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (client, state) = args.logs_at.open()?;
    let policy = args
        .policy
        .as_deref()
        .map(provenix_verifier::policy::Policy::load)
        .transpose()?;
    let mut worst = 0u8;
    for arg in &args.logs {
        let source = LogSource::from_arg(arg, &client);
        let name = source.name();
        // Go on from the appraisal the state directory holds: only the
        // leaves added since are read and checked.
        let mut appraiser = match &state {
            Some(s) => s.appraiser(&name)?.unwrap_or_default(),
            None => Appraiser::new(),
        };
        // A spinner on a terminal (indicatif draws nothing otherwise).
        let progress = indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg}: {pos} entries verified ({per_sec}, {elapsed})",
            )?,
        );
        progress.set_message(name.clone());
        progress.enable_steady_tick(std::time::Duration::from_millis(200));
        let result = appraiser.sync(&source, None, &mut |_, _| progress.inc(1));
        progress.finish_and_clear();
        let a = match result {
            Ok(a) => a,
            Err(e) => {
                let code = if matches!(e, AppraisalError::Fetch(_)) {
                    2
                } else {
                    1
                };
                worst = worst.max(code);
                refused(&name, &e.to_string(), args.json);
                continue;
            }
        };
        // The log is consistent with what was seen: remember it, whatever
        // the policy says of its builder.
        if let Some(s) = &state {
            s.accept(&name, &appraiser)?;
        }
        let tpm = match &policy {
            None => None,
            Some(p) => match p.admit_pinned(&a, state.as_ref())? {
                Ok(admitted) => Some(admitted.tpm),
                Err(why) => {
                    worst = worst.max(1);
                    refused(&name, &format!("policy: {why}"), args.json);
                    continue;
                }
            },
        };
        report_ok(&name, &a, tpm.as_ref(), args.json);
    }
    Ok(ExitCode::from(worst))
}

fn refused(name: &str, why: &str, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"log": name, "verified": false, "error": why})
        );
    } else {
        println!("{name}: REFUSED: {why}");
    }
}

fn report_ok(
    name: &str,
    a: &Appraisal,
    tpm: Option<&provenix_verifier::ek::TpmIdentity>,
    json: bool,
) {
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
                "new_entries": a.new_entries,
                "batches": a.batches,
                "sk_bindings": a.bindings,
                "software_tpm": a.enrollment.insecure_swtpm,
                "boots": a.boots.len(),
                "cosignature_lines": cosigs,
                "ek": tpm.map(|t| serde_json::json!({
                    "certificate_sha256": t.cert_sha256.to_hex(),
                    "manufacturer": t.manufacturer,
                    "model": t.model,
                    "root": t.root,
                })),
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
            "  {} entries ({} new since the last run) in {} batches; {} SK binding(s); AK \
             quotes, SK and LK signatures checked",
            a.entries, a.new_entries, a.batches, a.bindings
        );
        if a.enrollment.insecure_swtpm {
            println!("  software TPM (insecure: its evidence proves nothing about hardware)");
        }
        match tpm {
            Some(t) => println!(
                "  EK          chains to {} (manufacturer {}, model {}); policy applied",
                t.root,
                t.manufacturer.as_deref().unwrap_or("?"),
                t.model.as_deref().unwrap_or("?")
            ),
            None => println!(
                "  no --policy: EK chain, activation, approved systems, pinned PCRs, software TPM \
                 and witness rules not applied ({cosigs} cosignature line(s) present)"
            ),
        }
        println!(
            "  {} boot(s): event logs replay to their quotes",
            a.boots.len()
        );
    }
}
