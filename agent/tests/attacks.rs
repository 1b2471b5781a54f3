//! The attack suite: for the threats of DESIGN.md "Threats", what an
//! attacker would build, on a real swtpm with real sandboxed Nix, and the
//! specific error kind the verifier answers with. The attacker here is root
//! on a builder: it holds the TPM in the enrolled boot state, so it can
//! derive SK and LK, quote with the AK and write the log directory.
//!
//! | threat | test |
//! |---|---|
//! | T1 an entry signed by an SK with no key binding | `an_entry_signed_by_an_unbound_key` |
//! | T5 an entry claiming another system than its quoted system event | `an_entry_naming_another_system` |
//! | T5 K sealed to fewer PCRs than its binding quote shows | `k_whose_policy_is_not_its_binding_quotes` |
//! | T5 an unapproved system; a pinned PCR changed | `unapproved_systems_and_changed_pinned_pcrs` |
//! | T7 a forked log shown to two verifiers | `a_forked_log_is_caught_by_consistency_and_witnesses` |
//! | T8 a forged event log; event data edited, digests kept | `forged_firmware_logs` |
//! | T9 an AK that is not restricted | `an_unrestricted_ak` |
//! | T9 a software key dressed as an AK next to a real EK certificate | `a_software_key_posing_as_the_ak_fails_activation` |
//! | T10 malformed bundles of every kind | `malformed_logs_are_refused_and_nothing_is_written` |
//! | T12 a substituter shown a log that fails after some entries | `a_substituter_forgets_what_a_failed_sync_showed_it` |
//!
//! Elsewhere: forged entry signatures, replayed quotes, rewritten logs and
//! a PCR 12 override (agent/tests/appraise.rs); swtpm evidence under a
//! hardware policy, one TPM enrolled twice, 3-of-4 with a liar, a builder
//! with no entry (appraise.rs `two_of_three_builders_…` and decide.rs unit
//! tests); denied firmware versions and ROCA (verifier/src/ek.rs); clockInfo
//! going backwards (verifier/src/appraise.rs unit tests: swtpm cannot be
//! made to run its clock backwards).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::Builder;
use provenix_agent::batch::attest_batch;
use provenix_agent::counter::DEFAULT_ORDERLY_JUMP;
use provenix_agent::enroll::{load_keys, Keys};
use provenix_agent::keys::{PcrSet, SK_LABEL};
use provenix_agent::log::{note_key, origin_for, LogWriter};
use provenix_agent::recorder::LogView;
use provenix_agent::state::StateDir;
use provenix_agent::tpm::{Tpm, TpmConfig};
use provenix_protocol::enrollment::{Enrollment, KeyRebinding};
use provenix_protocol::tpm::{ObjectAttributes, Public, PublicKey};
use provenix_protocol::{Entry, SignedEntry};
use provenix_verifier::appraise::{appraise, Appraisal, AppraisalError};
use provenix_verifier::policy::{AdmitError, Policy};
use provenix_verifier::source::LogSource;

fn appraise_dir(dir: &Path) -> Result<Appraisal, AppraisalError> {
    appraise(&LogSource::Dir(dir.to_owned()), None, &mut |_, _| {})
}

/// A builder with two recorded builds, its daemon stopped.
fn builder_with_entries() -> Builder {
    let mut b = Builder::new("");
    b.start_daemon(&["--batch-delay-ms", "50"]);
    b.nix.build("hello", &[]).unwrap();
    b.wait_entries(1);
    b.nix.build("dependent", &[]).unwrap();
    b.wait_entries(3);
    b.kill_daemon();
    b
}

/// Root on the builder: the TPM, SK and LK, and the log's writer.
struct Attacker {
    tpm: Tpm,
    keys: Keys,
    state: StateDir,
    log: LogWriter,
    view: LogView,
}

impl Attacker {
    fn on(b: &Builder, log_dir: &Path) -> Self {
        let mut tpm = Tpm::open(&TpmConfig {
            tcti: b.swtpm.tcti(),
            insecure_allow_swtpm: true,
        })
        .unwrap();
        let state = StateDir::open(&b.state()).unwrap();
        let keys = load_keys(&mut tpm, &state).unwrap();
        let origin = origin_for(&keys.enrollment.builder_id().unwrap());
        let log = LogWriter::open(
            log_dir,
            &origin,
            note_key(&origin, keys.lk.clone()).unwrap(),
        )
        .unwrap();
        let mut view = LogView::default();
        view.catch_up(log_dir, log.size()).unwrap();
        Self {
            tpm,
            keys,
            state,
            log,
            view,
        }
    }

    /// An entry like `like`, at the log's next leaf, edited by `edit`.
    fn entry(&self, like: &SignedEntry, edit: &dyn Fn(&mut Entry)) -> Entry {
        let mut e = like.entry().clone();
        e.seq = self.log.size();
        edit(&mut e);
        e
    }

    /// Append `leaves`, then (when `attest`) a real batch attestation over
    /// them: AK quote, counter, chain.
    fn append(&mut self, mut leaves: Vec<Vec<u8>>, attest: bool) {
        if attest {
            let mut at = self.view.position;
            at.first_leaf = self.log.size();
            let batch = attest_batch(
                &mut self.tpm,
                &self.keys.enrollment,
                at,
                DEFAULT_ORDERLY_JUMP,
                &leaves,
            )
            .unwrap();
            leaves.push(batch.to_leaf().unwrap());
        }
        self.log.append(&leaves).unwrap();
        let dir = self.log.dir().to_owned();
        self.view.catch_up(&dir, self.log.size()).unwrap();
    }
}

#[test]
fn an_entry_signed_by_an_unbound_key() {
    let b = builder_with_entries();
    let like = common::entries(&b.log())[0].clone();
    let mut a = Attacker::on(&b, &b.log());
    // A key of its own choosing: valid signature, attested by a real batch.
    let rogue = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let e = a.entry(&like, &|e| e.time += 1);
    let seq = e.seq;
    a.append(e.sign(&rogue).unwrap().to_leaves(), true);
    match appraise_dir(&b.log()).unwrap_err() {
        AppraisalError::EntrySignature { leaf } => assert_eq!(leaf, seq),
        other => panic!("{other}"),
    }
}

#[test]
fn an_entry_naming_another_system() {
    let b = builder_with_entries();
    let like = common::entries(&b.log())[0].clone();
    let mut a = Attacker::on(&b, &b.log());
    // The real SK signs an entry claiming an approved system it did not boot.
    let claimed = provenix_protocol::Sha256Digest([0x5a; 32]);
    let e = a.entry(&like, &|e| e.system = claimed);
    let signed = e.sign(&a.keys.sk).unwrap();
    a.append(signed.to_leaves(), true);
    match appraise_dir(&b.log()).unwrap_err() {
        AppraisalError::EntrySystem {
            claimed: c,
            measured,
            ..
        } => {
            assert_eq!(c, claimed.to_hex());
            assert_eq!(measured, like.entry().system.to_hex());
        }
        other => panic!("{other}"),
    }
}

#[test]
fn k_whose_policy_is_not_its_binding_quotes() {
    let b = builder_with_entries();
    let mut a = Attacker::on(&b, &b.log());
    // K sealed to the system PCR alone: SK would derive under any firmware
    // and boot chain. Certified and quoted (the seal set) like a real one.
    let loose = PcrSet::new(&[14]).unwrap();
    let seal = PcrSet::new(&a.keys.enrollment.seal_pcrs).unwrap();
    let k = a.tpm.create_derivation_key(Some(&loose)).unwrap();
    let ak = a.tpm.ak_handle(a.keys.enrollment.ak_handle).unwrap();
    let (_, binding) =
        provenix_agent::enroll::bind(&mut a.tpm, &k, Some(&loose), SK_LABEL, ak, &seal).unwrap();
    let record = KeyRebinding {
        version: provenix_protocol::enrollment::REBINDING_VERSION,
        signing_key: binding,
        firmware_event_log: Vec::new(),
        cel_event_log: std::fs::read(a.state.file("cel.log")).unwrap(),
        time: 1,
    };
    a.append(record.to_leaves().unwrap(), false);
    match appraise_dir(&b.log()).unwrap_err() {
        AppraisalError::KeyPolicy(why) => assert!(why.contains("differ"), "{why}"),
        other => panic!("{other}"),
    }
}

/// The log with its enrollment replaced by `edit`'s, written under a
/// software LK (the enrollment is checked before the checkpoint).
fn with_enrollment(b: &Builder, to: &Path, edit: &dyn Fn(&mut Enrollment)) {
    let mut e = enrollment(b);
    edit(&mut e);
    let origin = origin_for(&e.builder_id().unwrap());
    let key = note_key(&origin, ed25519_dalek::SigningKey::from_bytes(&[4; 32])).unwrap();
    let mut log = LogWriter::open(to, &origin, key).unwrap();
    log.append(&e.to_leaves().unwrap()).unwrap();
}

/// The builder's enrollment record, as `enroll` wrote it.
fn enrollment(b: &Builder) -> Enrollment {
    let path = b.state().join(provenix_agent::enroll::ENROLLMENT_FILE);
    Enrollment::decode(&std::fs::read(path).unwrap()).unwrap()
}

/// The AK's public area with a software P-256 key in place of its point.
fn dressed_ak(ak_public: &[u8], restricted: bool) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let mut ak = Public::from_bytes(ak_public).unwrap();
    let soft = p256::SecretKey::from_slice(&[9; 32]).unwrap();
    let point = soft.public_key().to_encoded_point(false);
    let PublicKey::Ecc { point: p, .. } = &mut ak.key else {
        panic!("the AK is not an ECC key")
    };
    p.x = provenix_protocol::tpm::EccParameter::new(point.x().unwrap()).unwrap();
    p.y = provenix_protocol::tpm::EccParameter::new(point.y().unwrap()).unwrap();
    ak.attributes = ak.attributes.with(ObjectAttributes::RESTRICTED, restricted);
    ak.to_bytes()
}

#[test]
fn an_unrestricted_ak() {
    let b = Builder::new("");
    let dir = tempfile::tempdir().unwrap();
    // A software key that can sign anything, e.g. a TPMS_ATTEST it made up.
    with_enrollment(&b, dir.path(), &|e| {
        e.ak_public = dressed_ak(&e.ak_public, false)
    });
    match appraise_dir(dir.path()).unwrap_err() {
        AppraisalError::AkAttributes(why) => assert!(why.contains("restricted"), "{why}"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_software_key_posing_as_the_ak_fails_activation() {
    let b = Builder::new("");
    let tpl = provenix_swtpm_tests::Template::shared(0).unwrap();
    let mut policy = Policy::parse(
        &format!(
            "insecure_allow_swtpm = true\nquorum = 1\ndanger_any_system = true\n\
             trusted_activators = [\"{}\"]\n\
             ek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\n[[builder]]\nname = \"a\"\n\
             log = \"/x\"\nak_name = \"{}\"\n",
            auditor().verifier_key(),
            tpl.root_ca_cert().display(),
            tpl.issuer_cert().display(),
            "00".repeat(34),
        ),
        "test",
    )
    .unwrap();
    policy.read_certificates(Path::new("/")).unwrap();
    let real = enrollment(&b);
    let work = tempfile::tempdir().unwrap();
    // The challenge is made for the AK the record names, with the key of
    // the verified EK certificate; only the TPM holding both can answer.
    let answer = |e: &Enrollment, name: &str| {
        let pending =
            provenix_verifier::activate::challenge(e, &policy, 0, provenix_io::unix_time())
                .unwrap();
        let c = work.path().join(format!("{name}.challenge"));
        let out = work.path().join(format!("{name}.answer"));
        std::fs::write(&c, pending.challenge.to_bytes()).unwrap();
        let run = b
            .agent()
            .args(["activate", "--challenge"])
            .arg(&c)
            .arg("--answer-out")
            .arg(&out)
            .output()
            .unwrap();
        (pending, run, out)
    };
    // The real AK: answered, and the record names it.
    let (pending, run, out) = answer(&real, "real");
    common::ok(run);
    let act = pending.finish(&std::fs::read(out).unwrap(), 1).unwrap();
    assert_eq!(act.builder, real.builder_id().unwrap());
    // A software key with the AK's attributes, next to the same real EK
    // certificate: the TPM refuses to release the credential.
    let mut dressed = real.clone();
    dressed.ak_public = dressed_ak(&real.ak_public, true);
    let (_, run, out) = answer(&dressed, "dressed");
    assert!(!run.status.success(), "the TPM answered for a software key");
    assert!(!out.exists());
    let stderr = String::from_utf8_lossy(&run.stderr);
    // TPM_RC_INTEGRITY on the credential blob: it names another object.
    assert!(
        stderr.contains("ActivateCredential failed") && stderr.contains("0x1df"),
        "{stderr}"
    );
    // And without an activation record the policy does not count the log.
    let mut b = b;
    b.start_daemon(&["--batch-delay-ms", "50"]);
    b.nix.build("hello", &[]).unwrap();
    b.wait_entries(1);
    b.kill_daemon();
    let a = appraise_dir(&b.log()).unwrap();
    match policy
        .admit(&a, provenix_io::unix_time(), None)
        .unwrap_err()
    {
        AdmitError::NotActivated(id) => assert_eq!(id, a.builder),
        other => panic!("{other}"),
    }
    policy.activations.push(act);
    policy.admit(&a, provenix_io::unix_time(), None).unwrap();
}

fn auditor() -> provenix_protocol::note::NoteSigningKey {
    provenix_protocol::note::NoteSigningKey::new(
        provenix_protocol::note::KeyName::new("auditor.test").unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
    )
}

#[test]
fn unapproved_systems_and_changed_pinned_pcrs() {
    let mut b = builder_with_entries();
    let work = tempfile::tempdir().unwrap();
    // The auditor predicts systems from their closures' content.
    let predict = |name: &str| {
        let top = b
            .nix
            .build_expr(&format!("(import ./test.nix).salted \"{name}\""))
            .unwrap()
            .remove(0);
        let out = std::process::Command::new(common::provenix())
            .args(["predict", "--json", "--toplevel", &top, "--store-root"])
            .arg(b.nix.store_root())
            .output()
            .unwrap();
        let file = work.path().join(format!("{name}.json"));
        std::fs::write(&file, common::ok(out)).unwrap();
        file
    };
    // "system" is what the builder booted (common::Builder::new).
    let booted = predict("system");
    let other = predict("another system");
    let a = appraise_dir(&b.log()).unwrap();
    // No firmware boots swtpm: 4 and 9 are pinned here, not predicted.
    let log = b.log();
    let policy = |files: &[&Path], pins: &str| {
        let list: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
        common::policy_for(
            log.to_str().unwrap(),
            &a.builder.to_hex(),
            &format!(
                "approved_systems = [{}]\npin_pcrs = {pins}",
                list.join(", ")
            ),
        )
    };
    let now = provenix_io::unix_time();
    match policy(&[&other], "[0, 2, 4, 7, 9]")
        .admit(&a, now, None)
        .unwrap_err()
    {
        AdmitError::UnapprovedSystem { boot, reasons } => {
            assert_eq!(boot, "enrollment");
            assert!(
                reasons[0].contains("PCR 14 is")
                    && reasons[0].contains("event 1 on PCR 14 differs: predicted provenix system"),
                "{reasons:?}"
            );
        }
        other => panic!("{other}"),
    }
    let p = policy(&[&other, &booted], "[0, 2, 4, 7, 9]");
    let state_dir = tempfile::tempdir().unwrap();
    let state = provenix_verifier::state::StateDir::open(state_dir.path()).unwrap();
    let admitted = p.admit_pinned(&a, Some(&state)).unwrap().unwrap();
    // Pinned on first use, and recorded.
    assert_eq!(
        admitted.pins.keys().copied().collect::<Vec<_>>(),
        vec![0, 2, 4, 7, 9]
    );
    assert_eq!(state.pins(&a.builder).unwrap(), Some(admitted.pins.clone()));

    // A firmware change on PCR 7 (Secure Boot turned off), logged as
    // firmware logs it: the operator re-binds, the logs replay, the pin holds.
    b.log_cel_event(7, "SecureBoot=0", "firmware-setting");
    b.extend_rebind_and_record(7, "SecureBoot=0");
    let a = appraise_dir(&b.log()).unwrap();
    match p.admit_pinned(&a, Some(&state)).unwrap().unwrap_err() {
        AdmitError::PinnedPcr {
            boot, pcr, pinned, ..
        } => {
            assert!(boot.starts_with("rebinding at leaf"), "{boot}");
            assert_eq!(pcr, 7);
            assert_eq!(pinned, admitted.pins[&7]);
        }
        other => panic!("{other}"),
    }
    // Not pinned, PCR 7 is accounted for by nothing (no prediction names
    // it), from the first boot on: not approved either.
    match policy(&[&booted], "[0, 2, 4, 9]")
        .admit(&a, now, None)
        .unwrap_err()
    {
        AdmitError::UnapprovedSystem { boot, reasons } => {
            assert_eq!(boot, "enrollment");
            assert!(reasons[0].contains("PCR 7 is quoted"), "{reasons:?}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_forked_log_is_caught_by_consistency_and_witnesses() {
    use provenix_protocol::note::{CosignerSigningKey, KeyName, NoteSigningKey};
    use provenix_verifier::witness::{AddError, Witness};
    let b = builder_with_entries();
    let like = common::entries(&b.log())[0].clone();
    let work = tempfile::tempdir().unwrap();
    // Two continuations of one log, each with a real batch: a split view.
    let mut lk = None;
    let mut fork = |name: &str, time: u64| {
        let dir = work.path().join(name);
        common::copy_dir(&b.log(), &dir);
        let mut at = Attacker::on(&b, &dir);
        let e = at.entry(&like, &|e| e.time = time);
        let signed = e.sign(&at.keys.sk).unwrap();
        at.append(signed.to_leaves(), true);
        lk = Some(at.keys.lk.clone());
        dir
    };
    let (fa, fb) = (fork("a", 1), fork("b", 2));
    let lk = lk.unwrap();
    let a = appraise_dir(&fa).unwrap();
    let other = appraise_dir(&fb).unwrap();
    assert_eq!(a.checkpoint.size, other.checkpoint.size);
    assert_ne!(a.checkpoint.root, other.checkpoint.root);

    // A verifier that went on from the common prefix to one fork is shown
    // the other: its saved appraisal refuses it, and stays where it was.
    let mut ap = provenix_verifier::appraise::Appraiser::new();
    ap.sync(&LogSource::Dir(b.log()), None, &mut |_, _| {})
        .unwrap();
    let a_again = ap
        .sync(&LogSource::Dir(fa.clone()), None, &mut |_, _| {})
        .unwrap();
    assert_eq!(a_again.new_entries, 1);
    let at_a = ap.seen();
    let e = ap
        .sync(&LogSource::Dir(fb.clone()), None, &mut |_, _| {})
        .unwrap_err();
    assert!(
        matches!(e, AppraisalError::Inconsistent { size } if size == at_a.size),
        "{e}"
    );
    assert_eq!(ap.seen(), at_a);

    // A verifier that saw one fork is shown the other: inconsistent.
    let seen = provenix_verifier::appraise::Seen {
        size: a.checkpoint.size,
        root: a.checkpoint.root,
    };
    let e = appraise(&LogSource::Dir(fb.clone()), Some(seen), &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, AppraisalError::Inconsistent { .. }), "{e}");

    // Two verifiers that each saw one fork: the witness cosigns only one
    // history, so a policy that requires its cosignature refuses the other.
    let origin = a.checkpoint.origin.clone();
    let witness_key = CosignerSigningKey::new(
        KeyName::new("witness.test").unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    );
    let log_key = NoteSigningKey::new(KeyName::new(&origin).unwrap(), lk);
    let w = Witness::new(
        witness_key.clone(),
        vec![log_key.verifier_key()],
        &work.path().join("witness"),
    )
    .unwrap();
    let cp_a = std::fs::read_to_string(fa.join("checkpoint")).unwrap();
    let line = w
        .add_checkpoint(format!("old 0\n\n{cp_a}").as_bytes(), 1)
        .unwrap();
    std::fs::write(fa.join("checkpoint"), format!("{cp_a}{line}")).unwrap();
    let cp_b = std::fs::read_to_string(fb.join("checkpoint")).unwrap();
    let size = a.checkpoint.size;
    match w.add_checkpoint(format!("old {size}\n\n{cp_b}").as_bytes(), 2) {
        Err(AddError::Inconsistent(_)) => {}
        other => panic!("{other:?}"),
    }
    let p = common::policy_for(
        b.log().to_str().unwrap(),
        &a.builder.to_hex(),
        &format!(
            "danger_any_system = true\nwitnesses = [\"{}\"]\nmin_witnesses = 1",
            witness_key.verifier_key()
        ),
    );
    let now = provenix_io::unix_time();
    p.admit(&appraise_dir(&fa).unwrap(), now, None).unwrap();
    match p.admit(&other, now, None).unwrap_err() {
        AdmitError::TooFewWitnesses { cosigned, required } => {
            assert_eq!((cosigned, required), (0, 1))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn malformed_logs_are_refused_and_nothing_is_written() {
    use provenix_protocol::leaf::{decode_bundle, encode_bundle};
    let b = builder_with_entries();
    let work = tempfile::tempdir().unwrap();
    let pristine = work.path().join("pristine");
    let log = work.path().join("log");
    common::copy_dir(&b.log(), &pristine);
    common::copy_dir(&b.log(), &log);
    let verify = |state: &Path| {
        let out = std::process::Command::new(common::provenix())
            .args(["verify", "--json", "--state-dir"])
            .arg(state)
            .arg(&log)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), v)
    };
    let files = |state: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<_> = common::walk(state)
            .into_iter()
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let (code, v) = verify(&work.path().join("good"));
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(files(&work.path().join("good")).len(), 1, "one appraisal");
    let size = v["size"].as_u64().unwrap();
    let bundle = format!("tile/entries/000.p/{size}");
    let leaves = || -> Vec<Vec<u8>> {
        decode_bundle(&std::fs::read(pristine.join(&bundle)).unwrap())
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    };
    let bytes = std::fs::read(pristine.join(&bundle)).unwrap();
    let with_leaves = |edit: &dyn Fn(&mut Vec<Vec<u8>>)| {
        let mut l = leaves();
        edit(&mut l);
        encode_bundle(&l).unwrap()
    };
    // (what, file, new content (None: removed), exit code, words the error has)
    type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, i32, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "bundle cut short",
            &bundle,
            Some(bytes[..bytes.len() - 7].to_vec()),
            1,
            "tile/entries",
        ),
        (
            "bundle with a trailing byte",
            &bundle,
            Some([&bytes[..], &[0]].concat()),
            1,
            "tile/entries",
        ),
        ("empty bundle", &bundle, Some(Vec::new()), 1, "tile/entries"),
        (
            "bundle with one leaf more",
            &bundle,
            Some(with_leaves(&|l| l.push(vec![1, 2, 3]))),
            1,
            "leaves",
        ),
        (
            "bundle with one leaf less",
            &bundle,
            Some(with_leaves(&|l| {
                l.pop();
            })),
            1,
            "leaves",
        ),
        (
            "leaf of an unknown kind",
            &bundle,
            Some(with_leaves(&|l| l[0][0] = 0x7f)),
            1,
            "leaf 0",
        ),
        (
            "empty leaf",
            &bundle,
            Some(with_leaves(&|l| l[1].clear())),
            1,
            "leaf 1",
        ),
        (
            "leaf with a trailing byte",
            &bundle,
            Some(with_leaves(&|l| {
                let n = l.len() - 1;
                l[n].push(0)
            })),
            1,
            "leaf",
        ),
        (
            "leaf cut short",
            &bundle,
            Some(with_leaves(&|l| {
                let n = l.len() - 1;
                l[n].truncate(20)
            })),
            1,
            "leaf",
        ),
        (
            "checkpoint that is not a note",
            "checkpoint",
            Some(b"not a checkpoint\n".to_vec()),
            1,
            "checkpoint",
        ),
        ("missing checkpoint", "checkpoint", None, 2, "checkpoint"),
        ("missing bundle", &bundle, None, 2, "tile/entries"),
    ];
    for (i, (what, file, content, code, needle)) in cases.into_iter().enumerate() {
        let path = log.join(file);
        match content {
            Some(c) => std::fs::write(&path, c).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        // A first sight of the log: it is read from its first leaf.
        let state = work.path().join(format!("state-{i}"));
        let (got, v) = verify(&state);
        assert_eq!(got, Some(code), "{what}: {v}");
        assert_eq!(v["verified"], false, "{what}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(needle), "{what}: {error}");
        assert!(files(&state).is_empty(), "{what}: state written");
        std::fs::copy(pristine.join(file), &path).unwrap();
    }
    // Restored, the log verifies again.
    let state = work.path().join("restored");
    assert_eq!(verify(&state).0, Some(0));
    assert_eq!(files(&state).len(), 1);
}

/// The log rewritten by the LK holder into `to`, with the firmware event
/// log of its rebinding edited (to the same length, so every later leaf
/// keeps its index).
fn rewrite_firmware_log(b: &Builder, to: &Path, edit: &dyn Fn(&mut Vec<u8>)) {
    use provenix_protocol::leaf::{LeafReader, Record};
    let (_, leaves, _) = common::read_log(&b.log());
    let mut out = leaves.clone();
    let mut reader = LeafReader::new();
    let mut start = 0;
    for (i, leaf) in leaves.iter().enumerate() {
        if let Some(record) = reader.push(leaf).unwrap() {
            if let Record::KeyRebinding(mut r) = record {
                edit(&mut r.firmware_event_log);
                let new = r.to_leaves().unwrap();
                assert_eq!(new.len(), i + 1 - start, "the record's leaves moved");
                out.splice(start..=i, new);
            }
            start = i + 1;
        }
    }
    let mut a = Attacker::on(b, to);
    a.append(out, false);
}

#[test]
fn forged_firmware_logs() {
    use provenix_measured_boot::{AlgorithmId, EventLog};
    let mut b = builder_with_entries();
    // Firmware for the swtpm: OVMF's real event log, each measured event's
    // SHA-256 digest extended into its PCR as OVMF did.
    let ovmf_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/eventlogs/ovmf-uki/eventlog.bin");
    let ovmf = std::fs::read(&ovmf_file).unwrap();
    let log = EventLog::parse(&ovmf).unwrap();
    let tools = tempfile::tempdir().unwrap();
    let mut measured = 0;
    for e in log.events().iter().filter(|e| e.is_measured()) {
        let (Some(pcr), Some(d)) = (e.pcr(), e.digest(AlgorithmId::SHA256)) else {
            continue;
        };
        let arg = format!(
            "{}:sha256={}",
            pcr.get(),
            provenix_protocol::encoding::hex_encode(d.as_bytes())
        );
        b.swtpm
            .tool(tools.path(), &["tpm2_pcrextend", &arg])
            .unwrap();
        measured += 1;
    }
    b.rebind_and_record(&["--event-log", ovmf_file.to_str().unwrap()], "ovmf");
    let honest = appraise_dir(&b.log()).unwrap();
    assert_eq!(honest.boots.len(), 2);
    let firmware_events = honest.boots[1]
        .events
        .iter()
        .filter(|e| e.kind.starts_with("EV_"))
        .count();
    assert_eq!(firmware_events, measured, "every firmware event was read");

    let work = tempfile::tempdir().unwrap();
    let action = b"Calling EFI Application from Boot Option";
    let at = ovmf
        .windows(action.len())
        .position(|w| w == action)
        .expect("OVMF logs its boot-option action");

    // Event data edited, digests kept: the data is not what is trusted, so
    // the appraisal and the policy's verdict are the same as for the real log.
    let edited_data = work.path().join("data");
    rewrite_firmware_log(&b, &edited_data, &|l| l[at] = b'X');
    let edited = appraise_dir(&edited_data).unwrap();
    assert_eq!(edited.boots, honest.boots);
    let policy = |pins: &str| {
        common::policy_for(
            b.log().to_str().unwrap(),
            &honest.builder.to_hex(),
            &format!("danger_any_system = true\npin_pcrs = {pins}"),
        )
    };
    let now = provenix_io::unix_time();
    for pins in ["[0, 2, 7]", "[]"] {
        let p = policy(pins);
        let (x, y) = (p.admit(&honest, now, None), p.admit(&edited, now, None));
        assert_eq!(
            x.as_ref()
                .map(|a| a.tpm.cert_sha256)
                .map_err(ToString::to_string),
            y.as_ref()
                .map(|a| a.tpm.cert_sha256)
                .map_err(ToString::to_string),
            "pins {pins}"
        );
    }
    // (With PCR 0 pinned from the firmware-less first boot, both are refused
    // alike; without pins, both admitted.)
    assert!(policy("[0, 2, 7]").admit(&honest, now, None).is_err());
    assert!(policy("[]").admit(&honest, now, None).is_ok());

    // One digest edited (the last on PCR 4, the kernel's Authenticode): the logs no
    // longer replay to the rebinding's quote.
    let uki = log
        .events()
        .iter()
        .filter(|e| e.pcr().map(|p| p.get()) == Some(4))
        .filter_map(|e| e.digest(AlgorithmId::SHA256))
        .next_back()
        .unwrap()
        .as_bytes()
        .to_vec();
    let at = ovmf.windows(32).position(|w| w == uki.as_slice()).unwrap();
    let edited_digest = work.path().join("digest");
    rewrite_firmware_log(&b, &edited_digest, &|l| l[at] ^= 1);
    match appraise_dir(&edited_digest).unwrap_err() {
        AppraisalError::EventLogReplay {
            what, reason, pcrs, ..
        } => {
            assert!(what.starts_with("rebinding at leaf"), "{what}");
            // Named by the TPM's own values, which the binding carries.
            assert_eq!(pcrs, vec![4], "{reason}");
            assert!(reason.contains("PCR 4 replay"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn activation_by_files_through_the_cli() {
    let b = Builder::new("");
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(common::provenix())
            .args(args)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), v)
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let (code, init) = run(&[
        &os("activate"),
        &os("init"),
        &os("--json"),
        &os("--name"),
        &os("auditor.test"),
        &os("--key"),
        w("auditor.key").as_os_str(),
    ]);
    assert_eq!(code, Some(0));
    let vkey = init["verifier_key"].as_str().unwrap();
    let a = enrollment(&b);
    let tpl = provenix_swtpm_tests::Template::shared(0).unwrap();
    std::fs::write(
        w("policy.toml"),
        format!(
            "insecure_allow_swtpm = true\nquorum = 1\ndanger_any_system = true\n\
             trusted_activators = [\"{vkey}\"]\nactivations = [\"activations\"]\n\
             ek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\n[[builder]]\nname = \"a\"\n\
             log = \"{}\"\nak_name = \"{}\"\n",
            tpl.root_ca_cert().display(),
            tpl.issuer_cert().display(),
            b.log().display(),
            a.builder_id().unwrap().to_hex()
        ),
    )
    .unwrap();
    let enrollment_file = b.state().join(provenix_agent::enroll::ENROLLMENT_FILE);
    let challenge = |name: &str| {
        let (code, v) = run(&[
            &os("activate"),
            &os("challenge"),
            &os("--json"),
            &os("--policy"),
            w("policy.toml").as_os_str(),
            &os("--enrollment"),
            enrollment_file.as_os_str(),
            &os("--challenge-out"),
            w(name).as_os_str(),
        ]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["builder"], a.builder_id().unwrap().to_hex());
        common::ok(
            b.agent()
                .args(["activate", "--challenge"])
                .arg(w(name))
                .arg("--answer-out")
                .arg(w(&format!("{name}.answer")))
                .output()
                .unwrap(),
        );
    };
    std::fs::create_dir(w("activations")).unwrap();
    challenge("c1");
    challenge("c2");
    let answer = |challenge: &str, answer: &str, out: &str| {
        run(&[
            &os("activate"),
            &os("answer"),
            &os("--json"),
            &os("--challenge"),
            w(challenge).as_os_str(),
            &os("--answer"),
            w(answer).as_os_str(),
            &os("--key"),
            w("auditor.key").as_os_str(),
            &os("--out"),
            w(out).as_os_str(),
        ])
    };
    // The answer to another challenge does not activate.
    let (code, v) = answer("c1", "c2.answer", "activations/wrong.activation");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["activated"], false);
    assert!(!w("activations/wrong.activation").exists());
    let (code, v) = answer("c1", "c1.answer", "activations/a.activation");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["activated"], true);
    assert_eq!(v["builder"], a.builder_id().unwrap().to_hex());
    // The policy reads the record: the activation now counts.
    let loaded = Policy::load(&w("policy.toml")).unwrap();
    assert_eq!(loaded.activations.len(), 1);
    assert_eq!(loaded.activations[0].builder, a.builder_id().unwrap());
}

#[test]
fn a_substituter_forgets_what_a_failed_sync_showed_it() {
    use provenix_verifier::substituter::{Substituter, Upstream};
    let b = builder_with_entries();
    let like = common::entries(&b.log())[0].clone();
    let work = tempfile::tempdir().unwrap();
    let (log, pristine) = (work.path().join("log"), work.path().join("pristine"));
    common::copy_dir(&b.log(), &log);
    common::copy_dir(&b.log(), &pristine);
    let ak = like.entry().builder.to_hex();
    let client = provenix_io::client(None, std::time::Duration::from_secs(10)).unwrap();
    let sub = Substituter::new(
        common::policy_for(log.to_str().unwrap(), &ak, "danger_any_system = true"),
        Upstream::Dir(work.path().join("upstream")),
        provenix_protocol::nix_sig::NixSecretKey::from_seed("sub.test", &[1; 32]).unwrap(),
        &client,
        None,
        std::time::Duration::ZERO,
        40,
    )
    .unwrap();
    sub.sync().unwrap();
    let known = &like.entry().outputs[0].store_path;
    assert!(sub.verdict(known).unwrap().trusted.is_some());

    // The log shown next has a real entry for a new path, but a checkpoint
    // that does not verify: the sync fails after reading the entry.
    let unseen =
        provenix_protocol::StorePath::parse("/nix/store/00000000000000000000000000000000-unseen")
            .unwrap();
    {
        let mut a = Attacker::on(&b, &log);
        let e = a.entry(&like, &|e| e.outputs[0].store_path = unseen.clone());
        let signed = e.sign(&a.keys.sk).unwrap();
        a.append(signed.to_leaves(), true);
    }
    let cp_path = log.join("checkpoint");
    let note = provenix_protocol::note::Note::parse(&std::fs::read(&cp_path).unwrap()).unwrap();
    let cp = provenix_protocol::note::Checkpoint::parse_body(note.text()).unwrap();
    let other = provenix_protocol::note::NoteSigningKey::new(
        provenix_protocol::note::KeyName::new(&cp.origin).unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    );
    std::fs::write(&cp_path, cp.sign(&other).unwrap().render()).unwrap();
    sub.sync().unwrap();
    let v = sub.verdict(known).unwrap();
    assert!(
        v.trusted.is_none(),
        "the builder does not count while its log fails"
    );
    assert!(
        v.missing[0].1.contains("log not accepted"),
        "{:?}",
        v.missing
    );

    // The accepted log again: what the failed sync read never counts.
    std::fs::remove_dir_all(&log).unwrap();
    common::copy_dir(&pristine, &log);
    sub.sync().unwrap();
    assert!(sub.verdict(known).unwrap().trusted.is_some());
    let v = sub.verdict(&unseen).unwrap();
    assert!(v.trusted.is_none(), "{v:?}");
    assert_eq!(
        v.missing,
        vec![("a".to_string(), "no entry for the path".to_string())]
    );
}
