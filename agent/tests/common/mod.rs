//! A builder for the Nix integration tests: its own swtpm, its own private
//! Nix daemon whose post-build hook is `provenix-agent hook`, measured and
//! enrolled, and helpers to run the agent daemon and read its log.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provenix_agent::log::{for_each_leaf, CHECKPOINT};
use provenix_protocol::leaf::{LeafReader, Record};
use provenix_protocol::note::{Checkpoint, Note};
use provenix_protocol::SignedEntry;
use provenix_swtpm_tests::nix::NixDaemon;
use provenix_swtpm_tests::{Swtpm, Template};

pub(crate) const AGENT: &str = env!("CARGO_BIN_EXE_provenix-agent");

/// The verifier's binary, built next to the agent's (`cargo test
/// --workspace` builds both).
pub(crate) fn provenix() -> PathBuf {
    let p = Path::new(AGENT).with_file_name("provenix");
    assert!(
        p.exists(),
        "{} is missing: build it (cargo build -p provenix-verifier)",
        p.display()
    );
    p
}

pub(crate) fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The checkpoint, leaves and records of a log directory.
pub(crate) fn read_log(dir: &Path) -> (Checkpoint, Vec<Vec<u8>>, Vec<Record>) {
    let bytes = std::fs::read(dir.join(CHECKPOINT)).unwrap();
    let cp = Checkpoint::parse_body(Note::parse(&bytes).unwrap().text()).unwrap();
    let mut leaves = Vec::new();
    for_each_leaf(dir, 0, cp.size, |_, l| {
        leaves.push(l.to_vec());
        Ok(())
    })
    .unwrap();
    let mut reader = LeafReader::new();
    let records = leaves
        .iter()
        .filter_map(|l| reader.push(l).unwrap())
        .collect();
    (cp, leaves, records)
}

/// The entries of a log.
pub(crate) fn entries(dir: &Path) -> Vec<SignedEntry> {
    if !dir.join(CHECKPOINT).exists() {
        return Vec::new();
    }
    read_log(dir)
        .2
        .into_iter()
        .filter_map(|r| match r {
            Record::Entry(e) => Some(*e),
            _ => None,
        })
        .collect()
}

pub(crate) struct Builder {
    pub(crate) swtpm: Swtpm,
    pub(crate) nix: NixDaemon,
    pub(crate) work: tempfile::TempDir,
    pub(crate) daemon: Option<Child>,
    /// The agent's configuration file (default: none, /dev/null).
    pub(crate) config: PathBuf,
}

impl Builder {
    /// A measured, enrolled builder whose Nix runs `provenix-agent hook`
    /// after every build; `conf` adds nix.conf lines.
    pub(crate) fn new(conf: &str) -> Self {
        Self::on_tpm(0, conf)
    }

    /// A builder on its own TPM: template `index` (equal indices share an
    /// EK, i.e. are one TPM to a verifier).
    pub(crate) fn on_tpm(index: usize, conf: &str) -> Self {
        let swtpm = Swtpm::start(Template::shared(index).unwrap()).unwrap();
        let work = tempfile::tempdir().unwrap();
        let hook = work.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nt0=$(date +%s%N)\n{AGENT} hook --socket {} --spool-dir {} 2>>{}\n\
                 echo $(( $(date +%s%N) - t0 )) >>{}\nexit 0\n",
                work.path().join("agent.sock").display(),
                work.path().join("spool").display(),
                work.path().join("hook.err").display(),
                work.path().join("hook.ns").display(),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let nix =
            NixDaemon::start(&format!("post-build-hook = {}\n{conf}", hook.display())).unwrap();
        let b = Self {
            swtpm,
            nix,
            work,
            daemon: None,
            config: PathBuf::from("/dev/null"),
        };
        // Boot: a system closure built in this store, measured from content.
        let system = b
            .nix
            .build_expr("(import ./test.nix).salted \"system\"")
            .unwrap();
        ok(b.agent()
            .args(["measure", "--root"])
            .arg(b.nix.store_root())
            .args(["--insecure-test-toplevel", &system[0]])
            .output()
            .unwrap());
        ok(b.agent()
            .args(["enroll", "--no-event-log"])
            .output()
            .unwrap());
        // That build's hook spooled a job (no daemon yet): not a build to record.
        let _ = std::fs::remove_dir_all(b.spool());
        let _ = std::fs::remove_file(b.work.path().join("hook.ns"));
        b
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.work.path().join("state")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.work.path().join("log")
    }
    pub(crate) fn spool(&self) -> PathBuf {
        self.work.path().join("spool")
    }
    pub(crate) fn socket(&self) -> PathBuf {
        self.work.path().join("agent.sock")
    }

    /// provenix-agent on this builder's TPM, state, log and store.
    pub(crate) fn agent(&self) -> Command {
        let mut c = Command::new(AGENT);
        c.args(["--tcti", &self.swtpm.tcti(), "--insecure-allow-swtpm"])
            .env("TSS2_LOG", "all+none")
            .env("PROVENIX_STATE_DIR", self.state())
            .env("PROVENIX_LOG_DIR", self.log())
            .env("PROVENIX_STORE_ROOT", self.nix.store_root())
            .env("PROVENIX_SOCKET", self.socket())
            .env("PROVENIX_SPOOL_DIR", self.spool())
            .env("PROVENIX_CONFIG", &self.config);
        c
    }

    /// Start `provenix-agent run` (dies with the test).
    pub(crate) fn start_daemon(&mut self, args: &[&str]) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.path().join("daemon.err"))
            .unwrap();
        let c = self.agent();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(c.get_program())
            .args(c.get_args())
            .envs(c.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        self.daemon = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited ({st}): {}", self.daemon_log());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not listen: {}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The base URL the daemon's service announced (waits up to 20 s).
    pub(crate) fn service_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.daemon_log();
            if let Some(at) = log.find("serving the log at ") {
                let rest = &log[at + "serving the log at ".len()..];
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
            }
            assert!(Instant::now() < deadline, "no service: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's (VmRSS, VmHWM) in KiB, from /proc.
    pub(crate) fn daemon_rss(&self) -> (u64, u64) {
        let pid = self.daemon.as_ref().unwrap().id();
        // setpriv execs the agent: same pid.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap()
                .parse()
                .unwrap()
        };
        (kib("VmRSS:"), kib("VmHWM:"))
    }

    /// kill -9 the daemon.
    pub(crate) fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub(crate) fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("daemon.err")).unwrap_or_default()
    }

    pub(crate) fn hook_log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("hook.err")).unwrap_or_default()
    }

    /// Wait until the log holds `n` entries (or fail after 60 s).
    pub(crate) fn wait_entries(&self, n: usize) -> Vec<SignedEntry> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = entries(&self.log());
            if e.len() >= n {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} entries after 60 s\ndaemon: {}\nhook: {}",
                e.len(),
                self.daemon_log(),
                self.hook_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Hook wall-clock latencies (nanoseconds) as Nix waited for them, in order.
    pub(crate) fn hook_latencies(&self) -> Vec<u64> {
        std::fs::read_to_string(self.work.path().join("hook.ns"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    /// Jobs waiting in the spool.
    pub(crate) fn spooled(&self) -> usize {
        std::fs::read_dir(self.spool())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".job"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Builder {
    /// Extend `pcr` (in the seal set) with SHA-256(`data`), re-bind SK to
    /// that boot, and let the daemon publish the rebinding and record a
    /// build.
    pub(crate) fn extend_rebind_and_record(&mut self, pcr: u8, data: &str) {
        ok(self
            .agent()
            .args(["debug-extend", "--pcr", &pcr.to_string(), data])
            .output()
            .unwrap());
        self.rebind_and_record(&["--no-event-log"], &format!("{pcr} {data}"));
    }

    /// Re-bind SK to this boot (`enroll --rebind` with `args`), and let
    /// the daemon publish the rebinding and record a build salted `salt`.
    pub(crate) fn rebind_and_record(&mut self, args: &[&str], salt: &str) {
        ok(self
            .agent()
            .args(["enroll", "--rebind"])
            .args(args)
            .output()
            .unwrap());
        self.start_daemon(&["--batch-delay-ms", "50"]);
        let before = entries(&self.log()).len();
        self.nix
            .build_expr(&format!("(import ./test.nix).salted \"rebound {salt}\""))
            .unwrap();
        self.wait_entries(before + 1);
        self.kill_daemon();
    }

    /// Log a systemd event on `pcr` in the agent's CEL log, as systemd
    /// would before extending SHA-256(`data`) (do that with
    /// [`Builder::extend_rebind_and_record`]).
    pub(crate) fn log_cel_event(&self, pcr: u8, data: &str, event_type: &str) {
        use provenix_measured_boot::cel::{CelContent, CelLog, CelRecord, JsonContent};
        use provenix_measured_boot::{AlgorithmId, Digest};
        let cel = self.state().join("cel.log");
        let mut bytes = std::fs::read(&cel).unwrap();
        let recnum = CelLog::parse(&bytes).unwrap().records().len() as u64;
        let record = CelRecord::new(
            provenix_protocol::PcrIndex::new(pcr).unwrap(),
            vec![Digest::new(
                AlgorithmId::SHA256,
                provenix_protocol::Sha256Digest::of(data.as_bytes()).as_bytes(),
            )
            .unwrap()],
            CelContent::Systemd(
                JsonContent::parse(&format!(
                    "{{\"string\":\"{data}\",\"eventType\":\"{event_type}\"}}"
                ))
                .unwrap(),
            ),
        )
        .unwrap()
        .with_recnum(recnum);
        bytes.extend_from_slice(&record.to_json_seq());
        std::fs::write(&cel, bytes).unwrap();
    }
}

/// A policy for one builder (named "a", log `log`, AK Name `ak_hex`) on
/// swtpm template 0: its local CA trusted, software TPMs allowed,
/// activation skipped; `extra` adds lines.
pub(crate) fn policy_for(
    log: &str,
    ak_hex: &str,
    extra: &str,
) -> provenix_verifier::policy::Policy {
    let tpl = Template::shared(0).unwrap();
    let mut p = provenix_verifier::policy::Policy::parse(
        &format!(
            "insecure_allow_swtpm = true\nquorum = 1\ndanger_skip_credential_activation = true\n\
             ek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\n{extra}\n[[builder]]\n\
             name = \"a\"\nlog = \"{log}\"\nak_name = \"{ak_hex}\"\n",
            tpl.root_ca_cert().display(),
            tpl.issuer_cert().display(),
        ),
        "test",
    )
    .unwrap();
    p.read_certificates(Path::new("/")).unwrap();
    p
}

/// Copy a directory tree (a log to tamper with), without lock files.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).unwrap();
        if rel.to_str() == Some(provenix_agent::log::LOCK) {
            continue;
        }
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&e, &dst).unwrap();
    }
}

/// Every file under `dir`.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl Drop for Builder {
    fn drop(&mut self) {
        self.kill_daemon();
    }
}
