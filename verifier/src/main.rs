//! `provenix`: the auditor's command-line tool.
//!
//! Exit codes: 0 = done / verified, 1 = verification failed, 2 = usage or
//! IO error. A closed output pipe (`provenix … | head`) exits 0.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use provenix_protocol::nar;

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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::NarHash { json, jobs, paths } => nar_hash(json, jobs, &paths),
    }
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
