//! `provenix substituter` with real Nix: three builders (three swtpms, each
//! its own Nix store) build the same derivations, one of them lying about
//! one output; an upstream `file://` cache holds the outputs, signed
//! upstream; a fresh Nix store whose only trusted key is the substituter's
//! substitutes through it under a 2-of-3 policy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::Builder;

fn run(cmd: &mut Command) -> String {
    common::ok(cmd.output().unwrap())
}

/// `nix` with the experimental CLI on.
fn nix() -> Command {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command"]);
    c
}

/// A running substituter; killed on drop.
struct Running {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the substituter: the upstream, policy and key from a TOML
/// configuration file, the rest from the command line.
fn start(work: &Path, name: &str, upstream: &str, policy: &Path, key: &Path) -> Running {
    let log = work.join(format!("{name}.log"));
    let config = work.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "upstream = {upstream:?}
policy = {policy:?}
key = {key:?}
sync_interval_secs = 1
"
        ),
    )
    .unwrap();
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(common::provenix())
        .args(["substituter", "--listen", "127.0.0.1:0", "--plain-http"])
        .args(["--decision-ttl-secs", "0", "--config"])
        .arg(&config)
        .env("PROVENIX_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log_file = log.clone();
    std::thread::spawn(move || {
        let mut out = std::fs::File::create(&log_file).unwrap();
        let mut sent = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            use std::io::Write as _;
            let _ = writeln!(out, "{line}");
            if !sent {
                if let Some(at) = line.find("substituting at ") {
                    let url = line[at + 16..]
                        .split('/')
                        .take(3)
                        .collect::<Vec<_>>()
                        .join("/");
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        }
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "the substituter did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    Running { child, url, log }
}

/// A fresh Nix store (a chroot store) whose only substituter is `url` and
/// whose only trusted key is `key`.
struct Fresh {
    dir: tempfile::TempDir,
}

impl Fresh {
    fn new(url: &str, key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/nix.conf"),
            format!(
                "substituters = {url}\ntrusted-public-keys = {key}\nrequire-sigs = true\n\
                 build-users-group =\nnarinfo-cache-negative-ttl = 0\n\
                 narinfo-cache-positive-ttl = 0\nfallback = false\n"
            ),
        )
        .unwrap();
        Self { dir }
    }

    /// `nix-store --realise PATH` against this store: Nix's own result.
    fn realise(&self, path: &str) -> std::process::Output {
        Command::new("nix-store")
            .args(["--store"])
            .arg(self.dir.path().join("root"))
            .args(["--realise", path])
            .env("NIX_CONF_DIR", self.dir.path().join("etc"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg"))
            .env_remove("NIX_REMOTE")
            .output()
            .unwrap()
    }

    fn has(&self, path: &str) -> bool {
        self.dir
            .path()
            .join("root")
            .join(path.trim_start_matches('/'))
            .exists()
    }
}

#[test]
fn nix_substitutes_only_what_two_of_three_builders_attest() {
    // Three builders. c lies: hello's output is changed before its daemon
    // records it. Every builder builds multi (which refers to hello) and
    // "refs"; only a builds "only-a".
    let mut builders: Vec<Builder> = (0..3).map(|t| Builder::on_tpm(t, "")).collect();
    let salted = |s: &str| format!("(import ./test.nix).salted \"{s}\"");
    let mut hello = String::new();
    let mut multi = Vec::new();
    let mut refs = String::new();
    let mut tampered = String::new();
    let mut only_a = String::new();
    for (i, b) in builders.iter_mut().enumerate() {
        if i == 2 {
            b.nix.build("hello", &[]).unwrap();
            let file = b.nix.store_root().join(hello.trim_start_matches('/'));
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&file, "hello from a liar\n").unwrap();
            b.start_daemon(&["--batch-delay-ms", "50"]);
        } else {
            b.start_daemon(&["--batch-delay-ms", "50"]);
            hello = b.nix.build("hello", &[]).unwrap()[0].clone();
        }
        multi = b.nix.build("multi", &[]).unwrap();
        refs = b.nix.build_expr(&salted("refs")).unwrap()[0].clone();
        tampered = b.nix.build_expr(&salted("tampered")).unwrap()[0].clone();
        let mut n = 4;
        if i == 0 {
            only_a = b.nix.build_expr(&salted("only-a")).unwrap()[0].clone();
            n += 1;
        }
        b.wait_entries(n);
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.kill_daemon();
    }
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p);

    // Upstream: a file:// cache with a's outputs, xz-compressed, signed by
    // upstream's own key.
    let up = w("upstream");
    let a = &builders[0];
    let mut paths = vec![
        hello.clone(),
        refs.clone(),
        tampered.clone(),
        only_a.clone(),
    ];
    paths.extend(multi.iter().cloned());
    run(nix()
        .args(["key", "generate-secret", "--key-name", "upstream.test"])
        .stdout(std::fs::File::create(w("upstream.key")).unwrap()));
    run(nix()
        .args(["copy", "--store"])
        .arg(a.nix.store_root())
        .arg("--to")
        .arg(format!(
            "file://{}?compression=xz&secret-key={}",
            up.display(),
            w("upstream.key").display()
        ))
        .args(&paths)
        .env_remove("NIX_REMOTE")
        .env("XDG_CACHE_HOME", w("xdg")));
    let narinfo = |p: &str| up.join(format!("{}.narinfo", &p["/nix/store/".len()..][..32]));
    assert!(std::fs::read_to_string(narinfo(&hello))
        .unwrap()
        .contains("Sig: upstream.test:"));

    // The substituter's key and a 2-of-3 policy.
    let key_pub = run(Command::new(common::provenix())
        .args(["substituter", "init", "--name", "substituter.test", "--key"])
        .arg(w("sub.key")))
    .trim()
    .to_string();
    let tpl = |i| provenix_swtpm_tests::Template::shared(i).unwrap();
    let list = |f: &dyn Fn(usize) -> PathBuf| {
        (0..3)
            .map(|i| format!("{:?}", f(i)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut policy = format!(
        "insecure_allow_swtpm = true\nquorum = 2\ndanger_skip_credential_activation = true\n\
         danger_any_system = true\nek_roots = [{}]\nek_intermediates = [{}]\n",
        list(&|i| tpl(i).root_ca_cert()),
        list(&|i| tpl(i).issuer_cert()),
    );
    let logs: Vec<PathBuf> = (0..3).map(|i| w(&format!("log-{i}"))).collect();
    for (i, b) in builders.iter().enumerate() {
        common::copy_dir(&b.log(), &logs[i]);
        let ak = common::read_log(&b.log())
            .0
            .origin
            .trim_start_matches("provenix/")
            .to_string();
        policy.push_str(&format!(
            "[[builder]]\nname = \"{}\"\nlog = {:?}\nak_name = \"{ak}\"\n",
            ["a", "b", "c"][i],
            logs[i]
        ));
    }
    std::fs::write(w("policy.toml"), policy).unwrap();
    // One upstream narinfo whose References differ from what builders attest.
    let refs_info = narinfo(&refs);
    let text = std::fs::read_to_string(&refs_info).unwrap();
    let hello_base = &hello["/nix/store/".len()..];
    std::fs::write(
        &refs_info,
        text.replace("References: ", &format!("References: {hello_base} ")),
    )
    .unwrap();

    let sub = start(
        work.path(),
        "substituter",
        &format!("file://{}", up.display()),
        &w("policy.toml"),
        &w("sub.key"),
    );

    // The narinfo as served: the attested fields, upstream's Compression and
    // URL, one signature (the substituter's), upstream's dropped.
    let client = provenix_io::client(None, std::time::Duration::from_secs(10)).unwrap();
    let get = |p: &str| {
        let mut r = client.get(&format!("{}/{p}", sub.url)).call().unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    };
    let hello_hash = &hello_base[..32];
    let (status, body) = get(&format!("{hello_hash}.narinfo"));
    assert_eq!(status, 200, "{body}");
    let info = provenix_protocol::narinfo::NarInfo::parse(&body).unwrap();
    assert_eq!(info.compression, "xz");
    assert!(body.contains("Compression: xz\n"));
    assert_eq!(info.sigs.len(), 1);
    assert!(info.sigs[0].starts_with("substituter.test:"));
    info.verify(&[provenix_protocol::nix_sig::NixPublicKey::parse(&key_pub).unwrap()])
        .unwrap();
    assert_eq!(get("nix-cache-info").0, 200);

    // Agreed paths substitute (multi and its reference hello: a and b agree
    // on hello, c lies; all three on multi).
    let fresh = Fresh::new(&sub.url, &key_pub);
    let out = fresh.realise(&multi[0]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fresh.has(&multi[0]) && fresh.has(&hello));
    // Signed upstream, attested by one builder: Nix cannot get it.
    let out = fresh.realise(&only_a);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("don't know how to build"),
        "Nix's own error: {stderr}"
    );
    assert!(!fresh.has(&only_a));
    let log = std::fs::read_to_string(&sub.log).unwrap();
    assert!(
        log.contains("not trusted") && log.contains("missing: b"),
        "{log}"
    );
    // Upstream's References differ: 404, with the reason logged.
    let (status, body) = get(&format!("{}.narinfo", &refs["/nix/store/".len()..][..32]));
    assert_eq!(status, 404);
    assert!(
        body.contains("differs from what the builders attest"),
        "{body}"
    );
    assert!(!fresh.realise(&refs).status.success());
    // A NAR replaced upstream by another valid one (refs's): decompressed
    // and hashed on the way, it is not the attested NAR: cut off before its
    // end, and Nix refuses the path.
    let nar_of = |p: &str| {
        let info = provenix_protocol::narinfo::NarInfo::parse(
            &std::fs::read_to_string(narinfo(p)).unwrap(),
        )
        .unwrap();
        up.join(&info.url)
    };
    std::fs::copy(nar_of(&refs), nar_of(&tampered)).unwrap();
    let out = fresh.realise(&tampered);
    assert!(!out.status.success());
    assert!(!fresh.has(&tampered));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("partial file"), "{stderr}");
    let log = std::fs::read_to_string(&sub.log).unwrap();
    assert!(log.contains("cut off: the NAR is"), "{log}");

    // The same cache served over HTTP as upstream: the narinfo and the NAR
    // come through (an http server from Python's standard library).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut http = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "python3", "-m", "http.server"])
        .args(["--bind", "127.0.0.1", "--directory"])
        .arg(&up)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let over_http = start(
        work.path(),
        "over-http",
        &format!("http://127.0.0.1:{port}"),
        &w("policy.toml"),
        &w("sub.key"),
    );
    let multi_hash = &multi[0]["/nix/store/".len()..][..32];
    let mut body = String::new();
    for _ in 0..100 {
        let mut r = client
            .get(&format!("{}/{multi_hash}.narinfo", over_http.url))
            .call()
            .unwrap();
        body = r.body_mut().read_to_string().unwrap_or_default();
        if r.status().as_u16() == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let info = provenix_protocol::narinfo::NarInfo::parse(&body).unwrap();
    let nar = client
        .get(&format!("{}/{}", over_http.url, info.url))
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    assert_eq!(nar, std::fs::read(up.join(&info.url)).unwrap());
    drop(over_http);
    let _ = http.kill();
    let _ = http.wait();

    // b's log becomes unreachable: b counts as "no", hello loses its quorum.
    std::fs::rename(&logs[1], w("log-1.gone")).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, body) = get(&format!("{hello_hash}.narinfo"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("b (log unreachable"), "{body}");
    let other = Fresh::new(&sub.url, &key_pub);
    assert!(!other.realise(&hello).status.success());
    assert!(!other.has(&hello));

    // SIGTERM: a clean stop.
    let mut sub = sub;
    run(Command::new("kill").args(["-TERM", &sub.child.id().to_string()]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = sub.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
