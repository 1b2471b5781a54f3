//! `provenix report --policy P`: the reproducibility table.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use provenix_verifier::policy::Policy;
use provenix_verifier::report::report;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// The policy (its builders are the report's columns).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    #[command(flatten)]
    logs_at: crate::verify_cmd::LogArgs,
    /// Only derivations whose outputs differ between builders.
    #[arg(long)]
    differing: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let policy = Policy::load(&args.policy)?;
    let (client, state) = args.logs_at.open()?;
    let r = report(&policy, &client, state.as_ref())?;
    let rows: Vec<_> = r
        .rows
        .iter()
        .filter(|row| !args.differing || row.outputs.iter().any(|o| !o.reproducible()))
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "not_counted": r.not_counted.iter().map(|(n, why)| serde_json::json!({"builder": n, "why": why})).collect::<Vec<_>>(),
                "derivations": rows.iter().map(|row| serde_json::json!({
                    "drv_hash": row.drv_hash.to_hex(),
                    "drv_path": row.drv_path,
                    "outputs": row.outputs.iter().map(|o| serde_json::json!({
                        "name": o.name,
                        "path": o.path.as_str(),
                        "reproducible": o.reproducible(),
                        "groups": o.groups.iter().map(|(h, b)| serde_json::json!({"nar_hash": h.to_nix_string(), "builders": b})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        for (n, why) in &r.not_counted {
            println!("not counted: {n}: {why}");
        }
        for row in &rows {
            println!("{}  drv_hash {}", row.drv_path, row.drv_hash);
            for o in &row.outputs {
                let mark = if o.reproducible() { "same" } else { "DIFFERS" };
                println!("  {:<8} {mark:<8} {}", o.name, o.path);
                for (i, (h, builders)) in o.groups.iter().enumerate() {
                    let who = if i == 0 { "" } else { "minority: " };
                    println!("      {} {who}{}", h.to_nix_string(), builders.join(", "));
                }
            }
        }
    }
    let differing = rows
        .iter()
        .any(|row| row.outputs.iter().any(|o| !o.reproducible()));
    Ok(if differing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
