//! The verifier's appraisal of real builder logs (swtpm, sandboxed Nix
//! through the hook and the daemon): a log read from its directory and
//! from the log service passes every check; each kind of tampering that
//! needs no key is refused with its own error kind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::Builder;
use provenix_verifier::appraise::{appraise, Appraisal, AppraisalError, Seen};
use provenix_verifier::source::LogSource;

fn appraise_dir(dir: &Path, seen: Option<Seen>) -> Result<Appraisal, AppraisalError> {
    let mut n = 0;
    let r = appraise(&LogSource::Dir(dir.to_owned()), seen, &mut |_, _| n += 1);
    if let Ok(a) = &r {
        assert_eq!(a.entries, n, "every entry reached the caller");
    }
    r
}

/// A copy of a log directory to tamper with.
fn copy(from: &Path, to: &Path) {
    for e in walk(from) {
        let rel = e.strip_prefix(from).unwrap();
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&e, &dst).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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

#[test]
fn real_logs_pass_and_tampering_is_refused_by_kind() {
    let mut b = Builder::new("");
    let config = b.work.path().join("agent.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nplain_http = true\n").unwrap();
    b.config = config;
    b.start_daemon(&["--batch-delay-ms", "50"]);
    let url = b.service_url();
    b.nix.build("hello", &[]).unwrap();
    b.wait_entries(1);
    b.nix.build("dependent", &[]).unwrap();
    let entries = b.wait_entries(3);
    assert_eq!(entries.len(), 3);
    // Let the last batch's checkpoint land.
    std::thread::sleep(std::time::Duration::from_millis(300));

    // The log service and the directory give the same verdict.
    let client = provenix_io::client(None, std::time::Duration::from_secs(30)).unwrap();
    let over_http = appraise(&LogSource::Http(url, client), None, &mut |_, _| {}).unwrap();
    b.kill_daemon();
    let a = appraise_dir(&b.log(), None).unwrap();
    assert_eq!(a.entries, 3);
    assert!(
        a.batches >= 2,
        "hello, then multi and dependent: {}",
        a.batches
    );
    assert_eq!(a.bindings, 1);
    assert_eq!(over_http.checkpoint, a.checkpoint);
    assert!(a.enrollment.insecure_swtpm);
    let seen = Seen {
        size: a.checkpoint.size,
        root: a.checkpoint.root,
    };
    appraise_dir(&b.log(), Some(seen)).unwrap();

    let work = tempfile::tempdir().unwrap();
    let bundle = format!("tile/entries/000.p/{}", a.checkpoint.size);
    let tampered = |name: &str, edit: &dyn Fn(&Path)| {
        let d = work.path().join(name);
        copy(&b.log(), &d);
        edit(&d);
        appraise_dir(&d, Some(seen)).unwrap_err()
    };

    // One byte of the last entry's signature: its SK signature fails first.
    let e = tampered("entry-signature", &|d| {
        let p = d.join(&bundle);
        let mut bytes = std::fs::read(&p).unwrap();
        let leaves = provenix_protocol::leaf::decode_bundle(&bytes).unwrap();
        let entry_leaf = (entries[2].entry().seq) as usize;
        // The offset of that leaf's last byte (its signature's end).
        let mut end = 0;
        for l in &leaves[..=entry_leaf] {
            end += 2 + l.len();
        }
        bytes[end - 1] ^= 1;
        std::fs::write(&p, bytes).unwrap();
    });
    assert!(
        matches!(e, AppraisalError::EntrySignature { leaf } if leaf == entries[2].entry().seq),
        "{e}"
    );

    // A checkpoint whose root is not the leaves': refused by root.
    let e = tampered("root", &|d| {
        let p = d.join("checkpoint");
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[2] = provenix_protocol::encoding::base64_encode(&[7; 32]);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    });
    assert!(matches!(e, AppraisalError::CheckpointRoot { .. }), "{e}");

    // The checkpoint signed by another key: refused by signature.
    let e = tampered("signature", &|d| {
        let p = d.join("checkpoint");
        let text = std::fs::read_to_string(&p).unwrap();
        let note = provenix_protocol::note::Note::parse(text.as_bytes()).unwrap();
        let cp = provenix_protocol::note::Checkpoint::parse_body(note.text()).unwrap();
        let other = provenix_protocol::note::NoteSigningKey::new(
            provenix_protocol::note::KeyName::new(&cp.origin).unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        );
        std::fs::write(&p, cp.sign(&other).unwrap().render()).unwrap();
    });
    assert!(matches!(e, AppraisalError::CheckpointSignature(_)), "{e}");

    // A log that does not extend what was seen: the earlier root differs.
    let e = appraise_dir(
        &b.log(),
        Some(Seen {
            size: 2,
            root: provenix_protocol::Sha256Digest([1; 32]),
        }),
    )
    .unwrap_err();
    assert!(matches!(e, AppraisalError::Inconsistent { size: 2 }), "{e}");
    let e = appraise_dir(
        &b.log(),
        Some(Seen {
            size: a.checkpoint.size + 1,
            root: a.checkpoint.root,
        }),
    )
    .unwrap_err();
    assert!(
        matches!(e, AppraisalError::Inconsistent { .. }),
        "a shrunk log: {e}"
    );

    // A bundle cut short: malformed, named by its path.
    let e = tampered("short-bundle", &|d| {
        let p = d.join(&bundle);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    });
    assert!(
        matches!(&e, AppraisalError::Malformed { at, .. } if at.contains("tile/entries")),
        "{e}"
    );

    // A missing bundle: cannot be fetched.
    let e = tampered("missing", &|d| {
        std::fs::remove_file(d.join(&bundle)).unwrap()
    });
    assert!(matches!(e, AppraisalError::Fetch(_)), "{e}");
}
