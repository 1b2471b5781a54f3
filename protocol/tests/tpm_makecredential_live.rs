//! Our software TPM2_MakeCredential against a real TPM2_ActivateCredential:
//! each test starts its own swtpm, makes an EK and an AK with tpm2-tools,
//! protects a random secret with `protocol::tpm::make_credential` for the
//! EK public as tpm2-tools exported it, and checks that
//! `tpm2_activatecredential` gives the secret back (RSA-2048, ECC P-256 and
//! ECC P-384 EKs). A credential made for another TPM's EK, or for another
//! AK, must not activate. Conversely, `tpm2_makecredential -T none` output
//! is read by our types and still activates after a round trip through
//! them.
//!
//! Needs `swtpm`, `tpm2-tools` and `setpriv` (util-linux); without them the
//! tests fail and say so (`scripts/test.sh` installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use provenix_protocol::tpm::{
    make_credential, CredentialChallenge, Digest, MadeCredential, Name, Public,
};
use rand_core::{OsRng, RngCore};

const TOOLS: [&str; 8] = [
    "swtpm",
    "setpriv",
    "tpm2_createek",
    "tpm2_createak",
    "tpm2_startauthsession",
    "tpm2_policysecret",
    "tpm2_activatecredential",
    "tpm2_makecredential",
];

fn require_tools() {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            Command::new(t)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "this test needs {missing:?} on PATH: install the Debian packages swtpm, \
         swtpm-tools, tpm2-tools and util-linux (scripts/test.sh does)"
    );
}

/// One swtpm for one test: its own state directory and port pair, started
/// through `setpriv --pdeathsig KILL` so that it dies with the test
/// process; killed and its directory deleted on drop.
struct Swtpm {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Swtpm {
    fn start() -> Self {
        require_tools();
        let mut last = String::new();
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            std::fs::create_dir(&state).unwrap();
            let Some(port) = free_port_pair() else {
                continue;
            };
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "swtpm", "socket", "--tpm2"])
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .arg("--tpmstate")
                .arg(format!("dir={}", state.display()))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start swtpm through setpriv: {e}"));
            let mut tpm = Self { child, port, dir };
            match tpm.wait_ready() {
                Ok(()) => return tpm,
                Err(e) => last = e, // a port clash: try another pair
            }
        }
        panic!("swtpm did not start on any free port pair: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                return Err(format!("swtpm exited ({status}): {err}"));
            }
            if self
                .tool(&["tpm2_getcap", "properties-fixed"])
                .status
                .success()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("swtpm did not answer within 10 s".into())
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Run a tpm2-tools command against this TPM, in its directory.
    fn tool(&self, args: &[&str]) -> Output {
        Command::new(args[0])
            .args(&args[1..])
            .current_dir(self.dir.path())
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:host=127.0.0.1,port={}", self.port),
            )
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]))
    }

    /// As [`Self::tool`], and it must succeed.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.tool(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Flush every transient object and session (no resource manager).
    fn flush(&self) {
        for kind in ["-t", "-s", "-l"] {
            self.ok(&["tpm2_flushcontext", kind]);
        }
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// The EK of `alg` (`rsa`, `ecc` = P-256, `ecc384`) and an ECC AK
    /// under it; returns (EK public, AK Name).
    fn ek_and_ak(&self, alg: &str, ek: &str, ak: &str) -> (Public, Name) {
        let (ek_ctx, ek_pub) = (format!("{ek}.ctx"), format!("{ek}.pub"));
        self.ok(&["tpm2_createek", "-G", alg, "-c", &ek_ctx, "-u", &ek_pub]);
        self.flush();
        let (ak_ctx, ak_pub, ak_name) = (
            format!("{ak}.ctx"),
            format!("{ak}.pub"),
            format!("{ak}.name"),
        );
        self.ok(&[
            "tpm2_createak",
            "-C",
            &ek_ctx,
            "-c",
            &ak_ctx,
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-u",
            &ak_pub,
            "-n",
            &ak_name,
        ]);
        self.flush();
        let ek_public = Public::from_tpm2b_bytes(&self.read(&ek_pub)).unwrap();
        let ak_public = Public::from_tpm2b_bytes(&self.read(&ak_pub)).unwrap();
        let name = ak_public.name().unwrap();
        assert_eq!(
            name.as_bytes(),
            self.read(&ak_name),
            "our Name = tpm2-tools'"
        );
        (ek_public, name)
    }

    /// `tpm2_activatecredential` of the credential file `cred` with the AK
    /// and EK contexts; with the EK's policy session (PolicySecret of the
    /// endorsement hierarchy) when `policy`, else plain empty auth.
    fn activate(&self, ek: &str, ak: &str, cred: &str, policy: bool) -> Output {
        self.flush();
        let out_file = format!("{cred}.out");
        let _ = std::fs::remove_file(self.path(&out_file));
        let (ek_ctx, ak_ctx) = (format!("{ek}.ctx"), format!("{ak}.ctx"));
        let mut args = vec![
            "tpm2_activatecredential",
            "-c",
            &ak_ctx,
            "-C",
            &ek_ctx,
            "-i",
            cred,
            "-o",
            &out_file,
        ];
        if policy {
            self.ok(&[
                "tpm2_startauthsession",
                "--policy-session",
                "-S",
                "session.ctx",
            ]);
            self.ok(&["tpm2_policysecret", "-S", "session.ctx", "-c", "e"]);
            args.extend(["-P", "session:session.ctx"]);
        }
        let out = self.tool(&args);
        self.flush();
        out
    }

    fn activated_secret(&self, cred: &str) -> Vec<u8> {
        self.read(&format!("{cred}.out"))
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port P with P + 1 also free on 127.0.0.1 (swtpm's TCTI puts the
/// control port at P + 1). Another process may take them before swtpm
/// binds: the caller retries.
fn free_port_pair() -> Option<u16> {
    for _ in 0..20 {
        let a = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = a.local_addr().ok()?.port();
        if port == u16::MAX {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

fn random_secret(len: usize) -> Digest {
    let mut b = vec![0u8; len];
    OsRng.fill_bytes(&mut b);
    Digest::new(&b).unwrap()
}

/// Make a credential with our code, send it through the wire challenge,
/// write it as tpm2-tools' file.
fn our_credential(tpm: &Swtpm, ek: &Public, ak_name: &Name, secret: &Digest, file: &str) {
    let made = make_credential(ek, ak_name, secret, &mut OsRng).unwrap();
    let challenge = CredentialChallenge::new(ak_name.clone(), made);
    let wire = CredentialChallenge::from_bytes(&challenge.to_bytes()).unwrap();
    assert_eq!(wire, challenge);
    std::fs::write(tpm.path(file), wire.made_credential().to_tpm2_tools_file()).unwrap();
}

fn round_trip(alg: &str, policy: bool, secret_len: usize) {
    let tpm = Swtpm::start();
    let (ek, ak_name) = tpm.ek_and_ak(alg, "ek", "ak");
    let secret = random_secret(secret_len);
    our_credential(&tpm, &ek, &ak_name, &secret, "cred.bin");
    let out = tpm.activate("ek", "ak", "cred.bin", policy);
    assert!(
        out.status.success(),
        "{alg}: tpm2_activatecredential refused our credential: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tpm.activated_secret("cred.bin"), secret.as_bytes(), "{alg}");
}

#[test]
fn rsa_ek_activates_our_credential() {
    // TCG template L-1: SHA-256, AES-128-CFB, RSA-OAEP seed; use by policy only.
    round_trip("rsa", true, 32);
}

#[test]
fn ecc_p256_ek_activates_our_credential() {
    // TCG template L-2: SHA-256, AES-128-CFB, ECDH + KDFe; use by policy only.
    round_trip("ecc", true, 20);
}

#[test]
fn ecc_p384_ek_activates_our_credential() {
    // TCG template H-3 (swtpm's own ECC EK): SHA-384, AES-256-CFB,
    // userWithAuth set, so plain auth; a 48-byte secret is the largest.
    round_trip("ecc384", false, 48);
}

#[test]
fn credential_for_another_ek_or_ak_does_not_activate() {
    let a = Swtpm::start();
    let b = Swtpm::start();
    let (ek_a, ak_name_a) = a.ek_and_ak("ecc384", "ek", "ak");
    let (ek_b, _) = b.ek_and_ak("ecc384", "ek", "ak");
    assert_ne!(ek_a, ek_b, "two swtpms have two EKs");
    let secret = random_secret(32);

    // Made for TPM B's EK (with A's AK name): A cannot recover the seed.
    our_credential(&a, &ek_b, &ak_name_a, &secret, "other_ek.bin");
    let out = a.activate("ek", "ak", "other_ek.bin", false);
    assert!(
        !out.status.success(),
        "a credential for another EK activated"
    );
    assert!(!a.path("other_ek.bin.out").exists());

    // Made for A's EK but another AK's Name: the integrity check fails.
    let other_name =
        Name::from_digest(provenix_protocol::tpm::HashAlg::Sha256, &random_secret(32)).unwrap();
    our_credential(&a, &ek_a, &other_name, &secret, "other_ak.bin");
    let out = a.activate("ek", "ak", "other_ak.bin", false);
    assert!(
        !out.status.success(),
        "a credential for another AK activated"
    );

    // The right one still works on A (the failures were not A's fault).
    our_credential(&a, &ek_a, &ak_name_a, &secret, "right.bin");
    let out = a.activate("ek", "ak", "right.bin", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(a.activated_secret("right.bin"), secret.as_bytes());

    // And B's EK (an RSA one, policy session) refuses a credential for A's RSA EK.
    let (ek_a_rsa, _) = a.ek_and_ak("rsa", "ek_rsa", "ak_rsa");
    let (_, ak_name_b_rsa) = b.ek_and_ak("rsa", "ek_rsa", "ak_rsa");
    our_credential(&b, &ek_a_rsa, &ak_name_b_rsa, &secret, "rsa_other_ek.bin");
    let out = b.activate("ek_rsa", "ak_rsa", "rsa_other_ek.bin", true);
    assert!(
        !out.status.success(),
        "an RSA credential for another EK activated"
    );
}

#[test]
fn tpm2_makecredential_output_is_read_by_our_types() {
    let tpm = Swtpm::start();
    for (alg, ek, ak, policy) in [
        ("rsa", "ek_rsa", "ak_rsa", true),
        ("ecc384", "ek_ecc", "ak_ecc", false),
    ] {
        let (_, ak_name) = tpm.ek_and_ak(alg, ek, ak);
        let secret = random_secret(16);
        std::fs::write(tpm.path("secret.bin"), secret.as_bytes()).unwrap();
        let tools_file = format!("{alg}_tools.bin");
        let out = Command::new("tpm2_makecredential")
            .current_dir(tpm.dir.path())
            .env("TSS2_LOG", "all+none")
            .args(["-T", "none", "-u", &format!("{ek}.pub"), "-s", "secret.bin"])
            .args(["-n", &ak_name.to_hex(), "-o", &tools_file])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(tpm.path(&tools_file)).unwrap();
        let made = MadeCredential::from_tpm2_tools_file(&bytes).unwrap();
        assert_eq!(made.to_tpm2_tools_file(), bytes, "{alg}: re-marshals");
        // Through the wire challenge and back into tpm2-tools' file.
        let challenge = CredentialChallenge::new(ak_name, made);
        let again = CredentialChallenge::from_bytes(&challenge.to_bytes()).unwrap();
        let file = format!("{alg}_again.bin");
        std::fs::write(
            tpm.path(&file),
            again.made_credential().to_tpm2_tools_file(),
        )
        .unwrap();
        let out = tpm.activate(ek, ak, &file, policy);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(tpm.activated_secret(&file), secret.as_bytes(), "{alg}");
    }
    assert!(Path::new(tpm.dir.path()).exists());
}
