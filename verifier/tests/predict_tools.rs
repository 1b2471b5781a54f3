//! `provenix predict` against the real tools: `pesign -h` (Authenticode of
//! Debian's signed kernels, of systemd's stub and of a UKI built here with
//! objcopy) and `systemd-measure calculate` (PCR 11 for every phase and
//! bank). A missing tool fails the test and names its Debian package.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// The first existing path of `candidates`, or a failure naming the
/// Debian package that provides it.
fn need(candidates: &[&str], package: &str) -> PathBuf {
    for c in candidates {
        let p = if c.contains('/') {
            PathBuf::from(c)
        } else {
            match which(c) {
                Some(p) => p,
                None => continue,
            }
        };
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{} not found: install the Debian package {package} (scripts/test.sh lists it)",
        candidates.join(" or ")
    );
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn predict(args: &[&str]) -> Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_provenix"))
        .arg("predict")
        .arg("--json")
        .args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `pesign -h` of `file` with `digest` (sha256 or sha1).
fn pesign(file: &Path, digest: &str) -> String {
    let pesign = need(&["pesign"], "pesign");
    let out = run(Command::new(pesign)
        .args(["-h", "-d", digest, "-i"])
        .arg(file));
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .strip_prefix("hash: ")
        .unwrap_or_else(|| panic!("pesign printed {text:?}"))
        .to_string()
}

fn debian_kernels() -> Vec<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("vmlinuz-"))
                })
                .collect()
        })
        .unwrap_or_default();
    kernels.sort();
    assert!(
        !kernels.is_empty(),
        "no /boot/vmlinuz-*: install the Debian package linux-image-amd64"
    );
    kernels
}

#[test]
fn authenticode_equals_pesign() {
    let mut files = debian_kernels();
    files.push(need(&[STUB], "systemd-boot-efi"));
    for f in &files {
        let p = predict(&[
            "--kernel",
            f.to_str().unwrap(),
            "--bank",
            "sha256",
            "--bank",
            "sha1",
        ]);
        let ours = &p["inputs"]["kernel"]["authenticode"];
        for digest in ["sha256", "sha1"] {
            assert_eq!(
                ours[digest].as_str().unwrap(),
                pesign(f, digest),
                "{} {digest}",
                f.display()
            );
        }
        // The kernel's event in PCR 4 carries that hash.
        let events = p["events"].as_array().unwrap();
        let bsa: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "EV_EFI_BOOT_SERVICES_APPLICATION")
            .collect();
        assert_eq!(bsa.len(), 1);
        assert_eq!(bsa[0]["digests"]["sha256"], ours["sha256"]);
    }
}

/// A UKI built as the measured-boot recipe does, from Debian's stub.
struct BuiltUki {
    _dir: tempfile::TempDir,
    uki: PathBuf,
    kernel: PathBuf,
    osrel: PathBuf,
    cmdline: PathBuf,
    initrd: PathBuf,
}

fn build_uki() -> BuiltUki {
    let objcopy = need(&["objcopy"], "binutils");
    let stub = need(&[STUB], "systemd-boot-efi");
    let kernel = debian_kernels().pop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let osrel = dir.path().join("os-release");
    let cmdline = dir.path().join("cmdline");
    let initrd = dir.path().join("initrd");
    std::fs::write(&osrel, "ID=provenix-test\nNAME=\"provenix test\"\n").unwrap();
    // A trailing newline: measured as is into PCR 11, dropped from the
    // load options (systemd-stub mangles the command line).
    std::fs::write(&cmdline, "console=ttyS0 quiet\tpanic=-1\n").unwrap();
    // An odd size, so the image's end is not 8-aligned.
    let data: Vec<u8> = (0..300_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&initrd, data).unwrap();
    let uki = dir.path().join("uki.efi");
    let section = |name: &str, file: &Path, vma: &str| {
        vec![
            "--add-section".to_string(),
            format!("{name}={}", file.display()),
            "--change-section-vma".to_string(),
            format!("{name}={vma}"),
        ]
    };
    let mut args = Vec::new();
    args.extend(section(".osrel", &osrel, "0x20000"));
    args.extend(section(".cmdline", &cmdline, "0x30000"));
    args.extend(section(".linux", &kernel, "0x2000000"));
    args.extend(section(".initrd", &initrd, "0x3000000"));
    run(Command::new(objcopy).args(&args).arg(&stub).arg(&uki));
    BuiltUki {
        _dir: dir,
        uki,
        kernel,
        osrel,
        cmdline,
        initrd,
    }
}

#[test]
fn uki_authenticode_and_sections() {
    let u = build_uki();
    let p = predict(&["--uki", u.uki.to_str().unwrap()]);
    let inputs = &p["inputs"]["uki"];
    assert_eq!(
        inputs["authenticode"]["sha256"].as_str().unwrap(),
        pesign(&u.uki, "sha256")
    );
    assert_eq!(
        inputs["kernel_authenticode"]["sha256"].as_str().unwrap(),
        pesign(&u.kernel, "sha256"),
        "the embedded kernel hashes as the kernel file"
    );
    assert_eq!(inputs["cmdline"], "console=ttyS0 quiet panic=-1");
    let names: Vec<&str> = inputs["measured_sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd"],
        "Debian's stub is 252: no .sbat"
    );
    // Event order and types: PCR 4 action, separator, UKI; PCR 11 x8; PCR 4
    // kernel; PCR 9 load options, initrd.
    let kinds: Vec<(u64, &str)> = p["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["pcr"].as_u64().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    let mut expected = vec![
        (4, "EV_EFI_ACTION"),
        (4, "EV_SEPARATOR"),
        (4, "EV_EFI_BOOT_SERVICES_APPLICATION"),
    ];
    expected.extend([(11, "EV_IPL"); 8]);
    expected.extend([
        (4, "EV_EFI_BOOT_SERVICES_APPLICATION"),
        (9, "EV_EVENT_TAG"),
        (9, "EV_EVENT_TAG"),
    ]);
    assert_eq!(kinds, expected);
    let events = p["events"].as_array().unwrap();
    let sha = |b: &[u8]| {
        provenix_measured_boot::HashAlgorithm::Sha256
            .hash(b)
            .to_hex()
    };
    let options: Vec<u8> = "console=ttyS0 quiet panic=-1\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(events[12]["digests"]["sha256"], sha(&options));
    assert_eq!(
        events[13]["digests"]["sha256"],
        sha(&std::fs::read(&u.initrd).unwrap())
    );
    assert_eq!(
        events[8]["digests"]["sha256"],
        sha(&std::fs::read(&u.cmdline).unwrap()),
        "PCR 11 measures .cmdline unmangled"
    );
    for pcr in ["12", "13"] {
        assert_eq!(p["pcrs"]["sha256"][pcr], "0".repeat(64));
    }
}

#[test]
fn pcr11_equals_systemd_measure() {
    let measure = need(
        &[
            "/usr/lib/systemd/systemd-measure",
            "/lib/systemd/systemd-measure",
        ],
        "systemd",
    );
    let u = build_uki();
    let banks = ["sha1", "sha256", "sha384", "sha512"];
    for phase in [
        "",
        "enter-initrd",
        "enter-initrd:leave-initrd",
        "enter-initrd:leave-initrd:sysinit",
        "enter-initrd:leave-initrd:sysinit:ready",
    ] {
        let mut args = vec!["--uki", u.uki.to_str().unwrap(), "--phase", phase];
        for b in banks {
            args.extend(["--bank", b]);
        }
        let ours = predict(&args);
        let mut cmd = Command::new(&measure);
        cmd.arg("calculate")
            .arg(format!("--linux={}", u.kernel.display()))
            .arg(format!("--osrel={}", u.osrel.display()))
            .arg(format!("--cmdline={}", u.cmdline.display()))
            .arg(format!("--initrd={}", u.initrd.display()))
            .arg(format!("--phase={phase}"))
            .arg("--json=short");
        for b in banks {
            cmd.arg(format!("--bank={b}"));
        }
        let theirs: Value = serde_json::from_slice(&run(&mut cmd).stdout).unwrap();
        for b in banks {
            let entry = &theirs[b][0];
            assert_eq!(entry["pcr"], 11);
            assert_eq!(
                ours["pcrs"][b]["11"], entry["hash"],
                "phase {phase:?}, bank {b}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let provenix = env!("CARGO_BIN_EXE_provenix");
    for args in [
        vec!["predict"],
        vec!["predict", "--bank", "md5", "--cmdline", "x"],
        vec!["predict", "--phase", "ready", "--cmdline", "x"],
        vec!["predict", "--kernel", "/nonexistent"],
        vec!["predict", "--kernel", "/etc/hostname"],
        vec!["predict", "--uki", STUB, "--cmdline", "x"],
        vec![
            "predict",
            "--cmdline",
            "x",
            "--system-pcr",
            "24",
            "--toplevel",
            "/nix/store/x",
        ],
    ] {
        let out = Command::new(provenix).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // The stub alone is no UKI (no .linux): refused with a reason.
    let out = Command::new(provenix)
        .args(["predict", "--uki", STUB])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".linux"));
}
