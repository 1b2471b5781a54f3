//! `provenix eventlog`: parse and replay TCG PC Client binary event logs
//! (and, with `--ccel`, Intel TDX CCEL logs).
//!
//! Every file is parsed before anything is printed: a malformed file makes
//! the command print nothing on stdout, say on stderr which file, at which
//! byte offset and what was expected there, and exit 2. No partial result is
//! ever printed as if it were complete.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use provenix_measured_boot::{
    AlgorithmId, CcelLog, Digest, Event, EventLog, LogFormat, Replay, RtmrBank,
};
use serde_json::{json, Map, Value};

/// One parsed input.
enum Parsed {
    Tpm(EventLog),
    Ccel(CcelLog),
}

/// Runs the command; see the subcommand's help in `main.rs`.
pub(crate) fn run(json: bool, ccel: bool, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let result = if ccel {
            CcelLog::parse(&bytes).map(Parsed::Ccel)
        } else {
            EventLog::parse(&bytes).map(Parsed::Tpm)
        };
        match result {
            Ok(p) => parsed.push(p),
            Err(e) => {
                eprintln!(
                    "provenix eventlog: {}: not a valid {} ({} bytes read): {e}",
                    file.display(),
                    if ccel { "TDX CCEL" } else { "TCG event log" },
                    bytes.len()
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for (file, p) in files.iter().zip(&parsed) {
        if json {
            writeln!(out, "{}", to_json(file, p))?;
        } else {
            print_text(&mut out, file, p)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn bank_name(a: AlgorithmId) -> String {
    a.to_string()
}

fn digests_json(e: &Event) -> Value {
    let mut m = Map::new();
    for d in e.digests() {
        m.insert(bank_name(d.algorithm()), Value::String(d.to_hex()));
    }
    Value::Object(m)
}

/// The decoded summary of an event's data, or why it does not decode.
fn summary(e: &Event) -> Result<String, String> {
    e.decode_unverified_data()
        .map(|d| d.to_string())
        .map_err(|err| err.to_string())
}

fn event_json(n: usize, e: &Event, register_key: &str) -> Value {
    let (summary, decode_error) = match summary(e) {
        Ok(s) => (Value::String(s), Value::Null),
        Err(err) => (Value::Null, Value::String(err)),
    };
    let mut obj = Map::new();
    obj.insert("index".into(), json!(n));
    obj.insert("offset".into(), json!(e.offset()));
    obj.insert(register_key.into(), json!(e.pcr_index().0));
    obj.insert("measured".into(), json!(e.is_measured()));
    obj.insert("type".into(), json!(e.event_type().to_string()));
    obj.insert("type_value".into(), json!(e.event_type().0));
    obj.insert("digests".into(), digests_json(e));
    obj.insert(
        "unverified_data".into(),
        json!(provenix_protocol::encoding::hex_encode(
            e.unauthenticated_data()
        )),
    );
    obj.insert("unverified_summary".into(), summary);
    obj.insert("unverified_decode_error".into(), decode_error);
    Value::Object(obj)
}

fn values_json<'a>(values: impl Iterator<Item = (String, Digest)> + 'a) -> Value {
    let mut m = Map::new();
    for (i, v) in values {
        m.insert(i, Value::String(v.to_hex()));
    }
    Value::Object(m)
}

fn pcrs_json(replay: &Replay) -> Value {
    let mut m = Map::new();
    for bank in replay.banks() {
        m.insert(
            bank.algorithm().name().to_string(),
            values_json(bank.reported().map(|(i, v)| (i.get().to_string(), v))),
        );
    }
    Value::Object(m)
}

fn rtmrs_json(banks: &[RtmrBank]) -> Value {
    let mut m = Map::new();
    for bank in banks {
        m.insert(
            bank.algorithm().name().to_string(),
            values_json(bank.extended().map(|(i, v)| (i.get().to_string(), v))),
        );
    }
    Value::Object(m)
}

fn not_replayed(replay: &Replay) -> Value {
    let mut m = Map::new();
    for a in replay.unsupported_banks() {
        m.insert(bank_name(*a), json!("algorithm not supported"));
    }
    for a in replay.incomplete_banks() {
        m.insert(
            bank_name(*a),
            json!("some measured records carry no digest for this bank"),
        );
    }
    Value::Object(m)
}

fn to_json(file: &Path, p: &Parsed) -> Value {
    match p {
        Parsed::Tpm(log) => {
            let replay = log.replay();
            json!({
                "file": file.to_string_lossy(),
                "format": match log.format() {
                    LogFormat::Sha1 => "sha1",
                    _ => "crypto-agile",
                },
                "banks": log.banks().into_iter().map(bank_name).collect::<Vec<_>>(),
                "startup_locality": log.startup_locality().map(|l| l.get()),
                "pcrs": pcrs_json(&replay),
                "not_replayed": not_replayed(&replay),
                "events": log.events().iter().enumerate()
                    .map(|(n, e)| event_json(n, e, "pcr")).collect::<Vec<_>>(),
            })
        }
        Parsed::Ccel(log) => json!({
            "file": file.to_string_lossy(),
            "format": "tdx-ccel",
            "banks": log.banks().into_iter().map(bank_name).collect::<Vec<_>>(),
            "padding": log.padding_len(),
            "rtmrs": rtmrs_json(&log.replay_rtmrs()),
            "events": log.events().iter().enumerate()
                .map(|(n, e)| event_json(n, e, "mr_index")).collect::<Vec<_>>(),
        }),
    }
}

fn print_events(out: &mut impl Write, events: &[Event], register: &str) -> io::Result<()> {
    for (n, e) in events.iter().enumerate() {
        let target = if e.is_measured() {
            format!("{register} {}", e.pcr_index())
        } else {
            format!("{register} {} (not extended)", e.pcr_index())
        };
        writeln!(
            out,
            "event {n} at byte {}: {target}, {}",
            e.offset(),
            e.event_type()
        )?;
        for d in e.digests() {
            writeln!(out, "    {:<8} {}", bank_name(d.algorithm()), d.to_hex())?;
        }
        match summary(e) {
            Ok(s) => writeln!(
                out,
                "    data ({} bytes, unverified): {s}",
                e.unauthenticated_data().len()
            )?,
            Err(err) => writeln!(
                out,
                "    data ({} bytes, unverified) does not decode: {err}",
                e.unauthenticated_data().len()
            )?,
        }
    }
    Ok(())
}

fn print_text(out: &mut impl Write, file: &Path, p: &Parsed) -> io::Result<()> {
    let banks = |b: Vec<AlgorithmId>| b.into_iter().map(bank_name).collect::<Vec<_>>().join(", ");
    match p {
        Parsed::Tpm(log) => {
            let format = match log.format() {
                LogFormat::Sha1 => "SHA-1-format",
                _ => "crypto-agile",
            };
            writeln!(
                out,
                "{}: {format} TCG event log, {} records, banks {}",
                file.display(),
                log.events().len(),
                banks(log.banks())
            )?;
            if let Some(l) = log.startup_locality() {
                writeln!(out, "StartupLocality {l}: PCR 0 starts at 00..0{l}")?;
            }
            print_events(out, log.events(), "PCR")?;
            let replay = log.replay();
            writeln!(
                out,
                "replayed PCRs (extended by the log; only the digests above are covered by them):"
            )?;
            for bank in replay.banks() {
                for (i, v) in bank.reported() {
                    writeln!(
                        out,
                        "    {:<8} PCR {:<2} {}",
                        bank.algorithm().name(),
                        i.get(),
                        v
                    )?;
                }
            }
            for a in replay.unsupported_banks() {
                writeln!(out, "    {a}: not replayed (algorithm not supported)")?;
            }
            for a in replay.incomplete_banks() {
                writeln!(
                    out,
                    "    {a}: not replayed (some measured records carry no digest for it)"
                )?;
            }
        }
        Parsed::Ccel(log) => {
            writeln!(
                out,
                "{}: TDX CCEL, {} records, banks {}, {} bytes of 0xFF padding",
                file.display(),
                log.events().len(),
                banks(log.banks()),
                log.padding_len()
            )?;
            print_events(out, log.events(), "MR index")?;
            writeln!(out, "replayed RTMRs (MR index 1-4 = RTMR0-3):")?;
            for bank in log.replay_rtmrs() {
                for (i, v) in bank.extended() {
                    writeln!(
                        out,
                        "    {:<8} RTMR{} (MR index {}) {}",
                        bank.algorithm().name(),
                        i.rtmr(),
                        i.get(),
                        v
                    )?;
                }
            }
        }
    }
    Ok(())
}
