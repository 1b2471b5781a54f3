//! The on-disk tlog-tiles log: roots equal RFC 6962 over every leaf, it
//! resumes exactly where its checkpoint says, one writer at a time, and a
//! crash between the tiles and the checkpoint loses nothing published.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use provenix_agent::log::{for_each_leaf, note_key, LogWriter, CHECKPOINT};
use provenix_agent::AgentError;
use provenix_protocol::merkle::{leaf_hash, root};
use provenix_protocol::note::Checkpoint;

#[path = "../../protocol/tests/support/entries.rs"]
mod entries;

const ORIGIN: &str = "provenix/test-log";

fn key() -> provenix_protocol::note::NoteSigningKey {
    note_key(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[7; 32])).unwrap()
}

fn leaf(i: u64) -> Vec<u8> {
    // Leaves of varying size, up to a few KB.
    let mut l = vec![0x03];
    l.extend_from_slice(&i.to_be_bytes());
    l.resize(9 + (i as usize * 37) % 3000, (i % 251) as u8);
    l
}

fn published(dir: &std::path::Path) -> Checkpoint {
    let bytes = std::fs::read(dir.join(CHECKPOINT)).unwrap();
    Checkpoint::open(&bytes, &[key().verifier_key()]).unwrap().0
}

fn read_all(dir: &std::path::Path, size: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for_each_leaf(dir, 0, size, |i, l| {
        assert_eq!(i, out.len() as u64);
        out.push(l.to_vec());
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn appends_resume_and_match_rfc6962() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut all: Vec<Vec<u8>> = Vec::new();
    // Batch sizes crossing bundle and tile boundaries, reopening in between.
    for (round, n) in [1u64, 254, 1, 300, 256, 700].into_iter().enumerate() {
        let mut w = LogWriter::open(&dir, ORIGIN, key()).unwrap();
        assert_eq!(
            w.size(),
            all.len() as u64,
            "resumed at the checkpoint (round {round})"
        );
        let batch: Vec<Vec<u8>> = (all.len() as u64..all.len() as u64 + n).map(leaf).collect();
        w.append(&batch).unwrap();
        all.extend(batch);
        let hashes: Vec<_> = all.iter().map(|l| leaf_hash(l)).collect();
        let cp = published(&dir);
        assert_eq!(cp.size, all.len() as u64);
        assert_eq!(cp.root, root(&hashes));
        assert_eq!(cp.origin, ORIGIN);
    }
    assert_eq!(read_all(&dir, all.len() as u64), all);
    // From the middle of a bundle.
    let mut tail = Vec::new();
    for_each_leaf(&dir, 300, all.len() as u64, |_, l| {
        tail.push(l.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(tail, all[300..].to_vec());
}

#[test]
fn one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let w = LogWriter::open(tmp.path(), ORIGIN, key()).unwrap();
    match LogWriter::open(tmp.path(), ORIGIN, key()) {
        Err(AgentError::Config(m)) => assert!(m.contains("lock is held"), "{m}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second writer got the lock"),
    }
    drop(w);
    LogWriter::open(tmp.path(), ORIGIN, key()).unwrap();
}

/// A crash after the tiles but before the checkpoint: the log is still at
/// its old checkpoint, and the next append (different leaves at the same
/// positions) is consistent with it.
#[test]
fn crash_before_the_checkpoint_loses_nothing_published() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first: Vec<Vec<u8>> = (0..300).map(leaf).collect();
    {
        let mut w = LogWriter::open(dir, ORIGIN, key()).unwrap();
        w.append(&first).unwrap();
    }
    let checkpoint = std::fs::read(dir.join(CHECKPOINT)).unwrap();
    {
        let mut w = LogWriter::open(dir, ORIGIN, key()).unwrap();
        w.append(&(1000..1100).map(leaf).collect::<Vec<_>>())
            .unwrap();
    }
    // "Crash": the new checkpoint never made it.
    std::fs::write(dir.join(CHECKPOINT), &checkpoint).unwrap();
    let mut w = LogWriter::open(dir, ORIGIN, key()).unwrap();
    assert_eq!(w.size(), 300);
    let second: Vec<Vec<u8>> = (2000..2100).map(leaf).collect();
    w.append(&second).unwrap();
    let mut all = first;
    all.extend(second);
    let hashes: Vec<_> = all.iter().map(|l| leaf_hash(l)).collect();
    assert_eq!(published(dir).root, root(&hashes));
    assert_eq!(read_all(dir, 400), all);
}

#[test]
fn damaged_or_foreign_logs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let mut w = LogWriter::open(dir, ORIGIN, key()).unwrap();
        w.append(&(0..10).map(leaf).collect::<Vec<_>>()).unwrap();
    }
    // Another log key.
    let other = note_key(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[8; 32])).unwrap();
    assert!(
        matches!(LogWriter::open(dir, ORIGIN, other), Err(AgentError::Config(m)) if m.contains("not a checkpoint signed"))
    );
    // Another origin (same key name is part of the check: different name, no key match).
    assert!(matches!(
        LogWriter::open(
            dir,
            "provenix/other",
            note_key(
                "provenix/other",
                ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            )
            .unwrap()
        ),
        Err(AgentError::Config(_))
    ));
    // A changed hash in the right-edge tile.
    let tile = dir.join("tile/0/000.p/10");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    assert!(
        matches!(LogWriter::open(dir, ORIGIN, key()), Err(AgentError::Config(m)) if m.contains("damaged"))
    );
    // Oversized leaves are refused before anything is written.
    bytes[40] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let mut w = LogWriter::open(dir, ORIGIN, key()).unwrap();
    assert!(w.append(&[vec![3; 65_536]]).is_err());
    assert_eq!(published(dir).size, 10);
}

#[test]
fn read_entry_returns_inline_and_detached_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogWriter::open(dir.path(), ORIGIN, key()).unwrap();
    let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    // Some filler, an inline entry, a detached one (its lists in Blob
    // leaves before it, across a bundle boundary), more filler.
    log.append(&(0..250).map(leaf).collect::<Vec<_>>()).unwrap();
    let mut at = Vec::new();
    for inputs in [1, 3000] {
        let mut e = entries::with_inputs(inputs);
        let base = log.size();
        e.seq = base;
        let n = e.sign(&sk).unwrap().to_leaves().len() as u64;
        e.seq = base + n - 1;
        let signed = e.sign(&sk).unwrap();
        let leaves = signed.to_leaves();
        assert_eq!(leaves.len() as u64, n);
        log.append(&leaves).unwrap();
        at.push((log.size() - 1, signed));
    }
    log.append(&[leaf(1)]).unwrap();
    assert!(
        at[1].0 - at[0].0 > 1,
        "the large entry's lists are detached"
    );
    for (leaf_index, signed) in &at {
        let read = provenix_agent::log::read_entry(dir.path(), *leaf_index, log.size()).unwrap();
        assert_eq!(&read, signed);
    }
    assert!(provenix_agent::log::read_entry(dir.path(), 3, log.size()).is_err());
    assert!(provenix_agent::log::read_entry(dir.path(), log.size(), log.size()).is_err());
}
