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
use provenix_verifier::policy::AdmitError;
use provenix_verifier::source::LogSource;

fn appraise_dir(dir: &Path, seen: Option<Seen>) -> Result<Appraisal, AppraisalError> {
    let mut n = 0;
    let r = appraise(&LogSource::Dir(dir.to_owned()), seen, &mut |_, _| n += 1);
    if let Ok(a) = &r {
        assert_eq!(a.entries, n, "every entry reached the caller");
    }
    r
}

#[test]
fn real_logs_pass_and_tampering_is_refused_by_kind() {
    let mut b = Builder::new("");
    let config = b.work.path().join("agent.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nplain_http = true\nserve_nix_sigs = false\n",
    )
    .unwrap();
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
    let over_http = appraise(
        &LogSource::Http(url.clone(), client.clone()),
        None,
        &mut |_, _| {},
    )
    .unwrap();
    // This builder does not serve Nix signatures (serve_nix_sigs = false).
    let name = entries[0].entry().outputs[0]
        .store_path
        .base_name()
        .to_string();
    let mut r = client.get(&format!("{url}/sig/{name}")).call().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body = r.body_mut().read_to_string().unwrap();
    assert!(body.contains("serve_nix_sigs = false"), "{body}");
    // Credential activation through the service: the TPM answers.
    let policy = common::policy_for(
        &url,
        &over_http.builder.to_hex(),
        "danger_any_system = true",
    );
    let act = provenix_verifier::activate::activate_online(&url, &client, &policy).unwrap();
    assert_eq!(act.builder, over_http.builder);
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
        common::copy_dir(&b.log(), &d);
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

    // Batches rewritten by someone without the TPM: the second batch given
    // the first's quote (a replayed quote) fails its nonce; so does one
    // whose chain field was changed (the nonce covers the chain).
    let rewrite = |name: &str,
                   edit: &dyn Fn(
        &provenix_protocol::batch::BatchAttestation,
        &mut provenix_protocol::batch::BatchAttestation,
    )| {
        tampered(name, &|d| {
            use provenix_protocol::leaf::{decode_bundle, encode_bundle, Leaf};
            let p = d.join(&bundle);
            let bytes = std::fs::read(&p).unwrap();
            let mut leaves: Vec<Vec<u8>> = decode_bundle(&bytes)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            let batches: Vec<usize> = leaves
                .iter()
                .enumerate()
                .filter(|(_, l)| matches!(Leaf::decode(l), Ok(Leaf::Batch(_))))
                .map(|(i, _)| i)
                .collect();
            assert!(batches.len() >= 2);
            let Ok(Leaf::Batch(first)) = Leaf::decode(&leaves[batches[0]]) else {
                panic!()
            };
            let Ok(Leaf::Batch(mut second)) = Leaf::decode(&leaves[batches[1]]) else {
                panic!()
            };
            edit(&first, &mut second);
            // Encoded by hand: the protocol's writer refuses a batch whose
            // nonce does not match.
            let mut leaf = vec![0x04];
            leaf.extend(postcard::to_allocvec(&second).unwrap());
            leaves[batches[1]] = leaf;
            std::fs::write(&p, encode_bundle(&leaves).unwrap()).unwrap();
        })
    };
    let e = rewrite("replayed-quote", &|first, second| {
        second.quote_attest = first.quote_attest.clone();
        second.quote_signature = first.quote_signature.clone();
    });
    assert!(matches!(e, AppraisalError::BatchNonce { .. }), "{e}");
    let e = rewrite("chain", &|_, second| second.previous_batch = [9; 32]);
    assert!(
        matches!(e, AppraisalError::BatchNonce { .. }),
        "the nonce covers the chain: {e}"
    );
}

/// The builder's AK Name (hex).
fn ak_name(b: &Builder) -> String {
    let out = common::ok(b.agent().args(["keys", "--json"]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["builder"].as_str().unwrap().to_string()
}

#[test]
fn two_of_three_builders_agree_the_liar_is_named_and_the_policy_applies() {
    use provenix_verifier::decide::Builders;
    use provenix_verifier::policy::Policy;

    // Four builders on three TPMs: "a2" is a second enrollment of a's TPM.
    let names_in_policy = ["a", "b", "c", "a2"];
    let mut builders: Vec<Builder> = [0, 1, 2, 0]
        .iter()
        .map(|&t| Builder::on_tpm(t, ""))
        .collect();
    let mut path = String::new();
    for (i, b) in builders.iter_mut().enumerate() {
        if i != 2 {
            b.start_daemon(&["--batch-delay-ms", "50"]);
            path = b.nix.build("hello", &[]).unwrap()[0].clone();
        } else {
            // The liar: its daemon is down while Nix builds, and the output
            // is changed before the daemon hashes it.
            b.nix.build("hello", &[]).unwrap();
            let file = b.nix.store_root().join(path.trim_start_matches('/'));
            let mut perms = std::fs::metadata(&file).unwrap().permissions();
            use std::os::unix::fs::PermissionsExt as _;
            perms.set_mode(0o644);
            std::fs::set_permissions(&file, perms).unwrap();
            std::fs::write(&file, "hello from a liar\n").unwrap();
            b.start_daemon(&["--batch-delay-ms", "50"]);
        }
        b.wait_entries(1);
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.kill_daemon();
    }
    let names: Vec<String> = builders.iter().map(ak_name).collect();
    // Every builder also builds multi, whose output does not depend on
    // hello's content (for inputs_depth below).
    let mut multi = String::new();
    for b in builders.iter_mut() {
        let before = common::entries(&b.log()).len();
        b.start_daemon(&["--batch-delay-ms", "50"]);
        multi = b.nix.build("multi", &[]).unwrap()[0].clone();
        b.wait_entries(before + 1);
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.kill_daemon();
    }
    // Each swtpm template has its own local CA (root and issuing CA).
    let tpl = |i| provenix_swtpm_tests::Template::shared(i).unwrap();
    let ca = |roots: &[usize]| {
        let files = |f: &dyn Fn(usize) -> std::path::PathBuf| {
            roots
                .iter()
                .map(|&i| format!("\"{}\"", f(i).display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "ek_roots = [{}]\nek_intermediates = [{}]\n",
            files(&|i| tpl(i).root_ca_cert()),
            files(&|i| tpl(i).issuer_cert())
        )
    };
    let activations = tempfile::tempdir().unwrap();
    let auditor = provenix_protocol::note::NoteSigningKey::new(
        provenix_protocol::note::KeyName::new("auditor.test").unwrap(),
        ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
    );
    // `activation`: require activation records (from `activations`), or skip.
    let policy_full =
        |quorum: usize, swtpm: bool, pins: &[&String], roots: &[usize], activation: bool| {
            let act = if activation {
                format!(
                    "trusted_activators = [\"{}\"]\nactivations = [\"{}\"]\n",
                    auditor.verifier_key(),
                    activations.path().display()
                )
            } else {
                "danger_skip_credential_activation = true\n".to_string()
            };
            let mut text = format!(
            "insecure_allow_swtpm = {swtpm}\nquorum = {quorum}\ndanger_any_system = true\n{act}{}",
            ca(roots)
        );
            for (i, b) in builders.iter().enumerate() {
                text.push_str(&format!(
                    "[[builder]]\nname = \"{}\"\nlog = \"{}\"\nak_name = \"{}\"\n",
                    names_in_policy[i],
                    b.log().display(),
                    pins[i]
                ));
            }
            let mut p = Policy::parse(&text, "test").unwrap();
            p.read_certificates(Path::new("/")).unwrap();
            p
        };
    let policy_with = |quorum: usize, swtpm: bool, pins: &[&String], roots: &[usize]| {
        policy_full(quorum, swtpm, pins, roots, false)
    };
    let policy =
        |quorum: usize, swtpm: bool, pins: &[&String]| policy_with(quorum, swtpm, pins, &[0, 1, 2]);
    let store_path = provenix_protocol::StorePath::parse(&path).unwrap();
    let client = provenix_io::client(None, std::time::Duration::from_secs(10)).unwrap();
    let verdict = |p: &Policy| {
        let wanted = std::collections::BTreeSet::from([store_path.clone()]);
        Builders::load(p, &client, None, Some(&wanted))
            .unwrap()
            .decide(p, &store_path)
    };
    let pins: Vec<&String> = names.iter().collect();

    let v = verdict(&policy(2, true, &pins));
    let info: serde_json::Value =
        serde_json::from_slice(&builders[0].nix.path_info(&[path.clone()]).unwrap().stdout)
            .unwrap();
    let nix_hash = provenix_protocol::NarHash::parse(info[0]["narHash"].as_str().unwrap()).unwrap();
    assert_eq!(
        v.trusted.as_ref().map(|a| a.nar_hash),
        Some(nix_hash),
        "{v:?}"
    );
    assert_eq!(v.agreeing, vec!["a", "b", "a2"]);
    assert_eq!(v.count, 2, "a and a2 are one TPM");
    assert_eq!(v.disagreeing.len(), 1);
    assert_eq!(v.disagreeing[0].0, "c");
    assert_ne!(v.disagreeing[0].1.nar_hash, nix_hash);

    // The reproducibility table: hello's output differs, c in the minority.
    let r = provenix_verifier::report::report(&policy(2, true, &pins), &client, None).unwrap();
    assert!(r.not_counted.is_empty(), "{:?}", r.not_counted);
    let hello = r
        .rows
        .iter()
        .find(|row| row.drv_path.ends_with("-hello.drv"))
        .unwrap();
    let out = &hello.outputs[0];
    assert!(!out.reproducible());
    assert_eq!(out.groups[0].0, nix_hash);
    assert_eq!(out.groups[0].1, vec!["a", "b", "a2"]);
    assert_eq!(out.groups[1].1, vec!["c"]);

    // Three needed: three builders agree, but on two TPMs: not trusted; the
    // liar still named.
    let v = verdict(&policy(3, true, &pins));
    assert!(v.trusted.is_none());
    assert_eq!(v.agreeing.len(), 3);
    assert_eq!(v.disagreeing[0].0, "c");

    // Software TPMs not allowed: nobody counts.
    let v = verdict(&policy(2, false, &pins));
    assert!(v.trusted.is_none());
    assert_eq!(v.missing.len(), 4);
    assert!(v.missing[0].1.contains("software TPM"), "{:?}", v.missing);

    // Inputs to depth 1: all four agree on multi; but c resolved its own
    // hello, which the quorum does not trust: c's vote no longer counts.
    let multi = provenix_protocol::StorePath::parse(&multi).unwrap();
    let deep = |quorum: usize, depth: u32| {
        let mut p = policy(quorum, true, &pins);
        p.file.inputs_depth = depth;
        Builders::load(&p, &client, None, None)
            .unwrap()
            .decide(&p, &multi)
    };
    let v = deep(3, 0);
    assert!(v.trusted.is_some(), "{v:?}");
    assert_eq!(v.agreeing, vec!["a", "b", "c", "a2"]);
    let v = deep(2, 1);
    assert!(v.trusted.is_some(), "{v:?}");
    assert_eq!(v.agreeing, vec!["a", "b", "a2"]);
    assert_eq!(v.missing.len(), 1);
    assert_eq!(v.missing[0].0, "c");
    assert!(v.missing[0].1.contains(&path), "{:?}", v.missing);
    assert_eq!(v.untrusted_inputs.len(), 1);
    let v = deep(3, 1);
    assert!(v.trusted.is_none(), "two TPMs left: {v:?}");

    // b pinned to c's AK: b's log is refused as another builder's, so only
    // a's TPM backs the real hash.
    let v = verdict(&policy(2, true, &[pins[0], pins[2], pins[2], pins[3]]));
    assert!(v.trusted.is_none(), "{v:?}");
    assert!(v
        .missing
        .iter()
        .any(|(n, why)| n == "b" && why.contains("not the pinned")));
}

#[test]
fn an_unlogged_pcr_extension_is_refused_by_replay() {
    // A boot where PCR 12 (in the seal set) was extended by something the
    // event logs do not show, e.g. a command-line override: SK no longer
    // derives, the operator re-binds, and the new binding's quote covers a
    // PCR 12 no log explains.
    let mut b = Builder::new("");
    b.extend_rebind_and_record(12, "unlogged");
    let e = appraise_dir(&b.log(), None).unwrap_err();
    match e {
        AppraisalError::EventLogReplay {
            what,
            replayed,
            pcrs,
            ..
        } => {
            assert!(what.starts_with("rebinding at leaf"), "{what}");
            assert_eq!(pcrs, vec![12], "the PCR the logs do not explain");
            assert!(
                replayed.contains(&format!("12={}", "00".repeat(32))),
                "{replayed}"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_logged_pcr_12_override_replays_but_the_policy_refuses_it() {
    // A boot with a kernel command-line override measured into PCR 12 and
    // logged honestly: the logs replay, but the policy forbids events there.
    let mut b = Builder::new("");
    let data = "systemd.debug-shell=1";
    b.log_cel_event(12, data, "kernel-cmdline");
    b.extend_rebind_and_record(12, data);
    // The log is sound: its logs replay to the quotes.
    let a = appraise_dir(&b.log(), None).unwrap();
    assert_eq!(a.events_per_pcr().get(&12), Some(&1));
    // The policy (default: no events on 12 and 13) does not admit it.
    let mut p = common::policy_for("/x", &a.builder.to_hex(), "danger_any_system = true");
    let why = p.admit(&a, provenix_io::unix_time(), None).unwrap_err();
    assert!(
        matches!(why, AdmitError::PcrEvents { pcr: 12, count: 1 }),
        "{why}"
    );
    p.file.no_events_on.clear();
    p.admit(&a, provenix_io::unix_time(), None).unwrap();
}

#[test]
fn an_appraisal_goes_on_from_where_it_stood() {
    use provenix_verifier::appraise::Appraiser;
    let mut b = Builder::new("");
    let record = |b: &mut Builder, attr: &str, entries: usize| {
        b.start_daemon(&["--batch-delay-ms", "50"]);
        b.nix.build(attr, &[]).unwrap();
        b.wait_entries(entries);
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.kill_daemon();
    };
    record(&mut b, "hello", 1);
    let source = LogSource::Dir(b.log());
    let mut first = Appraiser::new();
    let a1 = first.sync(&source, None, &mut |_, _| {}).unwrap();
    assert_eq!((a1.entries, a1.new_entries), (1, 1));
    let saved = first.to_json().unwrap();

    // The log grows; the saved appraisal goes on, reading only what is new.
    record(&mut b, "dependent", 3);
    let mut resumed = Appraiser::from_json(saved.as_bytes(), "saved").unwrap();
    assert_eq!(resumed.seen(), first.seen());
    let mut leaves = Vec::new();
    let a2 = resumed
        .sync(&source, None, &mut |leaf, _| leaves.push(leaf))
        .unwrap();
    assert_eq!((a2.entries, a2.new_entries), (3, 2));
    assert!(
        leaves.iter().all(|l| *l >= a1.checkpoint.size),
        "{leaves:?}"
    );
    // The same as appraising the whole log.
    let full = appraise_dir(&b.log(), None).unwrap();
    assert_eq!(a2.checkpoint, full.checkpoint);
    assert_eq!(
        (a2.batches, a2.bindings, &a2.boots),
        (full.batches, full.bindings, &full.boots)
    );
    // Nothing new: nothing read.
    let a3 = resumed.sync(&source, None, &mut |_, _| panic!()).unwrap();
    assert_eq!((a3.entries, a3.new_entries), (3, 0));
    // Saved and read back again, it still goes on.
    let again = Appraiser::from_json(resumed.to_json().unwrap().as_bytes(), "saved").unwrap();
    assert_eq!(again.seen(), resumed.seen());

    // Old leaves changed after they were accepted: the resumed appraisal
    // does not read them, and need not: the checkpoint commits to the
    // leaves it accepted (forks: agent/tests/attacks.rs).
    let work = tempfile::tempdir().unwrap();
    let d = work.path().join("other");
    common::copy_dir(&b.log(), &d);
    let bundle = format!("tile/entries/000.p/{}", a2.checkpoint.size);
    let p = d.join(&bundle);
    let mut leaves = provenix_protocol::leaf::decode_bundle(&std::fs::read(&p).unwrap())
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>();
    leaves[0][5] ^= 1; // inside the enrollment, which the resumed appraisal skips
    std::fs::write(&p, provenix_protocol::leaf::encode_bundle(&leaves).unwrap()).unwrap();
    let mut from_first = Appraiser::from_json(saved.as_bytes(), "saved").unwrap();
    from_first
        .sync(&LogSource::Dir(d.clone()), None, &mut |_, _| {})
        .unwrap();
    // A damaged saved state is refused, not taken for a fresh start.
    assert!(matches!(
        Appraiser::from_json(b"{}", "saved"),
        Err(AppraisalError::Malformed { .. })
    ));
    let edge = saved.replacen("\"peaks\": [", "\"peaks\": [\"00\",", 1);
    assert_ne!(edge, saved);
    assert!(Appraiser::from_json(edge.as_bytes(), "saved").is_err());
}
