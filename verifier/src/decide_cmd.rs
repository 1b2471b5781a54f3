//! `provenix decide --policy P <store path>`: appraise every builder the
//! policy lists and decide M-of-N for one output path.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use provenix_protocol::StorePath;
use provenix_verifier::decide::{Attested, Builders, Verdict};
use provenix_verifier::policy::Policy;

#[derive(Args)]
pub(crate) struct DecideArgs {
    /// The policy (TOML; see verifier/policy.toml.sample).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    logs_at: crate::verify_cmd::LogArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The output store path to decide.
    #[arg(value_name = "STORE_PATH")]
    path: String,
}

fn attested_json(a: &Attested) -> serde_json::Value {
    serde_json::json!({
        "nar_hash": a.nar_hash.to_nix_string(),
        "nar_size": a.nar_size,
        "references": a.references.iter().map(StorePath::as_str).collect::<Vec<_>>(),
    })
}

fn print(v: &Verdict, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "path": v.path.as_str(),
                "trusted": v.trusted.is_some(),
                "attested": v.trusted.as_ref().map(attested_json),
                "agreeing": v.agreeing,
                "disagreeing": v.disagreeing.iter().map(|(n, a)| serde_json::json!({"builder": n, "attested": attested_json(a)})).collect::<Vec<_>>(),
                "missing": v.missing.iter().map(|(n, why)| serde_json::json!({"builder": n, "why": why})).collect::<Vec<_>>(),
                "count": v.count,
                "quorum": v.quorum,
                "reason": v.reason,
                "untrusted_inputs": v.untrusted_inputs.iter().map(|(p, why)| serde_json::json!({"path": p.as_str(), "why": why})).collect::<Vec<_>>(),
            })
        );
        return;
    }
    match &v.trusted {
        Some(a) => println!(
            "TRUSTED {}: {} ({} bytes), {} of {} needed",
            v.path,
            a.nar_hash.to_nix_string(),
            a.nar_size,
            v.count,
            v.quorum
        ),
        None => println!(
            "NOT TRUSTED {}: {}",
            v.path,
            v.reason.as_deref().unwrap_or("no quorum")
        ),
    }
    for n in &v.agreeing {
        println!("  agrees     {n}");
    }
    for (n, a) in &v.disagreeing {
        println!(
            "  DISAGREES  {n}: {} ({} bytes)",
            a.nar_hash.to_nix_string(),
            a.nar_size
        );
    }
    for (n, why) in &v.missing {
        println!("  missing    {n}: {why}");
    }
}

pub(crate) fn run(args: DecideArgs) -> anyhow::Result<ExitCode> {
    let policy = Policy::load(&args.policy)?;
    let path = StorePath::parse(&args.path)
        .map_err(|e| anyhow::anyhow!("{:?} is not a store path: {e}", args.path))?;
    let (client, state) = args.logs_at.open()?;
    let wanted = (policy.file.inputs_depth == 0).then(|| BTreeSet::from([path.clone()]));
    let builders = Builders::load(&policy, &client, state.as_ref(), wanted.as_ref())?;
    let v = builders.decide(&policy, &path);
    print(&v, args.json);
    Ok(if v.trusted.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
