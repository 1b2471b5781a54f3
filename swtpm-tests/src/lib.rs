//! A harness that gives every test its own software TPM (swtpm).
//!
//! ```text
//! Template::shared(i)  ── swtpm_setup (EK certs from a private local CA), once per process
//!        │ copy tpm2-00.permall (a fresh TPM with the same EK)
//!        ▼
//! Swtpm::start(&template) ── setpriv --pdeathsig KILL swtpm socket … (free port pair)
//!        │ tcti() = "swtpm:host=127.0.0.1,port=P"
//!        ▼
//! test opens its TPM context, … ; Swtpm::reboot() = restart on the same state
//! drop ── kill swtpm, delete its state directory
//! ```
//!
//! Distinct templates have distinct EKs, for tests that need distinct TPMs
//! (a quorum counts one vote per EK). swtpm needs its control port (P+1) too;
//! a port clash is retried with a new pair. `forbid(unsafe_code)` holds here,
//! so the child dies with the test through `setpriv --pdeathsig KILL`
//! (util-linux) rather than an unsafe `pre_exec`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How many distinct templates [`Template::shared`] offers per process.
pub const MAX_TEMPLATES: usize = 4;

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

fn run(cmd: &mut Command, what: &str) -> io::Result<()> {
    let out = cmd.output().map_err(|e| {
        err(format!(
            "{what}: cannot run {:?}: {e} (scripts/test.sh installs swtpm swtpm-tools tpm2-tools)",
            cmd.get_program()
        ))
    })?;
    if !out.status.success() {
        return Err(err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// An EK-certified TPM state made by `swtpm_setup`, with the local CA that
/// signed its EK certificates.
#[derive(Debug)]
pub struct Template {
    dir: tempfile::TempDir,
}

impl Template {
    /// Make a template: RSA-2048 and ECC P-384 EKs with certificates
    /// (NV 0x01c00002 and 0x01c00016), a platform certificate, SHA-256 bank.
    pub fn create() -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("swtpm-template-")
            .tempdir()?;
        let t = dir.path();
        let ca = t.join("ca");
        std::fs::create_dir_all(t.join("state"))?;
        std::fs::create_dir_all(&ca)?;
        std::fs::write(
            ca.join("swtpm-localca.conf"),
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
                ca = ca.display()
            ),
        )?;
        std::fs::write(
            ca.join("swtpm-localca.options"),
            "--platform-manufacturer provenix-tests\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        std::fs::write(
            ca.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {ca}/swtpm-localca.conf\ncreate_certs_tool_options = {ca}/swtpm-localca.options\nactive_pcr_banks = sha256\n",
                ca = ca.display()
            ),
        )?;
        run(
            Command::new("swtpm_setup")
                .args([
                    "--tpm2",
                    "--create-ek-cert",
                    "--create-platform-cert",
                    "--overwrite",
                ])
                .arg("--tpmstate")
                .arg(t.join("state"))
                .arg("--config")
                .arg(ca.join("swtpm_setup.conf"))
                .arg("--logfile")
                .arg(t.join("setup.log")),
            "swtpm_setup",
        )?;
        Ok(Self { dir })
    }

    /// Template `index` (0 to [`MAX_TEMPLATES`] - 1) of this process, made
    /// on first use. Equal indices share an EK; different ones do not.
    pub fn shared(index: usize) -> io::Result<&'static Template> {
        static TEMPLATES: [OnceLock<Result<Template, String>>; MAX_TEMPLATES] =
            [const { OnceLock::new() }; MAX_TEMPLATES];
        let slot = TEMPLATES
            .get(index)
            .ok_or_else(|| err(format!("template index {index} >= {MAX_TEMPLATES}")))?;
        slot.get_or_init(|| Template::create().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| err(e.clone()))
    }

    /// The TPM state directory (holds `tpm2-00.permall`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The local CA's root certificate (PEM): the EK chain's trust anchor.
    pub fn root_ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca/swtpm-localca-rootca-cert.pem")
    }

    /// The intermediate CA certificate (PEM) that signed the EK certificates.
    pub fn issuer_cert(&self) -> PathBuf {
        self.dir.path().join("ca/issuercert.pem")
    }
}

/// A running swtpm with its own state, killed and deleted on drop.
#[derive(Debug)]
pub struct Swtpm {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

fn free_port_pair() -> io::Result<u16> {
    for _ in 0..64 {
        let a = TcpListener::bind("127.0.0.1:0")?;
        let port = a.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(err("no free port pair on 127.0.0.1".into()))
}

impl Swtpm {
    /// Start a fresh TPM: a copy of `template`'s state.
    pub fn start(template: &Template) -> io::Result<Self> {
        Self::from_state(&template.state_dir())
    }

    /// Start a TPM on a copy of the state in `state_dir` (its
    /// `tpm2-00.permall`), e.g. a VM's TPM after power-off: persistent
    /// objects and NV as the VM left them, PCRs reset.
    pub fn from_state(state_dir: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("swtpm-").tempdir()?;
        std::fs::copy(
            state_dir.join("tpm2-00.permall"),
            dir.path().join("tpm2-00.permall"),
        )?;
        let mut s = Self {
            child: None,
            dir,
            port: 0,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut last = String::new();
        for _ in 0..10 {
            let port = free_port_pair()?;
            let mut child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "swtpm", "socket", "--tpm2"])
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .arg("--tpmstate")
                .arg(format!("dir={}", self.dir.path().display()))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    err(format!(
                        "cannot start swtpm via setpriv: {e} (needs util-linux and swtpm)"
                    ))
                })?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait()? {
                    let mut msg = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = io::Read::read_to_string(&mut e, &mut msg);
                    }
                    last = format!("swtpm exited ({status}): {msg}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port + 1)).is_ok() {
                    self.child = Some(child);
                    self.port = port;
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(err("swtpm did not open its control port in 10 s".into()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(err(format!(
            "swtpm would not start after 10 port pairs: {last}"
        )))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A reboot: stop swtpm and start it again on the same state (PCRs
    /// reset, resetCount + 1, persistent objects and NV kept). Drop every
    /// TPM context first.
    pub fn reboot(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// The TCTI string for tss-esapi / tpm2-tools.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// This TPM's state directory.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run a tpm2-tools command (`args[0]` is the tool) against this TPM in
    /// `dir`, then flush the transient objects and sessions it left (swtpm
    /// has no resource manager). A non-zero exit is an error carrying the
    /// tool's stderr.
    pub fn tool(&self, dir: &Path, args: &[&str]) -> io::Result<std::process::Output> {
        let run = |args: &[&str]| {
            let (program, rest) = args
                .split_first()
                .ok_or_else(|| io::Error::other("no tool named"))?;
            Command::new(program)
                .args(rest)
                .current_dir(dir)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .env("TSS2_LOG", "all+none")
                .output()
                .map_err(|e| {
                    io::Error::other(format!(
                        "{program}: {e} (scripts/test.sh installs tpm2-tools)"
                    ))
                })
        };
        let out = run(args)?;
        for what in ["-t", "-s"] {
            run(&["tpm2_flushcontext", what])?;
        }
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}
pub mod nix;
