//! The daemon's log service with real Nix builds on swtpm: over HTTPS it
//! serves the checkpoint (cosigned by a real witness), tiles and bundles
//! within it, look-ups that agree with `nix path-info`, LK's Nix Sig:
//! lines, status, and credential activation (rate-limited); it stops
//! cleanly on SIGTERM and resumes. `sign-cache` then lets plain Nix
//! substitute from a binary cache trusting only LK.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ok, read_log, Builder, AGENT};
use provenix_protocol::enrollment::Enrollment;
use provenix_protocol::nix_sig::{NixPublicKey, NixSignature};
use provenix_protocol::note::{
    Checkpoint, CosignerKey, CosignerSigningKey, KeyName, Note, NoteVerifierKey,
};
use provenix_protocol::tpm::{
    make_credential, CredentialAnswer, CredentialChallenge, Digest, Public,
};
use rand_core::{OsRng, RngCore};

/// A test CA and a server certificate it issued for 127.0.0.1:
/// (CA certificate, server certificate, server key).
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let f = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-days", "1", "-subj", "/CN=provenix test CA"],
        &["-keyout", "ca.key", "-out", "ca.pem"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
    ]
    .concat());
    std::fs::write(
        f("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (f("ca.pem"), f("cert.pem"), f("key.pem"))
}

/// The builder's id and LK (hex), from `provenix-agent keys`.
fn keys(b: &Builder) -> (String, [u8; 32]) {
    let v: serde_json::Value =
        serde_json::from_str(&ok(b.agent().args(["keys", "--json"]).output().unwrap())).unwrap();
    let lk = provenix_protocol::encoding::hex_decode_array(v["lk"].as_str().unwrap()).unwrap();
    (v["builder"].as_str().unwrap().to_string(), lk)
}

fn get(client: &ureq::Agent, url: &str) -> (u16, Vec<u8>) {
    let mut r = client.get(url).call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap())
}

fn post(client: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut r = client.post(url).send(body).unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap())
}

fn json(client: &ureq::Agent, url: &str) -> serde_json::Value {
    let (status, body) = get(client, url);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// An in-process witness following the builder's log, on plain HTTP.
struct TestWitness {
    url: String,
    key: CosignerKey,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn witness(name: &str, seed: u8, origin: &str, lk: [u8; 32]) -> TestWitness {
    let dir = tempfile::tempdir().unwrap();
    let signer = CosignerSigningKey::new(
        KeyName::new(name).unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    );
    let key = signer.verifier_key();
    // The log's checkpoint key: LK's public half, named after the origin.
    let log_key = NoteVerifierKey::new(
        KeyName::new(origin).unwrap(),
        ed25519_dalek::VerifyingKey::from_bytes(&lk).unwrap(),
    );
    let w = Arc::new(
        provenix_verifier::witness::Witness::new(signer, vec![log_key], dir.path()).unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(provenix_io::Server::bind(provenix_io::ListenOptions::new(
            "127.0.0.1:0".parse().unwrap(),
            None,
            true,
        )))
        .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    rt.spawn(server.run(w.handler(), std::future::pending()));
    TestWitness {
        url,
        key,
        _rt: rt,
        _dir: dir,
    }
}

fn challenge(e: &Enrollment, ak_public: &[u8]) -> (CredentialChallenge, [u8; 32]) {
    let ek = Public::from_bytes(&e.ek_public).unwrap();
    let ak_name = Public::from_bytes(ak_public).unwrap().name().unwrap();
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let made = make_credential(&ek, &ak_name, &Digest::new(&secret).unwrap(), &mut OsRng).unwrap();
    (CredentialChallenge::new(ak_name, made), secret)
}

fn sigterm(b: &mut Builder) -> std::process::ExitStatus {
    let mut child = b.daemon.take().unwrap();
    ok(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .output()
        .unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM: {}",
            b.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn service_serves_the_log_cosigned_looks_up_signs_activates_and_stops_cleanly() {
    let mut b = Builder::new("");
    let (builder, lk) = keys(&b);
    let origin = format!("provenix/{builder}");
    let w = witness("w1.test", 1, &origin, lk);
    let w2 = witness("w2.test", 2, &origin, lk);
    let (ca, cert, key) = tls_files(b.work.path());
    let config = b.work.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             activations_per_minute = 3\n\n[[witnesses]]\nurl = \"{}\"\nkey = \"{}\"\n\n\
             [[witnesses]]\nurl = \"{}\"\nkey = \"{}\"\n\n\
             [[witnesses]]\nurl = \"http://127.0.0.1:9\"\nkey = \"{}\"\n",
            cert.display(),
            key.display(),
            w.url,
            w.key,
            w2.url,
            w2.key,
            w.key,
        ),
    )
    .unwrap();
    b.config = config;
    b.start_daemon(&["--batch-delay-ms", "50"]);
    let url = b.service_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let client = provenix_io::client(Some(&ca), Duration::from_secs(30)).unwrap();

    let outs = b.nix.build("dependent", &[]).unwrap();
    b.wait_entries(3);

    // The checkpoint, once the witness has cosigned the latest one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (note, cp) = loop {
        let (status, body) = get(&client, &format!("{url}/checkpoint"));
        assert_eq!(status, 200);
        let note = Note::parse(&body).unwrap();
        let (cp, _) = Checkpoint::open(
            &body,
            &[NoteVerifierKey::new(
                KeyName::new(&origin).unwrap(),
                ed25519_dalek::VerifyingKey::from_bytes(&lk).unwrap(),
            )],
        )
        .unwrap();
        let on_disk = read_log(&b.log()).0;
        let keys = [w.key.clone(), w2.key.clone()];
        if cp == on_disk && note.verify_cosignatures(&keys).unwrap().len() == 2 {
            break (note, cp);
        }
        assert!(
            Instant::now() < deadline,
            "no cosignature: {}",
            b.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The witness that is down holds nothing up; it is retried later.
    assert!(
        b.daemon_log().contains("witness http://127.0.0.1:9"),
        "{}",
        b.daemon_log()
    );
    let n = cp.size;
    assert!(n < 256, "one partial bundle");

    // Tiles and bundles within the checkpoint, byte for byte; none beyond.
    for path in [
        format!("tile/entries/000.p/{n}"),
        format!("tile/0/000.p/{n}"),
    ] {
        let (status, body) = get(&client, &format!("{url}/{path}"));
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, std::fs::read(b.log().join(&path)).unwrap(), "{path}");
    }
    assert_eq!(
        get(&client, &format!("{url}/tile/entries/000.p/{}", n + 1)).0,
        404
    );
    assert_eq!(get(&client, &format!("{url}/tile/entries/001")).0, 404);
    assert_eq!(
        get(&client, &format!("{url}/tile/0/0")).0,
        400,
        "non-canonical path"
    );

    // Look-ups agree with Nix's own record of every output.
    let info: serde_json::Value =
        serde_json::from_slice(&b.nix.path_info(&[outs[0].clone()]).unwrap().stdout).unwrap();
    let out = &outs[0];
    let name = out.rsplit('/').next().unwrap();
    let found = json(&client, &format!("{url}/lookup/output/{name}"));
    let entries = found["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let o = &entries[0]["outputs"][0];
    assert_eq!(o["store_path"], out.as_str());
    let nar_hash =
        |v: &serde_json::Value| provenix_protocol::NarHash::parse(v.as_str().unwrap()).unwrap();
    assert_eq!(nar_hash(&o["nar_hash"]), nar_hash(&info[0]["narHash"]));
    assert_eq!(o["nar_size"], info[0]["narSize"]);
    let drv = b.nix.instantiate("dependent", &[]).unwrap();
    let by_drv = json(
        &client,
        &format!("{url}/lookup/drv/{}", drv.rsplit('/').next().unwrap()),
    );
    assert_eq!(by_drv["entries"][0]["leaf"], entries[0]["leaf"]);
    let none = json(
        &client,
        &format!("{url}/lookup/output/{}-nothing", "0".repeat(32)),
    );
    assert_eq!(none["entries"].as_array().unwrap().len(), 0);
    assert_eq!(
        get(&client, &format!("{url}/lookup/output/not-a-path")).0,
        400
    );

    // LK's Nix signature over the fingerprint of what Nix recorded.
    let sig = json(&client, &format!("{url}/sig/{name}"));
    let public = NixPublicKey::parse(sig["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public.key_bytes(), &lk);
    assert_eq!(public.name(), format!("provenix-{builder}"));
    let refs = info[0]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| provenix_protocol::StorePath::parse(r.as_str().unwrap()).unwrap())
        .collect();
    let fp = provenix_protocol::nix_sig::fingerprint(
        &provenix_protocol::StorePath::parse(out).unwrap(),
        &nar_hash(&info[0]["narHash"]),
        info[0]["narSize"].as_u64().unwrap(),
        &refs,
    )
    .unwrap();
    let s = NixSignature::parse(sig["sig"].as_str().unwrap()).unwrap();
    public.verify(fp.as_bytes(), &s).unwrap();
    assert_eq!(
        get(&client, &format!("{url}/sig/{}-nothing", "0".repeat(32))).0,
        404
    );

    // Status.
    let st = json(&client, &format!("{url}/status"));
    assert_eq!(st["log"]["size"], n);
    assert_eq!(st["log"]["entries"], 3);
    assert_eq!(st["log"]["cosignatures"], 2);
    assert_eq!(st["queued"], 0);
    assert_eq!(st["enrollment"]["builder"], builder.as_str());

    // Credential activation: the right challenge is answered, a challenge
    // for another AK is refused, garbage is refused, then the rate limit.
    let e = Enrollment::decode(&std::fs::read(b.state().join("enrollment.bin")).unwrap()).unwrap();
    let (c, secret) = challenge(&e, &e.ak_public);
    let (status, body) = post(&client, &format!("{url}/activate"), &c.to_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer = CredentialAnswer::from_bytes(&body).unwrap();
    assert!(answer.matches(&Digest::new(&secret).unwrap()));
    let (c, _) = challenge(&e, &e.ek_public);
    assert_eq!(
        post(&client, &format!("{url}/activate"), &c.to_bytes()).0,
        422
    );
    assert_eq!(post(&client, &format!("{url}/activate"), b"garbage").0, 400);
    let (status, body) = post(&client, &format!("{url}/activate"), b"garbage");
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));

    // Read-only; unknown resources; no plain HTTP on the TLS port.
    let r = client.delete(&format!("{url}/checkpoint")).call().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(get(&client, &format!("{url}/nothing")).0, 404);
    let plain = url.replace("https://", "http://");
    assert!(client.get(&format!("{plain}/checkpoint")).call().is_err());

    // `status` from the command line while the daemon holds the log.
    let s = ok(b.agent().arg("status").output().unwrap());
    assert!(s.contains("derived by the running daemon"), "{s}");
    assert!(s.contains("2 witness cosignature"), "{s}");

    // SIGTERM: a clean stop, the socket removed; a restart resumes the
    // cosigned log and serves it again.
    let st = sigterm(&mut b);
    assert!(st.success(), "{st}: {}", b.daemon_log());
    assert!(b.daemon_log().contains("INFO stopped"));
    assert!(!b.socket().exists());
    let s = b.agent().args(["status", "--json"]).output().unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let s: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(s["keys"], "derivable: this boot state is the enrolled one");
    std::fs::write(b.work.path().join("daemon.err"), "").unwrap();
    b.start_daemon(&["--batch-delay-ms", "50"]);
    let url = b.service_url();
    let (status, body) = get(&client, &format!("{url}/checkpoint"));
    assert_eq!(status, 200);
    assert_eq!(Note::parse(&body).unwrap().text(), note.text());
}

#[test]
fn sign_cache_lets_plain_nix_substitute_trusting_only_lk() {
    let mut b = Builder::new("");
    let (builder, lk) = keys(&b);
    let config = b.work.path().join("agent.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nplain_http = true\n").unwrap();
    b.config = config;
    b.start_daemon(&["--batch-delay-ms", "50"]);
    let url = b.service_url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let outs = b.nix.build("dependent", &[]).unwrap();
    b.wait_entries(3);

    // The builder uploads its closure to a file:// cache (unsigned).
    let cache = b.work.path().join("cache");
    ok(Command::new("nix")
        .env_remove("NIX_REMOTE")
        .env("NIX_CONF_DIR", b.nix.dir().join("etc"))
        .env("XDG_CACHE_HOME", b.nix.dir().join("xdg"))
        .arg("copy")
        .arg("--store")
        .arg(b.nix.store_root())
        .args([
            "--to",
            &format!("file://{}?compression=none", cache.display()),
        ])
        .args(&outs)
        .output()
        .unwrap());
    let lk_public = NixPublicKey::new(&format!("provenix-{builder}"), lk).unwrap();

    // A fresh store whose only trusted key is LK's.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fresh.path().join("etc")).unwrap();
    std::fs::write(
        fresh.path().join("etc/nix.conf"),
        format!(
            "substituters = file://{}\ntrusted-public-keys = {lk_public}\nrequire-sigs = true\n\
             narinfo-cache-negative-ttl = 0\nbuild-users-group =\nsandbox = false\n",
            cache.display()
        ),
    )
    .unwrap();
    let substitute = || {
        Command::new("nix-store")
            .env_remove("NIX_REMOTE")
            .env("NIX_CONF_DIR", fresh.path().join("etc"))
            .env("XDG_CACHE_HOME", fresh.path().join("xdg"))
            .arg("--store")
            .arg(fresh.path().join("root"))
            .arg("--realise")
            .args(&outs)
            .output()
            .unwrap()
    };
    let before = substitute();
    assert!(
        !before.status.success(),
        "unsigned paths must not substitute"
    );

    let sign = |expect_ok: bool| {
        let out = Command::new(AGENT)
            .env("PROVENIX_CONFIG", "/dev/null")
            .args(["sign-cache", &format!("file://{}", cache.display())])
            .args(["--agent", &url])
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = sign(true);
    // The closure: dependent, hello and multi's dev, all built and recorded
    // here.
    assert!(
        report.contains(": 3 signed, 0 already signed, 0 not in this builder's log"),
        "{report}"
    );
    let after = substitute();
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    for o in &outs {
        assert!(fresh
            .path()
            .join("root")
            .join(o.trim_start_matches('/'))
            .exists());
    }
    assert!(sign(true).contains(": 0 signed, 3 already signed,"));

    // A narinfo that disagrees with the log is reported and left alone.
    let hash = outs[0]
        .rsplit('/')
        .next()
        .unwrap()
        .split('-')
        .next()
        .unwrap();
    let path = cache.join(format!("{hash}.narinfo"));
    let text = std::fs::read_to_string(&path).unwrap();
    let size_line = text.lines().find(|l| l.starts_with("NarSize: ")).unwrap();
    let size: u64 = size_line["NarSize: ".len()..].parse().unwrap();
    std::fs::write(
        &path,
        text.replace(size_line, &format!("NarSize: {}", size + 1)),
    )
    .unwrap();
    let report = sign(false);
    assert!(
        report.contains("DIFFERS: ") && report.contains(&outs[0]),
        "{report}"
    );
}
