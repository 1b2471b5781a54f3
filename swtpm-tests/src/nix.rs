//! A private Nix daemon per test: its own chroot store, state directory,
//! configuration and socket, so tests run in parallel without touching
//! the machine's /nix.
//!
//! ```text
//! NixDaemon::start(conf) ── <dir>/etc/nix.conf (sandbox = true, no substituters, + conf)
//!        │                  <dir>/test.nix + bbdir/bin/busybox (shared/recipes' derivations)
//!        │ setpriv --pdeathsig KILL env -u NIX_REMOTE NIX_STATE_DIR=<dir>/state
//!        ▼                  nix-daemon --store <dir>/root
//! build("hello") ── nix-build --store unix://<dir>/state/daemon-socket/socket …
//! drop ── kill the daemon, delete the directory
//! ```
//! Builds run in the daemon, sandboxed, as real builds do; its
//! post-build-hook runs as root in the daemon, as on a builder.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// The test derivations of `shared/recipes/nix-test-derivations.nix`.
pub const TEST_DERIVATIONS: &str = include_str!("../data/nix-test-derivations.nix");

/// A running private Nix daemon.
pub struct NixDaemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl NixDaemon {
    /// Start a daemon with the base configuration plus `conf` (nix.conf
    /// lines, e.g. a `post-build-hook`; a setting given there replaces the base one).
    pub fn start(conf: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("nixd-").tempdir()?;
        let d = dir.path();
        for sub in ["etc", "state", "root", "xdg", "bbdir/bin"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| {
                err("busybox not found (scripts/test.sh installs busybox-static)".into())
            })?;
        std::fs::copy(busybox, d.join("bbdir/bin/busybox"))?;
        std::fs::write(d.join("test.nix"), TEST_DERIVATIONS)?;
        let mut settings: Vec<(String, String)> = [
            ("experimental-features", "nix-command"),
            ("substituters", ""),
            ("sandbox", "true"),
            ("sandbox-fallback", "false"),
            ("builders", ""),
            ("trusted-users", "root"),
            // No shared build users: Nix kills every process of a build
            // user before a build, so parallel test daemons sharing
            // nixbld1 would kill each other's builds. Builds run as root,
            // still in the sandbox.
            ("build-users-group", ""),
            ("narinfo-cache-negative-ttl", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for line in conf.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| err(format!("not a nix.conf line: {line}")))?;
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            match settings.iter_mut().find(|(name, _)| *name == k) {
                Some(s) => s.1 = v,
                None => settings.push((k, v)),
            }
        }
        let text: String = settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        std::fs::write(d.join("etc/nix.conf"), text)?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "env", "-u", "NIX_REMOTE"])
            .arg(format!("NIX_CONF_DIR={}", d.join("etc").display()))
            .arg(format!("NIX_STATE_DIR={}", d.join("state").display()))
            .arg(format!("XDG_CACHE_HOME={}", d.join("xdg").display()))
            .arg("nix-daemon")
            .arg("--store")
            .arg(d.join("root"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("daemon.log"))?)
            .spawn()
            .map_err(|e| {
                err(format!(
                    "cannot start nix-daemon: {e} (scripts/test.sh installs nix-bin)"
                ))
            })?;
        let s = Self {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s.socket().exists() {
            if Instant::now() > deadline {
                return Err(err(format!(
                    "nix-daemon did not open its socket: {}",
                    s.daemon_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The group and users Nix builds as (as the recipe sets them up).
        if Command::new("getent")
            .args(["group", "nixbld"])
            .output()?
            .stdout
            .is_empty()
        {
            return Err(err(
                "group nixbld missing (scripts/test.sh creates the build users)".into(),
            ));
        }
        Ok(s)
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The chroot store's root (`<root>/nix/store/…`).
    pub fn store_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("state/daemon-socket/socket")
    }

    /// The `--store` URI of the daemon.
    pub fn store_uri(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// What the daemon logged.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// A Nix client command against this daemon.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_remove("NIX_REMOTE")
            .env("NIX_CONF_DIR", self.dir.path().join("etc"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg"))
            .arg("--store")
            .arg(self.store_uri());
        c
    }

    /// `nix-build` an attribute of the test derivations (extra arguments
    /// after it); the output paths on success, Nix's output on failure.
    pub fn build(&self, attr: &str, extra: &[&str]) -> io::Result<Vec<String>> {
        let mut c = self.command("nix-build");
        c.arg(self.dir.path().join("test.nix"))
            .args(["-A", attr, "--no-out-link"])
            .args(extra);
        Self::outputs(c, &format!("-A {attr}"))
    }

    /// `nix-build -E EXPR` in the directory holding `test.nix`.
    pub fn build_expr(&self, expr: &str) -> io::Result<Vec<String>> {
        let mut c = self.command("nix-build");
        c.current_dir(self.dir.path())
            .args(["-E", expr, "--no-out-link"]);
        Self::outputs(c, &format!("-E {expr}"))
    }

    /// Run a nix-build and return the paths it printed.
    fn outputs(mut c: Command, what: &str) -> io::Result<Vec<String>> {
        let out = c.output()?;
        if !out.status.success() {
            return Err(err(format!(
                "nix-build {what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// `nix path-info --json` of paths (NAR hash, size, references, as Nix
    /// recorded them).
    pub fn path_info(&self, paths: &[String]) -> io::Result<Output> {
        self.command("nix")
            .args(["path-info", "--json"])
            .args(paths)
            .output()
    }

    /// The .drv of an attribute (`nix-instantiate`).
    pub fn instantiate(&self, attr: &str, extra: &[&str]) -> io::Result<String> {
        let out = self
            .command("nix-instantiate")
            .arg(self.dir.path().join("test.nix"))
            .args(["-A", attr])
            .args(extra)
            .output()?;
        if !out.status.success() {
            return Err(err(format!(
                "nix-instantiate -A {attr}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for NixDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
