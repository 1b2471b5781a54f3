//! `provenix nar-hash` against real Nix: random trees hashed by both
//! `provenix nar-hash` and `nix-hash --type sha256 --base32` must agree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn provenix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenix"))
        .args(args)
        .output()
        .unwrap()
}

fn nix_hash(path: &Path) -> String {
    let out = Command::new("nix-hash")
        .args(["--type", "sha256", "--base32"])
        .arg(path)
        .output()
        .expect("nix-hash not found: scripts/test.sh installs nix-bin");
    assert!(
        out.status.success(),
        "nix-hash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", String::from_utf8(out.stdout).unwrap().trim())
}

/// xorshift64*: deterministic, so a failure names its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: &[&str] = &[
    "a",
    "B",
    "z",
    "file.txt",
    "with space",
    "tab\there",
    "new\nline",
    "ünïcödé",
    "-dash",
    "=eq",
    ".hidden",
    "..dots",
    LONG_NAME,
    "UPPER",
    "0",
    "10",
    "9",
    "émoji-🦀",
    "back\\slash",
    "quote\"d",
    "star*",
    "semi;colon",
];
const LONG_NAME: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
const SIZES: &[usize] = &[0, 1, 7, 8, 9, 15, 16, 17, 4095, 4096, 65_537, 300_001];

fn fill(rng: &mut Rng, dir: &Path, depth: u32) {
    let n = rng.below(6) + if depth == 0 { 2 } else { 0 };
    for _ in 0..n {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() {
            continue;
        }
        match rng.below(10) {
            0..=4 => {
                let size = SIZES[rng.below(SIZES.len() as u64) as usize];
                let data: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
                fs::write(&p, data).unwrap();
                let mode = if rng.below(3) == 0 { 0o755 } else { 0o644 };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            }
            5 => symlink(NAMES[rng.below(NAMES.len() as u64) as usize], &p).unwrap(),
            6 => symlink("/nonexistent/dangling/target", &p).unwrap(),
            _ if depth < 4 => {
                fs::create_dir(&p).unwrap();
                fill(rng, &p, depth + 1);
            }
            _ => fs::create_dir(&p).unwrap(),
        }
    }
}

#[test]
fn random_trees_agree_with_nix_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let mut roots: Vec<PathBuf> = Vec::new();
    for seed in 1..=24u64 {
        let root = tmp.path().join(format!("tree-{seed}"));
        fs::create_dir(&root).unwrap();
        fill(&mut Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)), &root, 0);
        roots.push(root);
    }
    // Top-level non-directories too: a file, an executable, a symlink, an
    // empty directory, a large file.
    let f = tmp.path().join("plain");
    fs::write(&f, b"hello\n").unwrap();
    let x = tmp.path().join("exec");
    fs::write(&x, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&x, fs::Permissions::from_mode(0o755)).unwrap();
    let l = tmp.path().join("link");
    symlink("plain", &l).unwrap();
    let e = tmp.path().join("empty-dir");
    fs::create_dir(&e).unwrap();
    let big = tmp.path().join("big");
    fs::write(&big, vec![0x5au8; 5 * 1024 * 1024 + 3]).unwrap();
    roots.extend([f, x, l, e, big]);

    let args: Vec<&str> = roots.iter().map(|p| p.to_str().unwrap()).collect();
    let out = provenix(&[&["nar-hash"], &args[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), roots.len());
    for (line, root) in lines.iter().zip(&roots) {
        assert_eq!(
            *line,
            format!("{}  {}", nix_hash(root), root.display()),
            "{}",
            root.display()
        );
    }
}

#[test]
fn one_path_prints_only_the_hash_and_json_adds_the_size() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("v1-file");
    fs::write(&f, b"hello\n").unwrap();
    let out = provenix(&["nar-hash", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\n"
    );
    let out = provenix(&["nar-hash", "--json", f.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nar_size"], 120);
    assert_eq!(
        v["nar_hash"],
        "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
    );
    assert_eq!(v["path"], f.to_str().unwrap());
}

#[test]
fn missing_or_unreadable_path_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = tmp.path().join("ok");
    fs::write(&ok, b"x").unwrap();
    let missing = tmp.path().join("no-such-path");
    let out = provenix(&["nar-hash", ok.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    // The readable path is still reported.
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(ok.to_str().unwrap()));

    let fifo = tmp.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = provenix(&["nar-hash", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unsupported file type") && err.contains("fifo"),
        "{err}"
    );

    let out = provenix(&["nar-hash"]);
    assert_eq!(out.status.code(), Some(2), "no path is a usage error");
}
