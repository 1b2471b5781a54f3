//! `provenix witness`: cosigns a log's checkpoints only along one
//! consistent history; each refusal is the C2SP tlog-witness status; the
//! state survives a restart; the CLI serves it over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use provenix_protocol::encoding::base64_encode;
use provenix_protocol::merkle::{consistency_proof, leaf_hash, root};
use provenix_protocol::note::{
    Checkpoint, CosignerSigningKey, KeyName, Note, NoteSigningKey, NoteVerifierKey,
};
use provenix_protocol::Sha256Digest;
use provenix_verifier::witness::{AddError, Witness};

const ORIGIN: &str = "provenix/test-log";

fn log_key(seed: u8) -> NoteSigningKey {
    NoteSigningKey::new(
        KeyName::new(ORIGIN).unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    )
}

fn witness_key() -> CosignerSigningKey {
    CosignerSigningKey::new(
        KeyName::new("witness.test").unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    )
}

/// A log of `n` leaves tagged `tag` (different tags: different histories).
fn leaves(n: u64, tag: &str) -> Vec<Sha256Digest> {
    (0..n)
        .map(|i| leaf_hash(format!("{tag} {i}").as_bytes()))
        .collect()
}

/// The add-checkpoint body from `old` to the log of `hashes`.
fn request(hashes: &[Sha256Digest], old: u64, key: &NoteSigningKey) -> Vec<u8> {
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: hashes.len() as u64,
        root: root(hashes),
        extensions: Vec::new(),
    };
    let mut body = format!("old {old}\n");
    let proof_size = old.min(hashes.len() as u64);
    for h in consistency_proof(hashes, proof_size).unwrap() {
        body.push_str(&base64_encode(&h.0));
        body.push('\n');
    }
    body.push('\n');
    let mut body = body.into_bytes();
    body.extend_from_slice(cp.sign(key).unwrap().render().as_bytes());
    body
}

fn witness(dir: &std::path::Path) -> Witness {
    Witness::new(witness_key(), vec![log_key(1).verifier_key()], dir).unwrap()
}

#[test]
fn cosigns_one_consistent_history_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let w = witness(dir.path());
    let key = log_key(1);
    let log = leaves(300, "main");

    // First sight, then growth with a proof: cosigned, verifiably.
    let line = w
        .add_checkpoint(&request(&log[..10], 0, &key), 1000)
        .unwrap();
    let mut note = String::from_utf8(request(&log[..10], 0, &key)).unwrap();
    note = note.split_once("\n\n").unwrap().1.to_string();
    let cosigned = Note::parse(format!("{note}{line}").as_bytes()).unwrap();
    let sigs = cosigned
        .verify_cosignatures(&[witness_key().verifier_key()])
        .unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].timestamp, 1000);
    w.add_checkpoint(&request(&log[..300], 10, &key), 1001)
        .unwrap();
    assert_eq!(w.cosigned(ORIGIN).unwrap().size, 300);

    // `old` other than what it last cosigned: 409 with that size.
    match w.add_checkpoint(&request(&log[..300], 10, &key), 1002) {
        Err(e @ AddError::Conflict(300)) => assert_eq!(e.status().as_u16(), 409),
        other => panic!("{other:?}"),
    }
    // A fork: another history of a larger size, "proved" from 300.
    let fork = leaves(400, "fork");
    match w.add_checkpoint(&request(&fork, 300, &key), 1003) {
        Err(e @ AddError::Inconsistent(_)) => assert_eq!(e.status().as_u16(), 422),
        other => panic!("{other:?}"),
    }
    // A split view of the same size.
    let split = leaves(300, "split");
    assert!(matches!(
        w.add_checkpoint(&request(&split, 300, &key), 1004),
        Err(AddError::Inconsistent(_))
    ));
    // Signed by another key: 403. Unknown origin: 404. Garbage: 400.
    match w.add_checkpoint(&request(&log, 300, &log_key(2)), 1005) {
        Err(e @ AddError::BadSignature(_)) => assert_eq!(e.status().as_u16(), 403),
        other => panic!("{other:?}"),
    }
    let stranger = NoteSigningKey::new(
        KeyName::new("other/log").unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
    );
    let cp = Checkpoint {
        origin: "other/log".into(),
        size: 1,
        root: root(&log[..1]),
        extensions: Vec::new(),
    };
    let body = format!("old 0\n\n{}", cp.sign(&stranger).unwrap().render());
    match w.add_checkpoint(body.as_bytes(), 1006) {
        Err(e @ AddError::UnknownLog(_)) => assert_eq!(e.status().as_u16(), 404),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.add_checkpoint(b"old 0\n\nnot a note", 1007),
        Err(AddError::BadRequest(_))
    ));
    // None of the refusals moved it.
    assert_eq!(w.cosigned(ORIGIN).unwrap().size, 300);
    assert_eq!(w.cosigned(ORIGIN).unwrap().root, root(&log));

    // A restarted witness remembers: the fork is still refused, the real
    // log's same checkpoint is cosigned again.
    drop(w);
    let w = witness(dir.path());
    assert!(matches!(
        w.add_checkpoint(&request(&split, 300, &key), 1008),
        Err(AddError::Inconsistent(_))
    ));
    w.add_checkpoint(&request(&log, 300, &key), 1009).unwrap();
}

#[test]
fn the_cli_serves_add_checkpoint_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("witness.key");
    let out = Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(["witness", "init", "--name", "cli.witness"])
        .arg("--key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkey = String::from_utf8(out.stdout).unwrap();
    let vkey = provenix_protocol::note::CosignerKey::parse(vkey.trim()).unwrap();
    // A second init over the same file is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(["witness", "init", "--name", "cli.witness"])
        .arg("--key")
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));

    let key = log_key(1);
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(env!("CARGO_BIN_EXE_provenix"))
        .args([
            "witness",
            "serve",
            "--plain-http",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--key")
        .arg(&key_file)
        .args(["--log", &NoteVerifierKey::to_string(&key.verifier_key())])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let client = provenix_io::client(None, std::time::Duration::from_secs(10)).unwrap();
    let log = leaves(5, "main");
    let mut r = client.post(&url).send(&request(&log, 0, &key)[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let line = r.body_mut().read_to_string().unwrap();
    let mut note = Note::parse(key_note(&log, &key).as_bytes()).unwrap();
    let sig = Note::parse(format!("{}\n{line}", note.text()).as_bytes())
        .unwrap()
        .verify_cosignatures(&[vkey])
        .unwrap();
    assert_eq!(sig.len(), 1);
    note.add_signature(sig[0].to_note_signature()).unwrap();
    let mut r = client.post(&url).send(&request(&log, 0, &key)[..]).unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/x.tlog.size"
    );
    assert_eq!(r.body_mut().read_to_string().unwrap(), "5\n");
    let r = client.get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn key_note(hashes: &[Sha256Digest], key: &NoteSigningKey) -> String {
    Checkpoint {
        origin: ORIGIN.into(),
        size: hashes.len() as u64,
        root: root(hashes),
        extensions: Vec::new(),
    }
    .sign(key)
    .unwrap()
    .render()
}
