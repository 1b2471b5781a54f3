//! `provenix predict`: the events and PCR values a builder's boot must
//! produce, computed from artifacts an auditor rebuilt from source (a UKI,
//! or a kernel + initrd + command line, a systemd-pcrphase phase, and the
//! system closure). The computations are `provenix_measured_boot::predict`;
//! this shell reads files, NAR-hashes the closure from disk (never trusting
//! the manifest's hashes) and runs Nix when asked to find the closure.
//!
//! Exit codes: 0 = predicted; 1 = predicted, but some closure path's
//! content differs from the manifest (listed on stderr and in the JSON);
//! 2 = usage, IO or malformed input (nothing on stdout).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use provenix_measured_boot::predict::closure::predict_system;
use provenix_measured_boot::predict::events::{self, PCR_KERNEL_BOOT};
use provenix_measured_boot::predict::{
    ClosureManifest, EventSource, PcrPhase, PredictedEvent, Prediction, SystemPrediction,
    SystemdStub, Uki,
};
use provenix_measured_boot::{HashAlgorithm, PcrIndex, PeImage};
use provenix_protocol::hash::Sha256Digest;
use provenix_protocol::system::{ClosurePath, MeasurementMode};
use provenix_protocol::{nar, StorePath};
use serde_json::{json, Map, Value};

/// The `--help` text after the summary line.
pub(crate) const LONG_ABOUT: &str = "\
Predict the events and PCR values a builder's boot must produce, from artifacts \
rebuilt from source. What it predicts:

  PCR 4   OVMF/EDK2 booting the UKI from an ESP boot option: EV_EFI_ACTION \
\"Calling EFI Application from Boot Option\", EV_SEPARATOR, the Authenticode hash \
of the UKI, then of its embedded .linux kernel (--uki); or of a kernel booted \
directly (--kernel).
  PCR 9   the Linux EFI stub: its load options (the command line as UTF-16LE with a \
trailing NUL) and the initrd, as EV_EVENT_TAG events.
  PCR 11  systemd-stub: each UKI section (name + NUL, then contents), in systemd's \
order for the stub version .sdmagic names (or --systemd-stub), then one event per \
word of --phase (as `systemd-measure calculate --phase=` computes).
  PCR 12, 13  no events: all zeros (no command-line overrides, credentials or \
system extensions on a builder).
  system PCR (--system-pcr, default 14)  the provenix agent's system measurement \
SHA-256(\"provenix/system/v1\" || identity), the identity computed from the closure's \
content: every path of the closure manifest is NAR-hashed from disk (under \
--store-root) and paths whose content differs from the manifest are reported \
(exit 1). Without --closure-manifest, `nix path-info --json --recursive` of \
--toplevel gives the closure.

--json prints one object (the reference values a verifier policy's \
approved_systems takes; see docs/wire-format.md, \"Predictions\"):
{\"format\": \"provenix-prediction-v1\",
 \"banks\": [\"sha256\", ...],
 \"pcrs\": {bank: {\"PCR index\": \"lowercase hex\"}}   (the same shape as \
`provenix eventlog --json`; only predicted PCRs),
 \"events\": [{\"pcr\": n, \"log\": \"firmware\" | \"userspace\", \"type\": \"EV_...\" | null, \
\"content_type\": \"systemd\" | \"provenix\" | null, \"digests\": {bank: hex}, \
\"event_data\": hex | null, \"description\": text}],
 \"system\": null | {\"toplevel\", \"mode\": \"content-rehash\" | \"dm-verity\", \
\"verity_root_hash\": hex | null, \"closure_digest\": hex, \"digest\": hex, \"pcr\": n, \
\"paths\": n, \"manifest_mismatches\": [{\"path\", \"manifest_nar_hash\", \
\"manifest_nar_size\", \"content_nar_hash\", \"content_nar_size\"}]},
 \"inputs\": {\"uki\": null | {...}, \"kernel\": null | {...}, \"initrd\": null | {...}, \
\"cmdline\": text | null, \"phase\": text | null}}

Exit codes: 0 predicted; 1 predicted, but closure content differs from the \
manifest; 2 usage, IO or malformed input.";

/// Arguments of `provenix predict`.
#[derive(Args, Debug)]
pub(crate) struct PredictArgs {
    /// Print one JSON object (shape in --help) instead of text.
    #[arg(long)]
    json: bool,
    /// PCR bank to predict (sha1, sha256, sha384, sha512, sm3_256);
    /// repeat for several.
    #[arg(long = "bank", value_name = "BANK", default_value = "sha256")]
    banks: Vec<String>,
    /// A unified kernel image booted by OVMF from an ESP (PCR 4, 9, 11).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kernel", "initrd", "cmdline"])]
    uki: Option<PathBuf>,
    /// The systemd major version of the UKI's stub (e.g. 252, 257), when
    /// its .sdmagic section does not say.
    #[arg(long, value_name = "MAJOR")]
    systemd_stub: Option<u32>,
    /// A kernel (EFI stub) booted directly as the boot option (PCR 4).
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// The initrd the kernel loads (PCR 9).
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// The kernel command line passed as load options (PCR 9).
    #[arg(long, value_name = "STR")]
    cmdline: Option<String>,
    /// systemd-pcrphase phase at quote time, as systemd-measure takes it
    /// (e.g. enter-initrd:leave-initrd:sysinit:ready) (PCR 11).
    #[arg(long, value_name = "PHASE")]
    phase: Option<String>,
    /// `nix path-info --json --recursive <toplevel>` output (either form).
    #[arg(long, value_name = "FILE")]
    closure_manifest: Option<PathBuf>,
    /// Root of the store holding the closure's contents (a chroot store:
    /// files at DIR/nix/store/...).
    #[arg(long, value_name = "DIR", default_value = "/")]
    store_root: PathBuf,
    /// The system's toplevel store path (default: the manifest's one
    /// unreferenced path). Without --closure-manifest, Nix is asked for
    /// its closure.
    #[arg(long, value_name = "PATH")]
    toplevel: Option<String>,
    /// The store is on dm-verity with this root hash (64 hex digits) on the
    /// measured command line (identity mode dm-verity).
    #[arg(long, value_name = "HEX")]
    dm_verity_root_hash: Option<String>,
    /// The PCR the agent extends the system measurement into.
    #[arg(long, value_name = "N", default_value_t = 14)]
    system_pcr: u8,
    /// Paths NAR-hashed at once (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

/// The inputs as read, kept for the report.
struct Inputs {
    uki: Option<(PathBuf, Vec<u8>)>,
    kernel: Option<(PathBuf, Vec<u8>)>,
    initrd: Option<(PathBuf, Vec<u8>)>,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn banks(names: &[String]) -> anyhow::Result<Vec<HashAlgorithm>> {
    let mut out = Vec::new();
    for n in names {
        let b = HashAlgorithm::from_name(n).ok_or_else(|| {
            anyhow!("--bank {n}: expected sha1, sha256, sha384, sha512 or sm3_256")
        })?;
        if !out.contains(&b) {
            out.push(b);
        }
    }
    Ok(out)
}

/// Runs the command; see [`LONG_ABOUT`].
pub(crate) fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let banks = banks(&args.banks)?;
    let system_pcr = PcrIndex::new(args.system_pcr)
        .map_err(|_| anyhow!("--system-pcr {}: expected 0-23", args.system_pcr))?;
    let has_boot = args.uki.is_some()
        || args.kernel.is_some()
        || args.initrd.is_some()
        || args.cmdline.is_some();
    let has_system = args.closure_manifest.is_some() || args.toplevel.is_some();
    if args.uki.is_none() && (args.phase.is_some() || args.systemd_stub.is_some()) {
        bail!(
            "--phase and --systemd-stub need --uki (systemd-pcrphase runs only after systemd-stub)"
        );
    }
    if !has_boot && !has_system {
        bail!("nothing to predict: give --uki, --kernel/--initrd/--cmdline, or --closure-manifest/--toplevel");
    }
    let inputs = Inputs {
        uki: args
            .uki
            .as_ref()
            .map(|p| read(p).map(|b| (p.clone(), b)))
            .transpose()?,
        kernel: args
            .kernel
            .as_ref()
            .map(|p| read(p).map(|b| (p.clone(), b)))
            .transpose()?,
        initrd: args
            .initrd
            .as_ref()
            .map(|p| read(p).map(|b| (p.clone(), b)))
            .transpose()?,
    };
    let mut prediction = Prediction::new(&banks)?;
    let mut report = Map::new();

    let uki = match &inputs.uki {
        Some((path, bytes)) => {
            let stub = args.systemd_stub.map(SystemdStub::from_major);
            let uki = Uki::parse(bytes, stub).with_context(|| format!("{}", path.display()))?;
            prediction.extend(
                events::uki_boot(&banks, &uki).with_context(|| format!("{}", path.display()))?,
            )?;
            report.insert("uki".into(), uki_json(path, bytes.len(), &uki, &banks)?);
            Some(uki)
        }
        None => None,
    };
    let kernel = match &inputs.kernel {
        Some((path, bytes)) => Some(
            PeImage::parse(bytes).with_context(|| format!("{}: not a PE image", path.display()))?,
        ),
        None => None,
    };
    if uki.is_none() && has_boot {
        prediction.extend(events::kernel_boot(
            &banks,
            kernel.as_ref(),
            args.cmdline.as_deref(),
            inputs.initrd.as_ref().map(|(_, b)| b.as_slice()),
        )?)?;
    }
    if let (Some((path, _)), Some(k)) = (&inputs.kernel, &kernel) {
        report.insert(
            "kernel".into(),
            json!({
                "file": path.to_string_lossy(),
                "size": k.bytes().len(),
                "authenticode": authenticode_json(k, &banks)?,
            }),
        );
    }
    if let Some((path, bytes)) = &inputs.initrd {
        report.insert(
            "initrd".into(),
            json!({"file": path.to_string_lossy(), "size": bytes.len()}),
        );
    }
    if let Some(phase) = &args.phase {
        let phase = PcrPhase::parse(phase)?;
        prediction.extend(events::pcrphase(&banks, &phase)?)?;
    }
    if has_boot {
        for pcr in [12, 13] {
            prediction.expect_no_events(PcrIndex::new(pcr)?)?;
        }
    }

    let system = if has_system {
        let s = system(args)?;
        prediction.push(events::system_measurement(
            &banks,
            s.measurement(),
            system_pcr,
        )?)?;
        Some(s)
    } else {
        None
    };

    let out = io::stdout().lock();
    let mut out = io::BufWriter::new(out);
    if args.json {
        let obj = json!({
            "format": "provenix-prediction-v1",
            "banks": banks.iter().map(|b| b.name()).collect::<Vec<_>>(),
            "pcrs": pcrs_json(&prediction)?,
            "events": prediction.events().iter().map(event_json).collect::<Vec<_>>(),
            "system": system.as_ref().map(|s| system_json(s, system_pcr)),
            "inputs": {
                "uki": report.remove("uki").unwrap_or(Value::Null),
                "kernel": report.remove("kernel").unwrap_or(Value::Null),
                "initrd": report.remove("initrd").unwrap_or(Value::Null),
                "cmdline": args.cmdline,
                "phase": args.phase,
            },
        });
        writeln!(out, "{obj}")?;
    } else {
        print_text(
            &mut out,
            &prediction,
            uki.as_ref(),
            system.as_ref(),
            system_pcr,
        )?;
    }
    out.flush()?;
    if let Some(s) = &system {
        if !s.mismatches().is_empty() {
            for m in s.mismatches() {
                eprintln!(
                    "provenix predict: {}: content {} ({} bytes) differs from the manifest's {} ({} bytes)",
                    m.path, m.content.0, m.content.1, m.manifest.0, m.manifest.1
                );
            }
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn authenticode_json(image: &PeImage<'_>, banks: &[HashAlgorithm]) -> anyhow::Result<Value> {
    let mut m = Map::new();
    for b in banks {
        m.insert(b.name().into(), json!(image.authenticode(*b)?.to_hex()));
    }
    Ok(Value::Object(m))
}

fn uki_json(
    path: &Path,
    size: usize,
    uki: &Uki<'_>,
    banks: &[HashAlgorithm],
) -> anyhow::Result<Value> {
    let sections: Vec<Value> = uki
        .measured_sections()
        .iter()
        .map(|(k, d)| {
            json!({
                "name": k.name(),
                "size": d.len(),
                "sha256": HashAlgorithm::Sha256.hash(d).to_hex(),
            })
        })
        .collect();
    Ok(json!({
        "file": path.to_string_lossy(),
        "size": size,
        "systemd_stub_version": uki.stub_version(),
        "systemd_stub_major": uki.stub().major(),
        "measured_sections": sections,
        "authenticode": authenticode_json(uki.image(), banks)?,
        "kernel_authenticode": authenticode_json(&uki.kernel()?, banks)?,
        "cmdline": uki.cmdline()?,
    }))
}

fn pcrs_json(p: &Prediction) -> anyhow::Result<Value> {
    let mut banks = Map::new();
    for b in p.banks() {
        let mut m = Map::new();
        for pcr in p.pcrs() {
            if let Some(v) = p.value(*b, pcr)? {
                m.insert(pcr.get().to_string(), json!(v.to_hex()));
            }
        }
        banks.insert(b.name().into(), Value::Object(m));
    }
    Ok(Value::Object(banks))
}

fn event_json(e: &PredictedEvent) -> Value {
    let (log, ty, content_type) = match e.source() {
        EventSource::Firmware(t) => ("firmware", json!(t.to_string()), Value::Null),
        EventSource::Userspace(c) => ("userspace", Value::Null, json!(c)),
    };
    let mut digests = Map::new();
    for d in e.digests() {
        digests.insert(d.algorithm().to_string(), json!(d.to_hex()));
    }
    json!({
        "pcr": e.pcr().get(),
        "log": log,
        "type": ty,
        "content_type": content_type,
        "digests": digests,
        "event_data": e.event_data().map(provenix_protocol::encoding::hex_encode),
        "description": e.description(),
    })
}

fn mode_name(mode: &MeasurementMode) -> (&'static str, Option<String>) {
    match mode {
        MeasurementMode::ContentRehash => ("content-rehash", None),
        MeasurementMode::DmVerity { root_hash } => ("dm-verity", Some(root_hash.to_hex())),
    }
}

fn system_json(s: &SystemPrediction, pcr: PcrIndex) -> Value {
    let m = s.measurement();
    let (mode, root) = mode_name(&m.identity().mode);
    json!({
        "toplevel": m.identity().toplevel.as_str(),
        "mode": mode,
        "verity_root_hash": root,
        "closure_digest": m.identity().closure_digest.to_hex(),
        "digest": m.digest().to_hex(),
        "pcr": pcr.get(),
        "paths": s.paths(),
        "manifest_mismatches": s.mismatches().iter().map(|x| json!({
            "path": x.path.as_str(),
            "manifest_nar_hash": x.manifest.0.to_nix_string(),
            "manifest_nar_size": x.manifest.1,
            "content_nar_hash": x.content.0.to_nix_string(),
            "content_nar_size": x.content.1,
        })).collect::<Vec<_>>(),
    })
}

/// The manifest: the file given, or Nix's answer for `--toplevel`.
fn manifest_bytes(args: &PredictArgs) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = &args.closure_manifest {
        return read(path);
    }
    let toplevel = args
        .toplevel
        .as_deref()
        .ok_or_else(|| anyhow!("--closure-manifest or --toplevel is required"))?;
    let mut cmd = std::process::Command::new("nix");
    cmd.args([
        "--extra-experimental-features",
        "nix-command",
        "path-info",
        "--json",
        "--recursive",
    ]);
    if args.store_root != Path::new("/") {
        cmd.arg("--store").arg(&args.store_root);
    }
    cmd.arg(toplevel);
    let out = cmd.output().context(
        "running `nix path-info` (install Nix, Debian package nix-bin, or pass --closure-manifest)",
    )?;
    if !out.status.success() {
        bail!(
            "`nix path-info --json --recursive {toplevel}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn system(args: &PredictArgs) -> anyhow::Result<SystemPrediction> {
    let manifest = ClosureManifest::parse(&manifest_bytes(args)?).context("closure manifest")?;
    let toplevel = match &args.toplevel {
        Some(t) => StorePath::parse(t).map_err(|e| anyhow!("--toplevel {t}: {e}"))?,
        None => manifest.toplevel()?.clone(),
    };
    let mode = match &args.dm_verity_root_hash {
        Some(h) => MeasurementMode::DmVerity {
            root_hash: Sha256Digest::from_hex(h)
                .map_err(|e| anyhow!("--dm-verity-root-hash: {e}"))?,
        },
        None => MeasurementMode::ContentRehash,
    };
    let paths: Vec<PathBuf> = manifest
        .entries()
        .iter()
        .map(|e| {
            args.store_root
                .join(e.path.as_str().trim_start_matches('/'))
        })
        .collect();
    let jobs = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let mut measured = Vec::with_capacity(paths.len());
    for ((e, path), result) in manifest
        .entries()
        .iter()
        .zip(&paths)
        .zip(nar::hash_paths(&paths, jobs))
    {
        let s = result.with_context(|| format!("NAR-hashing {}", path.display()))?;
        measured.push(ClosurePath {
            path: e.path.clone(),
            nar_hash: s.hash,
            nar_size: s.size,
        });
    }
    Ok(predict_system(&manifest, &toplevel, mode, &measured)?)
}

fn print_text(
    out: &mut impl Write,
    p: &Prediction,
    uki: Option<&Uki<'_>>,
    system: Option<&SystemPrediction>,
    system_pcr: PcrIndex,
) -> anyhow::Result<()> {
    let names: Vec<&str> = p.banks().iter().map(|b| b.name()).collect();
    writeln!(out, "prediction (banks: {})", names.join(", "))?;
    if let Some(u) = uki {
        let sections: Vec<&str> = u
            .measured_sections()
            .iter()
            .map(|(k, _)| k.name())
            .collect();
        writeln!(
            out,
            "UKI: systemd-stub {} (predicted as systemd {}), measured sections {}",
            u.stub_version().unwrap_or("(version not named)"),
            u.stub().major(),
            sections.join(" ")
        )?;
    }
    writeln!(out, "events (in log order per PCR):")?;
    for e in p.events() {
        let kind = match e.source() {
            EventSource::Firmware(t) => format!("firmware  {t}"),
            EventSource::Userspace(c) => format!("userspace {c}"),
        };
        writeln!(
            out,
            "  PCR {:>2}  {kind:<44} {}",
            e.pcr().get(),
            e.description()
        )?;
        for d in e.digests() {
            writeln!(
                out,
                "          {:<8} {}",
                d.algorithm().to_string(),
                d.to_hex()
            )?;
        }
    }
    if let Some(s) = system {
        let m = s.measurement();
        let (mode, root) = mode_name(&m.identity().mode);
        writeln!(out, "system:")?;
        writeln!(out, "  toplevel        {}", m.identity().toplevel)?;
        match root {
            Some(r) => writeln!(out, "  mode            {mode} (root hash {r})")?,
            None => writeln!(out, "  mode            {mode}")?,
        }
        writeln!(
            out,
            "  closure         {} paths, digest {}",
            s.paths(),
            m.identity().closure_digest
        )?;
        writeln!(
            out,
            "  system digest   {} (PCR {})",
            m.digest(),
            system_pcr.get()
        )?;
        if !s.mismatches().is_empty() {
            writeln!(
                out,
                "  WARNING: {} path(s) differ from the manifest (see stderr)",
                s.mismatches().len()
            )?;
        }
    }
    writeln!(out, "pcrs:")?;
    for b in p.banks() {
        writeln!(out, "  {}:", b.name())?;
        for pcr in p.pcrs() {
            if let Some(v) = p.value(*b, pcr)? {
                let note = if pcr.get() == PCR_KERNEL_BOOT
                    && p.events().iter().all(|e| {
                        e.pcr().get() != PCR_KERNEL_BOOT
                            || matches!(e.source(), EventSource::Firmware(_))
                    }) {
                    "  (before any systemd-pcrphase word)"
                } else {
                    ""
                };
                writeln!(out, "    {:>2} : {}{note}", pcr.get(), v.to_hex())?;
            }
        }
    }
    Ok(())
}
